"""Drawers for heap2 records: MULTI_INSERT, VISIBLE, pruning, vacuum and freezing,
LOCK_UPDATED, and NEW_CID and REWRITE (which name no block: the page must not change).

Version-neutral names: ``heap2_vacuum`` is VACUUM in 14-16 and PRUNE_VACUUM_CLEANUP (no
cleanup lock) in 17; ``heap2_freeze`` FREEZE_PAGE (PG14/15 per tuple, PG16 plans) or, in 17,
PRUNE_VACUUM_SCAN with freeze plans only; ``heap2_prune`` PRUNE in 14-16, PRUNE_ON_ACCESS or
PRUNE_VACUUM_SCAN (maybe also freezing survivors) in 17. ``heap2_visible``: reference 0 is the
visibility-map page, reference 1 this heap page, which gets PD_ALL_VISIBLE.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from ...pg.constants import VISIBILITYMAP_FORKNUM, maxalign
from ...pg.page import MAX_HEAP_TUPLES_PER_PAGE, Page
from ...pg.rmgr.heap2 import Heap2MultiInsert, Heap2Visible, MultiInsertTuple
from ...pg.rmgr.heap2_prune import FreezePlan, FreezeTuple, Heap2FreezePage, Heap2Prune, Heap2Vacuum
from ...pg.rmgr.heap2_prune17 import (
    PRUNE_REASONS,
    XLHP_CLEANUP_LOCK,
    XLHP_HAS_CONFLICT_HORIZON,
    XLHP_HAS_DEAD_ITEMS,
    XLHP_HAS_FREEZE_PLANS,
    XLHP_HAS_NOW_UNUSED_ITEMS,
    XLHP_HAS_REDIRECTIONS,
    XLHP_IS_CATALOG_REL,
    XLOG_HEAP2_PRUNE_ON_ACCESS,
    XLOG_HEAP2_PRUNE_VACUUM_CLEANUP,
    XLOG_HEAP2_PRUNE_VACUUM_SCAN,
    Heap2PruneFreeze,
)
from ...pg.rmgr.heap_inplace import Heap2LockUpdated
from ...pg.rmgr.heap_logical import Heap2NewCid, Heap2Rewrite
from ...pg.tuple import (
    HEAP_HOT_UPDATED,
    HEAP_KEYS_UPDATED,
    HEAP_XMAX_BITS,
    HEAP_XMAX_INVALID,
    HEAP_XMIN_FROZEN,
    HeapTupleHeader,
)
from ...pg.version import Flavour
from ...pg.visibilitymap import (
    VISIBILITYMAP_ALL_FROZEN,
    VISIBILITYMAP_ALL_VISIBLE,
    VISIBILITYMAP_XLOG_CATALOG_REL,
    map_block,
)
from ...pg.xlogrecord import make_block
from ..block import Block
from ..tags import MAX_U32
from .heap import has_tuples, payload, tuple_offset
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]


def _multi_insert(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """MULTI_INSERT of 1-3 tuples at the offsets PageAddItem would choose. Neon PG14/15 log
    a t_cid per tuple, Neon PG16/17 (rmgr 134) maybe one for the record."""
    if b.insert_offsets(1)[0] > MAX_HEAP_TUPLES_PER_PAGE:
        return None
    per_tuple = b.fl is Flavour.NEON and b.v <= 15
    n = draw(st.integers(1, 3))
    tuples = []
    room = b.room()
    for _ in range(n):
        data = payload(draw, max_tuple_size, room - 4)
        if data is None:
            break
        room -= maxalign(24 + len(data)) + 4
        tuples.append(MultiInsertTuple(1, HEAP_XMAX_INVALID, 24, b"\0" + data,
                                       draw(st.integers(0, 100)) if per_tuple else None))
    offsets = tuple(b.insert_offsets(len(tuples)))
    if not tuples or max(offsets) > MAX_HEAP_TUPLES_PER_PAGE:
        return None
    rec_cid = None if per_tuple or b.fl is Flavour.VANILLA else draw(st.none() | st.integers(0, 100))
    body = Heap2MultiInsert(b.all_visible_cleared(), len(tuples), offsets, tuple(tuples), False, rec_cid)
    return Drawn(body, [b.own_block()])


# PostgreSQL 17 prune/freeze records: which part each HAS_* flag announces
_XLHP_PART_FLAGS = (
    (XLHP_HAS_FREEZE_PLANS, "plans"),
    (XLHP_HAS_REDIRECTIONS, "redirected"),
    (XLHP_HAS_DEAD_ITEMS, "dead"),
    (XLHP_HAS_NOW_UNUSED_ITEMS, "unused"),
)


def _prune17(draw: st.DrawFn, op: int, *, cleanup_lock: bool, plans: tuple[FreezePlan, ...] = (),
             redirected: tuple[tuple[int, int], ...] = (), dead: tuple[int, ...] = (),
             unused: tuple[int, ...] = ()) -> Heap2PruneFreeze:
    """A PG17 PRUNE_* record; flags follow ``log_heap_prune_and_freeze``: one HAS_* bit per
    non-empty part, CLEANUP_LOCK when the caller held one, a conflict horizon only when
    drawn valid, IS_CATALOG_REL drawn (shrinks to unset)."""
    parts = {"plans": plans, "redirected": redirected, "dead": dead, "unused": unused}
    flags = sum(bit for bit, name in _XLHP_PART_FLAGS if parts[name])
    if cleanup_lock:
        flags |= XLHP_CLEANUP_LOCK
    if draw(st.booleans()):
        flags |= XLHP_IS_CATALOG_REL
    conflict = None if op == XLOG_HEAP2_PRUNE_VACUUM_CLEANUP else draw(st.none() | st.integers(3, MAX_U32))
    if conflict is not None:
        flags |= XLHP_HAS_CONFLICT_HORIZON
    return Heap2PruneFreeze(op, PRUNE_REASONS[op], flags, conflict, plans, redirected, dead, unused)


def _freeze_actions(draw: st.DrawFn, p: Page, offs: Sequence[int]) -> list[tuple[int, int, int, int, int]]:
    """What ``heap_prepare_freeze_tuple`` would decide for the tuples at ``offs``, as
    (offset, xmax, infomask2, infomask, frzflags): xmin frozen (HEAP_XMIN_FROZEN; PostgreSQL
    9.4+ keeps t_xmin itself), and, when drawn, xmax removed too (xmax 0, HEAP_XMAX_INVALID,
    no HOT_UPDATED / KEYS_UPDATED); otherwise the tuple's own xmax is kept."""
    out = []
    for off in offs:
        item = p.item(off)
        head = HeapTupleHeader.unpack(item)
        infomask, infomask2, xmax = head.infomask | HEAP_XMIN_FROZEN, head.infomask2, head.xmax
        if draw(st.booleans()):
            xmax = 0
            infomask = (infomask & ~HEAP_XMAX_BITS) | HEAP_XMAX_INVALID
            infomask2 &= ~(HEAP_HOT_UPDATED | HEAP_KEYS_UPDATED)
        out.append((off, xmax, infomask2, infomask, 0))
    return out


def _freeze_plans(actions: Sequence[tuple[int, int, int, int, int]]) -> tuple[FreezePlan, ...]:
    """PG16+ deduplicated freeze plans, as ``heap_log_freeze_plan`` builds them: tuples with
    identical (xmax, infomask2, infomask, frzflags) share one plan, plans in that key's
    order, offsets ascending within a plan."""
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for off, xmax, m2, m, frz in actions:
        groups.setdefault((xmax, m2, m, frz), []).append(off)
    return tuple(FreezePlan(xmax, m2, m, frz, tuple(sorted(offs)))
                 for (xmax, m2, m, frz), offs in sorted(groups.items()))


def _draw_offsets(draw: st.DrawFn, candidates: Sequence[int], max_size: int = 4) -> list[int]:
    """1..``max_size`` distinct offsets among ``candidates`` (non-empty), ascending."""
    return sorted(draw(st.lists(st.sampled_from(tuple(candidates)), min_size=1,
                                max_size=min(max_size, len(candidates)), unique=True)))


def _visible(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VISIBLE: reference 0 is the visibility-map page covering this heap block, reference 1
    the heap page itself (the requested block), which redo marks PD_ALL_VISIBLE."""
    tag = b.tag
    if tag.rel.forknum == VISIBILITYMAP_FORKNUM:
        return None  # the VM block reference could then be the requested block itself
    flags = draw(st.sampled_from((VISIBILITYMAP_ALL_VISIBLE,
                                  VISIBILITYMAP_ALL_VISIBLE | VISIBILITYMAP_ALL_FROZEN)))
    if b.v >= 16 and draw(st.booleans()):
        flags |= VISIBILITYMAP_XLOG_CATALOG_REL
    vm = make_block(0, b.rel3, map_block(tag.blknum), forknum=VISIBILITYMAP_FORKNUM)
    heap = make_block(1, b.rel3, tag.blknum, forknum=tag.rel.forknum)
    return Drawn(Heap2Visible(draw(st.integers(0, MAX_U32)), flags), [vm, heap])


def _vacuum(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM (PG14-16) / PRUNE_VACUUM_CLEANUP without a cleanup lock (PG17): some LP_DEAD
    line pointers become unused."""
    dead = b.dead_offsets()
    if not dead:
        return None
    unused = tuple(_draw_offsets(draw, dead, max_size=8))
    if b.v >= 17:
        body = _prune17(draw, XLOG_HEAP2_PRUNE_VACUUM_CLEANUP, cleanup_lock=False, unused=unused)
        return Drawn(body, [b.own_block()])
    return Drawn(Heap2Vacuum(len(unused), unused), [b.own_block()])


def _freeze(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """FREEZE_PAGE (PG14/15 per tuple, PG16 plans) / PRUNE_VACUUM_SCAN with freeze plans only
    (PG17), freezing some existing LP_NORMAL tuples."""
    normals = b.normal_offsets()
    if not normals:
        return None
    v = b.v
    cutoff = draw(st.integers(0, MAX_U32))
    actions = _freeze_actions(draw, b.view(), _draw_offsets(draw, normals))
    if v >= 17:
        return Drawn(_prune17(draw, XLOG_HEAP2_PRUNE_VACUUM_SCAN, cleanup_lock=True,
                              plans=_freeze_plans(actions)), [b.own_block()])
    if v == 16:
        plans = _freeze_plans(actions)
        catalog = draw(st.booleans())
        return Drawn(Heap2FreezePage(cutoff, len(plans), plans=plans, is_catalog_rel=catalog),
                     [b.own_block()])
    tuples = tuple(FreezeTuple(xmax, off, m2, m, frz) for off, xmax, m2, m, frz in actions)
    return Drawn(Heap2FreezePage(cutoff, len(tuples), tuples=tuples), [b.own_block()])


def prune_candidates(b: Block) -> list[int]:
    """Line pointers a prune may name directly: tuples that are not the member a redirect
    points at (that one goes with its chain), and the redirects (a chain's root)."""
    redirects = b.redirects()
    targets = set(redirects.values())
    return sorted([off for off in b.normal_offsets() if off not in targets] + list(redirects))


def _prune(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """PRUNE (PG14-16) / PRUNE_ON_ACCESS or PRUNE_VACUUM_SCAN with a cleanup lock (PG17).

    Invariants (those ``heap_page_prune_execute`` asserts in PostgreSQL's debug builds):

    * every offset is named once; a tuple named becomes a redirect, dead or unused;
    * a redirect points at an LP_NORMAL tuple no part of the record names, and no two
      redirects share a target, so after the record every redirect on the page points at a
      tuple (``page_verify_redirects``);
    * an existing redirect (a pruned chain's root) either becomes dead, its chain's tuple
      unused with it, or moves on to another surviving tuple, its old tuple unused.

    PG17's VACUUM_SCAN may also freeze tuples that survive."""
    candidates = prune_candidates(b)
    if not candidates:
        return None
    v = b.v
    redirects = b.redirects()
    horizon = draw(st.integers(0, MAX_U32))
    picked = _draw_offsets(draw, candidates)
    targets = set(redirects.values())
    # tuples a new redirect may point at: not named, not already some redirect's target
    free_targets = [off for off in b.normal_offsets() if off not in picked and off not in targets]
    redirected: list[tuple[int, int]] = []
    dead: list[int] = []
    unused: list[int] = []
    for off in picked:
        action = draw(st.sampled_from(("dead", "unused", "redirect")))
        if action == "redirect" and free_targets:
            # a HOT chain's root now points at a surviving (heap-only) member of the chain
            to = free_targets.pop(draw(st.integers(0, len(free_targets) - 1)))
            redirected.append((off, to))
            if off in redirects:
                unused.append(redirects[off])  # the chain's old first member is gone
        elif action == "unused" and off not in redirects:
            unused.append(off)
        else:
            dead.append(off)
            if off in redirects:
                unused.append(redirects[off])  # the whole chain is dead
    survivors = [off for off in b.normal_offsets() if off not in unused and off not in dead
                 and off not in (frm for frm, _ in redirected)]
    if v >= 17:
        op = draw(st.sampled_from((XLOG_HEAP2_PRUNE_ON_ACCESS, XLOG_HEAP2_PRUNE_VACUUM_SCAN)))
        plans: tuple[FreezePlan, ...] = ()
        if op == XLOG_HEAP2_PRUNE_VACUUM_SCAN and survivors and draw(st.booleans()):
            # VACUUM's first pass prunes and freezes what survives in one record
            plans = _freeze_plans(_freeze_actions(draw, b.view(), _draw_offsets(draw, survivors)))
        return Drawn(_prune17(draw, op, cleanup_lock=True, plans=plans, redirected=tuple(redirected),
                              dead=tuple(dead), unused=tuple(sorted(unused))), [b.own_block()])
    catalog = v == 16 and draw(st.booleans())
    return Drawn(Heap2Prune(horizon, len(redirected), len(dead), tuple(redirected), tuple(dead),
                            tuple(sorted(unused)), is_catalog_rel=catalog), [b.own_block()])


def _has_dead(b: Block) -> bool:
    return bool(b.dead_offsets())


def _not_a_vm_block(b: Block) -> bool:
    # the VM block reference of a VISIBLE record could then be the requested block itself
    return b.tag.rel.forknum != VISIBILITYMAP_FORKNUM


def _lock_updated(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """LOCK_UPDATED: a lock on a later version of an updated row (xmax and lock bits; maybe
    clearing the all-frozen bit of the visibility map, another block)."""
    off = tuple_offset(draw, b)
    if off is None:
        return None
    infobits = draw(st.sampled_from((0x08, 0x0A, 0x02 | 0x04, 0x01, 0x01 | 0x08 | 0x10)))
    body = Heap2LockUpdated(draw(st.integers(0, MAX_U32)), off, infobits, draw(st.integers(0, 1)))
    return Drawn(body, [b.own_block()])


def _new_cid(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """NEW_CID: the command ids of a catalog tuple change (logical decoding): no block."""
    tag = b.tag
    return Drawn(Heap2NewCid(draw(st.integers(0, MAX_U32)), draw(st.integers(0, 100)), draw(st.integers(0, 100)),
                             draw(st.integers(0, 100)), b.rel3, (tag.blknum, draw(st.integers(1, 50)))), [])


def _rewrite(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """REWRITE: logical-rewrite mappings of a table rewrite (36 bytes each): no block."""
    n = draw(st.integers(0, 2))
    body = Heap2Rewrite(draw(st.integers(0, MAX_U32)), b.tag.rel.dbnode, b.tag.rel.relnode,
                        draw(st.integers(0, 1 << 20)), n, draw(st.integers(0, 1 << 40)),
                        draw(st.binary(min_size=36 * n, max_size=36 * n)))
    return Drawn(body, [])


KINDS = (
    RecordKind("heap_multi_insert", 90, _multi_insert, on="heap"),
    RecordKind("heap2_vacuum", 120, _vacuum, on="heap", applies=_has_dead, favoured=_has_dead),
    RecordKind("heap2_visible", 130, _visible, on="heap", applies=_not_a_vm_block),
    RecordKind("heap2_freeze", 140, _freeze, on="heap", applies=has_tuples),
    RecordKind("heap2_prune", 150, _prune, on="heap", applies=lambda b: bool(prune_candidates(b))),
    RecordKind("heap2_new_cid", 186, _new_cid, on="heap"),
    RecordKind("heap2_rewrite", 187, _rewrite, on="heap"),
    RecordKind("heap2_lock_updated", 188, _lock_updated, on="heap", applies=has_tuples),
)
"""The heap2 record kinds."""
