"""Edges of the BRIN redo routines that the strategy tests (test_strategies_brin.py) leave
open: the offset where brin_xlog_insert_update fails, a used line pointer, a replacement that
does not fit, a revmap page number of 2^31 or more, and a pagesPerRange of 0. Expected pages
and messages follow brin_xlog.c; the pagesPerRange error is the model's documented refusal."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.brin_page import (
    BRIN_PAGETYPE_REGULAR,
    BRIN_PAGETYPE_REVMAP,
    META_LAST_REVMAP_OFFSET,
    brin_page_init,
    metapage_init,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.version import Flavour

REL = (1663, 5, 16384)
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000


def _tuple(blk: int, size: int = 16) -> bytes:
    """A BRIN tuple of ``size`` bytes: bt_blkno, bt_info, then filler."""
    return struct.pack("<IB", blk, 8) + bytes(size - 5)


def _page(kind: int, tuples: list[bytes] = ()) -> Page:  # type: ignore[assignment]
    page = Page()
    brin_page_init(page, kind)
    for t in tuples:
        page.add_item(t)
    page.lsn = OLD_LSN
    return page


def _redo(page: Page | None, body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], blkno: int) -> Page:
    raw = rmgr.build(body, blocks, pg_version=17).encode()
    out = redo_record(None if page is None else page.to_bytes(), spcnode=REL[0], dbnode=REL[1], relnode=REL[2],
                      forknum=0, blkno=blkno, end_lsn=LSN, record=raw, pg_version=17, flavour=Flavour.VANILLA)
    assert out is not None
    return Page(out)


def _blk(block_id: int, blkno: int, **kw: object) -> xr.BlockRef:
    return xr.make_block(block_id, REL, blkno, **kw)  # type: ignore[arg-type]


def _fails(message: str, page: Page | None, body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], blkno: int) -> None:
    with pytest.raises(RedoError, match=f"^{message}$") as err:
        _redo(page, body, blocks, blkno)
    assert err.value.context is not None and " for BRIN/" in err.value.context


INSERT_BLOCKS = [_blk(0, 5), _blk(1, 1)]


def test_insert_two_past_the_last_line_pointer_is_an_error() -> None:
    body = rmgr.BrinInsert(heap_blk=0, pages_per_range=4, offnum=3, tuple=_tuple(0))
    _fails("brin_xlog_insert_update: invalid max offset number", _page(BRIN_PAGETYPE_REGULAR, [_tuple(8)]), body,
           INSERT_BLOCKS, 5)


def test_insert_onto_a_used_line_pointer_fails_to_add_the_tuple() -> None:
    body = rmgr.BrinInsert(heap_blk=0, pages_per_range=4, offnum=1, tuple=_tuple(0))
    _fails("brin_xlog_insert_update: failed to add tuple", _page(BRIN_PAGETYPE_REGULAR, [_tuple(8)]), body,
           INSERT_BLOCKS, 5)


def test_samepage_update_that_does_not_fit_fails_to_replace_the_tuple() -> None:
    page = _page(BRIN_PAGETYPE_REGULAR, [_tuple(0), _tuple(4, 8000)])
    body = rmgr.BrinSamepageUpdate(offnum=1, tuple=_tuple(0, 200))
    _fails("brin_xlog_samepage_update: failed to replace tuple", page, body, [_blk(0, 5)], 5)


def test_revmap_extend_to_a_block_number_past_2_to_the_31() -> None:
    meta = Page()
    metapage_init(meta, 4, 1)
    meta.lsn = OLD_LSN
    body = rmgr.BrinRevmapExtend(target_blk=0x80000001)
    blocks = [_blk(0, 0), _blk(1, 0x80000001, will_init=True)]
    out = _redo(meta, body, blocks, 0)
    assert struct.unpack_from("<I", out.data, META_LAST_REVMAP_OFFSET)[0] == 0x80000001
    expected = _page(BRIN_PAGETYPE_REVMAP)
    expected.lsn = LSN
    assert _redo(None, body, blocks, 0x80000001).to_bytes() == expected.to_bytes()


def test_a_pages_per_range_of_zero_is_an_error() -> None:
    body = rmgr.BrinDesummarize(pages_per_range=0, heap_blk=4, reg_offset=1)
    _fails("pagesPerRange 0: the revmap index divides by it", _page(BRIN_PAGETYPE_REVMAP), body,
           [_blk(0, 1), _blk(1, 5)], 1)
