"""The cutter on WAL built by hand: which requests it cuts (base page, chain of records, init
records), what it forgets, how it spreads its choice, and that entries which test nothing are
dropped. The real-WAL end of it is tests/test_corpus_build.py."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.corpus.cutter import CutError, CutOptions, cut_entries, spread
from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.version import Flavour

REL = (1663, 5, 16384)
V = 15


def page_with(n: int, lsn: int = 0) -> bytes:
    """A heap page with ``n`` distinct 32-byte tuples."""
    p = Page.initialized()
    for i in range(n):
        assert p.add_item(struct.pack("<IIIHHHHHB", 100 + i, 0, 0, 0, 0, i + 1, 2, 0x0800, 24) + b"\0"
                          + bytes([i]) * 8)
    p.lsn = lsn
    return p.to_bytes()


def insert(blk: int, after: bytes | None, *, init: bool = False, apply: bool = False) -> bytes:
    """A heap INSERT on ``blk`` carrying ``after`` as its image (a consistency image unless
    ``apply``)."""
    image = xr.ImageRef.from_page(after, V, apply=apply) if after is not None else None
    tup = rmgr.XlTuple(2, 0x0800, 24, b"\0" + b"x" * 8)
    body = rmgr.HeapInsert(1, 0, tup, init_page=init)
    return rmgr.build(body, [xr.make_block(0, REL, blk, image=image, will_init=init)], pg_version=V, xid=9).encode()


def fpi(blk: int, page: bytes) -> bytes:
    ref = xr.make_block(0, REL, blk, image=xr.ImageRef.from_page(page, V))
    return rmgr.build(rmgr.XlogFpi(), [ref], pg_version=V).encode()


def truncate(rel: tuple[int, int, int], first_block: int) -> bytes:
    main = struct.pack("<IIIIi", first_block, *rel, 7)
    return xr.make_record(rmid=2, info=0x20, main_data=main).encode()


def cut(records: list[tuple[int, bytes]], **kw: int) -> list:  # type: ignore[type-arg]
    entries, _stats = cut_entries(lambda: iter(records), pg_version=V, flavour=Flavour.VANILLA,
                                  options=CutOptions(**{"per_kind": 100, **kw}))
    return entries


def test_a_chain_from_a_full_page_image() -> None:
    p0, p1, p2 = page_with(1), page_with(2), page_with(3)
    records = [(0x1000, fpi(0, p0)), (0x2000, insert(0, p1)), (0x3000, insert(0, p2))]
    first, second = cut(records)
    r1, r2 = first.decoded_request(), second.decoded_request()
    base = Page(p0)
    base.lsn = 0x1000  # the pageserver's image carries the FPI record's end LSN
    assert r1.base_image == base.to_bytes() and r1.records == ((0x2000, records[1][1]),)
    assert r2.base_image == base.to_bytes() and r2.records == ((0x2000, records[1][1]), (0x3000, records[2][1]))
    assert (first.expected, second.expected) == (p1, p2)
    assert second.meta.kind == "Heap/INSERT" and second.meta.end_lsn == 0x3000 and second.meta.mask == "Heap"
    assert second.meta.rel == REL and second.meta.blk == 0


def test_long_chains_start_from_the_latest_consistency_image() -> None:
    p = [page_with(i) for i in range(1, 5)]
    records = [(0x1000, fpi(0, p[0]))] + [(0x1000 * (i + 1), insert(0, p[i])) for i in range(1, 4)]
    entries = cut(records, max_records=2)
    last = entries[-1].decoded_request()
    base = Page(p[2])
    base.lsn = 0x3000
    assert last.base_image == base.to_bytes() and [lsn for lsn, _ in last.records] == [0x4000]


def test_an_initializing_record_is_a_request_of_its_own() -> None:
    p1 = page_with(1)
    (e,) = cut([(0x1000, insert(4, p1, init=True))])
    req = e.decoded_request()
    assert req.base_image is None and len(req.records) == 1 and e.meta.kind == "Heap/INSERT+INIT"


def test_an_applied_image_starts_a_chain_without_a_base_page() -> None:
    p1, p2 = page_with(1), page_with(2)
    records = [(0x1000, insert(0, p1, apply=True)), (0x2000, insert(0, p2))]
    (e,) = cut(records)  # the record with the applied image is no entry: nothing to check
    req = e.decoded_request()
    assert req.base_image is None and [lsn for lsn, _ in req.records] == [0x1000, 0x2000]


def test_an_unknown_block_becomes_known_from_its_consistency_image() -> None:
    p1, p2 = page_with(1), page_with(2)
    (e,) = cut([(0x1000, insert(0, p1)), (0x2000, insert(0, p2))])
    base = Page(p1)
    base.lsn = 0x1000
    assert e.meta.end_lsn == 0x2000 and e.decoded_request().base_image == base.to_bytes()


def test_truncation_forgets_the_blocks_it_removes() -> None:
    p = [page_with(i) for i in range(1, 4)]
    records = [(0x1000, fpi(0, p[0])), (0x1100, fpi(1, p[0])), (0x2000, truncate(REL, 1)),
               (0x3000, insert(0, p[1])), (0x4000, insert(1, p[1]))]
    entries = cut(records)
    assert [(e.meta.blk, e.meta.end_lsn) for e in entries] == [(0, 0x3000)]


def test_entries_that_test_nothing_are_replaced_by_the_next_candidate() -> None:
    p1, p2, p3 = page_with(1), page_with(2), page_with(3)
    noop = Page(p2)
    noop.lsn, noop.prune_xid = 0x5555, 1234  # differs from the base only where the heap rule masks
    # the middle candidate is chosen (per_kind 1), tests nothing, and the next one replaces it
    records = [(0x1000, fpi(0, p1)), (0x2000, insert(0, p2)), (0x3000, insert(0, noop.to_bytes(), apply=False)),
               (0x4000, insert(0, p3))]
    entries, stats = cut_entries(lambda: iter(records), pg_version=V, options=CutOptions(per_kind=1,
                                                                                          max_records=1))
    assert [e.meta.end_lsn for e in entries] == [0x4000]
    assert stats.tests_nothing == {"Heap/INSERT": 1} and stats.candidates == {"Heap/INSERT": 3}


def test_an_undecodable_record_names_its_lsn() -> None:
    bad = bytearray(insert(0, page_with(1)))
    bad[24] = 99  # block id 99
    with pytest.raises(CutError, match=r"^the record ending at 0/2000 cannot be decoded"):
        cut([(0x2000, bytes(bad))])


def test_spread_keeps_the_ends_and_spaces_the_rest() -> None:
    assert spread(3, 5) == {0, 1, 2}
    assert spread(100, 3) == {0, 50, 99}
    assert spread(10, 1) == {5}
    assert len(spread(1000, 7)) == 7


def test_workload_labels_go_into_the_source() -> None:
    p1, p2 = page_with(1), page_with(2)
    records = [(0x1000, fpi(0, p1)), (0x2000, insert(0, p2))]
    entries, _ = cut_entries(lambda: iter(records), pg_version=V,
                             options=CutOptions(source="test WAL", labels=((0x0, "first"), (0x1800, "second"))))
    assert entries[0].meta.source == "test WAL, workload second"
