"""The redo model on Neon's own walredo inputs (PostgreSQL 14, Neon flavour)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_walredo.pg.page import LP_NORMAL, PD_ALL_VISIBLE, Page
from pytest_walredo.pg.redo import redo_record
from pytest_walredo.pg.tuple import HeapTupleHeader
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import decode_record
from pytest_walredo.protocol import RedoRequest

pytestmark = pytest.mark.needs_vectors


def _replay(req: RedoRequest) -> bytes | None:
    page = req.base_image
    for lsn, rec in req.records:
        page = redo_record(page, spcnode=req.rel.spcnode, dbnode=req.rel.dbnode,
                           relnode=req.rel.relnode, forknum=req.rel.forknum, blkno=req.blknum,
                           end_lsn=lsn, record=rec, pg_version=14, flavour=Flavour.NEON)
    return page


def test_short_v14_gives_the_page_the_real_walredo_returned(vectors_dir: Path) -> None:
    req = RedoRequest.decode((vectors_dir / "short_v14.walredo").read_bytes())
    expected = (vectors_dir / "short_v14_redo.page").read_bytes()
    assert _replay(req) == expected


def test_short_v14_for_another_block_leaves_it_untouched(vectors_dir: Path) -> None:
    req = RedoRequest.decode((vectors_dir / "short_v14.walredo").read_bytes())
    page = None
    for lsn, rec in req.records:
        page = redo_record(page, spcnode=req.rel.spcnode, dbnode=req.rel.dbnode,
                           relnode=req.rel.relnode, forknum=req.rel.forknum,
                           blkno=req.blknum + 1, end_lsn=lsn, record=rec, pg_version=14,
                           flavour=Flavour.NEON)
    assert page is None  # never initialized: the process answers zeros


def test_bench_medium_v14_builds_226_consistent_tuples(vectors_dir: Path) -> None:
    req = RedoRequest.decode((vectors_dir / "bench_medium_v14.walredo").read_bytes())
    assert req.base_image is None and len(req.records) == 227
    inserts = [decode_record(rec, 14) for _, rec in req.records[:-1]]
    result = _replay(req)
    assert result is not None
    page = Page(result)
    assert page.problem() is None and page.line_pointer_problem() is None
    assert page.max_offset() == 226
    # VISIBLE sets PD_ALL_VISIBLE and, in Neon's fork, moves pd_lsn to its own end LSN
    assert page.flags & PD_ALL_VISIBLE
    assert page.lsn == req.records[-1][0] != req.records[-2][0]
    # tuples go downwards, each MAXALIGNed, in insertion order
    expect_upper = 8192
    for offnum, lp in page.item_ids():
        rec = inserts[offnum - 1]
        logged = rec.blocks[0].data  # xl_heap_header (Neon: 9 bytes) + tuple from t_bits
        assert lp.flags == LP_NORMAL and lp.len == 23 + len(logged) - 9
        expect_upper -= (lp.len + 7) // 8 * 8
        assert lp.off == expect_upper
        h = HeapTupleHeader.unpack(page.item(offnum))
        assert (h.xmin, h.xmax, h.cid) == (rec.xid, 0, 1)  # t_cid 1 as logged
        assert h.ctid == (0, offnum)
        assert h.infomask2 == int.from_bytes(logged[0:2], "little")
        assert h.infomask == int.from_bytes(logged[2:4], "little")
        assert h.hoff == logged[8]
        assert page.item(offnum)[23:] == logged[9:]
    assert page.upper == expect_upper
