"""The SP-GiST record kinds in the strategies (issue 14): drawn for every version and flavour,
read by pg_waldump 15, and, replayed record by record, each record did what it *says* (read
back from the decoded record and the page before it, not from the drawer's choices):

- after every record, the special space counts exactly the REDIRECT and PLACEHOLDER tuples
  on the page;
- a tuple a record adds is at its logged offset, the item count grows only when that offset
  is one past the end (else a PLACEHOLDER, or for ADD_LEAF a DEAD tuple, was there), and a
  chain head then links to it;
- tuples a record moves away leave, at the first logged offset, a REDIRECT to where the record
  says the moved tuple now is (carrying its xid), and PLACEHOLDERs at the others;
- a parent's downlink: exactly node nodeI of the logged parent tuple changes, to the new place;
- VACUUM_LEAF: DEAD / PLACEHOLDER at the logged offsets, each moved tuple in its new slot, the
  chains as logged; VACUUM_ROOT: exactly the logged items gone; VACUUM_REDIRECT: the logged
  REDIRECTs are PLACEHOLDERs without a target, and the page ends before firstPlaceholder;
- items no record touches stay byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from test_strategies_kinds import generate_until, redo_at, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.spgist_page import (
    SPGIST_DEAD,
    SPGIST_LEAF,
    SPGIST_NULLS,
    SPGIST_PLACEHOLDER,
    SPGIST_REDIRECT,
    SpgOpaque,
    dead_tuple,
    tuple_state,
)
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump
from pytest_walredo.pg.xlogrecord import decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page

REL = RelTag(1663, 5, 16384)
TAG = BufferTag(REL, 3)
ROOT = BufferTag(REL, 0)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()
KINDS = tuple(k for k in ws.RECORD_KINDS if k.startswith("spg_"))
LEAF = ("spg_new_leaf", "spg_add_leaf", "spg_move_leafs")
INNER = ("spg_new_inner", "spg_move_node", "spg_downlink")
SETUP: dict[str, tuple[str, ...]] = {
    "spg_new_leaf": ("spg_new_leaf",),
    "spg_add_leaf": LEAF,
    "spg_move_leafs": LEAF,
    "spg_picksplit_leaf": (*LEAF, "spg_picksplit_leaf"),
    "spg_vacuum_leaf": (*LEAF, "spg_vacuum_leaf"),
    "spg_vacuum_root": (*LEAF, "spg_vacuum_root"),
    "spg_new_inner": ("spg_new_inner",),
    "spg_replace_inner": (*INNER, "spg_replace_inner"),
    "spg_move_node": INNER,
    "spg_downlink": INNER,
    "spg_vacuum_redirect": (*INNER, *LEAF, "spg_vacuum_redirect"),
}


def _items(p: Page) -> list[bytes]:
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def _tid(item: bytes, at: int) -> tuple[int, int]:
    hi, lo, off = struct.unpack_from("<HHH", item, at)
    return (hi << 16) | lo, off


def _node_tids(item: bytes) -> list[tuple[int, int]]:
    """The (block, offset) of every node of an inner tuple, walked from its header."""
    word = struct.unpack_from("<I", item)[0]
    pos, out = 8 + (word >> 16), []
    for _ in range((word >> 3) & 0x1FFF):
        out.append(_tid(item, pos))
        pos += struct.unpack_from("<H", item, pos + 6)[0] & 0x1FFF
    return out


def _counted(p: Page) -> None:
    states = [tuple_state(t) for t in _items(p)]
    op = SpgOpaque.read(p)
    assert (op.n_redirection, op.n_placeholder) == (states.count(SPGIST_REDIRECT), states.count(SPGIST_PLACEHOLDER))


class _Check:
    """The checks of one record on one page (``before`` None: the page was initialized)."""

    def __init__(self, before: Page, after: Page) -> None:
        self.old, self.new = _items(before), _items(after)
        self.touched: set[int] = set()

    def added(self, off: int, tup: bytes, *, over: tuple[int, ...] = (SPGIST_PLACEHOLDER,)) -> None:
        assert self.new[off - 1] == tup
        if off <= len(self.old):
            assert tuple_state(self.old[off - 1]) in over
        self.touched.add(off)

    def dead(self, off: int, state: int, blk: int = 0xFFFFFFFF, to: int = 0, xid: int = 0) -> None:
        assert self.new[off - 1] == dead_tuple(state, blk, to, xid)
        self.touched.add(off)

    def link(self, off: int, node: int, blk: int, to: int) -> None:
        old, new = _node_tids(self.old[off - 1]), _node_tids(self.new[off - 1])
        old[node] = (blk, to)
        assert new == old and len(self.new[off - 1]) == len(self.old[off - 1])
        self.touched.add(off)

    def rest_unchanged(self) -> None:
        """Items the record did not name are as they were; a new item is one it named."""
        assert all(o in self.touched for o in range(len(self.old) + 1, len(self.new) + 1))
        for o, t in enumerate(self.old, start=1):
            if o not in self.touched:
                assert self.new[o - 1] == t, o


def _check_record(body: rmgr.RmgrRecord, blk_of: dict[int, int], me: set[int], before: Page, after: Page) -> None:
    c = _Check(before, after)
    if isinstance(body, rmgr.SpgAddLeaf):
        if 0 in me:
            c.added(body.off_leaf, body.tuple, over=(SPGIST_DEAD,) if body.off_leaf == body.off_head
                    else (SPGIST_PLACEHOLDER,))
            if body.off_head and body.off_head != body.off_leaf:
                assert struct.unpack_from("<H", c.new[body.off_head - 1], 4)[0] & 0x3FFF == body.off_leaf
                c.touched.add(body.off_head)
        if 1 in me and body.off_parent:
            c.link(body.off_parent, body.node_i, blk_of[0], body.off_leaf)
    elif isinstance(body, rmgr.SpgMoveLeafs):
        last = body.toinsert[-1]
        if 1 in me:
            for off, tup in zip(body.toinsert, body.tuples, strict=True):
                c.added(off, tup)
        if 0 in me:
            c.dead(body.todelete[0], SPGIST_REDIRECT, blk_of[1], last, body.redirect_xid)
            for off in body.todelete[1:]:
                c.dead(off, SPGIST_PLACEHOLDER)
        if 2 in me:
            c.link(body.off_parent, body.node_i, blk_of[1], last)
    elif isinstance(body, rmgr.SpgAddNode):
        if 1 not in blk_of:
            assert c.new[body.offnum - 1] == body.tuple
            c.touched.add(body.offnum)
        else:
            if 1 in me:
                c.added(body.off_new, body.tuple)
            if 0 in me:
                c.dead(body.offnum, SPGIST_REDIRECT, blk_of[1], body.off_new, body.redirect_xid)
            if body.parent_blk in me:
                c.link(body.off_parent, body.node_i, blk_of[1], body.off_new)
    elif isinstance(body, rmgr.SpgSplitTuple):
        if 0 in me:
            assert c.new[body.off_prefix - 1] == body.prefix
            c.touched.add(body.off_prefix)
        if (0 if body.postfix_same else 1) in me:
            c.added(body.off_postfix, body.postfix)
    elif isinstance(body, rmgr.SpgPickSplit):
        for i, (off, tup) in enumerate(zip(body.toinsert, body.tuples, strict=True)):
            if body.select[i] in me:
                c.touched.add(off)
                assert c.new[off - 1] == tup
        if 0 in me and not body.is_root_split:
            kept = {off for off, sel in zip(body.toinsert, body.select, strict=True) if sel == 0}
            c.dead(body.todelete[0], SPGIST_REDIRECT, blk_of[2], body.off_inner, body.redirect_xid)
            for off in body.todelete[1:]:
                if off not in kept:
                    c.dead(off, SPGIST_PLACEHOLDER)
        if 2 in me:
            c.added(body.off_inner, body.inner)
        if (2 if body.inner_is_parent else 3) in me and (body.inner_is_parent or 3 in blk_of):
            c.link(body.off_parent, body.node_i, blk_of[2], body.off_inner)
    elif isinstance(body, rmgr.SpgVacuumLeaf):
        for off in body.dead:
            c.dead(off, SPGIST_DEAD)
        for off in body.placeholder + body.move_src:
            c.dead(off, SPGIST_PLACEHOLDER)
        for src, dest in zip(body.move_src, body.move_dest, strict=True):
            moved, was = c.new[dest - 1], c.old[src - 1]
            if dest in body.chain_src:  # then relinked: t_info checked below
                moved, was = moved[:4] + moved[6:], was[:4] + was[6:]
            assert moved == was
            c.touched.add(dest)
        for src, nxt in zip(body.chain_src, body.chain_dest, strict=True):
            assert struct.unpack_from("<H", c.new[src - 1], 4)[0] & 0x3FFF == nxt
            c.touched.add(src)
    elif isinstance(body, rmgr.SpgVacuumRoot):
        assert c.new == [t for o, t in enumerate(c.old, start=1) if o not in body.todelete]
        return
    elif isinstance(body, rmgr.SpgVacuumRedirect):
        for off in (o for o in body.offsets if o <= len(c.new)):  # the others went with the trailing ones
            assert tuple_state(c.new[off - 1]) == SPGIST_PLACEHOLDER and _tid(c.new[off - 1], 6) == (0xFFFFFFFF, 0)
            c.touched.add(off)
        if body.first_placeholder:
            assert len(c.new) == body.first_placeholder - 1
            c.old = c.old[: len(c.new)]
    c.rest_unchanged()


def _replay_and_check(trace: ws.BlockTrace, tag: BufferTag, v: int, fl: Flavour) -> set[str]:
    """Replay record by record, checking each one; return what happened (labels)."""
    page = trace.base_image
    labels: set[str] = set()
    for (lsn, raw), k in zip(trace.records, trace.kinds, strict=True):
        after = redo_at(page, raw, lsn, tag, v, fl)
        rec = decode_record(raw, v)
        body = rmgr.parse(rec, v, fl)
        assert after is not None
        blk_of = {b.block_id: b.blkno for b in rec.blocks}
        me = {i for i, n in blk_of.items() if n == tag.blknum}
        new = Page(after)
        inits = {i for i in me if rec.block(i).will_init}  # type: ignore[union-attr]
        if inits:
            flags = SpgOpaque.read(new).flags
            leafy = isinstance(body, (rmgr.SpgAddLeaf, rmgr.SpgMoveLeafs)) or (
                isinstance(body, rmgr.SpgPickSplit) and inits == {1})
            assert bool(flags & SPGIST_LEAF) == leafy
            labels.add("nulls page" if flags & SPGIST_NULLS else "new page")
            _check_record(body, blk_of, me, Page.initialized(8), new)
        else:
            assert page is not None
            _check_record(body, blk_of, me, Page(page), new)
        _counted(new)
        assert new.lsn == lsn
        labels.add(f"{k}: {type(body).__name__} as block {min(me)}" if me else k)
        page = after
    whole = model_page(RedoRequest(tag.rel, tag.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(8192)) == whole
    return labels


def _sequences(kind: str, v: int, fl: Flavour, tag: BufferTag = TAG) -> st.SearchStrategy[ws.BlockTrace]:
    return ws.record_sequences(tag, pg_version=v, flavour=fl, min_records=1, max_records=8, kinds=SETUP[kind])


def _collect(kind: str, tag: BufferTag, version: int, flavour: Flavour, seen: set[str], want: set[str]) -> None:
    """Replay and check drawn sequences of ``kind`` for ``tag``, adding their labels (and each
    label's kind) to ``seen`` until ``want`` are all there (or 400 examples ran out)."""

    def labels(trace: ws.BlockTrace) -> set[str]:
        got = _replay_and_check(trace, tag, version, flavour)
        return got | {lab.split(":")[0] for lab in got}

    seen |= generate_until(_sequences(kind, version, flavour, tag), labels, want - seen, examples=400)


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_every_spgist_kind_is_drawn_and_does_what_its_record_says(version: int, flavour: Flavour) -> None:
    seen: set[str] = set()
    for kind in KINDS:
        _collect(kind, TAG, version, flavour, seen, {kind})
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


def test_every_role_is_exercised() -> None:
    """The checks are not vacuous: each record is seen from each page it changes."""
    wanted = {
        "spg_new_leaf": ("nulls page",),
        "spg_add_leaf": ("spg_add_leaf: SpgAddLeaf as block 0",),
        "spg_move_leafs": ("spg_move_leafs: SpgMoveLeafs as block 0", "spg_move_leafs: SpgMoveLeafs as block 1"),
        "spg_picksplit_leaf": ("spg_picksplit_leaf: SpgPickSplit as block 0",),
        "spg_vacuum_leaf": ("spg_vacuum_leaf: SpgVacuumLeaf as block 0",),
        "spg_replace_inner": ("spg_replace_inner: SpgAddNode as block 0", "spg_replace_inner: SpgSplitTuple as block 0"),
        "spg_move_node": ("spg_move_node: SpgAddNode as block 0", "spg_move_node: SpgAddNode as block 1"),
        "spg_downlink": ("spg_downlink: SpgAddLeaf as block 1", "spg_downlink: SpgMoveLeafs as block 2",
                         "spg_downlink: SpgPickSplit as block 2", "spg_downlink: SpgPickSplit as block 3"),
        "spg_vacuum_redirect": ("spg_vacuum_redirect: SpgVacuumRedirect as block 0",),
    }
    seen: set[str] = set()
    for kind, labels in wanted.items():
        _collect(kind, TAG, 16, Flavour.NEON, seen, set(labels))
    want = {lab for labels in wanted.values() for lab in labels}
    assert seen >= want, sorted(want - seen)


def _checker(kind: str, examples: int) -> Callable[[], None]:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_sequences(kind, 17, Flavour.NEON))
    def check(trace: ws.BlockTrace) -> None:
        _replay_and_check(trace, TAG, 17, Flavour.NEON)

    return check


@pytest.mark.parametrize("kind", ["spg_add_leaf", "spg_move_leafs", "spg_picksplit_leaf", "spg_vacuum_leaf",
                                  "spg_replace_inner", "spg_move_node", "spg_downlink", "spg_vacuum_redirect"])
def test_properties_hold_on_many_sequences(kind: str) -> None:
    """The per-kind properties on more examples (PG17, Neon), shrinking on failure."""
    _checker(kind, 25)()


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
def test_pg_waldump_15_reads_drawn_spgist_sequences() -> None:
    seen = generate_until(st.lists(ws.record_sequences(TAG, pg_version=15, flavour=Flavour.VANILLA, min_records=2,
                                                       max_records=6, kinds=KINDS), min_size=1, max_size=4),
                          lambda ts: set(waldump_agrees(ts)), set(KINDS))
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


def test_spgist_kinds_shrink_to_short_sequences() -> None:
    trace = find(ws.record_sequences(TAG, pg_version=17, flavour=Flavour.NEON, kinds=SETUP["spg_vacuum_leaf"]),
                 lambda t: "spg_vacuum_leaf" in t.kinds, settings=settings(database=None, max_examples=3000, derandomize=True))
    assert trace.kinds == ("spg_new_leaf", "spg_vacuum_leaf"), trace.kinds
