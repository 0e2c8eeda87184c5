"""Issue 14's GIN record kinds in the strategies.

Evidence, as for the btree kinds (test_strategies_btree.py):

* every kind is drawn for every version and flavour (test_strategies_kinds.py), and pg_waldump
  15 and 17 read drawn GIN sequences and describe them as we do;
* replaying a drawn sequence record by record, each record did what it *says*, read back from
  the decoded record and the pages (decoded posting lists, items, posting items), not from the
  drawer's choices, with properties redo does not give by construction:

  - a data leaf change (INSERT, VACUUM_DATA_LEAF_PAGE): the leaf's segments, decoded, are the
    old segments with each logged action applied at the item level (ADDITEMS: the union;
    INSERT/REPLACE: the logged segment's items; DELETE: gone); the byte-level rewrite of
    ``ginRedoRecompress`` is not what is checked;
  - entry INSERT: the page's items are the old ones with the logged tuple at its offset (the
    replaced one gone; on an internal page the old downlink now points at the right child);
  - internal data INSERT: the new posting item at the offset, the one it displaced pointing
    at the right child, the others unchanged;
  - DELETE_PAGE: the parent lost exactly the downlink at the offset; the deleted page carries
    GIN_DELETED and the delete xid; the left sibling the new right link;
  - the pending list: appended tuples after the old ones and one more in maxoff, list pages
    holding exactly the logged tuples, metapages exactly the logged metadata;
  - SPLIT and VACUUM_PAGE: the page is the image (Neon: a VACUUM_PAGE without one leaves it);
  - finishing a split clears GIN_INCOMPLETE_SPLIT and changes nothing else;
* the kinds shrink to short sequences.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from test_strategies_kinds import generate_until, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.gin_page import (
    GIN_DELETED,
    GIN_INCOMPLETE_SPLIT,
    GIN_LIST,
    GIN_LIST_FULLROW,
    INVALID_BLOCK,
    GinMeta,
    GinOpaque,
    PostingItem,
    posting_items,
)
from pytest_walredo.pg.gin_posting import (
    GIN_SEGMENT_ADDITEMS,
    GIN_SEGMENT_DELETE,
    GIN_SEGMENT_INSERT,
    decode_segment,
    split_segments,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import redo_record
from pytest_walredo.pg.rmgr.gin import (
    EntryInsert,
    GinCreatePtree,
    GinDeletePage,
    GinInsert,
    GinSplit,
    GinVacuumDataLeafPage,
    GinVacuumPage,
    InternalInsert,
)
from pytest_walredo.pg.rmgr.gin_fast import GinDeleteListPages, GinInsertListPage, GinUpdateMetaPage
from pytest_walredo.pg.rmgr.ginxlog import LeafActions
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump, run_waldump
from pytest_walredo.pg.walsegment import write_segment
from pytest_walredo.pg.xlogrecord import DecodedRecord, decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page
from pytest_walredo.strategies.gin_pages import leaf_segments

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()
WALDUMP17 = Path(__file__).resolve().parent.parent / ".tools" / "pg" / "17" / "bin" / "pg_waldump"

TREE = ("gin_create_ptree", "gin_split")
SETUP: dict[str, tuple[str, ...]] = {
    "gin_create_ptree": ("gin_create_ptree",),
    "gin_split": ("gin_split",),
    "gin_vacuum_page": ("gin_split", "gin_vacuum_page"),
    "gin_insert_entry": ("gin_split", "gin_insert_entry"),
    "gin_insert_data_leaf": (*TREE, "gin_insert_data_leaf"),
    "gin_vacuum_data_leaf": (*TREE, "gin_insert_data_leaf", "gin_vacuum_data_leaf"),
    "gin_insert_data_internal": ("gin_split", "gin_insert_data_internal"),
    "gin_delete_page": ("gin_split", "gin_delete_page"),
    "gin_finish_split": ("gin_split", "gin_finish_split"),
    "gin_insert_listpage": ("gin_insert_listpage",),
    "gin_update_meta": ("gin_update_meta",),
    "gin_list_append": ("gin_insert_listpage", "gin_list_append"),
    "gin_delete_listpage": ("gin_delete_listpage",),
}
KINDS = tuple(SETUP)


def _redo(page: bytes | None, raw: bytes, lsn: int, v: int, fl: Flavour) -> bytes | None:
    r = TAG.rel
    return redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode, forknum=r.forknum,
                       blkno=TAG.blknum, end_lsn=lsn, record=raw, pg_version=v, flavour=fl)


def _opaque(p: Page) -> GinOpaque:
    return GinOpaque.unpack(p.data)


def _items(p: Page) -> list[bytes]:
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def _role(rec: DecodedRecord) -> int:
    """The block id under which the record names the requested block."""
    return next(b.block_id for b in rec.blocks if b.blkno == TAG.blknum and b.relnode == TAG.rel.relnode)


def _expected_leaf(before: bytes, leaf: LeafActions) -> list[list[tuple[int, int]]]:
    """The leaf's segments, decoded, after the logged actions, at the item level."""
    old = [decode_segment(s) for s in leaf_segments(before)]
    out: list[list[tuple[int, int]]] = []
    segno = 0
    for a in leaf.actions:
        out += old[segno : a.segno]
        segno = a.segno
        if a.action == GIN_SEGMENT_INSERT:
            out.append(decode_segment(a.segment))
            continue
        if a.action == GIN_SEGMENT_ADDITEMS:
            out.append(sorted({*old[segno], *a.items}))
        elif a.action != GIN_SEGMENT_DELETE:  # REPLACE
            out.append(decode_segment(a.segment))
        segno += 1
    return out + old[segno:]


def _check_step(kind: str, rec: DecodedRecord, body: rmgr.RmgrRecord, before: Page, after: Page, lsn: int,
                fl: Flavour) -> str:
    """Check one record; returns a label for what was exercised."""
    role = _role(rec)
    if kind in ("gin_split", "gin_vacuum_page"):
        assert isinstance(body, GinSplit | GinVacuumPage)
        image = rec.block(role).image  # type: ignore[union-attr]
        if image is None:
            assert fl is Flavour.NEON and after.data == before.data
            return "vacuum page without image (neon)"
        assert after.data[8:] == image.restore_page()[8:] and after.lsn == lsn
        return f"{kind}:image of block {role}"
    assert after.lsn == lsn
    if kind == "gin_create_ptree":
        assert isinstance(body, GinCreatePtree)
        logged = [ip for s in split_segments(body.segments) for ip in decode_segment(s)]
        assert [ip for s in leaf_segments(after.to_bytes()) for ip in decode_segment(s)] == logged
        return kind
    if kind in ("gin_insert_data_leaf", "gin_vacuum_data_leaf"):
        leaf = body.payload if isinstance(body, GinInsert) else body.leaf  # type: ignore[union-attr]
        assert isinstance(leaf, LeafActions)
        got = [decode_segment(s) for s in leaf_segments(after.to_bytes())]
        assert got == _expected_leaf(before.to_bytes(), leaf)
        if isinstance(body, GinVacuumDataLeafPage):
            assert {ip for s in got for ip in s} <= {ip for s in leaf_segments(before.to_bytes())
                                                     for ip in decode_segment(s)}
        return f"{kind}:" + ",".join(sorted({str(a.action) for a in leaf.actions}))
    if kind == "gin_insert_entry":
        assert isinstance(body, GinInsert) and isinstance(body.payload, EntryInsert)
        p = body.payload
        want = _items(before)
        if not body.isleaf:
            # the downlink's t_tid: (right child, InvalidOffsetNumber) as bi_hi, bi_lo, posid
            old = want[p.offset - 1]
            right = body.right_child
            want[p.offset - 1] = struct.pack("<HHH", right >> 16, right & 0xFFFF, 0) + old[6:]
        if p.is_delete:
            del want[p.offset - 1]
        want.insert(p.offset - 1, p.tuple)
        assert _items(after) == want
        return f"{kind}:{'leaf' if body.isleaf else 'internal'}{' replace' if p.is_delete else ''}"
    if kind == "gin_insert_data_internal":
        assert isinstance(body, GinInsert) and isinstance(body.payload, InternalInsert)
        p = body.payload
        old = posting_items(before)
        moved = PostingItem(body.right_child, old[p.offset - 1].key_block, old[p.offset - 1].key_offset)
        assert posting_items(after) == [*old[: p.offset - 1], p.item, moved, *old[p.offset :]]
        return kind
    if kind == "gin_delete_page":
        assert isinstance(body, GinDeletePage)
        if role == 1:
            old = posting_items(before)
            assert posting_items(after) == old[: body.parent_offset - 1] + old[body.parent_offset :]
        elif role == 0:
            assert _opaque(after).flags == _opaque(before).flags | GIN_DELETED
            assert after.prune_xid == body.delete_xid and after.data[24:-8] == before.data[24:-8]
        else:
            assert _opaque(after) == _opaque(before).replace(rightlink=body.right_link)
        return f"{kind}:block {role}"
    if kind == "gin_finish_split":
        assert _opaque(before).flags & GIN_INCOMPLETE_SPLIT
        assert _opaque(after) == _opaque(before).replace(flags=_opaque(before).flags & ~GIN_INCOMPLETE_SPLIT)
        assert after.data[24:-8] == before.data[24:-8]
        return f"{kind}:{type(body).__name__}"
    if kind == "gin_insert_listpage":
        assert isinstance(body, GinInsertListPage)
        assert b"".join(_items(after)) == body.tuples and after.max_offset() == body.ntuples
        tail = body.rightlink == INVALID_BLOCK
        assert _opaque(after) == GinOpaque(body.rightlink, int(tail), GIN_LIST | (GIN_LIST_FULLROW if tail else 0))
        return kind
    if kind in ("gin_update_meta", "gin_delete_listpage") and role == 0:
        assert isinstance(body, GinUpdateMetaPage | GinDeleteListPages)
        assert GinMeta.unpack(after.data, 24) == body.meta and after.lower == 80
        return f"{kind}:metapage"
    if kind == "gin_delete_listpage":
        assert _opaque(after).flags == GIN_DELETED and after.max_offset() == 0
        return f"{kind}:deleted page"
    assert kind == "gin_list_append" and isinstance(body, GinUpdateMetaPage)
    if body.ntuples:
        assert b"".join(_items(after)) == b"".join(_items(before)) + (body.tuples or b"")
        assert _opaque(after).maxoff == _opaque(before).maxoff + 1
        return f"{kind}:tuples"
    assert _opaque(after) == _opaque(before).replace(rightlink=body.new_rightlink)
    return f"{kind}:rightlink"


def _replay_and_check(trace: ws.BlockTrace, v: int, fl: Flavour) -> set[str]:
    labels: set[str] = set()
    page = trace.base_image
    for k, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = _redo(page, raw, lsn, v, fl)
        assert after is not None
        if k in SETUP:
            rec = decode_record(raw, v)
            before = Page(page) if page is not None else Page()
            labels.add(_check_step(k, rec, rmgr.parse(rec, v, fl), before, Page(after), lsn, fl))
        page = after
    whole = model_page(RedoRequest(TAG.rel, TAG.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(8192)) == whole
    return labels


def _sequences(kind: str, v: int, fl: Flavour) -> st.SearchStrategy[ws.BlockTrace]:
    return ws.record_sequences(TAG, pg_version=v, flavour=fl, min_records=2, max_records=6, kinds=SETUP[kind])


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_gin_kinds_do_what_their_records_say(version: int, flavour: Flavour) -> None:
    for kind in KINDS:
        @settings(max_examples=6, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(_sequences(kind, version, flavour))
        def check(trace: ws.BlockTrace) -> None:
            _replay_and_check(trace, version, flavour)

        check()


@pytest.mark.parametrize("kind", ["gin_insert_data_leaf", "gin_vacuum_data_leaf", "gin_insert_data_internal",
                                  "gin_delete_page", "gin_insert_entry"])
def test_properties_hold_on_many_sequences(kind: str) -> None:
    """The per-kind properties on more examples (PG17, Neon), shrinking on failure."""

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_sequences(kind, 17, Flavour.NEON))
    def check(trace: ws.BlockTrace) -> None:
        _replay_and_check(trace, 17, Flavour.NEON)

    check()


@pytest.mark.parametrize(("version", "flavour"), [(15, Flavour.VANILLA), (17, Flavour.NEON)])
def test_every_gin_check_is_exercised(version: int, flavour: Flavour) -> None:
    """The checks are not vacuous: every kind, every role a kind can take, every segment action
    and (Neon) a VACUUM_PAGE without its image. Generation stops once all were seen."""
    want = {"gin_split:image of block 0", "gin_split:image of block 1", "gin_split:image of block 2",
            "gin_vacuum_page:image of block 0", "gin_insert_entry:leaf", "gin_insert_entry:leaf replace",
            "gin_insert_entry:internal", "gin_delete_page:block 0", "gin_delete_page:block 1",
            "gin_delete_page:block 2", "gin_finish_split:GinInsert", "gin_finish_split:GinSplit",
            "gin_list_append:tuples", "gin_list_append:rightlink", "gin_update_meta:metapage",
            "gin_delete_listpage:metapage", "gin_delete_listpage:deleted page", "gin_create_ptree",
            "gin_insert_data_internal", "gin_insert_listpage"}
    actions = {"gin_insert_data_leaf": "234", "gin_vacuum_data_leaf": "13"}
    if flavour is Flavour.NEON:
        want.add("vacuum page without image (neon)")
    seen: set[str] = set()
    for kind in KINDS:
        mine = {w for w in want if w.partition(":")[0] == kind}
        if kind == "gin_vacuum_page":
            mine |= {"vacuum page without image (neon)"} & want
        mine |= {f"{kind} action {c}" for c in actions.get(kind, "")}

        def step(trace: ws.BlockTrace, kind: str = kind) -> set[str]:
            return _with_actions(kind, _replay_and_check(trace, version, flavour))

        seen |= generate_until(_sequences(kind, version, flavour), step, mine, examples=1500)
    assert seen >= want, sorted(want - seen)
    for kind, acts in actions.items():
        assert {f"{kind} action {c}" for c in acts} <= seen, kind


def _with_actions(kind: str, labels: set[str]) -> set[str]:
    """The labels plus one per segment action a leaf label of ``kind`` names."""
    return labels | {f"{kind} action {c}" for lab in labels if lab.startswith(f"{kind}:")
                     for c in lab.partition(":")[2] if c.isdigit()}


# --------------------------------------------------------------------------- pg_waldump


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_pg_waldump_15_reads_drawn_gin_sequences() -> None:
    batches = st.lists(st.sampled_from(KINDS).flatmap(lambda k: _sequences(k, 15, Flavour.VANILLA)),
                       min_size=1, max_size=4)
    seen = generate_until(batches, lambda traces: set(waldump_agrees(traces)), set(KINDS))
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


@pytest.mark.needs_postgres
@pytest.mark.skipif(not WALDUMP17.exists(), reason=f"{WALDUMP17} is absent (scripts/fetch_pg_servers.sh)")
def test_pg_waldump_17_reads_drawn_gin_sequences(tmp_path: Path) -> None:
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(st.sampled_from(KINDS).flatmap(lambda k: _sequences(k, 17, Flavour.VANILLA)),
                    min_size=1, max_size=6))
    def check(traces: list[ws.BlockTrace]) -> None:
        raws = [raw for t in traces for _lsn, raw in t.records]
        if not raws:
            return
        seg = write_segment(raws, pg_version=17)
        result = run_waldump(seg.write_to(tmp_path), binary=str(WALDUMP17))
        assert len(result.records) == len(raws), result.command_line
        for got, written in zip(result.records, seg.records, strict=True):
            d = rmgr.describe_record(decode_record(written.raw, 17), 17, Flavour.VANILLA)
            assert (got.rmgr, got.name, got.desc) == (d.rmgr, d.name, d.desc), result.command_line

    check()


# --------------------------------------------------------------------------- shrinking


@pytest.mark.parametrize(("kind", "at_most"), [
    ("gin_list_append", 2),  # a list page, then the append
])
def test_gin_kinds_shrink_to_short_sequences(kind: str, at_most: int) -> None:
    trace = find(ws.record_sequences(TAG, pg_version=17, kinds=SETUP[kind]), lambda t: kind in t.kinds,
                 settings=settings(database=None, max_examples=3000))
    assert len(trace.records) <= at_most, trace.kinds
    assert trace.kinds[-1] == kind

