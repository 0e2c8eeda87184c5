"""Drawers for B-tree records that remove items or pages: VACUUM and DELETE (deleted items and
shrunk posting lists), page deletion in its two steps (``btree_mark_halfdead`` on the leaf,
``btree_halfdead_parent`` on the parent losing the downlink; ``btree_unlink`` on the target,
``btree_unlink_sibling`` on a sibling whose link skips it, ``btree_unlink_leaf`` on the
half-dead leaf a parent's deletion rewrites), META_CLEANUP on the metapage and REUSE_PAGE
(which names no block: the page must not change).

A half-dead page is favoured for ``btree_unlink``, so that sequences delete pages in order:
half-dead first, then unlinked.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.btree_page import BTP_HALF_DEAD, BTP_META
from ...pg.btree_posting import heap_tids, is_posting
from ...pg.rmgr.btree import BtreeMetadata
from ...pg.rmgr.btree_pagedel import BtreeMarkPageHalfdead, BtreeMetaCleanup, BtreeReusePage, BtreeUnlinkPage
from ...pg.rmgr.btree_vacuum import BtreeDelete, BtreeUpdate, BtreeVacuum
from ..block import Block, other_block
from ..tags import MAX_U32
from .btree import btree_opaque, data_items, is_internal, is_leaf, is_live, ref
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]

INVALID_BLOCK = 0xFFFFFFFF


def _has_items(b: Block) -> bool:
    return is_leaf(b) and is_live(b) and bool(data_items(b))


def _removal(draw: st.DrawFn, b: Block) -> tuple[tuple[int, ...], tuple[BtreeUpdate, ...]] | None:
    """Leaf items to delete (ascending offsets) and posting lists to shrink (positions of the
    TIDs they lose: never all of them); None when the draw removes nothing."""
    items = data_items(b)
    offs = [o for o, _t in items]
    deleted = tuple(sorted(draw(st.lists(st.sampled_from(offs), unique=True, max_size=len(offs)))))
    updates = []
    for off, t in items:
        if off in deleted or not is_posting(t) or not draw(st.booleans()):
            continue
        n = len(heap_tids(t))
        lose = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1, unique=True))
        updates.append(BtreeUpdate(off, tuple(sorted(lose))))
    if not deleted and not updates:
        return None
    return deleted, tuple(updates)


def _vacuum(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM of a leaf: deleted items and shrunk posting lists."""
    removal = _removal(draw, b)
    if removal is None:
        return None
    deleted, updates = removal
    return Drawn(BtreeVacuum(len(deleted), len(updates), deleted, updates), [b.own_block()])


def _delete(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """DELETE (simple or bottom-up deletion) of a leaf: the same payload as VACUUM plus the
    conflict horizon, and from PostgreSQL 16 on isCatalogRel."""
    removal = _removal(draw, b)
    if removal is None:
        return None
    deleted, updates = removal
    body = BtreeDelete(draw(st.integers(0, MAX_U32)), len(deleted), len(updates), deleted, updates, True,
                       b.v >= 16 and draw(st.booleans()))
    return Drawn(body, [b.own_block()])


def _mark_halfdead(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """MARK_PAGE_HALFDEAD with this leaf as reference 0 (WILL_INIT): it becomes an empty
    half-dead page keeping its sibling links, whose high key points at the top parent
    (InvalidBlockNumber when the leaf itself is the top of the deleted subtree)."""
    op = btree_opaque(b)
    if op is None or not is_leaf(b) or not is_live(b):
        return None
    tag = b.tag
    right = op.next or other_block(draw, (tag.blknum,), low=1)
    parent = other_block(draw, (tag.blknum,), low=1)
    top = draw(st.sampled_from((INVALID_BLOCK, parent)))
    body = BtreeMarkPageHalfdead(draw(st.integers(1, 40)), tag.blknum, op.prev, right, top)
    return Drawn(body, [b.own_block(will_init=True), ref(1, b, parent)])


def _parent_pair(b: Block) -> bool:
    """An internal page with two data items in a row (a downlink and the next one)."""
    op = btree_opaque(b)
    return op is not None and is_internal(b) and len(data_items(b)) >= 2


def _halfdead_parent(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """MARK_PAGE_HALFDEAD with this internal page as reference 1: the downlink at
    ``poffset`` takes over the next item's child and the next item goes."""
    op = btree_opaque(b)
    if op is None or not _parent_pair(b):
        return None
    tag = b.tag
    offs = [o for o, _t in data_items(b)]
    poffset = draw(st.sampled_from(offs[:-1]))
    leaf = other_block(draw, (tag.blknum,), low=1)
    body = BtreeMarkPageHalfdead(poffset, leaf, draw(st.integers(0, 1 << 16)), draw(st.integers(1, 1 << 16)),
                                 INVALID_BLOCK)
    return Drawn(body, [ref(0, b, leaf, will_init=True), b.own_block(1)])


def _half_dead(b: Block) -> bool:
    op = btree_opaque(b)
    return op is not None and bool(op.flags & BTP_HALF_DEAD)


def _meta(draw: st.DrawFn, root: int) -> BtreeMetadata:
    level = draw(st.integers(0, 3))
    return BtreeMetadata(4, root, level, root, level, draw(st.integers(0, 100)), draw(st.booleans()))


def _unlink(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """UNLINK_PAGE(_META) with this page as the target (reference 0, WILL_INIT): it becomes a
    deleted page (its safexid the page's content) between its siblings; an internal target
    also rewrites the half-dead leaf below it (reference 3); UNLINK_PAGE_META also rewrites
    the metapage (reference 4)."""
    op = btree_opaque(b)
    if op is None or op.flags & BTP_META:
        return None
    tag = b.tag
    avoid = (tag.blknum,)
    left = op.prev if op.prev != tag.blknum else other_block(draw, avoid, low=1)
    right = op.next if op.next not in (0, tag.blknum) else other_block(draw, (tag.blknum, left), low=1)
    level = 0 if is_leaf(b) else op.level
    blocks = [b.own_block(will_init=True)]
    if left:
        blocks.append(ref(1, b, left))
    blocks.append(ref(2, b, right))
    leafleft, leafright, top = left, right, INVALID_BLOCK
    if level > 0 and draw(st.booleans()):
        leaf = other_block(draw, (tag.blknum, left, right), low=1)
        leafleft, leafright = draw(st.integers(0, 1 << 16)), draw(st.integers(1, 1 << 16))
        top = INVALID_BLOCK if level == 1 else draw(st.integers(1, 1 << 16))
        blocks.append(ref(3, b, leaf, will_init=True))
    meta = tag.blknum != 0 and draw(st.booleans())
    if meta:
        blocks.append(ref(4, b, 0, will_init=True))
    body = BtreeUnlinkPage(left, right, level, draw(st.integers(0, (1 << 40))), leafleft, leafright, top,
                           meta, _meta(draw, right) if meta else None)
    return Drawn(body, blocks)


def _unlink_sibling(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """UNLINK_PAGE with this page as the deleted target's left sibling (reference 1: its next
    link skips the target) or right sibling (reference 2: its prev link does)."""
    if not is_live(b):
        return None
    tag = b.tag
    target = other_block(draw, (tag.blknum,), low=1)
    other = other_block(draw, (tag.blknum, target), low=1)
    safexid = draw(st.integers(0, 1 << 40))
    if draw(st.booleans()):  # this page is the left sibling
        body = BtreeUnlinkPage(tag.blknum, other, 0, safexid, tag.blknum, other, INVALID_BLOCK)
        blocks = [ref(0, b, target, will_init=True), b.own_block(1), ref(2, b, other)]
    else:
        body = BtreeUnlinkPage(other, tag.blknum, 0, safexid, other, tag.blknum, INVALID_BLOCK)
        blocks = [ref(0, b, target, will_init=True), ref(1, b, other), b.own_block(2)]
    return Drawn(body, blocks)


def _unlink_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """UNLINK_PAGE of an internal page with this page as the half-dead leaf below it
    (reference 3, WILL_INIT): rebuilt as an empty half-dead leaf whose high key points at
    the next page down the deleted subtree."""
    tag = b.tag
    target = other_block(draw, (tag.blknum,), low=1)
    right = other_block(draw, (tag.blknum, target), low=1)
    level = draw(st.integers(1, 3))
    top = INVALID_BLOCK if level == 1 else other_block(draw, (tag.blknum, target, right), low=1)
    body = BtreeUnlinkPage(0, right, level, draw(st.integers(0, 1 << 40)), draw(st.integers(0, 1 << 16)),
                           draw(st.integers(1, 1 << 16)), top)
    blocks = [ref(0, b, target, will_init=True), ref(2, b, right), b.own_block(3, will_init=True)]
    return Drawn(body, blocks, "btree")


def _meta_cleanup(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """META_CLEANUP on block 0, the metapage (WILL_INIT): rewritten from the logged metadata."""
    if b.tag.blknum != 0:
        return None
    return Drawn(BtreeMetaCleanup(_meta(draw, draw(st.integers(1, 1 << 16)))), [b.own_block(will_init=True)],
                 "btree")


def _reuse_page(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """REUSE_PAGE: a deleted page of this relation is recycled; the record names no block
    (only hot standby acts on it), so no page changes."""
    body = BtreeReusePage(b.rel3, other_block(draw, (b.tag.blknum,), low=1), draw(st.integers(0, 1 << 40)),
                          b.v >= 16 and draw(st.booleans()))
    return Drawn(body, [])


def _any_btree(b: Block) -> bool:
    return btree_opaque(b) is not None


KINDS = (
    RecordKind("btree_vacuum", 250, _vacuum, on="btree", applies=_has_items),
    RecordKind("btree_delete", 260, _delete, on="btree", applies=_has_items),
    RecordKind("btree_mark_halfdead", 270, _mark_halfdead, on="btree", applies=lambda b: is_leaf(b) and is_live(b)),
    RecordKind("btree_halfdead_parent", 280, _halfdead_parent, on="btree", applies=_parent_pair),
    RecordKind("btree_unlink", 290, _unlink, on="btree", applies=_any_btree, favoured=_half_dead),
    RecordKind("btree_unlink_sibling", 300, _unlink_sibling, on="btree", applies=is_live),
    RecordKind("btree_unlink_leaf", 310, _unlink_leaf, on=None),
    RecordKind("btree_meta_cleanup", 320, _meta_cleanup, on=None),
    RecordKind("btree_reuse_page", 330, _reuse_page, on="btree"),
)
"""The btree record kinds that remove items or pages."""
