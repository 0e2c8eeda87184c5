"""Drawers for SP-GiST records seen from an inner page: an inner page built by a root
PICKSPLIT (the new inner tuple on a re-initialized page) or as SPLIT_TUPLE's / ADD_NODE's new
page, then inner tuples replaced in place (ADD_NODE, SPLIT_TUPLE's prefix), moved away
(ADD_NODE: a REDIRECT stays) or added (a PICKSPLIT's inner tuple, a moved one, a postfix),
downlinks updated (this page the parent of ADD_LEAF, MOVE_LEAFS, ADD_NODE or PICKSPLIT), and
VACUUM_REDIRECT (on any SP-GiST page holding REDIRECTs).
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.page import Page
from ...pg.rmgr.spgist import SpgAddLeaf, SpgAddNode, SpgMoveLeafs, SpgPickSplit, SpgSplitTuple
from ...pg.rmgr.spgist_vacuum import SpgVacuumRedirect
from ...pg.spgist_page import SGDTSIZE, SPGIST_LEAF, SPGIST_LIVE, SPGIST_PLACEHOLDER, SPGIST_REDIRECT
from ..block import Block, other_block
from .spec import Drawn, RecordKind
from .spgist import leaf_tuple, new_offsets, offsets_in, spg_opaque, spg_ref, states

__all__ = ["KINDS", "inner_nodes", "inner_tuple"]


def inner_tuple(draw: st.DrawFn, blkno: int = 0xFFFFFFFF, nnodes: int | None = None) -> bytes:
    """A live inner tuple of 1-4 nodes (each an 8-byte IndexTuple pointing at ``blkno``, or
    nowhere), maybe with an 8-byte prefix."""
    n = draw(st.integers(1, 4)) if nnodes is None else nnodes
    prefix = b"pfx" + bytes(5) if draw(st.booleans()) else b""
    nodes = b"".join(struct.pack("<HHHH", blkno >> 16, blkno & 0xFFFF, 0, 8) for _ in range(n))
    size = 8 + len(prefix) + len(nodes)
    return struct.pack("<IHH", (n << 3) | (len(prefix) << 16), size, 0) + prefix + nodes


def inner_nodes(item: bytes) -> int:
    """nNodes of a live inner tuple."""
    return int(struct.unpack_from("<I", item)[0] >> 3) & 0x1FFF


def _is_inner(b: Block) -> bool:
    op = spg_opaque(b)
    return op is not None and not op.flags & SPGIST_LEAF


def _live_inner(p: Page) -> list[int]:
    return [o for o in offsets_in(p, SPGIST_LIVE) if len(p.item(o)) >= 16 and inner_nodes(p.item(o))]


def _new_inner(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """An inner page from nothing: a root PICKSPLIT's re-initialized inner page (block 2, the
    leaves going to a new destination page), SPLIT_TUPLE's new postfix page, or ADD_NODE's new
    page (block 1; the old tuple's page is block 0)."""
    me = b.tag.blknum
    other = other_block(draw, (me,))
    shape = draw(st.sampled_from(("picksplit", "split_tuple", "add_node")))
    if shape == "picksplit":
        n = draw(st.integers(1, 4))
        body: SpgPickSplit | SpgSplitTuple | SpgAddNode = SpgPickSplit(
            True, 0, n, False, True, 1, True, False, False, 0, 0, 0, False, (), tuple(range(1, n + 1)),
            bytes([1] * n), inner_tuple(draw, other), tuple(leaf_tuple(draw) for _ in range(n)))
        return Drawn(body, [spg_ref(1, b, other, will_init=True), b.own_block(2, will_init=True)], "spgist")
    if shape == "split_tuple":
        body = SpgSplitTuple(draw(st.integers(1, 8)), 1, True, False, inner_tuple(draw, me, 1), inner_tuple(draw))
        return Drawn(body, [spg_ref(0, b, other), b.own_block(1, will_init=True)], "spgist")
    body = SpgAddNode(draw(st.integers(1, 8)), 1, True, 0, draw(st.integers(1, 8)), 0,
                      draw(st.integers(0, 2**32 - 1)), False, inner_tuple(draw))
    return Drawn(body, [spg_ref(0, b, other), b.own_block(1, will_init=True)], "spgist")


def _replace(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """An inner tuple replaced where it is: ADD_NODE in place (one more node) or SPLIT_TUPLE's
    prefix, its postfix on this page (a PLACEHOLDER or the end) or on another page."""
    p = b.view()
    live = _live_inner(p)
    if not live:
        return None
    at = draw(st.sampled_from(live))
    old = p.item(at)
    if draw(st.booleans()):
        grown = inner_tuple(draw, nnodes=min(inner_nodes(old) + 1, 8))
        if len(grown) - len(old) > b.room():
            return None
        return Drawn(SpgAddNode(at, 0, False, -1, 0, 0, 0, False, grown), [b.own_block()])
    prefix, postfix = inner_tuple(draw, nnodes=1), inner_tuple(draw)
    same = draw(st.booleans())
    if same:
        offs = new_offsets(draw, p, [len(postfix) + len(prefix)])
        if offs is None or len(prefix) - len(old) > b.room():
            return None
        return Drawn(SpgSplitTuple(at, offs[0], False, True, prefix, postfix), [b.own_block()])
    if len(prefix) - len(old) > b.room():
        return None
    return Drawn(SpgSplitTuple(at, 1, False, False, prefix, postfix),
                 [b.own_block(), spg_ref(1, b, other_block(draw, (b.tag.blknum,)))])


def _move_node(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """ADD_NODE moving an inner tuple: from this page (block 0: a REDIRECT to its new place
    stays, maybe the parent's link on this page too) or to it (block 1: a PLACEHOLDER or the
    end)."""
    p = b.view()
    me, other = b.tag.blknum, other_block(draw, (b.tag.blknum,))
    live = _live_inner(p)
    xid = draw(st.integers(0, 2**32 - 1))
    if len(live) > 0 and draw(st.booleans()):
        at = draw(st.sampled_from(live))
        parents = [o for o in live if o != at]
        parent = draw(st.sampled_from(parents)) if len(parents) > 0 and draw(st.booleans()) else 0
        node = draw(st.integers(0, inner_nodes(p.item(parent)) - 1)) if parent else 0
        if SGDTSIZE - len(p.item(at)) > b.room():
            return None
        body = SpgAddNode(at, draw(st.integers(1, 8)), False, 0 if parent else 2, parent or 1, node, xid, False,
                          inner_tuple(draw))
        blocks = [b.own_block(0), spg_ref(1, b, other)]
        if not parent:
            blocks.append(spg_ref(2, b, other_block(draw, (me, other))))
        return Drawn(body, blocks)
    tup = inner_tuple(draw)
    offs = new_offsets(draw, p, [len(tup)])
    if offs is None:
        return None
    body = SpgAddNode(draw(st.integers(1, 8)), offs[0], False, 2, 1, 0, xid, False, tup)
    return Drawn(body, [spg_ref(0, b, other), b.own_block(1), spg_ref(2, b, other_block(draw, (me, other)))])


def _downlink(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """This page is the parent whose node ``nodeI`` gets the new downlink: of ADD_LEAF (block
    1), MOVE_LEAFS (block 2) or a PICKSPLIT whose inner tuple went elsewhere (block 3); or a
    PICKSPLIT's inner tuple lands here (block 2), this page maybe its parent too."""
    p = b.view()
    live = _live_inner(p)
    me = b.tag.blknum
    others = [other_block(draw, (me,)) for _ in range(3)]
    xid = draw(st.integers(0, 2**32 - 1))
    shape = draw(st.sampled_from(("add_leaf", "move_leafs", "picksplit", "inner_here")))
    if shape == "inner_here":
        inner = inner_tuple(draw)
        offs = new_offsets(draw, p, [len(inner)])
        if offs is None:
            return None
        is_parent = bool(live) and draw(st.booleans())
        parent = draw(st.sampled_from(live)) if is_parent else 0
        node = draw(st.integers(0, inner_nodes(p.item(parent)) - 1)) if parent else 0
        body = SpgPickSplit(False, 0, 1, False, False, offs[0], False, False, is_parent, parent, node, xid, False,
                            (), (1,), b"\x01", inner, (leaf_tuple(draw),))
        blocks = [spg_ref(0, b, others[0]), spg_ref(1, b, others[1]), b.own_block(2)]
        if not is_parent:
            blocks.append(spg_ref(3, b, others[2]))
        return Drawn(body, blocks)
    if not live:
        return None
    parent = draw(st.sampled_from(live))
    node = draw(st.integers(0, inner_nodes(p.item(parent)) - 1))
    off = draw(st.integers(1, 50))
    if shape == "add_leaf":
        return Drawn(SpgAddLeaf(False, False, off, 0, parent, node, leaf_tuple(draw)),
                     [spg_ref(0, b, others[0]), b.own_block(1)])
    if shape == "move_leafs":
        body2 = SpgMoveLeafs(1, False, False, False, parent, node, xid, False, (1,), (off, off + 1),
                             (leaf_tuple(draw), leaf_tuple(draw)))
        return Drawn(body2, [spg_ref(0, b, others[0]), spg_ref(1, b, others[1]), b.own_block(2)])
    body3 = SpgPickSplit(False, 0, 1, False, False, off, False, False, False, parent, node, xid, False, (), (1,),
                         b"\x01", inner_tuple(draw), (leaf_tuple(draw),))
    return Drawn(body3, [spg_ref(0, b, others[0]), spg_ref(1, b, others[1]), spg_ref(2, b, others[2]),
                         b.own_block(3)])


def _vacuum_redirect(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM_REDIRECT: some REDIRECTs become PLACEHOLDERs; when the page then ends in
    PLACEHOLDERs, maybe from the first of them on every item goes."""
    p = b.view()
    redirects = offsets_in(p, SPGIST_REDIRECT)
    if not redirects:
        return None
    chosen = sorted(draw(st.permutations(redirects))[: draw(st.integers(1, len(redirects)))])
    after = [SPGIST_PLACEHOLDER if o in chosen else s for o, s in enumerate(states(p), start=1)]
    first = len(after)
    while first >= 1 and after[first - 1] == SPGIST_PLACEHOLDER:
        first -= 1
    trailing = first + 1 if first < len(after) and draw(st.booleans()) else 0
    body = SpgVacuumRedirect(trailing, draw(st.integers(0, 2**32 - 1)), tuple(chosen), b.v >= 16 and draw(st.booleans()))
    return Drawn(body, [b.own_block()])


KINDS = (
    RecordKind("spg_new_inner", 1905, _new_inner, on=None),
    RecordKind("spg_replace_inner", 1940, _replace, on="spgist", applies=lambda b: _is_inner(b) and bool(
        _live_inner(b.view()))),
    RecordKind("spg_move_node", 1945, _move_node, on="spgist", applies=_is_inner),
    RecordKind("spg_downlink", 1950, _downlink, on="spgist", applies=_is_inner),
    RecordKind("spg_vacuum_redirect", 1980, _vacuum_redirect, on="spgist",
               applies=lambda b: bool(offsets_in(b.view(), SPGIST_REDIRECT)) if spg_opaque(b) else False,
               favoured=lambda b: spg_opaque(b) is not None and bool(offsets_in(b.view(), SPGIST_REDIRECT))),
)
"""The SP-GiST record kinds seen from an inner page, and VACUUM_REDIRECT."""
