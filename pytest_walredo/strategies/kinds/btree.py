"""Drawers for B-tree records that add tuples: INSERT_LEAF on a leaf; NEWROOT at level 0 (an
empty leaf root) or 1-3 (a root with two downlinks); ``btree_insert_upper``: INSERT_UPPER or
INSERT_META on an internal page (a new downlink after the first data key; the split's left
child and the metapage are other block references); page splits from each of the blocks a
split touches (``btree_split``: this page is the left half, ``btree_split_right``: the new
right half, ``btree_split_next``: the old right sibling, ``btree_finish_split``: the child whose
split the parent's new downlink completes); INSERT_POST (a posting-list split) and DEDUP.

Records are drawn the way nbtree writes them: a split keeps at least one data item on the
left, its high key is the right half's first key (as a pivot), the right half carries the old
high key; posting-list splits put the new TID strictly inside a posting list; deduplication
merges runs of equal keys. The page-removal kinds are in :mod:`.btree_delete`.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.btree_page import (
    BTP_DELETED,
    BTP_HALF_DEAD,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTPageOpaque,
)
from ...pg.btree_posting import (
    BT_MAX_ITEM_SIZE,
    TID_SIZE,
    Tid,
    form_posting,
    heap_tids,
    is_posting,
    posting_offset,
    swap_posting,
    tuple_size,
)
from ...pg.btree_posting import (
    downlink as downlink_of,
)
from ...pg.constants import maxalign
from ...pg.rmgr.btree import (
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_POST,
    XLOG_BTREE_INSERT_UPPER,
    BtreeDedup,
    BtreeInsert,
    BtreeMetadata,
    BtreeNewroot,
    BtreeSplit,
)
from ...pg.xlogrecord import BlockRef, Compression, ImageRef, make_block
from ..block import Block, other_block
from ..pages import btree_full_leaf_pages, btree_leaf_pages, downlink, index_tuple
from .spec import Drawn, RecordKind

__all__ = [
    "KINDS",
    "btree_opaque",
    "data_items",
    "first_data_key",
    "is_internal",
    "is_leaf",
    "is_live",
    "ref",
    "tuple_key",
]


def btree_opaque(b: Block) -> BTPageOpaque | None:
    """The btree special space of the block's page (None when it is not a btree page)."""
    if b.page is None or b.kind != "btree":
        return None
    return BTPageOpaque.unpack(b.page)


def is_leaf(b: Block) -> bool:
    op = btree_opaque(b)
    return op is not None and bool(op.flags & BTP_LEAF)


def is_live(b: Block) -> bool:
    """A btree leaf or internal page that is not the metapage, half-dead or deleted."""
    op = btree_opaque(b)
    return op is not None and not op.flags & (BTP_META | BTP_HALF_DEAD | BTP_DELETED)


def first_data_key(op: BTPageOpaque) -> int:
    """``P_FIRSTDATAKEY``: item 1 is the high key unless the page is rightmost."""
    return 1 if op.next == 0 else 2


def data_items(b: Block) -> list[tuple[int, bytes]]:
    """(offset, tuple) of the page's data items (the high key left out)."""
    op = btree_opaque(b)
    if op is None:
        return []
    p = b.view()
    return [(off, p.item(off)) for off in range(first_data_key(op), p.max_offset() + 1)]


def tuple_key(tup: bytes) -> bytes:
    """The key bytes of an index tuple (a posting list's key part)."""
    return tup[8 : posting_offset(tup) if is_posting(tup) else tuple_size(tup)]


def ref(block_id: int, b: Block, blkno: int, *, will_init: bool = False,
        image: ImageRef | None = None) -> BlockRef:
    """A block reference to block ``blkno`` of this block's relation fork."""
    return make_block(block_id, b.rel3, blkno, forknum=b.tag.rel.forknum, will_init=will_init, image=image)


def _gap_in(tids: list[Tid]) -> list[int]:
    """Positions k (1..n-1) of a posting list where a new TID fits strictly between TIDs k-1
    and k (the TID right after k-1)."""
    return [k for k in range(1, len(tids)) if (tids[k - 1][0], tids[k - 1][1] + 1) < tids[k]]


def is_internal(b: Block) -> bool:
    """An internal (level >= 1, not leaf, not metapage) btree page."""
    op = btree_opaque(b)
    return op is not None and op.level >= 1 and not op.flags & (BTP_LEAF | BTP_META)


def _insert_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT_LEAF: an index tuple (a drawn heap TID and key) at a drawn offset of a leaf."""
    if not is_leaf(b):
        return None
    p = b.view()
    first = 1
    key = draw(st.binary(max_size=min(24, max(0, b.room() - 8))))
    if maxalign(8 + len(key)) > b.room():
        return None
    off = draw(st.integers(first, p.max_offset() + 1))
    tid = (draw(st.integers(0, 100)), draw(st.integers(1, 50)))
    return Drawn(BtreeInsert(off, index_tuple(key, *tid)), [b.own_block()])


def _insert_upper(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT_UPPER (or, drawn, INSERT_META) on an internal page: the downlink to the right
    half of a split child goes in at an offset after the page's first data key (the
    "minus infinity" downlink stays first; a page with a right sibling keeps its high key at
    offset 1); reference 1 is the split's left child (another block, whose INCOMPLETE_SPLIT
    flag redo clears); INSERT_META adds the metapage (block 0 of the relation,
    WILL_INIT) as reference 2 with this page as the fast root."""
    op = btree_opaque(b)
    if op is None or not is_internal(b):
        return None
    tag = b.tag
    p = b.view()
    first = 1 if op.next == 0 else 2  # P_FIRSTDATAKEY
    maxoff = p.max_offset()
    off = draw(st.integers(first + 1 if maxoff >= first else first, maxoff + 1))
    key = b"" if off == first else draw(st.binary(max_size=min(24, max(0, b.room() - 8))))
    if maxalign(8 + len(key)) > b.room():
        return None
    left = other_block(draw, (tag.blknum,), low=1)
    right = other_block(draw, (tag.blknum, left), low=1)
    blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum),
              make_block(1, b.rel3, left, forknum=tag.rel.forknum)]
    if tag.blknum != 0 and draw(st.booleans()):
        root_here = bool(op.flags & BTP_ROOT)
        root = tag.blknum if root_here else other_block(draw, (tag.blknum, 0), low=1)
        meta = BtreeMetadata(4, root, op.level if root_here else op.level + 1, tag.blknum,
                             op.level, 0, True)
        blocks.append(make_block(2, b.rel3, 0, forknum=tag.rel.forknum, will_init=True))
        return Drawn(BtreeInsert(off, downlink(right, key), XLOG_BTREE_INSERT_META, meta), blocks)
    return Drawn(BtreeInsert(off, downlink(right, key), XLOG_BTREE_INSERT_UPPER), blocks)


def _newroot(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """NEWROOT: a root at level 0 (an empty leaf) or, drawn, at level 1..3 holding two
    downlinks (the old root, which is reference 1 and whose INCOMPLETE_SPLIT flag redo
    clears, under "minus infinity", and its new right sibling under a drawn key); the
    metapage (block 0, WILL_INIT) is reference 2."""
    tag = b.tag
    if tag.blknum == 0:
        return None  # the metapage is block 0; a root there would be the metapage itself
    level = draw(st.integers(0, 3))
    own = make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, will_init=True)
    metablock = make_block(2, b.rel3, 0, forknum=tag.rel.forknum, will_init=True)
    meta = BtreeMetadata(4, tag.blknum, level, tag.blknum, level, 0, True)
    if level == 0:
        return Drawn(BtreeNewroot(tag.blknum, 0, b"", meta), [own, metablock], "btree")
    left = other_block(draw, (tag.blknum,), low=1)
    right = other_block(draw, (tag.blknum, left), low=1)
    key = draw(st.binary(max_size=24))
    # the root's tuple area as _bt_newroot logs it, from pd_upper: item 2, then item 1
    area = downlink(right, key) + downlink(left, b"")
    child = make_block(1, b.rel3, left, forknum=tag.rel.forknum)
    return Drawn(BtreeNewroot(tag.blknum, level, area, meta), [own, child, metablock], "btree")


# --------------------------------------------------------------------------- page splits


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
    posting_cands = [o for o, t in items if isleaf and o < firstright and is_posting(t) and _gap_in(heap_tids(t))]
    use_posting = bool(posting_cands) and draw(st.booleans())
    if use_posting:
        poff = draw(st.sampled_from(posting_cands))
        tids = heap_tids(by_off[poff])
        postingoff = draw(st.sampled_from(_gap_in(tids)))
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


# --------------------------------------------------------------------------- posting lists


def _posting_gaps(b: Block) -> list[tuple[int, list[int]]]:
    """(offset, positions) of the leaf's posting lists that a new TID can split."""
    if not is_leaf(b) or not is_live(b):
        return []
    out = []
    for off, t in data_items(b):
        if is_posting(t):
            gaps = _gap_in(heap_tids(t))
            if gaps:
                out.append((off, gaps))
    return out


def _insert_post(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT_POST: a new TID falls strictly inside a posting list; the record logs the
    original new item (the posting list's key, the new TID) and the position in the posting
    list, and goes in right after the posting list."""
    cands = _posting_gaps(b)
    if not cands:
        return None
    off, gaps = draw(st.sampled_from(cands))
    posting = b.view().item(off)
    tids = heap_tids(posting)
    k = draw(st.sampled_from(gaps))
    new = form_posting(posting, [(tids[k - 1][0], tids[k - 1][1] + 1)])
    if maxalign(len(new)) > b.room():
        return None
    return Drawn(BtreeInsert(off + 1, new, XLOG_BTREE_INSERT_POST, None, k), [b.own_block()])


def _dup_runs(b: Block) -> list[list[tuple[int, bytes]]]:
    """Runs of two or more data items with equal keys on a live leaf."""
    if not is_leaf(b) or not is_live(b):
        return []
    runs: list[list[tuple[int, bytes]]] = []
    for off, t in data_items(b):
        if runs and tuple_key(runs[-1][-1][1]) == tuple_key(t):
            runs[-1].append((off, t))
        else:
            runs.append([(off, t)])
    return [r for r in runs if len(r) >= 2]


def _has_dup_runs(b: Block) -> bool:
    return bool(_dup_runs(b))


def _has_posting_gaps(b: Block) -> bool:
    return bool(_posting_gaps(b))


def _dedup(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """DEDUP: some runs of equal keys merge into posting lists, each interval (base offset,
    items merged) no larger than deduplication's posting-list limit."""
    runs = _dup_runs(b)
    if not runs:
        return None
    chosen = [r for r in runs if draw(st.booleans())] or [runs[0]]
    intervals = []
    for run in chosen:
        n = draw(st.integers(2, len(run)))
        base = run[0][1]
        keysize = posting_offset(base) if is_posting(base) else tuple_size(base)
        while n >= 2 and maxalign(keysize + TID_SIZE * sum(len(heap_tids(t)) for _o, t in run[:n])) > BT_MAX_ITEM_SIZE:
            n -= 1
        if n >= 2:
            intervals.append((run[0][0], n))
    if not intervals:
        return None
    return Drawn(BtreeDedup(len(intervals), tuple(intervals)), [b.own_block()])


KINDS = (
    RecordKind("btree_insert", 100, _insert_leaf, on="btree", applies=is_leaf),
    RecordKind("btree_newroot", 110, _newroot, on=None),
    RecordKind("btree_insert_upper", 180, _insert_upper, on="btree", applies=is_internal),
    RecordKind("btree_dedup", 190, _dedup, on="btree", applies=_has_dup_runs, favoured=_has_dup_runs),
    RecordKind("btree_insert_post", 200, _insert_post, on="btree", applies=_has_posting_gaps,
               favoured=_has_posting_gaps),
    RecordKind("btree_split", 210, _split, on="btree", applies=lambda b: is_live(b) and len(data_items(b)) >= 2),
    RecordKind("btree_split_right", 220, _split_right, on=None),
    RecordKind("btree_split_next", 230, _split_next, on="btree", applies=is_live),
    RecordKind("btree_finish_split", 240, _finish_split, on="btree", applies=_incomplete_split,
               favoured=_incomplete_split),
)
"""The btree record kinds that add tuples (the removing ones: :mod:`.btree_delete`)."""
