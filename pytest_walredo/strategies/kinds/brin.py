"""Drawers for BRIN records, each from the side of one block it touches (``pg/rmgr/brin.py``
has the block layout of each record).

A block holds a metapage, a revmap page or a regular page (``brin_meta``, ``brin_revmap``,
``brin_regular``), each started by its own record: ``brin_create_index`` (the metapage),
``brin_revmap_extend`` (a new revmap page: this block is REVMAP_EXTEND's block 1),
``brin_insert_init`` (INSERT+INIT or UPDATE+INIT: a regular page with its first tuple). Then:

- the metapage: ``brin_revmap_extend_meta`` (lastRevmapPage moves on to the next block);
- a revmap page: ``brin_revmap_set`` (INSERT / UPDATE, +INIT or not, seen from their revmap
  block: the entry of the range points at the new tuple), ``brin_desummarize_revmap`` (the
  entry becomes invalid);
- a regular page: ``brin_insert`` (INSERT / UPDATE adding a tuple at a new or an unused line
  pointer), ``brin_samepage_update`` (a tuple replaced by a bigger or smaller one),
  ``brin_update_old`` (UPDATE's old page: the tuple leaves it), ``brin_desummarize_regular``
  (DESUMMARIZE's regular page: the tuple is removed).

Tuples are shaped like BrinTuples (heap block, t_info with the data offset 8, then data);
the other blocks a record names are never the requested one.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.brin_page import BRIN_PAGETYPE_META, brin_page_type, read_meta
from ...pg.constants import maxalign
from ...pg.page import Page
from ...pg.rmgr.brin import BrinCreateIndex, BrinDesummarize, BrinInsert, BrinRevmapExtend, BrinSamepageUpdate
from ...pg.xlogrecord import BlockRef, make_block
from ..block import Block, other_block
from ..tags import MAX_U32
from .spec import Drawn, RecordKind

__all__ = ["KINDS", "brin_tuple"]

_PPR = st.sampled_from((1, 4, 32, 128))


def brin_tuple(heap_blk: int, data: bytes, flags: int = 0) -> bytes:
    """A BrinTuple: bt_blkno, bt_info (the data offset 8 plus ``flags``), padding, data."""
    return struct.pack("<IB3x", heap_blk, 8 | flags) + data


def _tuple(draw: st.DrawFn, heap_blk: int, max_size: int) -> bytes:
    flags = draw(st.sampled_from((0, 0x20, 0x40, 0x80)))  # empty range, placeholder, nulls
    return brin_tuple(heap_blk, draw(st.binary(max_size=max(0, min(40, max_size - 8)))), flags)


def _heap_blk(draw: st.DrawFn, ppr: int) -> int:
    """A heap block at the start of its range (as BRIN logs it), any revmap entry."""
    return draw(st.integers(0, MAX_U32 // ppr)) * ppr


def _other(draw: st.DrawFn, b: Block, avoid: list[int], block_id: int, *, will_init: bool = False) -> BlockRef:
    """A reference to a block of the same index that is not the requested one (nor ``avoid``)."""
    blk = other_block(draw, avoid)
    avoid.append(blk)
    return make_block(block_id, b.rel3, blk, forknum=b.tag.rel.forknum, will_init=will_init)


def _used(b: Block) -> list[int]:
    """The regular page's items with storage."""
    if b.page is None:
        return []
    return [off for off, lp in b.view().item_ids() if lp.is_used and lp.has_storage]


def _has_items(b: Block) -> bool:
    return bool(_used(b))


def _room(p: Page, new_lp: bool) -> int:
    """The largest tuple (MAXALIGNed) that still fits."""
    return (p.upper - p.lower - (4 if new_lp else 0)) // 8 * 8


# --------------------------------------------------------------------------- starting a block


def _create_index(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    return Drawn(BrinCreateIndex(draw(_PPR), 1), [b.own_block(will_init=True)], "brin_meta")


def _revmap_extend(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    own = b.tag.blknum
    meta = _other(draw, b, [own], 0)
    return Drawn(BrinRevmapExtend(own), [meta, b.own_block(1, will_init=True)], "brin_revmap")


def _insert_init(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    ppr = draw(_PPR)
    heap_blk = _heap_blk(draw, ppr)
    avoid = [b.tag.blknum]
    blocks = [b.own_block(0, will_init=True), _other(draw, b, avoid, 1)]
    old = None
    if draw(st.booleans()):  # UPDATE+INIT: the old tuple was on another page
        old = draw(st.integers(1, 200))
        blocks.append(_other(draw, b, avoid, 2))
    body = BrinInsert(heap_blk, ppr, 1, _tuple(draw, heap_blk, max_tuple_size), True, old)
    return Drawn(body, blocks, "brin_regular")


# --------------------------------------------------------------------------- metapage and revmap


def _is_meta(b: Block) -> bool:
    return b.page is not None and brin_page_type(b.view()) == BRIN_PAGETYPE_META


def _revmap_extend_meta(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    target = read_meta(b.view())[3] + 1
    if target == b.tag.blknum or target > MAX_U32 - 1:
        return None
    new = make_block(1, b.rel3, target, forknum=b.tag.rel.forknum, will_init=True)
    return Drawn(BrinRevmapExtend(target), [b.own_block(0), new])


def _revmap_set(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    ppr = draw(_PPR)
    heap_blk = _heap_blk(draw, ppr)
    init = draw(st.booleans())
    avoid = [b.tag.blknum]
    blocks = [_other(draw, b, avoid, 0, will_init=init), b.own_block(1)]
    old = None
    if draw(st.booleans()):
        old = draw(st.integers(1, 200))
        blocks.append(_other(draw, b, avoid, 2))
    offnum = 1 if init else draw(st.integers(1, 200))
    return Drawn(BrinInsert(heap_blk, ppr, offnum, _tuple(draw, heap_blk, max_tuple_size), init, old), blocks)


def _desummarize_revmap(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    ppr = draw(_PPR)
    body = BrinDesummarize(ppr, _heap_blk(draw, ppr), draw(st.integers(1, 200)))
    return Drawn(body, [b.own_block(0), _other(draw, b, [b.tag.blknum], 1)])


# --------------------------------------------------------------------------- regular pages


def _insert(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    p = b.view()
    unused = [off for off, lp in p.item_ids() if not lp.is_used and not lp.has_storage]
    offnum = draw(st.sampled_from([*unused, p.max_offset() + 1]))
    room = _room(p, offnum > p.max_offset())
    if room < 8:
        return None
    ppr = draw(_PPR)
    heap_blk = _heap_blk(draw, ppr)
    avoid = [b.tag.blknum]
    blocks = [b.own_block(0), _other(draw, b, avoid, 1)]
    old = None
    if draw(st.booleans()):
        old = draw(st.integers(1, 200))
        blocks.append(_other(draw, b, avoid, 2))
    return Drawn(BrinInsert(heap_blk, ppr, offnum, _tuple(draw, heap_blk, min(room, max_tuple_size)), False, old),
                 blocks)


def _samepage_update(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    p = b.view()
    offnum = draw(st.sampled_from(_used(b)))
    room = maxalign(p.item_id(offnum).len) + _room(p, False)
    heap_blk = int(struct.unpack_from("<I", p.item(offnum))[0]) if p.item_id(offnum).len >= 4 else 0
    return Drawn(BrinSamepageUpdate(offnum, _tuple(draw, heap_blk, min(room, max_tuple_size))), [b.own_block(0)])


def _update_old(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    ppr = draw(_PPR)
    heap_blk = _heap_blk(draw, ppr)
    init = draw(st.booleans())
    avoid = [b.tag.blknum]
    blocks = [_other(draw, b, avoid, 0, will_init=init), _other(draw, b, avoid, 1), b.own_block(2)]
    old = draw(st.sampled_from(_used(b)))
    offnum = 1 if init else draw(st.integers(1, 200))
    return Drawn(BrinInsert(heap_blk, ppr, offnum, _tuple(draw, heap_blk, max_tuple_size), init, old), blocks)


def _desummarize_regular(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    ppr = draw(_PPR)
    body = BrinDesummarize(ppr, _heap_blk(draw, ppr), draw(st.sampled_from(_used(b))))
    return Drawn(body, [_other(draw, b, [b.tag.blknum], 0), b.own_block(1)])


def _here(_b: Block) -> bool:
    """Favour the kinds of the page the block holds (RecordKind.favoured): a BRIN page then
    goes on with its own records rather than being started over by another kind."""
    return True


KINDS = (
    RecordKind("brin_create_index", 1550, _create_index, on=None),
    RecordKind("brin_revmap_extend", 1555, _revmap_extend, on=None),
    RecordKind("brin_insert_init", 1560, _insert_init, on=None),
    RecordKind("brin_revmap_extend_meta", 1565, _revmap_extend_meta, on="brin_meta", applies=_is_meta, favoured=_here),
    RecordKind("brin_revmap_set", 1570, _revmap_set, on="brin_revmap", favoured=_here),
    RecordKind("brin_desummarize_revmap", 1575, _desummarize_revmap, on="brin_revmap", favoured=_here),
    RecordKind("brin_insert", 1580, _insert, on="brin_regular", favoured=_here),
    RecordKind("brin_samepage_update", 1585, _samepage_update, on="brin_regular", applies=_has_items, favoured=_here),
    RecordKind("brin_update_old", 1590, _update_old, on="brin_regular", applies=_has_items, favoured=_here),
    RecordKind("brin_desummarize_regular", 1595, _desummarize_regular, on="brin_regular", applies=_has_items, favoured=_here),
)
"""The BRIN record kinds."""
