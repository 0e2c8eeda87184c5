"""The record kinds added to the strategies: heap2 VISIBLE / FREEZE / PRUNE / VACUUM (PG14-16
layouts and PG17's PRUNE_* records), cross-page UPDATE seen from either block, btree NEWROOT
above the leaf level and INSERT_UPPER / INSERT_META on internal pages.

Three kinds of evidence:

* every kind is drawn for every version and flavour, and every drawn record applies;
* PostgreSQL 15's own pg_waldump reads the drawn PG15 records and describes them as we do;
* replaying a drawn sequence record by record, each new-kind record did to the page what the
  record *says* (read back from the decoded record, not from the strategy's choices): named
  prune offsets are redirect/dead/unused, vacuumed ones were LP_DEAD and are gone, frozen
  tuples carry the frozen infomask and the record's xmax, VISIBLE set PD_ALL_VISIBLE without
  moving pd_lsn, the old tuple of a cross-page update carries the record's xmax and points at
  the new block, the new one is the logged tuple, and an internal page holds the new
  downlink at the record's offset.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from test_strategies import any_block_sequences

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.btree_page import BTP_LEAF, BTP_META, BTPageOpaque, IndexTuple
from pytest_walredo.pg.page import LP_DEAD, LP_NORMAL, LP_REDIRECT, LP_UNUSED, PD_ALL_VISIBLE, Page
from pytest_walredo.pg.redo import redo_record
from pytest_walredo.pg.tuple import HEAP_XMIN_FROZEN, HeapTupleHeader
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump, run_waldump
from pytest_walredo.pg.walsegment import write_segment
from pytest_walredo.pg.xlogrecord import DecodedRecord, decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page
from pytest_walredo.strategies.kinds import INIT_KINDS, KINDS

T = TypeVar("T")

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
NEW_KINDS = ("heap2_vacuum", "heap2_visible", "heap2_freeze", "heap2_prune",
             "heap_update_old_block", "heap_update_new_block", "btree_insert_upper")
# each new kind with the kinds that set the page up for it (an initialized heap page with
# tuples, deleted ones whose xmax a freeze may keep, a prune leaving LP_DEAD items, a NEWROOT
# above the leaf level)
SETUP = {
    "heap2_vacuum": ("heap_insert_init", "heap_insert", "heap2_prune", "heap2_vacuum"),
    "heap2_visible": ("heap_insert_init", "heap_insert", "heap_delete", "heap2_visible"),
    "heap2_freeze": ("heap_insert_init", "heap_insert", "heap_delete", "heap2_freeze"),
    "heap2_prune": ("heap_insert_init", "heap_insert", "heap2_prune"),
    "heap_update_old_block": ("heap_insert_init", "heap_insert", "heap_update_old_block"),
    "heap_update_new_block": ("heap_insert", "heap_update_new_block"),
    "btree_insert_upper": ("btree_newroot", "btree_insert_upper"),
}
# kinds that modify tuples on a page and so must clear its PD_ALL_VISIBLE (the new-block side
# of a cross-page update only when it does not initialize the page)
CLEARS_ALL_VISIBLE = ("heap_insert", "heap_multi_insert", "heap_delete", "heap_update",
                      "heap_hot_update", "heap_update_old_block")
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()


def _body(raw: bytes, v: int, fl: Flavour) -> tuple[DecodedRecord, rmgr.RmgrRecord]:
    rec = decode_record(raw, v)
    return rec, rmgr.parse(rec, v, fl)


# --------------------------------------------------------------------------- coverage


def _rmgr_of(kind: str) -> str:
    """The resource manager whose drawers draw ``kind`` (from its module under
    ``strategies/kinds``: ``btree_split`` -> ``btree``)."""
    return KINDS[kind].draw.__module__.rsplit(".", 1)[1].split("_")[0]


RMGRS = sorted({_rmgr_of(k) for k in ws.RECORD_KINDS})


@pytest.mark.parametrize("rmgr_name", RMGRS)
@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_every_kind_is_drawn_for_every_version_and_flavour(version: int, flavour: Flavour,
                                                           rmgr_name: str) -> None:
    """Each resource manager's kinds, drawn among themselves and the kinds that start a page,
    are all drawn. (One draw over all the kinds needs thousands of examples to reach the
    records that need a long history on an index page, and more with every kind added.)"""
    own = {k for k in ws.RECORD_KINDS if _rmgr_of(k) == rmgr_name}
    kinds = sorted(own | set(INIT_KINDS))
    seen = generate_until(
        any_block_sequences(pg_version=version, flavour=flavour, min_records=3, max_records=8,
                            kinds=kinds).map(lambda trace: trace.kinds), set, own, examples=4000)
    assert seen >= own, f"never drawn: {sorted(own - seen)}"


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_every_drawn_record_applies(version: int, flavour: Flavour) -> None:
    @settings(max_examples=40, deadline=None, database=None)
    @given(ws.record_sequences(TAG, pg_version=version, flavour=flavour, min_records=3,
                               max_records=8))
    def check(trace: ws.BlockTrace) -> None:
        model_page(RedoRequest(TAG.rel, TAG.blknum, trace.base_image, trace.records), version,
                   flavour)

    check()


def test_visible_is_not_drawn_for_a_visibility_map_block() -> None:
    # on the VM fork the record's own VM block reference could be the requested block
    vm_tag = BufferTag(RelTag(1663, 5, 16384, 2), 0)

    @settings(max_examples=40, deadline=None, database=None)
    @given(ws.record_sequences(vm_tag, pg_version=16, min_records=2,
                               kinds=("heap_insert_init", "heap2_visible")))
    def check(trace: ws.BlockTrace) -> None:
        assert "heap2_visible" not in trace.kinds

    check()


# --------------------------------------------------------------------------- pg_waldump


def waldump_agrees(traces: list[ws.BlockTrace]) -> list[str]:
    """pg_waldump 15 reads the drawn PG15 vanilla sequences and describes each record, and its
    block references, as we do; returns the kinds it read."""
    assert WALDUMP is not None
    kinds = [k for t in traces for k in t.kinds]
    raws = [raw for t in traces for _lsn, raw in t.records]
    if not raws:
        return []
    seg = write_segment(raws, pg_version=15)
    folder = Path(tempfile.mkdtemp(prefix="walredo-kinds-"))
    result = run_waldump(seg.write_to(folder), binary=WALDUMP)
    where = f"\n  command: {result.command_line}\n  stderr: {result.stderr.strip()}"
    assert len(result.records) == len(raws), f"pg_waldump listed {len(result.records)}{where}"
    assert result.stopped_cleanly_at(seg.records[-1].end), f"pg_waldump rejected it{where}"
    for i, (got, written) in enumerate(zip(result.records, seg.records, strict=True)):
        rec = decode_record(written.raw, 15)
        d = rmgr.describe_record(rec, 15, Flavour.VANILLA)
        ctx = f"record {i} ({kinds[i]}){where}"
        assert (got.rmgr, got.name, got.desc) == (d.rmgr, d.name, d.desc), ctx
        assert [(b.block_id, b.forknum, b.blkno) for b in got.blkrefs] == [
            (b.block_id, b.forknum, b.blkno) for b in rec.blocks], ctx
    shutil.rmtree(folder, ignore_errors=True)
    return kinds


def redo_at(page: bytes | None, raw: bytes, lsn: int, tag: BufferTag, v: int, fl: Flavour) -> bytes | None:
    """The redo model's page after applying record ``raw`` (ending at ``lsn``) to block ``tag``."""
    r = tag.rel
    return redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode, forknum=r.forknum,
                       blkno=tag.blknum, end_lsn=lsn, record=raw, pg_version=v, flavour=fl)


class _Enough(Exception):
    """Raised from inside a property to stop generating (generate_until)."""


def generate_until(strategy: st.SearchStrategy[T], step: Callable[[T], set[str]], want: set[str],
                   examples: int = 300) -> set[str]:
    """Run ``step`` on examples of ``strategy`` until the labels it returned cover ``want`` or
    ``examples`` were drawn; returns the labels seen. Generation only: a failing ``step`` raises
    as it is, unshrunk (the callers' own shrinking tests cover shrinking)."""
    seen: set[str] = set()

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(example: T) -> None:
        seen.update(step(example))
        if seen >= want:
            raise _Enough

    try:
        check()
    except _Enough:
        pass
    return seen


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
@pytest.mark.parametrize("kind", NEW_KINDS)
def test_pg_waldump_15_accepts_drawn_sequences(kind: str) -> None:
    seen = []

    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(ws.buffer_tags(max_block=40).flatmap(
        lambda tag: ws.record_sequences(tag, pg_version=15, flavour=Flavour.VANILLA,
                                        min_records=2, kinds=SETUP[kind])), min_size=1, max_size=5))
    def check(traces: list[ws.BlockTrace]) -> None:
        seen.extend(waldump_agrees(traces))

    check()
    assert kind in seen


# --------------------------------------------------------------------------- what redo did


def _lp_gone_or(p: Page, off: int, flags: int) -> bool:
    """Line pointer ``off`` has ``flags``, or (unused only) was truncated off the array."""
    if off > p.max_offset():
        return flags == LP_UNUSED
    return p.item_id(off).flags == flags


def _tuple_data(p: Page, off: int) -> bytes:
    item = p.item(off)
    return item[item[22]:]


def _check_prune_parts(before: Page, after: Page, redirected: tuple[tuple[int, int], ...],
                       dead: tuple[int, ...], unused: tuple[int, ...],
                       frozen: tuple[int, ...] = ()) -> None:
    named = [a for a, _ in redirected] + list(dead) + list(unused)
    assert len(set(named)) == len(named), "an offset is named twice"
    root = (LP_NORMAL, LP_REDIRECT)  # a chain's root: a tuple, or a redirect left by a prune
    for frm, to in redirected:
        assert before.item_id(frm).flags in root and before.item_id(to).flags == LP_NORMAL
        assert after.item_id(frm).flags == LP_REDIRECT and after.item_id(frm).off == to
        assert after.item_id(to).flags == LP_NORMAL
    for off in dead:
        assert before.item_id(off).flags in root
        assert after.item_id(off).flags == LP_DEAD and not after.item_id(off).has_storage
    for off in unused:
        assert before.item_id(off).flags == LP_NORMAL
        assert _lp_gone_or(after, off, LP_UNUSED)
    assert not set(frozen) & set(named), "a pruned tuple is also frozen"
    # every tuple not named keeps its bytes (a frozen one its data), wherever compaction
    # moved it
    for off, lp in before.item_ids():
        if lp.flags == LP_NORMAL and off not in named:
            assert after.item_id(off).flags == LP_NORMAL
            if off in frozen:
                assert _tuple_data(after, off) == _tuple_data(before, off), f"tuple {off} changed"
            else:
                assert after.item(off) == before.item(off), f"tuple {off} changed"


def _check_frozen(before: Page, after: Page, plans: list[tuple[int, int, int, int]]) -> None:
    """``plans``: (offset, xmax, infomask2, infomask) as the record logs them."""
    assert plans, "a freeze record freezes something"
    for off, xmax, m2, m in plans:
        old = HeapTupleHeader.unpack(before.item(off))
        new = HeapTupleHeader.unpack(after.item(off))
        assert m & HEAP_XMIN_FROZEN == HEAP_XMIN_FROZEN, "the record does not freeze xmin"
        assert (new.infomask, new.infomask2, new.xmax) == (m, m2, xmax)
        assert new.infomask & HEAP_XMIN_FROZEN == HEAP_XMIN_FROZEN
        assert new.xmin == old.xmin, "freezing keeps t_xmin (the infomask says frozen)"
        assert _tuple_data(after, off) == _tuple_data(before, off)


def _check_step(kind: str, rec: DecodedRecord, body: rmgr.RmgrRecord, before: Page, after: Page,
                lsn: int, flavour: Flavour) -> None:
    own = (TAG.rel.forknum, TAG.blknum)
    refs = {b.block_id: (b.forknum, b.blkno) for b in rec.blocks}
    if kind == "heap2_visible":
        assert isinstance(body, rmgr.Heap2Visible)
        assert refs[1] == own and refs[0] == (2, TAG.blknum // ((8192 - 24) * 4))
        assert after.flags & PD_ALL_VISIBLE
        if flavour is Flavour.NEON:  # Neon's fork sets it unconditionally
            assert after.lsn == lsn, "Neon's VISIBLE sets the heap page's pd_lsn"
        else:
            assert after.lsn == before.lsn, "vanilla VISIBLE must not move the heap page's pd_lsn"
        after.lsn = before.lsn
        after.clear_flag(PD_ALL_VISIBLE)
        before.clear_flag(PD_ALL_VISIBLE)
        assert after.data == before.data, "VISIBLE changed more than PD_ALL_VISIBLE"
        return
    assert after.lsn == lsn
    if kind == "heap2_prune":
        assert isinstance(body, rmgr.Heap2Prune | rmgr.Heap2PruneFreeze)
        frozen = tuple(o for p in getattr(body, "plans", ()) for o in p.offsets)
        _check_prune_parts(before, after, body.redirected, body.dead, body.unused, frozen)
        if isinstance(body, rmgr.Heap2PruneFreeze) and body.plans:
            _check_frozen(before, after, [(o, p.xmax, p.t_infomask2, p.t_infomask)
                                          for p in body.plans for o in p.offsets])
    elif kind == "heap2_vacuum":
        offs = body.unused if isinstance(body, rmgr.Heap2Vacuum | rmgr.Heap2PruneFreeze) else ()
        assert offs
        for off in offs:
            assert before.item_id(off).flags == LP_DEAD, f"vacuumed {off} was not LP_DEAD"
            assert _lp_gone_or(after, off, LP_UNUSED)
    elif kind == "heap2_freeze":
        if isinstance(body, rmgr.Heap2FreezePage) and body.tuples:
            plans = [(t.offset, t.xmax, t.t_infomask2, t.t_infomask) for t in body.tuples]
        else:
            assert isinstance(body, rmgr.Heap2FreezePage | rmgr.Heap2PruneFreeze)
            plans = [(o, p.xmax, p.t_infomask2, p.t_infomask) for p in body.plans for o in p.offsets]
        _check_frozen(before, after, plans)
    elif kind == "heap_update_old_block":
        assert isinstance(body, rmgr.HeapUpdate) and not body.hot
        assert refs[1] == own and refs[0][1] != TAG.blknum
        head = HeapTupleHeader.unpack(after.item(body.old_offnum))
        assert head.xmax == body.old_xmax
        assert head.ctid == (refs[0][1], body.new_offnum)
        assert _tuple_data(after, body.old_offnum) == _tuple_data(before, body.old_offnum)
        assert after.max_offset() == before.max_offset()
    elif kind == "heap_update_new_block":
        assert isinstance(body, rmgr.HeapUpdate) and not body.hot and body.new_tuple is not None
        assert refs[0] == own and refs[1][1] != TAG.blknum
        head = HeapTupleHeader.unpack(after.item(body.new_offnum))
        assert head.xmin == rec.xid and head.ctid == (TAG.blknum, body.new_offnum)
        assert after.item(body.new_offnum)[23:] == body.new_tuple.data
        if body.init_page:
            assert after.max_offset() == 1
        else:
            assert after.max_offset() == before.max_offset() + 1
    elif kind == "btree_insert_upper":
        assert isinstance(body, rmgr.BtreeInsert)
        op = BTPageOpaque.unpack(after.data)
        assert op.level >= 1 and not op.flags & (BTP_LEAF | BTP_META)
        assert op == BTPageOpaque.unpack(before.data), "the child's split flag is another block's"
        assert refs[0] == own and refs[1][1] not in (TAG.blknum, 0)
        assert after.max_offset() == before.max_offset() + 1
        assert after.item(body.offnum) == body.tuple
        first = 1 if op.next == 0 else 2  # P_FIRSTDATAKEY: a right sibling means a high key
        assert body.offnum > first, "the minus-infinity downlink (and high key) stay first"
        downlink = IndexTuple.unpack(body.tuple)
        assert downlink.tid_block not in (0, TAG.blknum, refs[1][1])
        # the downlinks before the new one did not move
        for off in range(1, body.offnum):
            assert after.item(off) == before.item(off)
    elif kind == "btree_newroot" and isinstance(body, rmgr.BtreeNewroot) and body.level > 0:
        op = BTPageOpaque.unpack(after.data)
        assert (op.level, op.flags & BTP_LEAF) == (body.level, 0)
        assert after.max_offset() == 2
        minus_infinity = IndexTuple.unpack(after.item(1))
        assert minus_infinity.size == 8 and minus_infinity.tid_block == refs[1][1]


def _expected_names(version: int) -> dict[str, set[str]]:
    """The records each new kind maps to (version-neutral names, per-version records:
    PG17 replaced PRUNE/VACUUM/FREEZE_PAGE by the PRUNE_* records)."""
    common = {"heap2_visible": {"VISIBLE"}, "heap_update_old_block": {"UPDATE", "UPDATE+INIT"},
              "heap_update_new_block": {"UPDATE", "UPDATE+INIT"},
              "btree_insert_upper": {"INSERT_UPPER", "INSERT_META"}}
    if version >= 17:
        return {**common, "heap2_vacuum": {"PRUNE_VACUUM_CLEANUP"},
                "heap2_freeze": {"PRUNE_VACUUM_SCAN"},
                "heap2_prune": {"PRUNE_ON_ACCESS", "PRUNE_VACUUM_SCAN"}}
    return {**common, "heap2_vacuum": {"VACUUM"}, "heap2_freeze": {"FREEZE_PAGE"},
            "heap2_prune": {"PRUNE"}}


def _replay_and_check(trace: ws.BlockTrace, version: int, flavour: Flavour) -> set[str]:
    """Replay ``trace`` record by record, checking each step against what its record says
    (see the module docstring). Returns labels of what was checked: the kind names checked,
    ``"<kind>:<record name>"``, ``"cleared all-visible"``, ``"reused line pointer"``."""
    labels: set[str] = set()
    r = TAG.rel
    page = trace.base_image
    for k, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode,
                            forknum=r.forknum, blkno=TAG.blknum, end_lsn=lsn, record=raw,
                            pg_version=version, flavour=flavour)
        assert after is not None
        if page is not None and k in CLEARS_ALL_VISIBLE and Page(page).flags & PD_ALL_VISIBLE:
            # the drawn record logged ALL_VISIBLE_CLEARED, as PostgreSQL does for a change to
            # an all-visible page
            assert not Page(after).flags & PD_ALL_VISIBLE, k
            labels.add("cleared all-visible")
        if k == "heap_insert" and page is not None:
            _, ins = _body(raw, version, flavour)
            assert isinstance(ins, rmgr.HeapInsert) and ins.tuple is not None
            assert Page(after).item(ins.offnum)[23:] == ins.tuple.data
            if ins.offnum <= Page(page).max_offset():
                # PageAddItem's choice: the first unused line pointer, reused in place
                assert Page(page).item_id(ins.offnum).flags == LP_UNUSED
                assert Page(after).max_offset() == Page(page).max_offset()
                labels.add("reused line pointer")
        if k in NEW_KINDS or k == "btree_newroot":
            rec, body = _body(raw, version, flavour)
            before = Page(page) if page is not None else Page()
            _check_step(k, rec, body, before, Page(after), lsn, flavour)
            labels.add(k)
            if isinstance(body, rmgr.Heap2Prune | rmgr.Heap2PruneFreeze) and any(
                before.item_id(off).flags == LP_REDIRECT
                for off in [frm for frm, _ in body.redirected] + list(body.dead)
            ):
                labels.add("re-pruned redirect")  # a chain pruned before is pruned again
            labels.add(f"{k}:{body.identify(version, flavour)}")
        # page_verify_redirects: every redirect on the page points at a tuple
        out = Page(after)
        if not out.special < 8192:  # a heap page
            for off, lp in out.item_ids():
                if lp.flags == LP_REDIRECT:
                    assert out.item_id(lp.off).flags == LP_NORMAL, f"{k}: redirect {off} dangles"
        page = after
    # replaying record by record is what the model's whole-request redo gives
    assert page == model_page(RedoRequest(r, TAG.blknum, trace.base_image, trace.records),
                              version, flavour)
    return labels


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_kinds_do_what_their_records_say(kind: str, version: int, flavour: Flavour) -> None:
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(ws.record_sequences(TAG, pg_version=version, flavour=flavour, min_records=3,
                               max_records=6, kinds=SETUP[kind]))
    def check(trace: ws.BlockTrace) -> None:
        for label in _replay_and_check(trace, version, flavour):
            name = label.partition(":")[2]
            if name:  # a new kind's record is one its version has for it
                assert name in _expected_names(version).get(label.partition(":")[0], {name})

    check()


class _Covered(Exception):
    """Raised from inside a property to stop generating once everything wanted was seen."""


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_every_check_is_exercised(version: int, flavour: Flavour) -> None:
    """The checks above are not vacuous: for every new kind, generation reaches each of its
    records (both INIT and plain cross-page updates, INSERT_UPPER and INSERT_META, every
    PG17 prune op), changes to all-visible pages, line pointer reuse and a prune of a chain
    pruned before (a redirect made dead or moved on) happen. Generation stops as soon as
    all were seen; the bounds are generous because some need several records in a row (two
    prunes, the first leaving a redirect, happen in about 1 sequence of 70)."""
    want = {f"{k}:{name}" for k, names in _expected_names(version).items() for name in names}
    want.discard("heap_update_old_block:UPDATE+INIT")  # the other block is initialized then
    want |= {"cleared all-visible", "reused line pointer", "re-pruned redirect"}
    seen: set[str] = set()
    for kind in NEW_KINDS:
        mine = {w for w in want if w.startswith(f"{kind}:")}
        if kind == "heap2_visible":
            mine.add("cleared all-visible")
        if kind == "heap2_vacuum":
            mine.add("reused line pointer")
        if kind == "heap2_prune":
            mine.add("re-pruned redirect")

        @settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow])
        @given(ws.record_sequences(TAG, pg_version=version, flavour=flavour, min_records=3,
                                   max_records=10, kinds=SETUP[kind]).map(
            lambda t: _replay_and_check(t, version, flavour)))
        def collect(labels: set[str]) -> None:
            seen.update(labels)
            if seen >= mine:  # noqa: B023 -- collect runs before the loop moves on
                raise _Covered

        try:
            collect()
        except _Covered:
            pass
    assert seen >= want, sorted(want - seen)


# --------------------------------------------------------------------------- shrinking


@pytest.mark.parametrize(("kind", "at_most"), [
    ("heap2_vacuum", 3),  # a pushed page with an LP_DEAD item, or insert + prune, then vacuum
    ("btree_insert_upper", 2),  # a pushed internal page, or NEWROOT level >= 1, then the insert
    ("heap_update_old_block", 2),  # a pushed page with a tuple, or an insert, then the update
])
def test_new_kinds_shrink_to_short_sequences(kind: str, at_most: int) -> None:
    trace = find(ws.record_sequences(TAG, pg_version=17, kinds=SETUP[kind]),
                 lambda t: kind in t.kinds, settings=settings(database=None, max_examples=2000))
    assert len(trace.records) <= at_most, trace.kinds
    assert trace.kinds[-1] == kind
    assert all(len(raw) < 400 for _lsn, raw in trace.records)
