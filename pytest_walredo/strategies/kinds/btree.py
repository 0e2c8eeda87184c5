"""Drawers for B-tree records that add tuples: INSERT_LEAF on a leaf; NEWROOT at level 0 (an
empty leaf root) or 1-3 (a root with two downlinks); ``btree_insert_upper``: INSERT_UPPER or
INSERT_META on an internal page (a new downlink after the first data key; the split's left
child and the metapage are other block references); INSERT_POST (a posting-list split: the
new TID strictly inside a posting list) and DEDUP (runs of equal keys merged); and the helpers
the other btree drawer modules share. Page splits are in :mod:`.btree_split`, the page-removal
kinds in :mod:`.btree_delete`.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.btree_page import (
    BTP_DELETED,
    BTP_HALF_DEAD,
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
    tuple_size,
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
)
from ...pg.xlogrecord import BlockRef, ImageRef, make_block
from ..block import Block, other_block
from ..pages import downlink, index_tuple
from .spec import Drawn, RecordKind

__all__ = [
    "KINDS",
    "btree_opaque",
    "data_items",
    "first_data_key",
    "gap_in",
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


def gap_in(tids: list[Tid]) -> list[int]:
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


# --------------------------------------------------------------------------- posting lists


def _posting_gaps(b: Block) -> list[tuple[int, list[int]]]:
    """(offset, positions) of the leaf's posting lists that a new TID can split."""
    if not is_leaf(b) or not is_live(b):
        return []
    out = []
    for off, t in data_items(b):
        if is_posting(t):
            gaps = gap_in(heap_tids(t))
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
)
"""The btree record kinds that add tuples in place (splits: :mod:`.btree_split`; the removing
ones: :mod:`.btree_delete`)."""
