"""Issue 14's BRIN record kinds: every record drawn from the side of each block it touches, and
checked against what the record says (read back from the decoded record and the page before):

- the metapage: CREATE_INDEX gives the same metapage whatever the block held (magic, version,
  pagesPerRange, lastRevmapPage 0, pd_lower 40); REVMAP_EXTEND moves lastRevmapPage to the
  new block and changes nothing else;
- a revmap page: REVMAP_EXTEND's new page is empty; INSERT / UPDATE set exactly the range's
  6-byte entry to (block 0's number, offnum), DESUMMARIZE sets it invalid, every other entry
  keeps its bytes;
- a regular page, compared item by item (offset number -> tuple bytes): INSERT / UPDATE add
  exactly the logged tuple at its offset; SAMEPAGE_UPDATE replaces exactly that item;
  UPDATE's old page and DESUMMARIZE remove exactly the logged item, the others keep their
  offset numbers and bytes.

Also: pg_waldump 15 reads drawn BRIN sequences as we describe them, and the kinds shrink.
"""

from __future__ import annotations

import pytest
from hypothesis import find, settings
from hypothesis import strategies as st
from test_strategies_kinds import generate_until, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.brin_page import (
    BRIN_META_MAGIC,
    BRIN_PAGETYPE_META,
    BRIN_PAGETYPE_REGULAR,
    BRIN_PAGETYPE_REVMAP,
    INVALID_TID,
    brin_page_type,
    read_meta,
    revmap_tid,
)
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import redo_record
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump
from pytest_walredo.pg.xlogrecord import DecodedRecord, decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()
REGULAR = ("brin_insert_init", "brin_insert")
SETUP: dict[str, tuple[str, ...]] = {
    "brin_create_index": ("heap_insert_init", "brin_create_index"),
    "brin_revmap_extend": ("brin_revmap_extend",),
    "brin_insert_init": ("brin_insert_init",),
    "brin_revmap_extend_meta": ("brin_create_index", "brin_revmap_extend_meta"),
    "brin_revmap_set": ("brin_revmap_extend", "brin_revmap_set"),
    "brin_desummarize_revmap": ("brin_revmap_extend", "brin_revmap_set", "brin_desummarize_revmap"),
    "brin_insert": (*REGULAR, "brin_desummarize_regular"),
    "brin_samepage_update": (*REGULAR, "brin_samepage_update"),
    "brin_update_old": (*REGULAR, "brin_update_old"),
    "brin_desummarize_regular": (*REGULAR, "brin_desummarize_regular"),
}
KINDS = tuple(SETUP)


def _redo(page: bytes | None, raw: bytes, lsn: int, v: int, fl: Flavour) -> bytes | None:
    r = TAG.rel
    return redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode, forknum=r.forknum,
                       blkno=TAG.blknum, end_lsn=lsn, record=raw, pg_version=v, flavour=fl)


def _items(p: Page) -> dict[int, bytes]:
    return {off: p.item(off) for off, lp in p.item_ids() if lp.is_used and lp.has_storage}


def _own(rec: DecodedRecord) -> int:
    ids = [b.block_id for b in rec.blocks if b.blkno == TAG.blknum]
    assert len(ids) == 1, "a record names the requested block exactly once"
    return ids[0]


def _revmap_rest(p: Page, index: int) -> bytes:
    """The revmap page without the entry ``index`` (and without pd_lsn)."""
    at = 24 + 6 * index
    return bytes(p.data[8:at]) + bytes(p.data[at + 6 :])


def _check_step(kind: str, rec: DecodedRecord, body: rmgr.RmgrRecord, before: Page, after: Page,
                lsn: int, raw: bytes, v: int, fl: Flavour) -> str:
    """Check one record of ``kind``; returns a label naming what was exercised."""
    own = _own(rec)
    assert after.lsn == lsn
    if kind == "brin_create_index":
        assert isinstance(body, rmgr.BrinCreateIndex) and own == 0
        assert _redo(None, raw, lsn, v, fl) == after.to_bytes(), "the metapage depends on the block's past"
        assert read_meta(after) == (BRIN_META_MAGIC, body.version, body.pages_per_range, 0)
        assert (after.lower, brin_page_type(after)) == (40, BRIN_PAGETYPE_META)
        return kind
    if kind == "brin_revmap_extend":
        assert isinstance(body, rmgr.BrinRevmapExtend) and own == 1 and body.target_blk == TAG.blknum
        assert brin_page_type(after) == BRIN_PAGETYPE_REVMAP and after.lower == 24
        assert not any(after.data[24 : after.special])
        return kind
    if kind == "brin_revmap_extend_meta":
        assert isinstance(body, rmgr.BrinRevmapExtend) and own == 0
        old, new = read_meta(before), read_meta(after)
        assert new == (*old[:3], body.target_blk) and after.lower == 40
        assert after.data[40:] == before.data[40:] and after.data[8:12] == before.data[8:12]
        return kind
    if kind in ("brin_revmap_set", "brin_desummarize_revmap"):
        assert isinstance(body, rmgr.BrinInsert | rmgr.BrinDesummarize)
        index = (body.heap_blk // body.pages_per_range) % 1360  # REVMAP_PAGE_MAXITEMS: (8192 - 24 - 8) // 6
        if isinstance(body, rmgr.BrinInsert):
            assert own == 1
            want = (rec.blocks[0].blkno, body.offnum)
        else:
            assert own == 0
            want = INVALID_TID
        assert revmap_tid(after, index) == want
        assert _revmap_rest(after, index) == _revmap_rest(before, index), "another revmap entry changed"
        return f"{kind}:{body.identify(v, fl)}"
    assert brin_page_type(after) == BRIN_PAGETYPE_REGULAR
    items = _items(before) if kind != "brin_insert_init" else {}
    if kind in ("brin_insert_init", "brin_insert"):
        assert isinstance(body, rmgr.BrinInsert) and own == 0
        assert body.offnum not in items
        items[body.offnum] = body.tuple
        assert _items(after) == items
        reused = kind == "brin_insert" and body.offnum <= before.max_offset()
        return f"{kind}:{body.identify(v, fl)}" + (" into an unused line pointer" if reused else "")
    elif kind == "brin_samepage_update":
        assert isinstance(body, rmgr.BrinSamepageUpdate) and own == 0 and body.offnum in items
        grew = len(body.tuple) > len(items[body.offnum])
        items[body.offnum] = body.tuple
        assert _items(after) == items
        return f"{kind}:{'bigger' if grew else 'not bigger'}"
    elif kind == "brin_update_old":
        assert isinstance(body, rmgr.BrinInsert) and own == 2 and body.old_offnum in items
        del items[body.old_offnum]
    else:
        assert isinstance(body, rmgr.BrinDesummarize) and own == 1 and body.reg_offset in items
        del items[body.reg_offset]
    assert _items(after) == items
    return f"{kind}:{body.identify(v, fl)}"


def _replay_and_check(trace: ws.BlockTrace, v: int, fl: Flavour) -> set[str]:
    labels: set[str] = set()
    page = trace.base_image
    for kind, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = _redo(page, raw, lsn, v, fl)
        assert after is not None
        if kind in SETUP:
            rec = decode_record(raw, v)
            before = Page(page) if page is not None else Page()
            labels.add(_check_step(kind, rec, rmgr.parse(rec, v, fl), before, Page(after), lsn, raw, v, fl))
            labels.add(kind)
        page = after
    whole = model_page(RedoRequest(TAG.rel, TAG.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(BLCKSZ)) == whole
    return labels


def _check_until(kind: str, version: int, flavour: Flavour, want: set[str], examples: int = 400) -> set[str]:
    return generate_until(
        ws.record_sequences(TAG, pg_version=version, flavour=flavour, min_records=2, max_records=6,
                            kinds=SETUP[kind]),
        lambda trace: _replay_and_check(trace, version, flavour), want, examples)


# labels each kind must show, beyond its name: the record's variants
WANT: dict[str, set[str]] = {
    "brin_revmap_set": {"brin_revmap_set:INSERT", "brin_revmap_set:INSERT+INIT", "brin_revmap_set:UPDATE",
                        "brin_revmap_set:UPDATE+INIT"},
    "brin_insert_init": {"brin_insert_init:INSERT+INIT", "brin_insert_init:UPDATE+INIT"},
    "brin_insert": {"brin_insert:INSERT", "brin_insert:UPDATE", "brin_insert:INSERT into an unused line pointer"},
    "brin_samepage_update": {"brin_samepage_update:bigger", "brin_samepage_update:not bigger"},
    "brin_update_old": {"brin_update_old:UPDATE", "brin_update_old:UPDATE+INIT"},
}


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_brin_kinds_do_what_their_records_say(version: int, flavour: Flavour) -> None:
    """Each kind is checked in every version and flavour (generation stops once it was)."""
    for kind in KINDS:
        assert kind in _check_until(kind, version, flavour, {kind})


@pytest.mark.parametrize("kind", sorted(WANT))
def test_every_variant_is_checked(kind: str) -> None:
    """Each record variant a kind can draw (INSERT and UPDATE, +INIT or not; a replacing tuple
    bigger or not) is reached and checked (PG17, Neon)."""
    seen = _check_until(kind, 17, Flavour.NEON, WANT[kind], examples=1500)
    assert seen >= WANT[kind], sorted(WANT[kind] - seen)


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
def test_pg_waldump_15_reads_drawn_brin_sequences() -> None:
    seen = generate_until(
        st.lists(st.sampled_from(KINDS).flatmap(lambda k: ws.record_sequences(
            TAG, pg_version=15, flavour=Flavour.VANILLA, min_records=2, max_records=5, kinds=SETUP[k])),
            min_size=1, max_size=6),
        lambda traces: set(waldump_agrees(traces)), set(KINDS))
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


@pytest.mark.parametrize(("kind", "at_most"), [
    ("brin_create_index", 1),
    ("brin_revmap_set", 2),  # the new revmap page, then the entry
    ("brin_samepage_update", 2),  # a regular page with its first tuple, then the update
    ("brin_desummarize_regular", 2),
])
def test_brin_kinds_shrink_to_short_sequences(kind: str, at_most: int) -> None:
    trace = find(ws.record_sequences(TAG, pg_version=17, kinds=SETUP[kind]), lambda t: kind in t.kinds,
                 settings=settings(database=None, max_examples=2000))
    assert len(trace.records) <= at_most, trace.kinds
    assert trace.kinds[-1] == kind
