"""Redo of BRIN records (``brin_xlog.c``, PostgreSQL 14-17), for the one requested block.

- CREATE_INDEX: block 0 initialized as the metapage (``brin_metapage_init``).
- INSERT / UPDATE: (UPDATE first removes the old tuple from block 2 with
  ``PageIndexTupleDeleteNoCompact``); block 0, initialized as a regular page with +INIT, gets
  the tuple at ``offnum`` (``PageAddItem`` with overwrite: an unused line pointer or one past
  the end; past that, or no room, is PostgreSQL's PANIC); block 1, the revmap page, gets the
  entry of ``heapBlk`` pointing at (block 0's number, offnum).
- SAMEPAGE_UPDATE: ``PageIndexTupleOverwrite`` of item ``offnum`` on block 0.
- REVMAP_EXTEND: the metapage's lastRevmapPage becomes targetBlk and its pd_lower 40; block 1
  is initialized as an empty revmap page.
- DESUMMARIZE: the revmap entry of ``heapBlk`` (block 0) becomes invalid; item ``regOffset`` of
  the regular page (block 1) is removed (``PageIndexTupleDeleteNoCompact``).

Where the flavours differ in the sources: for the revmap entry, vanilla PostgreSQL takes block
0's number from block 0's buffer, which the walredo process never read when the requested
block is the revmap page (``BufferGetBlockNumber`` of an invalid buffer: undefined
behaviour); Neon's fork takes it from the record's block reference. The model takes the
record's for both: it is what the primary logged.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.brin_page import (
    BRIN_PAGETYPE_REGULAR,
    BRIN_PAGETYPE_REVMAP,
    INVALID_TID,
    META_LAST_REVMAP_OFFSET,
    META_PD_LOWER,
    brin_page_init,
    index_tuple_delete_no_compact,
    metapage_init,
    revmap_index,
    set_revmap_tid,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo.buffer import Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.brin import (
    BrinCreateIndex,
    BrinDesummarize,
    BrinInsert,
    BrinRevmapExtend,
    BrinSamepageUpdate,
)

__all__ = ["ROUTINES"]


def _regular(page: Page) -> None:
    brin_page_init(page, BRIN_PAGETYPE_REGULAR)


def _create_index(a: Apply, body: BrinCreateIndex) -> None:
    page = a.init_for_redo(0)
    if page is not None:
        metapage_init(page, body.pages_per_range, body.version)
        a.done(page)


def _set_revmap(a: Apply, block_id: int, pages_per_range: int, heap_blk: int, tid: tuple[int, int]) -> None:
    page = a.page_for_redo(block_id)
    if page is None:
        return
    try:
        index = revmap_index(pages_per_range, heap_blk)
    except ValueError as exc:
        raise a.fail(str(exc)) from None
    set_revmap_tid(page, index, tid)
    a.done(page)


def _insert(a: Apply, body: BrinInsert) -> None:
    if body.old_offnum is not None:  # UPDATE: the old tuple leaves its page first
        old = a.page_for_redo(2)
        if old is not None:
            index_tuple_delete_no_compact(old, body.old_offnum)
            a.done(old)
    page = a.page_for_redo(0, init=_regular if body.init else None)
    if page is not None:
        if page.max_offset() + 1 < body.offnum:
            raise a.fail("brin_xlog_insert_update: invalid max offset number")
        if page.add_item(body.tuple, body.offnum, overwrite=True) == 0:
            raise a.fail("brin_xlog_insert_update: failed to add tuple")
        a.done(page)
    regpgno = a.block(0).blkno
    _set_revmap(a, 1, body.pages_per_range, body.heap_blk, (regpgno, body.offnum))


def _samepage_update(a: Apply, body: BrinSamepageUpdate) -> None:
    page = a.page_for_redo(0)
    if page is not None:
        if not page.index_tuple_overwrite(body.offnum, body.tuple):
            raise a.fail("brin_xlog_samepage_update: failed to replace tuple")
        a.done(page)


def _revmap_extend(a: Apply, body: BrinRevmapExtend) -> None:
    a.block(1)  # XLogRecGetBlockTag(record, 1, ...) fails without it
    meta = a.page_for_redo(0)
    if meta is not None:
        struct.pack_into("<I", meta.data, META_LAST_REVMAP_OFFSET, body.target_blk)
        meta.lower = META_PD_LOWER
        a.done(meta)
    page = a.init_for_redo(1)
    if page is not None:
        brin_page_init(page, BRIN_PAGETYPE_REVMAP)
        a.done(page)


def _desummarize(a: Apply, body: BrinDesummarize) -> None:
    _set_revmap(a, 0, body.pages_per_range, body.heap_blk, INVALID_TID)
    page = a.page_for_redo(1)
    if page is not None:
        index_tuple_delete_no_compact(page, body.reg_offset)
        a.done(page)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    BrinCreateIndex: _create_index,
    BrinInsert: _insert,
    BrinSamepageUpdate: _samepage_update,
    BrinRevmapExtend: _revmap_extend,
    BrinDesummarize: _desummarize,
}
"""The redo routine of each BRIN record kind."""
