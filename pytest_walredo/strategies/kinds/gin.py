"""Drawers for GIN records of the entry and posting trees: a posting tree root made by
CREATE_PTREE, pages restored by SPLIT and VACUUM_PAGE images, inserts into entry pages, data
leaves (segment actions) and internal data pages, leaf vacuum, page deletion seen from each
of its three pages, and the parent level finishing a split. The pending-list kinds are in
:mod:`.gin_fast`; the pages in :mod:`..gin_pages`.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.gin_page import (
    GIN_DATA,
    GIN_INCOMPLETE_SPLIT,
    INVALID_BLOCK,
    GinOpaque,
    PostingItem,
    posting_items,
)
from ...pg.gin_posting import (
    GIN_SEGMENT_ADDITEMS,
    GIN_SEGMENT_DELETE,
    GIN_SEGMENT_INSERT,
    GIN_SEGMENT_REPLACE,
    SegmentAction,
    compress_posting_list,
    decode_segment,
)
from ...pg.rmgr.gin import (
    EntryInsert,
    GinCreatePtree,
    GinDeletePage,
    GinInsert,
    GinSplit,
    GinVacuumDataLeafPage,
    GinVacuumPage,
    InternalInsert,
)
from ...pg.rmgr.ginxlog import GIN_INSERT_ISDATA, GIN_INSERT_ISLEAF, GIN_SPLIT_ROOT, LeafActions
from ...pg.version import Flavour
from ...pg.xlogrecord import ImageRef
from ..block import Block, other_block
from ..gin_pages import (
    gin_opaque,
    gin_pages,
    is_data_internal,
    is_data_leaf,
    is_entry,
    item_pointers,
    leaf_segments,
    segments_of,
)
from ..pages import index_tuple
from .btree import ref
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]


def _create_ptree(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """CREATE_PTREE: the block becomes a posting tree root leaf holding drawn segments."""
    segs = segments_of(draw, draw(item_pointers(1, 60)))
    return Drawn(GinCreatePtree(b"".join(segs)), [b.own_block(will_init=True)], "gin")


def _split(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """SPLIT: the block is the left or right half, or the root of a root split, restored from
    its image (a drawn page of the split's tree and level); the other halves are other blocks with images of their own,
    and a non-leaf split names the child it completes (block 3, another block)."""
    tag = b.tag
    flags = draw(st.sampled_from((0, GIN_INSERT_ISLEAF))) | draw(st.sampled_from((0, GIN_INSERT_ISDATA)))
    isroot = draw(st.booleans())
    flags |= GIN_SPLIT_ROOT if isroot else 0
    role = draw(st.integers(0, 2 if isroot else 1))
    avoid = [tag.blknum]
    blocks = []
    for block_id in range(3 if isroot else 2):
        leafpage = flags & GIN_INSERT_ISLEAF and block_id != 2  # a root split's root is internal
        shape = ("data_" if flags & GIN_INSERT_ISDATA else "entry_") + ("leaf" if leafpage else "internal")
        image = ImageRef.from_page(draw(gin_pages(shape)), b.v)
        if block_id == role:
            blkno = tag.blknum
        else:
            blkno = other_block(draw, avoid, low=1)
            avoid.append(blkno)
        blocks.append(ref(block_id, b, blkno, image=image))
    left_child = right_child = 0
    if not flags & GIN_INSERT_ISLEAF:
        left_child = other_block(draw, avoid, low=1)
        right_child = other_block(draw, (*avoid, left_child), low=1)
        blocks.append(ref(3, b, left_child))
    rrlink = blocks[2].blkno if isroot else draw(st.sampled_from((INVALID_BLOCK, 7)))
    body = GinSplit(b.rel3, rrlink, left_child, right_child, flags)
    return Drawn(body, blocks, "gin")


def _vacuum_page(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM_PAGE: an entry leaf restored from its image. Neon's redo also accepts the record
    without an image for a GIN page, which it then leaves alone (upstream fails)."""
    if b.fl is Flavour.NEON and b.kind == "gin" and draw(st.booleans()):
        return Drawn(GinVacuumPage(), [b.own_block()], None)
    image = ImageRef.from_page(draw(gin_pages("entry_leaf")), b.v)
    return Drawn(GinVacuumPage(), [ref(0, b, b.tag.blknum, image=image)], "gin")


def _entry_tuple(draw: st.DrawFn, *, downlink: bool) -> bytes:
    """An entry tree tuple: a small key with a heap TID, or with a downlink."""
    key = draw(st.binary(min_size=1, max_size=16))
    if downlink:
        return index_tuple(key, draw(st.integers(1, 1000)), 0)
    return index_tuple(key, draw(st.integers(0, 100)), draw(st.integers(1, 50)))


def _child(draw: st.DrawFn, b: Block) -> tuple[int, int]:
    left = other_block(draw, (b.tag.blknum,), low=1)
    return left, other_block(draw, (b.tag.blknum, left), low=1)


def _insert_entry(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT into an entry page: on a leaf, a new tuple at a drawn offset, or a tuple
    replacing the one there (isDelete); on an internal page, the downlink at the offset moves
    to the split's right child and a new downlink goes in before it (block 1 the left
    child)."""
    op = gin_opaque(b)
    assert op is not None
    p = b.view()
    n = p.max_offset()
    leaf = bool(op.flags & 2)
    tup = _entry_tuple(draw, downlink=not leaf)
    if len(tup) > b.room():
        return None
    blocks = [b.own_block()]
    if leaf:
        isdel = n >= 1 and draw(st.booleans())
        off = draw(st.integers(1, n if isdel else n + 1))
        return Drawn(GinInsert(False, True, EntryInsert(off, isdel, tup)), blocks)
    if n < 1:
        return None
    left, right = _child(draw, b)
    blocks.append(ref(1, b, left))
    off = draw(st.integers(1, n))
    return Drawn(GinInsert(False, False, EntryInsert(off, False, tup), left, right), blocks)


def _leaf_actions(draw: st.DrawFn, b: Block, *, vacuum: bool) -> LeafActions | None:
    """Segment actions for the data leaf, in segment order. Inserts add items (ADDITEMS, a new
    segment, or a segment replaced by one with more items); vacuum removes them (a segment
    replaced by one with fewer, or deleted)."""
    assert b.page is not None
    segs = leaf_segments(b.page)
    actions: list[SegmentAction] = []
    for segno in range(len(segs) + 1):
        if segno < len(segs) and draw(st.booleans()):
            old = decode_segment(segs[segno])
            if vacuum:
                # a whole segment gone (DELETE) is drawn outright: item by item it would be rare
                keep = [] if draw(st.integers(0, 3)) == 0 else [ip for ip in old if draw(st.booleans())]
                if keep:
                    actions.append(SegmentAction(segno, GIN_SEGMENT_REPLACE, compress_posting_list(keep)[0]))
                else:
                    actions.append(SegmentAction(segno, GIN_SEGMENT_DELETE))
            else:
                more = [ip for ip in draw(item_pointers(1, 8)) if ip not in old]
                if not more:
                    continue
                if draw(st.booleans()):
                    actions.append(SegmentAction(segno, GIN_SEGMENT_ADDITEMS, items=tuple(more)))
                else:
                    seg = compress_posting_list(sorted({*old, *more}))[0]
                    actions.append(SegmentAction(segno, GIN_SEGMENT_REPLACE, seg))
        elif not vacuum and draw(st.integers(0, 3)) == 0:
            seg = compress_posting_list(draw(item_pointers(1, 10)))[0]
            actions.append(SegmentAction(segno, GIN_SEGMENT_INSERT, seg))
    if not actions:
        return None
    return LeafActions(tuple(sorted(actions, key=lambda a: (a.segno, a.action != GIN_SEGMENT_INSERT))))


def _insert_data_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT into a posting tree leaf: segment actions adding items."""
    leaf = _leaf_actions(draw, b, vacuum=False)
    if leaf is None or len(leaf.encode()) > b.room():
        return None
    return Drawn(GinInsert(True, True, leaf), [b.own_block()])


def _vacuum_data_leaf(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """VACUUM_DATA_LEAF_PAGE: segment actions removing items."""
    leaf = _leaf_actions(draw, b, vacuum=True)
    return None if leaf is None else Drawn(GinVacuumDataLeafPage(leaf), [b.own_block()])


def _insert_data_internal(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT into an internal posting tree page: the item at the offset now points to the
    split's right child, the new item (the left child, a drawn key) goes in before it."""
    n = GinOpaque.unpack(b.page or bytes(8192)).maxoff
    if n < 1 or b.room() < 16:
        return None
    left, right = _child(draw, b)
    off = draw(st.integers(1, n))
    key = draw(item_pointers(1, 1))[0]
    body = GinInsert(True, False, InternalInsert(off, PostingItem(left, *key)), left, right)
    return Drawn(body, [b.own_block(), ref(1, b, left)])


def _delete_page(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """DELETE_PAGE seen from one of its pages: this block is the deleted page (block 0), its
    parent (block 1, an internal data page losing the downlink at the offset) or its left
    sibling (block 2, whose right link changes)."""
    tag = b.tag
    parent = is_data_internal(b) and b.page is not None and len(posting_items(b.view())) >= 1
    roles = [1, 0, 2] if parent else [0, 2]  # a parent page is drawn as the parent first
    role = draw(st.sampled_from(roles))
    avoid = [tag.blknum]
    blocks = []
    for block_id in range(3):
        if block_id == role:
            blkno = tag.blknum
        else:
            blkno = other_block(draw, avoid, low=1)
            avoid.append(blkno)
        blocks.append(ref(block_id, b, blkno))
    n = GinOpaque.unpack(b.page or bytes(8192)).maxoff
    off = draw(st.integers(1, n)) if role == 1 else draw(st.integers(1, 50))
    right = draw(st.sampled_from((INVALID_BLOCK, 3)) | st.integers(1, 1000))
    return Drawn(GinDeletePage(off, right, draw(st.integers(0, 2**32 - 1))), blocks)


def _incomplete(b: Block) -> bool:
    op = gin_opaque(b)
    return op is not None and bool(op.flags & GIN_INCOMPLETE_SPLIT)


def _finish_split(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The parent level finishes this page's split and clears its GIN_INCOMPLETE_SPLIT: a
    non-leaf INSERT (this block is block 1) or a non-leaf SPLIT (block 3)."""
    op = gin_opaque(b)
    assert op is not None
    tag = b.tag
    parent = other_block(draw, (tag.blknum,), low=1)
    right = other_block(draw, (tag.blknum, parent), low=1)
    isdata = bool(op.flags & GIN_DATA)
    if draw(st.booleans()):
        payload: InternalInsert | EntryInsert
        if isdata:
            payload = InternalInsert(1, PostingItem(tag.blknum, *draw(item_pointers(1, 1))[0]))
        else:
            payload = EntryInsert(1, False, _entry_tuple(draw, downlink=True))
        body = GinInsert(isdata, False, payload, tag.blknum, right)
        return Drawn(body, [ref(0, b, parent), ref(1, b, tag.blknum)])
    other = other_block(draw, (tag.blknum, parent, right), low=1)
    blocks = [ref(0, b, parent, image=ImageRef.from_page(draw(gin_pages()), b.v)),
              ref(1, b, other, image=ImageRef.from_page(draw(gin_pages()), b.v)),
              ref(3, b, tag.blknum)]
    flags = GIN_INSERT_ISDATA if isdata else 0
    return Drawn(GinSplit(b.rel3, INVALID_BLOCK, tag.blknum, right, flags), blocks)


KINDS = (
    RecordKind("gin_create_ptree", 603, _create_ptree, on=None),
    RecordKind("gin_split", 613, _split, on=None),
    RecordKind("gin_vacuum_page", 623, _vacuum_page, on=None),
    RecordKind("gin_insert_entry", 633, _insert_entry, on="gin", applies=is_entry),
    RecordKind("gin_insert_data_leaf", 643, _insert_data_leaf, on="gin", applies=is_data_leaf),
    RecordKind("gin_vacuum_data_leaf", 653, _vacuum_data_leaf, on="gin", applies=is_data_leaf),
    RecordKind("gin_insert_data_internal", 663, _insert_data_internal, on="gin", applies=is_data_internal,
               favoured=is_data_internal),
    RecordKind("gin_delete_page", 673, _delete_page, on="gin",
               applies=lambda b: is_data_leaf(b) or is_data_internal(b)),
    RecordKind("gin_finish_split", 683, _finish_split, on="gin", applies=_incomplete, favoured=_incomplete),
)
"""The GIN record kinds of the entry and posting trees (pending list: :mod:`.gin_fast`)."""
