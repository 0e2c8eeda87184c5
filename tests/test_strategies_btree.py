"""Issue 11's record kinds in the strategies: every btree kind (splits from each block they
touch, INSERT_POST, DEDUP, VACUUM/DELETE over posting lists, page deletion, META_CLEANUP,
REUSE_PAGE) and heap TRUNCATE, heap2 LOCK_UPDATED, NEW_CID, REWRITE.

Evidence, as for the earlier kinds (test_strategies_kinds.py):

* every kind is drawn for every version and flavour, and pg_waldump 15 reads drawn sequences
  and describes them as we do;
* replaying a drawn sequence record by record, each record did what it *says* (read back from
  the decoded record and the page before it, not from the drawer's choices), with properties
  that redo does not give by construction:

  - split: the left page (rebuilt from its own old items) and the right page (rebuilt from the
    logged tuples) together hold every data item of the original page plus the new item, in
    item order (a split posting list replaced by its post-split version), and the left page's
    high key is the right page's first key;
  - DEDUP: the same heap TIDs in the same order, in fewer items;
  - INSERT_POST: the TIDs of before plus the new one, still ascending;
  - VACUUM / DELETE: exactly the logged items gone and exactly the logged TIDs gone from the
    updated posting lists, everything else unchanged and in order;
  - records that name no block leave the page byte for byte;
* the kinds shrink to short sequences.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from test_strategies_kinds import redo_at, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.btree_page import (
    BTP_DELETED,
    BTP_HALF_DEAD,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTPageOpaque,
)
from pytest_walredo.pg.btree_posting import heap_tids, is_posting, posting_offset, tuple_size
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.tuple import HeapTupleHeader
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump
from pytest_walredo.pg.xlogrecord import DecodedRecord, decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
METAPAGE = BufferTag(RelTag(1663, 5, 16384), 0)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()

LEAF = ("btree_newroot", "btree_insert")  # leaves: pushed pages (full ones too), new roots
# each kind with the kinds that set the page up for it
SETUP: dict[str, tuple[str, ...]] = {
    "btree_split": (*LEAF, "btree_dedup", "btree_split"),
    "btree_split_right": ("btree_split_right",),
    "btree_split_next": (*LEAF, "btree_split_next"),
    "btree_finish_split": (*LEAF, "btree_split", "btree_finish_split"),
    "btree_dedup": (*LEAF, "btree_dedup"),
    "btree_insert_post": (*LEAF, "btree_dedup", "btree_insert_post"),
    "btree_vacuum": (*LEAF, "btree_dedup", "btree_vacuum"),
    "btree_delete": (*LEAF, "btree_dedup", "btree_delete"),
    "btree_mark_halfdead": (*LEAF, "btree_mark_halfdead"),
    "btree_halfdead_parent": ("btree_newroot", "btree_insert_upper", "btree_halfdead_parent"),
    "btree_unlink": (*LEAF, "btree_mark_halfdead", "btree_unlink"),
    "btree_unlink_sibling": (*LEAF, "btree_unlink_sibling"),
    "btree_unlink_leaf": ("btree_unlink_leaf",),
    "btree_meta_cleanup": ("btree_meta_cleanup",),
    "btree_reuse_page": (*LEAF, "btree_reuse_page"),
    "heap_truncate": ("heap_insert_init", "heap_truncate"),
    "heap2_new_cid": ("heap_insert_init", "heap2_new_cid"),
    "heap2_rewrite": ("heap_insert_init", "heap2_rewrite"),
    "heap2_lock_updated": ("heap_insert_init", "heap_insert", "heap2_lock_updated"),
}
NEW_KINDS = tuple(SETUP)
NO_PAGE_CHANGE = ("btree_reuse_page", "heap_truncate", "heap2_new_cid", "heap2_rewrite")


def _tag(kind: str) -> BufferTag:
    return METAPAGE if kind == "btree_meta_cleanup" else TAG


def _body(raw: bytes, v: int, fl: Flavour) -> tuple[DecodedRecord, rmgr.RmgrRecord]:
    rec = decode_record(raw, v)
    return rec, rmgr.parse(rec, v, fl)


def _opaque(p: Page) -> BTPageOpaque:
    return BTPageOpaque.unpack(p.data)


def _data(p: Page) -> list[bytes]:
    """The data items of a btree page (the high key left out)."""
    first = 1 if _opaque(p).next == 0 else 2
    return [p.item(o) for o in range(first, p.max_offset() + 1)]


def _key(t: bytes) -> bytes:
    return t[8 : posting_offset(t) if is_posting(t) else tuple_size(t)]


def _tids(items: list[bytes]) -> list[tuple[int, int]]:
    return [tid for t in items for tid in heap_tids(t)]


# --------------------------------------------------------------------------- per-kind checks


def _check_split(rec: DecodedRecord, body: rmgr.BtreeSplit, before: Page, after: Page, lsn: int,
                 v: int, fl: Flavour) -> None:
    """This page was the left half; the right half is rebuilt from the same record."""
    right_ref = rec.block(1)
    assert right_ref is not None and right_ref.will_init and right_ref.blkno != TAG.blknum
    right = Page(redo_at(None, rec.encode(), lsn, BufferTag(TAG.rel, right_ref.blkno), v, fl) or bytes(8192))
    lop, rop = _opaque(after), _opaque(right)
    isleaf = body.level == 0
    assert lop.flags == BTP_INCOMPLETE_SPLIT | (BTP_LEAF if isleaf else 0) and lop.next == right_ref.blkno
    assert (rop.prev, rop.level, rop.flags) == (TAG.blknum, body.level, BTP_LEAF if isleaf else 0)
    old = _data(before)
    first = 1 if _opaque(before).next == 0 else 2
    left_data = [after.item(o) for o in range(2, after.max_offset() + 1)]  # item 1: the high key
    right_data = _data(right)
    union = left_data + right_data
    assert len(union) == len(old) + 1, "the halves lost or gained an item"
    assert len(left_data) == body.firstrightoff - first + (1 if body.newitem_on_left else 0)
    at = body.newitemoff - first  # where the new item is in item order
    hikey = after.item(1)
    if not isleaf:
        # the first right downlink became the left high key and lost its key on the right
        assert _key(right_data[0]) == b"" and _key(hikey) == _key(body.left_hikey)
        keys = [_key(t) for t in union]
        keys[len(left_data)] = _key(hikey)
        assert keys[:at] + keys[at + 1 :] == [_key(t) for t in old]
        return
    without_new = union[:at] + union[at + 1 :]
    if body.postingoff:
        pos = at - 1  # the posting list split sits right before the new item
        tids = heap_tids(old[pos])
        new_tid = heap_tids(body.newitem)[0]
        assert tids[body.postingoff - 1] < new_tid < tids[body.postingoff]
        merged = sorted([*tids, new_tid])
        assert heap_tids(union[pos]) == merged[:-1] and heap_tids(union[at]) == merged[-1:]
        assert _key(union[pos]) == _key(old[pos]) == _key(union[at])
        without_new[pos] = old[pos]
    elif body.newitem_on_left:
        assert union[at] == body.newitem
    assert without_new == old, "the halves do not hold the original items in order"
    assert _key(hikey) == _key(right_data[0]), "the left high key is not the right half's first key"
    keys = [_key(t) for t in union]
    if [_key(t) for t in old] == sorted(_key(t) for t in old):  # drawn inserts may break key order
        assert keys == sorted(keys), "the two halves are not in key order"


def _check_items_removed(body: rmgr.BtreeVacuum | rmgr.BtreeDelete, before: Page, after: Page) -> None:
    old = {o: before.item(o) for o in range(1, before.max_offset() + 1)}
    updates = {u.offnum: u.deletetids for u in body.updates}
    want = []
    for off in sorted(old):
        if off in body.deleted:
            continue
        t = old[off]
        if off in updates:
            tids = heap_tids(t)
            left = [tid for i, tid in enumerate(tids) if i not in updates[off]]
            assert len(left) == len(tids) - len(updates[off]) >= 1
            want.append((_key(t), left))
        else:
            want.append((_key(t), heap_tids(t) if off >= (1 if _opaque(before).next == 0 else 2) else None))
    got = []
    for off in range(1, after.max_offset() + 1):
        t = after.item(off)
        got.append((_key(t), heap_tids(t) if off >= (1 if _opaque(after).next == 0 else 2) else None))
    assert got == want
    assert not _opaque(after).flags & 0x40  # BTP_HAS_GARBAGE


def _check_step(kind: str, rec: DecodedRecord, body: rmgr.RmgrRecord, before: Page, after: Page, lsn: int,
                v: int, fl: Flavour) -> None:
    own = (TAG.rel.forknum, _tag(kind).blknum)
    refs = {b.block_id: (b.forknum, b.blkno) for b in rec.blocks}
    if kind in NO_PAGE_CHANGE:
        assert not rec.blocks and after.data == before.data
        return
    assert after.lsn == lsn
    if kind == "btree_split":
        assert isinstance(body, rmgr.BtreeSplit) and refs[0] == own
        _check_split(rec, body, before, after, lsn, v, fl)
    elif kind == "btree_split_right":
        assert isinstance(body, rmgr.BtreeSplit) and refs[1] == own
        op = _opaque(after)
        assert op.prev == refs[0][1] and op.level == body.level
        b0 = rec.block(0)
        neon_cycle = fl is Flavour.NEON and b0 is not None and b0.image is not None
        if not neon_cycle:
            assert op.cycleid == 0
        else:
            assert op.cycleid == BTPageOpaque.unpack(b0.image.restore_page()).cycleid
        assert b"".join(reversed([after.item(o) for o in range(1, after.max_offset() + 1)])) == body.right_page
    elif kind == "btree_split_next":
        assert refs[2] == own and _opaque(after).prev == refs[1][1]
        assert after.data[8 : 8192 - 16] == before.data[8 : 8192 - 16]  # past pd_lsn, up to the special space
    elif kind == "btree_finish_split":
        assert _opaque(before).flags & BTP_INCOMPLETE_SPLIT
        assert _opaque(after).flags == _opaque(before).flags & ~BTP_INCOMPLETE_SPLIT
        assert own in (refs.get(1), refs.get(3))
    elif kind == "btree_dedup":
        assert isinstance(body, rmgr.BtreeDedup) and body.intervals
        assert _tids(_data(after)) == _tids(_data(before)), "deduplication changed the heap TIDs"
        merged = sum(n - 1 for _b, n in body.intervals)
        assert after.max_offset() == before.max_offset() - merged
    elif kind == "btree_insert_post":
        assert isinstance(body, rmgr.BtreeInsert) and body.postingoff
        new_tid = heap_tids(body.tuple)[0]
        assert sorted(_tids(_data(after))) == sorted([*_tids(_data(before)), new_tid])
        assert heap_tids(after.item(body.offnum - 1)) == sorted(heap_tids(after.item(body.offnum - 1)))
        assert after.max_offset() == before.max_offset() + 1
    elif kind in ("btree_vacuum", "btree_delete"):
        assert isinstance(body, rmgr.BtreeVacuum | rmgr.BtreeDelete)
        _check_items_removed(body, before, after)
    elif kind == "btree_mark_halfdead":
        op = _opaque(after)
        assert op.flags == BTP_HALF_DEAD | BTP_LEAF and after.max_offset() == 1
    elif kind == "btree_halfdead_parent":
        assert isinstance(body, rmgr.BtreeMarkPageHalfdead) and refs[1] == own
        assert after.max_offset() == before.max_offset() - 1
        assert after.item(body.poffset)[4:] == before.item(body.poffset)[4:]
        assert after.item(body.poffset)[:4] == before.item(body.poffset + 1)[:4]
    elif kind == "btree_unlink":
        assert isinstance(body, rmgr.BtreeUnlinkPage) and refs[0] == own
        op = _opaque(after)
        assert op.flags & BTP_DELETED and (op.prev, op.next) == (body.leftsib, body.rightsib)
        assert after.lower == 32 and after.upper == after.special
    elif kind == "btree_unlink_sibling":
        assert isinstance(body, rmgr.BtreeUnlinkPage)
        op = _opaque(after)
        assert (op.next == body.rightsib) if refs.get(1) == own else (op.prev == body.leftsib)
    elif kind == "btree_unlink_leaf":
        assert isinstance(body, rmgr.BtreeUnlinkPage) and refs[3] == own
        assert _opaque(after).flags == BTP_HALF_DEAD | BTP_LEAF and after.max_offset() == 1
    elif kind == "btree_meta_cleanup":
        assert isinstance(body, rmgr.BtreeMetaCleanup) and body.metadata is not None
        assert after.lower == 72 and _opaque(after).flags == 0x08  # BTP_META
    elif kind == "heap2_lock_updated":
        assert isinstance(body, rmgr.Heap2LockUpdated)
        old = HeapTupleHeader.unpack(before.item(body.offnum))
        new = HeapTupleHeader.unpack(after.item(body.offnum))
        assert new.xmax == body.xmax and (new.cid, new.ctid, new.xmin) == (old.cid, old.ctid, old.xmin)


def _replay_and_check(trace: ws.BlockTrace, tag: BufferTag, v: int, fl: Flavour) -> set[str]:
    labels: set[str] = set()
    page = trace.base_image
    for k, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = redo_at(page, raw, lsn, tag, v, fl)
        assert after is not None
        if k in NEW_KINDS:
            rec, body = _body(raw, v, fl)
            before = Page(page) if page is not None else Page()
            _check_step(k, rec, body, before, Page(after), lsn, v, fl)
            labels.add(f"{k}:{body.identify(v, fl)}")
            if isinstance(body, rmgr.BtreeSplit) and body.postingoff and k == "btree_split":
                labels.add("split of a posting list")
            if isinstance(body, rmgr.BtreeVacuum | rmgr.BtreeDelete) and body.updates:
                labels.add(f"{k} over posting lists")
            if k == "btree_split_right" and fl is Flavour.NEON and (b0 := rec.block(0)) and b0.image:
                labels.add("neon cycle id")
            if k == "btree_unlink" and before.special < 8192 and _opaque(before).flags & BTP_HALF_DEAD:
                labels.add("half-dead then unlinked")
        page = after
    whole = model_page(RedoRequest(tag.rel, tag.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(8192)) == whole
    return labels


class _Covered(Exception):
    """Raised from inside a property to stop generating once everything wanted was seen."""


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_new_kinds_do_what_their_records_say(version: int, flavour: Flavour) -> None:
    """Every step of drawn sequences of each new kind passes its check, in every version and
    flavour (that every kind is drawn there: test_strategies_kinds.py)."""
    for kind in NEW_KINDS:
        _checker(kind, version, flavour, 15)()


def _checker(kind: str, version: int, flavour: Flavour, examples: int) -> Callable[[], None]:
    """A Hypothesis test replaying and checking drawn sequences of ``kind``."""
    tag = _tag(kind)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(ws.record_sequences(tag, pg_version=version, flavour=flavour, min_records=2, max_records=6,
                               kinds=SETUP[kind]))
    def check(trace: ws.BlockTrace) -> None:
        _replay_and_check(trace, tag, version, flavour)

    return check


@pytest.mark.parametrize(("version", "flavour"), [(15, Flavour.VANILLA), (17, Flavour.NEON)])
def test_every_check_is_exercised(version: int, flavour: Flavour) -> None:
    """The checks are not vacuous: each kind's records are reached (both where a kind has two:
    SPLIT_L and SPLIT_R, UNLINK_PAGE and _META...) and posting-list splits, VACUUM and DELETE
    over posting lists, page deletion in order and (Neon) the cycle id copied from the left
    page's image all happen. Generation stops once all were seen."""
    want = {"btree_split:SPLIT_L", "btree_split:SPLIT_R", "btree_unlink:UNLINK_PAGE",
            "btree_unlink:UNLINK_PAGE_META", "split of a posting list", "btree_vacuum over posting lists",
            "btree_delete over posting lists", "half-dead then unlinked"}
    want |= {f"{k}:" for k in NEW_KINDS}
    if flavour is Flavour.NEON:
        want.add("neon cycle id")
    extra = {"btree_split": {"split of a posting list"}, "btree_vacuum": {"btree_vacuum over posting lists"},
             "btree_delete": {"btree_delete over posting lists"}, "btree_unlink": {"half-dead then unlinked"},
             "btree_split_right": {"neon cycle id"} & want}
    seen: set[str] = set()
    for kind in NEW_KINDS:
        mine = {w for w in want if w.startswith(f"{kind}:")} | extra.get(kind, set())
        try:
            _collector(kind, version, flavour, seen, mine)()
        except _Covered:
            pass
    assert seen >= want, sorted(want - seen)


def _collector(kind: str, version: int, flavour: Flavour, seen: set[str], mine: set[str]) -> Callable[[], None]:
    """Generation only: check drawn sequences of ``kind``, gather their labels into ``seen``
    and stop (raising _Covered) once ``mine`` are all there."""
    tag = _tag(kind)

    @settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(ws.record_sequences(tag, pg_version=version, flavour=flavour, min_records=2,
                               max_records=6, kinds=SETUP[kind]).map(
        lambda t: _replay_and_check(t, tag, version, flavour)))
    def collect(labels: set[str]) -> None:
        seen.update(labels)
        seen.update(f"{lab.partition(':')[0]}:" for lab in labels if ":" in lab)
        if seen >= mine:
            raise _Covered

    return collect


@pytest.mark.parametrize("kind", ["btree_split", "btree_dedup", "btree_insert_post", "btree_vacuum",
                                  "btree_delete"])
def test_properties_hold_on_many_sequences(kind: str) -> None:
    """The per-kind properties on more examples (PG17, Neon), shrinking on failure."""
    _checker(kind, 17, Flavour.NEON, 80)()


# --------------------------------------------------------------------------- pg_waldump


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
@pytest.mark.parametrize("kind", NEW_KINDS)
def test_pg_waldump_15_reads_drawn_sequences(kind: str) -> None:
    """pg_waldump 15 reads drawn sequences until one holds ``kind`` (generation stops there)."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(ws.record_sequences(_tag(kind), pg_version=15, flavour=Flavour.VANILLA, min_records=2,
                                        max_records=4, kinds=SETUP[kind]), min_size=1, max_size=4))
    def check(traces: list[ws.BlockTrace]) -> None:
        seen.update(waldump_agrees(traces))
        if kind in seen:
            raise _Covered

    try:
        check()
    except _Covered:
        pass
    assert kind in seen


# --------------------------------------------------------------------------- shrinking


@pytest.mark.parametrize(("kind", "at_most"), [
    ("btree_split", 2),  # a pushed page or an image, then the split
    # a pushed leaf with a run of equal keys, then DEDUP; or, when the search found the run
    # built by records, NEWROOT, two equal INSERTs, DEDUP: also minimal, and the shrinker does
    # not swap a record-built start for a pushed page
    ("btree_dedup", 4),
    ("btree_unlink", 2),  # a btree page, then the unlink (half-dead first is favoured, not needed)
    ("btree_meta_cleanup", 1),
    ("heap2_lock_updated", 2),
])
def test_new_kinds_shrink_to_short_sequences_and_small_pages(kind: str, at_most: int) -> None:
    tag = _tag(kind)
    trace = find(ws.record_sequences(tag, pg_version=17, kinds=SETUP[kind]), lambda t: kind in t.kinds,
                 settings=settings(database=None, max_examples=3000))
    assert len(trace.records) <= at_most, trace.kinds
    assert trace.kinds[-1] == kind
    if trace.base_image is not None and kind != "btree_dedup":
        assert Page(trace.base_image).max_offset() <= 3
