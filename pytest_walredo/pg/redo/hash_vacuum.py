"""Redo of hash records that move or remove tuples and pages (``hash_xlog.c``, PostgreSQL
14-17: ``hash_xlog_move_page_contents``, ``_squeeze_page``, ``_delete``, ``_split_cleanup``,
``_update_meta_page``, ``_vacuum_one_page``).

The primary bucket page a MOVE_PAGE_CONTENTS, SQUEEZE_PAGE or DELETE only locks (block 0,
when it is not the page written) is read, so an applicable image of it is restored, and
otherwise left alone. PostgreSQL 17 changed SQUEEZE_PAGE's write page: it is read only when
tuples go to it, it is the primary bucket page or it precedes the freed page, and its
pd_lsn moves only when tuples go to it or its next link changes; 14-16 always read it and
set its pd_lsn. Where the write page's data is missing, PostgreSQL's loop over it adds
nothing, and so does the model.
"""

from __future__ import annotations

from pytest_walredo.pg.hash_page import (
    INVALID_BLOCK,
    INVALID_BUCKET,
    LH_BUCKET_NEEDS_SPLIT_CLEANUP,
    LH_PAGE_HAS_DEAD_TUPLES,
    LH_UNUSED_PAGE,
    HashMeta,
    HashOpaque,
    hash_page_init,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo.buffer import BLK_NEEDS_REDO, BLK_NOTFOUND, Apply, Routine
from pytest_walredo.pg.redo.hash import add_ntuples, logged, set_logged_bit, set_prev, update_meta
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.hash_vacuum import (
    HashDelete,
    HashMovePageContents,
    HashSplitCleanup,
    HashSqueezePage,
    HashUpdateMetaPage,
    HashVacuumOnePage,
)

__all__ = ["ROUTINES"]


def _clear_flag(page: Page, bit: int) -> None:
    op = HashOpaque.unpack(page.data)
    op.with_(flag=op.flag & ~bit).write(page)


def _write_page(a: Apply, is_prim_bucket_same_wrt: bool, read: bool = True) -> tuple[int, Page | None]:
    """The write page (block 1), after the primary bucket page (block 0) when they differ.
    ``read`` False: block 1 is not read at all (PostgreSQL 17's SQUEEZE_PAGE)."""
    if not is_prim_bucket_same_wrt:
        a.read_for_redo(0)
    if not read:
        return BLK_NOTFOUND, None
    return a.read_for_redo(1)


def _add_moved(a: Apply, page: Page, body: HashMovePageContents | HashSqueezePage, routine: str) -> None:
    """The moved tuples go in at their logged offsets (each as long as its MAXALIGNed size)."""
    if body.towrite is None or body.tuples is None:
        return
    for off, tup in zip(body.towrite, body.tuples, strict=True):
        if page.add_item(tup, off) == 0:
            raise a.fail(f"{routine}: failed to add item to hash index page, size {len(tup)} bytes")


def _move_page_contents(a: Apply, body: HashMovePageContents) -> None:
    action, write = _write_page(a, body.is_prim_bucket_same_wrt)
    if write is not None and action == BLK_NEEDS_REDO:
        if body.ntups > 0:
            _add_moved(a, write, body, "hash_xlog_move_page_contents")
        a.done(write)
    read = a.page_for_redo(2)
    if read is not None:
        if body.deleted:
            read.index_multi_delete(body.deleted)
        a.done(read)


def _squeeze_page(a: Apply, body: HashSqueezePage) -> None:
    new_rules = a.version >= 17
    wanted = not new_rules or body.is_prim_bucket_same_wrt or body.ntups > 0 or body.is_prev_bucket_same_wrt
    action, write = _write_page(a, body.is_prim_bucket_same_wrt, wanted)
    if write is not None and action == BLK_NEEDS_REDO:
        changed = False
        if body.ntups > 0:
            _add_moved(a, write, body, "hash_xlog_squeeze_page")
            changed = True
        if body.is_prev_bucket_same_wrt:
            HashOpaque.unpack(write.data).with_(nextblkno=body.nextblkno).write(write)
            changed = True
        if changed or not new_rules:
            a.done(write)
    freed = a.page_for_redo(2)
    if freed is not None:
        hash_page_init(freed)
        HashOpaque(INVALID_BLOCK, INVALID_BLOCK, INVALID_BUCKET, LH_UNUSED_PAGE).write(freed)
        a.done(freed)
    if not body.is_prev_bucket_same_wrt:
        prev = a.page_for_redo(3)
        if prev is not None:
            HashOpaque.unpack(prev.data).with_(nextblkno=body.nextblkno).write(prev)
            a.done(prev)
    if a.has_block(4):
        nxt = a.page_for_redo(4)
        if nxt is not None:
            set_prev(nxt, body.prevblkno)
            a.done(nxt)
    set_logged_bit(a, 5, body.bitmap_bit, False)
    if a.has_block(6):
        firstfree = body.firstfree

        def _firstfree(meta: Page) -> None:
            logged(a, firstfree, "firstfree")
            HashMeta.set(meta, "firstfree", firstfree or 0)

        update_meta(a, 6, _firstfree)


def _delete(a: Apply, body: HashDelete) -> None:
    action, page = _write_page(a, body.is_primary_bucket_page)
    if page is not None and action == BLK_NEEDS_REDO:
        if body.deleted:
            page.index_multi_delete(body.deleted)
        if body.clear_dead_marking:
            _clear_flag(page, LH_PAGE_HAS_DEAD_TUPLES)
        a.done(page)


def _split_cleanup(a: Apply, body: HashSplitCleanup) -> None:
    page = a.page_for_redo(0)
    if page is not None:
        _clear_flag(page, LH_BUCKET_NEEDS_SPLIT_CLEANUP)
        a.done(page)


def _update_meta_page(a: Apply, body: HashUpdateMetaPage) -> None:
    update_meta(a, 0, lambda meta: HashMeta.set(meta, "ntuples", body.ntuples))


def _vacuum_one_page(a: Apply, body: HashVacuumOnePage) -> None:
    page = a.page_for_redo(0)
    if page is not None:
        if body.deleted:
            page.index_multi_delete(body.deleted)
        _clear_flag(page, LH_PAGE_HAS_DEAD_TUPLES)
        a.done(page)
    update_meta(a, 1, add_ntuples(-body.ntuples))


ROUTINES: dict[type[RmgrRecord], Routine] = {
    HashMovePageContents: _move_page_contents,
    HashSqueezePage: _squeeze_page,
    HashDelete: _delete,
    HashSplitCleanup: _split_cleanup,
    HashUpdateMetaPage: _update_meta_page,
    HashVacuumOnePage: _vacuum_one_page,
}
"""The redo routine of each hash record kind that moves or removes tuples and pages."""
