"""Redo of B-tree records that add tuples (``btree_xlog_insert`` incl. INSERT_POST,
``btree_xlog_split``, ``btree_xlog_newroot``, ``btree_xlog_dedup``) and the helpers the
other btree routines (:mod:`.btree_delete`) share: the metapage restore, the incomplete-split
flag, ``_bt_restore_page``.

Every routine touches only the requested block, through :class:`~.buffer.Apply`; where
Neon's fork differs (the right page's cycle id after a split) :mod:`.neon` says so.
"""

from __future__ import annotations

from pytest_walredo.pg.btree_page import (
    BT_META_SIZE,
    BTP_HAS_GARBAGE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTMetaPageData,
    BTPageOpaque,
    btree_page_init,
    split_index_tuples,
)
from pytest_walredo.pg.btree_posting import P_FIRSTKEY, P_HIKEY, DedupState, swap_posting, tuple_size
from pytest_walredo.pg.page import Page, PageError
from pytest_walredo.pg.redo import neon
from pytest_walredo.pg.redo.buffer import Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.btree import BtreeDedup, BtreeInsert, BtreeMetadata, BtreeNewroot, BtreeSplit
from pytest_walredo.pg.rmgr.nbtxlog import (
    XLOG_BTREE_INSERT_LEAF,
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_POST,
)

__all__ = ["ROUTINES", "add_item", "clear_incomplete_split", "first_data_key", "restore_meta", "set_opaque"]


def set_opaque(page: Page, **fields: int) -> None:
    """Change some ``BTPageOpaqueData`` fields of ``page`` (prev, next, level, flags, cycleid)."""
    op = BTPageOpaque.unpack(page.data)
    values = {"prev": op.prev, "next": op.next, "level": op.level, "flags": op.flags, "cycleid": op.cycleid}
    values.update(fields)
    BTPageOpaque(**values).write(page)


def first_data_key(page: Page) -> int:
    """``P_FIRSTDATAKEY``: item 1 is the high key unless the page is rightmost (next == 0)."""
    return P_HIKEY if BTPageOpaque.unpack(page.data).next == 0 else P_FIRSTKEY


def add_item(a: Apply, page: Page, item: bytes, offnum: int, message: str) -> None:
    """``PageAddItem`` that must succeed, else the routine's own error ``message``."""
    try:
        got = page.add_item(item, offnum)
    except PageError as exc:
        raise a.fail(str(exc)) from None
    if got == 0:
        raise a.fail(message)


def clear_incomplete_split(a: Apply, block_id: int) -> None:
    """``_bt_clear_incomplete_split``."""
    page = a.page_for_redo(block_id)
    if page is not None:
        set_opaque(page, flags=BTPageOpaque.unpack(page.data).flags & ~BTP_INCOMPLETE_SPLIT)
        a.done(page)


def restore_meta(a: Apply, block_id: int, meta: BtreeMetadata | None) -> None:
    """``_bt_restore_meta``: the metapage rebuilt from scratch from the logged metadata."""
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


def _restore_page(a: Apply, page: Page, data: bytes) -> None:
    """``_bt_restore_page``: the tuples logged from pd_upper to pd_special (highest item
    number first) go back in item-number order, each MAXALIGNed, so that they lie where
    they lay."""
    try:
        items = split_index_tuples(data)
    except ValueError as exc:
        raise a.fail(f"_bt_restore_page: {exc}") from None
    n = len(items)
    for i in range(n - 1, -1, -1):
        add_item(a, page, items[i], n - i, "_bt_restore_page: cannot add item to page")


def _insert(a: Apply, body: BtreeInsert) -> None:
    """INSERT_LEAF / INSERT_UPPER / INSERT_META / INSERT_POST."""
    if body.op not in (XLOG_BTREE_INSERT_LEAF, XLOG_BTREE_INSERT_POST):  # an internal page
        clear_incomplete_split(a, 1)
    page = a.page_for_redo(0)
    if page is not None:
        if not body.tuple:
            raise a.fail("btree INSERT carries no index tuple and no image to apply")
        item = body.tuple
        if body.op == XLOG_BTREE_INSERT_POST:
            assert body.postingoff is not None  # the typed record keeps them together
            item = _split_posting(a, page, body.offnum - 1, item, body.postingoff)
            if tuple_size(item) != len(item):
                raise a.fail("posting split new item size disagrees with the logged length")
        add_item(a, page, item, body.offnum, "failed to add new item")
        a.done(page)
    if body.op == XLOG_BTREE_INSERT_META:
        restore_meta(a, 2, body.metadata)


def _split_posting(a: Apply, page: Page, postingoff_item: int, orignewitem: bytes, postingoff: int) -> bytes:
    """The INSERT_POST step: the posting list at ``postingoff_item`` takes the new item's
    heap TID (``_bt_swap_posting``), overwritten in place; returns the final new item."""
    if not 1 <= postingoff_item <= page.max_offset():
        raise a.fail(f"posting list split at item {postingoff_item}, which is not on the page")
    nposting, final = _swap(a, page, postingoff_item, orignewitem, postingoff)
    off = page.item_id(postingoff_item).off  # memcpy over the old posting list, in place
    page.data[off : off + len(nposting)] = nposting
    return final


def _swap(a: Apply, page: Page, offnum: int, newitem: bytes, postingoff: int) -> tuple[bytes, bytes]:
    try:
        return swap_posting(newitem, page.item(offnum), postingoff)
    except PageError as exc:
        raise a.fail(str(exc)) from None


def _split(a: Apply, body: BtreeSplit) -> None:
    """``btree_xlog_split``: the right page rebuilt from the record, the left page rebuilt from
    its old items up to ``firstrightoff`` (plus the new item when it goes left, or the
    posting list it split) under the logged high key, the next page's prev link."""
    isleaf = body.level == 0
    orig_blk = a.block(0).blkno
    right_blk = a.block(1).blkno
    b2 = a.rec.block(2)
    next_blk = b2.blkno if b2 is not None else 0  # P_NONE
    if not isleaf:
        clear_incomplete_split(a, 3)

    rpage = a.page_for_redo(1, init=btree_page_init)
    if rpage is not None:
        BTPageOpaque(orig_blk, next_blk, body.level, BTP_LEAF if isleaf else 0, 0).write(rpage)
        _restore_page(a, rpage, body.right_page)
        cycleid = neon.split_right_cycleid(a.rec, a.flavour)
        if cycleid is not None:
            set_opaque(rpage, cycleid=cycleid)
        a.done(rpage)

    lpage = a.page_for_redo(0)
    if lpage is not None:
        _rebuild_left(a, lpage, body, isleaf, right_blk)
        a.done(lpage)

    if next_blk != 0:
        spage = a.page_for_redo(2)
        if spage is not None:
            set_opaque(spage, prev=right_blk)
            a.done(spage)


def _rebuild_left(a: Apply, orig: Page, body: BtreeSplit, isleaf: bool, right_blk: int) -> None:
    if not body.left_hikey:
        raise a.fail("btree split carries no left high key and no image to apply")
    newitem = body.newitem
    replace_at = 0
    nposting = b""
    if body.postingoff:
        replace_at = body.newitemoff - 1
        if not 1 <= replace_at <= orig.max_offset():
            raise a.fail(f"posting list split at item {replace_at}, which is not on the page")
        nposting, newitem = _swap(a, orig, replace_at, newitem, body.postingoff)
    left = orig.temp_copy_special()
    add_item(a, left, body.left_hikey, P_HIKEY, "failed to add high key to left page after split")
    leftoff = P_HIKEY + 1
    off = first_data_key(orig)
    while off < body.firstrightoff:
        if off == replace_at:
            add_item(a, left, nposting, leftoff,
                     "failed to add new posting list item to left page after split")
            leftoff += 1
            off += 1
            continue
        if body.newitem_on_left and off == body.newitemoff:
            add_item(a, left, newitem, leftoff, "failed to add new item to left page after split")
            leftoff += 1
        if off > orig.max_offset():
            raise a.fail(f"split's first right item {body.firstrightoff} is beyond the page's items")
        add_item(a, left, orig.item(off), leftoff, "failed to add old item to left page after split")
        leftoff += 1
        off += 1
    if body.newitem_on_left and off == body.newitemoff:
        add_item(a, left, newitem, leftoff, "failed to add new item to left page after split")
    orig.data[:] = left.data
    set_opaque(orig, flags=BTP_INCOMPLETE_SPLIT | (BTP_LEAF if isleaf else 0), next=right_blk, cycleid=0)


def _newroot(a: Apply, body: BtreeNewroot) -> None:
    page = a.page_for_redo(0, init=btree_page_init)
    if page is not None:
        flags = BTP_ROOT | (BTP_LEAF if body.level == 0 else 0)
        BTPageOpaque(0, 0, body.level, flags, 0).write(page)
        if body.level > 0:
            _restore_page(a, page, body.tuples)
        a.done(page)
    if body.level > 0:
        clear_incomplete_split(a, 1)
    restore_meta(a, 2, body.metadata)


def _dedup(a: Apply, body: BtreeDedup) -> None:
    """``btree_xlog_dedup``: the page rebuilt with the logged intervals merged into posting
    lists (``_bt_dedup_start_pending`` / ``_bt_dedup_save_htid`` / ``_bt_dedup_finish_pending``)."""
    page = a.page_for_redo(0)
    if page is None:
        return
    if body.intervals is None:
        raise a.fail("btree DEDUP carries no intervals and no image to apply")
    opaque = BTPageOpaque.unpack(page.data)
    minoff = first_data_key(page)
    maxoff = page.max_offset()
    if maxoff < minoff:
        raise a.fail("btree DEDUP on a page without data items")
    newpage = page.temp_copy_special()
    if opaque.next != 0:
        add_item(a, newpage, page.item(P_HIKEY), P_HIKEY, "deduplication failed to add highkey")
    state = DedupState()
    try:
        for offnum in range(minoff, maxoff + 1):
            itup = page.item(offnum)
            n = len(state.intervals)
            if offnum == minoff:
                state.start_pending(itup, offnum)
            elif (
                n < body.nintervals
                and state.baseoff == body.intervals[n][0]
                and state.nitems < body.intervals[n][1]
            ):
                if not state.save_htid(itup):
                    raise a.fail("deduplication failed to add heap tid to pending posting list")
            else:
                state.finish_pending(newpage)
                state.start_pending(itup, offnum)
        state.finish_pending(newpage)
    except PageError as exc:
        raise a.fail(str(exc)) from None
    if opaque.flags & BTP_HAS_GARBAGE:
        set_opaque(newpage, flags=opaque.flags & ~BTP_HAS_GARBAGE)
    page.data[:] = newpage.data
    a.done(page)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    BtreeInsert: _insert,
    BtreeSplit: _split,
    BtreeNewroot: _newroot,
    BtreeDedup: _dedup,
}
"""The redo routine of each btree record kind that adds tuples."""
