"""Redo of B-tree records (``btree_xlog_insert`` for INSERT_LEAF/UPPER/META without posting
lists, ``btree_xlog_newroot``), including the metapage they restore."""

from __future__ import annotations

from pytest_walredo.pg.btree_page import (
    BT_META_SIZE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTMetaPageData,
    BTPageOpaque,
    btree_page_init,
    split_index_tuples,
)
from pytest_walredo.pg.page import PageError
from pytest_walredo.pg.redo.buffer import Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.btree import (
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_UPPER,
    BtreeInsert,
    BtreeMetadata,
    BtreeNewroot,
)

__all__ = ["ROUTINES"]


def _clear_incomplete_split(a: Apply, block_id: int) -> None:
    page = a.page_for_redo(block_id)
    if page is not None:
        op = BTPageOpaque.unpack(page.data)
        BTPageOpaque(op.prev, op.next, op.level, op.flags & ~BTP_INCOMPLETE_SPLIT,
                     op.cycleid).write(page)
        a.done(page)


def _restore_meta(a: Apply, block_id: int, meta: BtreeMetadata | None) -> None:
    page = a.page_for_redo(block_id, init=btree_page_init)
    if page is None:
        return
    if meta is None:
        raise a.fail(f"btree metapage block {block_id} carries no metadata")
    page.data[24 : 24 + BT_META_SIZE] = BTMetaPageData(
        version=meta.version,
        root=meta.root,
        level=meta.level,
        fastroot=meta.fastroot,
        fastlevel=meta.fastlevel,
        last_cleanup_num_delpages=meta.last_cleanup_num_delpages,
        last_cleanup_num_heap_tuples=-1.0,
        allequalimage=meta.allequalimage,
    ).pack()
    BTPageOpaque(flags=BTP_META).write(page)
    page.lower = 24 + BT_META_SIZE
    a.done(page)


def _insert(a: Apply, body: BtreeInsert) -> None:
    """INSERT_LEAF / INSERT_UPPER / INSERT_META (no posting lists)."""
    if body.op in (XLOG_BTREE_INSERT_UPPER, XLOG_BTREE_INSERT_META):  # an internal page
        if a.has_block(1):
            _clear_incomplete_split(a, 1)
    page = a.page_for_redo(0)
    if page is not None:
        if not body.tuple:
            raise a.fail("btree INSERT carries no index tuple and no image to apply")
        try:
            got = page.add_item(body.tuple, body.offnum)
        except PageError as exc:
            raise a.fail(str(exc)) from None
        if got == 0:
            raise a.fail("failed to add new item")
        a.done(page)
    if body.op == XLOG_BTREE_INSERT_META:
        _restore_meta(a, 2, body.metadata)


def _newroot(a: Apply, body: BtreeNewroot) -> None:
    page = a.page_for_redo(0, init=btree_page_init)
    if page is not None:
        flags = BTP_ROOT | (BTP_LEAF if body.level == 0 else 0)
        BTPageOpaque(0, 0, body.level, flags, 0).write(page)
        if body.level > 0:
            try:
                items = split_index_tuples(body.tuples)
            except ValueError as exc:
                raise a.fail(f"_bt_restore_page: {exc}") from None
            n = len(items)
            for i in range(n - 1, -1, -1):
                if page.add_item(items[i], n - i) == 0:
                    raise a.fail("_bt_restore_page: cannot add item to page")
        a.done(page)
    if body.level > 0 and a.has_block(1):
        _clear_incomplete_split(a, 1)
    _restore_meta(a, 2, body.metadata)


ROUTINES: dict[type[RmgrRecord], Routine] = {BtreeInsert: _insert, BtreeNewroot: _newroot}
"""The redo routine of each btree record kind."""
