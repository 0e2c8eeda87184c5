"""Drawers for SP-GiST records seen from a leaf page: a leaf page built by ADD_LEAF (new page)
or as a MOVE_LEAFS destination, then leaf tuples added (appended, over a PLACEHOLDER, over a
DEAD tuple, chained after a head), moved away (MOVE_LEAFS source: a REDIRECT and
PLACEHOLDERs stay), split (PICKSPLIT source), vacuumed (VACUUM_LEAF, VACUUM_ROOT); plus the
helpers :mod:`.spgist_inner` shares (tuples, states, offsets where a tuple may go).

Tuples are drawn as ``spgdoinsert.c`` forms them: MAXALIGNed leaf tuples (state LIVE, size,
nextOffset, heap TID, datum) and inner tuples (nNodes node IndexTuples after an optional
prefix). Offsets are drawn the way ``SpGistPageAddNewItem`` picks them: a PLACEHOLDER, or one
past the end.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.page import Page
from ...pg.rmgr.spgist import SpgAddLeaf, SpgMoveLeafs, SpgPickSplit
from ...pg.rmgr.spgist_vacuum import SpgVacuumLeaf, SpgVacuumRoot
from ...pg.spgist_page import (
    SGDTSIZE,
    SPGIST_DEAD,
    SPGIST_LEAF,
    SPGIST_LIVE,
    SPGIST_PLACEHOLDER,
    SpgOpaque,
    tuple_state,
)
from ...pg.xlogrecord import BlockRef, make_block
from ..block import Block, other_block
from .spec import Drawn, RecordKind

__all__ = [
    "KINDS",
    "leaf_tuple",
    "new_offsets",
    "offsets_in",
    "spg_opaque",
    "spg_ref",
    "states",
]


def spg_opaque(b: Block) -> SpgOpaque | None:
    """The SP-GiST special space of the block's page (None when it holds no SP-GiST page)."""
    if b.page is None or b.kind != "spgist":
        return None
    try:
        return SpgOpaque.read(b.view())
    except ValueError:
        return None


def states(p: Page) -> list[int]:
    """The tuple state of every item, in item order."""
    return [tuple_state(p.item(o)) for o in range(1, p.max_offset() + 1)]


def offsets_in(p: Page, state: int) -> list[int]:
    return [o for o, s in enumerate(states(p), start=1) if s == state]


def _is_leaf(b: Block) -> bool:
    op = spg_opaque(b)
    return op is not None and bool(op.flags & SPGIST_LEAF)


def spg_ref(block_id: int, b: Block, blkno: int, *, will_init: bool = False) -> BlockRef:
    return make_block(block_id, b.rel3, blkno, forknum=b.tag.rel.forknum, will_init=will_init)


def leaf_tuple(draw: st.DrawFn, nxt: int = 0) -> bytes:
    """A live leaf tuple (one drawn number picks size, TID and datum; shrinks to 16 bytes)."""
    k = draw(st.integers(0, 2**32 - 1))
    size = (16, 24, 32)[k % 3]
    return struct.pack("<IHHHH", size << 2, nxt, 0, k % 997, 1 + k % 199) + (k.to_bytes(4, "little") * 5)[: size - 12]


def new_offsets(draw: st.DrawFn, p: Page, sizes: list[int], taken: set[int] | None = None) -> list[int] | None:
    """Where tuples of ``sizes`` go, one after the other (``SpGistPageAddNewItem``): a
    PLACEHOLDER not in ``taken``, or one past the end; None when they do not fit."""
    free = [o for o in offsets_in(p, SPGIST_PLACEHOLDER) if o not in (taken or set())]
    room = p.upper - p.lower
    nxt = p.max_offset() + 1
    out: list[int] = []
    for size in sizes:
        if len(free) > 0 and draw(st.booleans()):
            out.append(free.pop(draw(st.integers(0, len(free) - 1))))
            room -= size - SGDTSIZE
        else:
            out.append(nxt)
            nxt += 1
            room -= size + 4
        if room < 0:
            return None
    return out


def _subset(draw: st.DrawFn, offs: list[int], min_size: int = 1) -> list[int]:
    """Some of ``offs`` in a drawn order (the first one matters: it may become the REDIRECT)."""
    if len(offs) < min_size:
        return []
    return draw(st.permutations(offs))[: draw(st.integers(min_size, len(offs)))]


def _new_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """A leaf page from nothing: ADD_LEAF with newPage (this page block 0, maybe a parent's
    downlink on block 1), or the new destination page of MOVE_LEAFS (block 1)."""
    nulls = draw(st.integers(0, 3)) == 3
    if draw(st.booleans()):
        parent = draw(st.integers(0, 8))
        blocks = [b.own_block(0, will_init=True)]
        if parent:
            blocks.append(spg_ref(1, b, other_block(draw, (b.tag.blknum,))))
        body = SpgAddLeaf(True, nulls, 1, 0, parent, draw(st.integers(0, 3)), leaf_tuple(draw))
        return Drawn(body, blocks, "spgist")
    n = draw(st.integers(1, 4))
    src, parent = other_block(draw, (b.tag.blknum,)), other_block(draw, (b.tag.blknum,))
    todelete = tuple(range(1, n + 1))
    tuples = tuple(leaf_tuple(draw) for _ in range(n + 1))
    body2 = SpgMoveLeafs(n, True, False, nulls, draw(st.integers(1, 8)), draw(st.integers(0, 3)),
                         draw(st.integers(0, 2**32 - 1)), False, todelete, tuple(range(1, n + 2)), tuples)
    return Drawn(body2, [spg_ref(0, b, src), b.own_block(1, will_init=True), spg_ref(2, b, parent)], "spgist")


def _add_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """ADD_LEAF on this leaf page: appended or over a PLACEHOLDER, maybe chained after a live
    head (the new tuple takes the head's old nextOffset), or over a DEAD tuple in place."""
    p = b.view()
    dead = offsets_in(p, SPGIST_DEAD)
    if dead and draw(st.integers(0, 3)) == 0:
        at = draw(st.sampled_from(dead))
        tup = leaf_tuple(draw)
        if len(tup) - SGDTSIZE > b.room():
            return None
        return Drawn(SpgAddLeaf(False, False, at, at, 0, 0, tup), [b.own_block()])
    live = offsets_in(p, SPGIST_LIVE)
    head = draw(st.sampled_from([0, *live]))
    nxt = struct.unpack_from("<H", p.item(head), 4)[0] & 0x3FFF if head else 0
    tup = leaf_tuple(draw, nxt)
    offs = new_offsets(draw, p, [len(tup)])
    if offs is None:
        return None
    return Drawn(SpgAddLeaf(False, False, offs[0], head, 0, 0, tup), [b.own_block()])


def _move_leafs(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """MOVE_LEAFS seen from the source (block 0: live tuples go, the first listed becoming a
    REDIRECT to the last moved tuple, the rest PLACEHOLDERs) or from an existing destination
    (block 1: the tuples go to PLACEHOLDERs or the end)."""
    p = b.view()
    others = [other_block(draw, (b.tag.blknum,)) for _ in range(2)]
    xid = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        todelete = _subset(draw, offsets_in(p, SPGIST_LIVE))
        if not todelete:
            return None
        n = len(todelete) + 1
        toinsert = tuple(range(1, n + 1))
        body = SpgMoveLeafs(len(todelete), False, False, False, 1, 0, xid, False, tuple(todelete), toinsert,
                            tuple(leaf_tuple(draw) for _ in range(n)))
        return Drawn(body, [b.own_block(0), spg_ref(1, b, others[0]), spg_ref(2, b, others[1])])
    nmoves = draw(st.integers(0, 3))
    tuples = [leaf_tuple(draw) for _ in range(nmoves + 1)]
    offs = new_offsets(draw, p, [len(t) for t in tuples])
    if offs is None:
        return None
    body = SpgMoveLeafs(nmoves, False, False, False, 1, 0, xid, False, tuple(range(1, nmoves + 1)), tuple(offs),
                        tuple(tuples))
    return Drawn(body, [spg_ref(0, b, others[0]), b.own_block(1), spg_ref(2, b, others[1])])


def _picksplit(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """PICKSPLIT with this leaf page as the source (block 0): live tuples go (a REDIRECT to the
    new inner tuple, PLACEHOLDERs), then the leaf tuples the split keeps here replace those
    PLACEHOLDERs or go to the end; the others go to a new destination page."""
    p = b.view()
    todelete = _subset(draw, offsets_in(p, SPGIST_LIVE))
    if not todelete:
        return None
    after = Page(p.to_bytes())
    # where the kept tuples may go once the deletions left PLACEHOLDERs (not the REDIRECT)
    for o in todelete[1:]:
        struct.pack_into("<I", after.data, after.item_id(o).off,
                         (struct.unpack_from("<I", after.data, after.item_id(o).off)[0] & ~3) | SPGIST_PLACEHOLDER)
    mine = [leaf_tuple(draw) for _ in range(draw(st.integers(0, len(todelete))))]
    theirs = [leaf_tuple(draw) for _ in range(draw(st.integers(1, 3)))]
    offs = new_offsets(draw, after, [len(t) for t in mine], {todelete[0]})
    if offs is None:
        return None
    inner_blk, dest = other_block(draw, (b.tag.blknum,)), other_block(draw, (b.tag.blknum,))
    tuples = (*mine, *theirs)
    toinsert = (*offs, *range(1, len(theirs) + 1))
    select = bytes([0] * len(mine) + [1] * len(theirs))
    inner = struct.pack("<IHH", 1 << 3, 16, 0) + struct.pack("<HHHH", dest >> 16, dest & 0xFFFF, 1, 8)
    body = SpgPickSplit(False, len(todelete), len(tuples), False, True, draw(st.integers(1, 5)), False, False,
                        False, 1, 0, draw(st.integers(0, 2**32 - 1)), False, tuple(todelete), toinsert, select,
                        inner, tuples)
    blocks = [b.own_block(0), spg_ref(1, b, dest, will_init=True), spg_ref(2, b, inner_blk),
              spg_ref(3, b, other_block(draw, (b.tag.blknum, inner_blk)))]
    return Drawn(body, blocks)


def _vacuum_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM_LEAF: live tuples become DEAD or PLACEHOLDERs; a live tuple moves into another
    item's slot (line pointers swapped, the source then a PLACEHOLDER); chains relinked."""
    p = b.view()
    live = _subset(draw, offsets_in(p, SPGIST_LIVE))
    if not live:
        return None
    cut = draw(st.integers(0, len(live)))
    dead, place = sorted(live[:cut]), sorted(live[cut:])
    rest = [o for o in offsets_in(p, SPGIST_LIVE) if o not in live]
    moves: list[tuple[int, int]] = []
    if len(rest) >= 2 and draw(st.booleans()):
        moves.append((rest[-1], rest[0]))
    keep = [o for o in rest if o not in {m[0] for m in moves}]
    chain = [(o, draw(st.integers(0, p.max_offset()))) for o in keep if draw(st.booleans())]
    body = SpgVacuumLeaf(draw(st.integers(0, 2**32 - 1)), False, tuple(dead), tuple(place),
                         tuple(m[0] for m in moves), tuple(m[1] for m in moves), tuple(c[0] for c in chain),
                         tuple(c[1] for c in chain))
    return Drawn(body, [b.own_block()])


def _leaf_root(b: Block) -> bool:
    """A leaf page as the root is while it is a leaf: live tuples only (nothing ever moved
    off it: a full root leaf splits with PICKSPLIT's isRootSplit)."""
    return _is_leaf(b) and b.view().max_offset() > 0 and set(states(b.view())) == {SPGIST_LIVE}


def _vacuum_root(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM_ROOT: a root that is still a leaf loses some tuples, listed in order."""
    p = b.view()
    if not _leaf_root(b):
        return None
    offs = sorted(_subset(draw, list(range(1, p.max_offset() + 1))))
    return Drawn(SpgVacuumRoot(draw(st.integers(0, 2**32 - 1)), False, tuple(offs)), [b.own_block()])


def _has_live(b: Block) -> bool:
    return _is_leaf(b) and SPGIST_LIVE in states(b.view())


KINDS = (
    RecordKind("spg_new_leaf", 1900, _new_leaf, on=None),
    RecordKind("spg_add_leaf", 1910, _add_leaf, on="spgist", applies=_is_leaf),
    RecordKind("spg_move_leafs", 1920, _move_leafs, on="spgist", applies=_is_leaf),
    RecordKind("spg_picksplit_leaf", 1930, _picksplit, on="spgist", applies=_has_live),
    RecordKind("spg_vacuum_leaf", 1960, _vacuum_leaf, on="spgist", applies=_has_live),
    RecordKind("spg_vacuum_root", 1970, _vacuum_root, on="spgist", applies=_leaf_root),
)
"""The SP-GiST record kinds seen from a leaf page (inner pages: :mod:`.spgist_inner`)."""
