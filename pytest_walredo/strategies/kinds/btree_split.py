"""Drawers for B-tree page splits, from each of the blocks a split touches: ``btree_split``
(this page is the original, left half), ``btree_split_right`` (the new right half),
``btree_split_next`` (the old right sibling) and ``btree_finish_split`` (the child whose split
the parent level's new downlink completes: INSERT_UPPER, an internal split or NEWROOT).

Splits are drawn the way nbtree writes them: at least one data item stays on the left, the
left page's new high key is the right half's first key (as a pivot; on internal pages the
first right downlink itself, which keeps no key on the right page), the right half carries the
old high key, and a new item on a leaf may split a posting list of the left half.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.btree_page import BTP_INCOMPLETE_SPLIT, BTP_LEAF
from ...pg.btree_posting import downlink as downlink_of
from ...pg.btree_posting import form_posting, heap_tids, is_posting, swap_posting
from ...pg.rmgr.btree import XLOG_BTREE_INSERT_UPPER, BtreeInsert, BtreeMetadata, BtreeNewroot, BtreeSplit
from ...pg.xlogrecord import Compression, ImageRef
from ..block import Block, other_block
from ..pages import btree_full_leaf_pages, btree_leaf_pages, downlink, index_tuple
from .btree import btree_opaque, data_items, gap_in, is_live, ref, tuple_key
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]


def _pivot(key: bytes) -> bytes:
    """A high key: the key as a pivot tuple (no heap TID)."""
    return downlink(0, key)


def _area(tuples: list[bytes]) -> bytes:
    """A page's tuple area as splits and new roots log it: highest item number first."""
    return b"".join(reversed(tuples))


def _split(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """SPLIT_L or SPLIT_R with this page as the original (left) page: the data items from
    ``firstrightoff`` on go right, the new item goes left (SPLIT_L) or right (SPLIT_R) at
    ``newitemoff``; on a leaf the new item may split a posting list of the left half
    (``postingoff``). The left page's new high key is the right half's first key; the right
    half (reference 1, WILL_INIT) keeps the old high key; reference 2 is the old right sibling,
    reference 3 (internal splits) the child whose split this completes."""
    op = btree_opaque(b)
    if op is None or not is_live(b):
        return None
    tag = b.tag
    isleaf = bool(op.flags & BTP_LEAF)
    items = data_items(b)
    if len(items) < 2:
        return None
    fdk, maxoff = items[0][0], items[-1][0]
    firstright = draw(st.integers(fdk + 1, maxoff))
    onleft = draw(st.booleans())
    by_off = dict(items)
    postingoff = 0
    posting_cands = [o for o, t in items if isleaf and o < firstright and is_posting(t) and gap_in(heap_tids(t))]
    use_posting = bool(posting_cands) and draw(st.booleans())
    if use_posting:
        poff = draw(st.sampled_from(posting_cands))
        tids = heap_tids(by_off[poff])
        postingoff = draw(st.sampled_from(gap_in(tids)))
        newtid = (tids[postingoff - 1][0], tids[postingoff - 1][1] + 1)
        newitem = form_posting(by_off[poff], [newtid])  # the original new item: key + one TID
        newitemoff = poff + 1
        if not onleft:
            firstright = newitemoff  # the posting list ends the left half, the new item starts the right
    else:
        newitemoff = draw(st.integers(fdk, firstright) if onleft else st.integers(firstright, maxoff + 1))
        neighbour = by_off.get(newitemoff - 1) or by_off[newitemoff]
        if isleaf:
            newitem = index_tuple(tuple_key(neighbour), draw(st.integers(0, 100)), draw(st.integers(1, 50)))
        else:
            newitem = downlink(other_block(draw, (tag.blknum,), low=1), tuple_key(neighbour))
    final = newitem
    left = [t for o, t in items if o < firstright]
    if postingoff:
        nposting, final = swap_posting(newitem, by_off[newitemoff - 1], postingoff)
        left[newitemoff - 1 - fdk] = nposting
    right = [t for o, t in items if o >= firstright]
    if onleft:
        left.insert(newitemoff - fdk, final)
    else:
        right.insert(newitemoff - firstright, final)
    if not right:
        return None
    if isleaf:
        hikey = _pivot(tuple_key(right[0]))
    else:  # the first right downlink becomes the high key; on the right page it has no key
        hikey = right[0]
        right[0] = downlink(downlink_of(right[0]), b"")
    if op.next:
        right.insert(0, b.view().item(1))  # the old high key is the right half's high key
    right_blk = other_block(draw, (tag.blknum,), low=1)
    blocks = [b.own_block(), ref(1, b, right_blk, will_init=True)]
    if op.next:
        nxt = op.next if op.next not in (tag.blknum, right_blk) else other_block(draw, (tag.blknum, right_blk), 1)
        blocks.append(ref(2, b, nxt))
    if not isleaf:
        blocks.append(ref(3, b, other_block(draw, (tag.blknum, right_blk), low=1)))
    logged = newitem if (onleft or postingoff) else b""
    body = BtreeSplit(0 if isleaf else op.level, firstright, newitemoff, postingoff, onleft, logged, hikey,
                      _area(right))
    return Drawn(body, blocks)


def _right_half(draw: st.DrawFn, level: int, high_key: bool) -> list[bytes]:
    """The tuples of a split's new right page: ascending keys; an internal page's first data
    item has no key; maybe a high key above every key first."""
    n = draw(st.integers(1, 6))
    start = draw(st.integers(0, 1 << 20))
    keys = [(start + i).to_bytes(8, "big") for i in range(n)]
    if level == 0:
        out = [index_tuple(k, 1, i + 1) for i, k in enumerate(keys)]
    else:
        out = [downlink(10 + i, b"" if i == 0 else k) for i, k in enumerate(keys)]
    if high_key:
        out.insert(0, _pivot((start + n).to_bytes(8, "big")))
    return out


def _split_right(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """A split seen from the new right page (reference 1, WILL_INIT): redo builds it from the
    logged tuples. The original page (reference 0) may carry a full-page image (drawn,
    maybe compressed, with a drawn vacuum cycle id: Neon's redo copies that cycle id to the
    right page); else block 0 logs the left high key (and the new item on SPLIT_L)."""
    tag = b.tag
    level = draw(st.integers(0, 2))
    nxt = draw(st.none() | st.integers(1, 1 << 16).filter(lambda n: n != tag.blknum))
    tuples = _right_half(draw, level, nxt is not None)
    orig = other_block(draw, (tag.blknum,), low=1)
    onleft = draw(st.booleans())
    image = None
    if draw(st.booleans()):
        comps = (Compression.NONE, Compression.PGLZ) if b.v == 14 else tuple(Compression)
        page = draw(btree_full_leaf_pages() | btree_leaf_pages())
        image = ImageRef.from_page(page, b.v, compression=draw(st.sampled_from(comps)))
    logged_new = b"" if image is not None or not onleft else index_tuple(b"\0" * 8, 2, 1)
    hikey = b"" if image is not None else _pivot(tuple_key(tuples[1 if nxt is not None else 0]) or b"\0")
    body = BtreeSplit(level, draw(st.integers(2, 300)), draw(st.integers(1, 300)), 0, onleft, logged_new,
                      hikey, _area(tuples))
    blocks = [ref(0, b, orig, image=image), b.own_block(1, will_init=True)]
    if nxt is not None:
        blocks.append(ref(2, b, nxt))
    if level:
        blocks.append(ref(3, b, other_block(draw, (tag.blknum, orig), low=1)))
    return Drawn(body, blocks, "btree")


def _split_next(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """A split seen from the old right sibling (reference 2): redo points its prev link at
    the new right page."""
    if not is_live(b):
        return None
    tag = b.tag
    orig = other_block(draw, (tag.blknum,), low=1)
    right_blk = other_block(draw, (tag.blknum, orig), low=1)
    tuples = _right_half(draw, 0, True)
    body = BtreeSplit(0, 2, 2, 0, False, b"", _pivot(tuple_key(tuples[1])), _area(tuples))
    return Drawn(body, [ref(0, b, orig), ref(1, b, right_blk, will_init=True), b.own_block(2)])


def _incomplete_split(b: Block) -> bool:
    op = btree_opaque(b)
    return op is not None and bool(op.flags & BTP_INCOMPLETE_SPLIT)


def _finish_split(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The parent level completes this page's split: INSERT_UPPER of the downlink to its right
    half (this page is reference 1), an internal page's split carrying that downlink (this
    page is reference 3) or, when this page was the root, NEWROOT above it (reference 1);
    redo clears this page's INCOMPLETE_SPLIT flag."""
    op = btree_opaque(b)
    if op is None:
        return None
    tag = b.tag
    parent = other_block(draw, (tag.blknum,), low=1)
    right_blk = other_block(draw, (tag.blknum, parent), low=1)
    key = draw(st.binary(max_size=16))
    how = draw(st.sampled_from(("insert_upper", "split", "newroot") if tag.blknum else ("insert_upper", "split")))
    if how == "insert_upper":
        body: BtreeInsert | BtreeSplit | BtreeNewroot = BtreeInsert(
            draw(st.integers(1, 40)), downlink(right_blk, key), XLOG_BTREE_INSERT_UPPER)
        return Drawn(body, [ref(0, b, parent), b.own_block(1)])
    if how == "split":
        tuples = _right_half(draw, op.level + 1, False)
        body = BtreeSplit(op.level + 1, 3, 2, 0, True, downlink(right_blk, key), _pivot(key), _area(tuples))
        return Drawn(body, [ref(0, b, parent), ref(1, b, right_blk, will_init=True), b.own_block(3)])
    meta = BtreeMetadata(4, parent, op.level + 1, parent, op.level + 1, 0, True)
    area = downlink(right_blk, key) + downlink(tag.blknum, b"")
    body = BtreeNewroot(parent, op.level + 1, area, meta)
    return Drawn(body, [ref(0, b, parent, will_init=True), b.own_block(1), ref(2, b, 0, will_init=True)])


KINDS = (
    RecordKind("btree_split", 210, _split, on="btree", applies=lambda b: is_live(b) and len(data_items(b)) >= 2),
    RecordKind("btree_split_right", 220, _split_right, on=None),
    RecordKind("btree_split_next", 230, _split_next, on="btree", applies=is_live),
    RecordKind("btree_finish_split", 240, _finish_split, on="btree", applies=_incomplete_split,
               favoured=_incomplete_split),
)
"""The btree split kinds."""
