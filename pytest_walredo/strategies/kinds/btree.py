"""Drawers for B-tree records: INSERT_LEAF on a leaf; NEWROOT at level 0 (an empty leaf root)
or 1-3 (a root with two downlinks); ``btree_insert_upper``: INSERT_UPPER or INSERT_META on an
internal page (a new downlink after the first data key; the split's left child and the
metapage are other block references)."""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.btree_page import BTP_LEAF, BTP_META, BTP_ROOT, BTPageOpaque
from ...pg.constants import maxalign
from ...pg.rmgr.btree import (
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_UPPER,
    BtreeInsert,
    BtreeMetadata,
    BtreeNewroot,
)
from ...pg.xlogrecord import make_block
from ..block import Block, other_block
from ..pages import downlink, index_tuple
from .spec import Drawn, RecordKind

__all__ = ["KINDS", "btree_opaque", "is_internal", "is_leaf"]


def btree_opaque(b: Block) -> BTPageOpaque | None:
    """The btree special space of the block's page (None when it is not a btree page)."""
    if b.page is None or b.kind != "btree":
        return None
    return BTPageOpaque.unpack(b.page)


def is_leaf(b: Block) -> bool:
    op = btree_opaque(b)
    return op is not None and bool(op.flags & BTP_LEAF)


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


KINDS = (
    RecordKind("btree_insert", 100, _insert_leaf, on="btree", applies=is_leaf),
    RecordKind("btree_newroot", 110, _newroot, on=None),
    RecordKind("btree_insert_upper", 180, _insert_upper, on="btree", applies=is_internal),
)
"""The btree record kinds."""
