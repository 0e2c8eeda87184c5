"""Drawers for heap records: INSERT (+INIT), DELETE, LOCK, CONFIRM, INPLACE, UPDATE and
HOT_UPDATE on one page, UPDATE across two pages from either side (+INIT on the new page), and
TRUNCATE (which names no block: the page must not change).

On a page with PD_ALL_VISIBLE (after a VISIBLE record), INSERT, DELETE and UPDATE log their
``ALL_VISIBLE_CLEARED`` flag, as PostgreSQL does. In the Neon flavour the records carry a
drawn t_cid (and PG16/17 then log them through Neon's rmgr 134).
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.constants import BLCKSZ
from ...pg.page import MAX_HEAP_TUPLES_PER_PAGE
from ...pg.rmgr.heap import HeapDelete, HeapInsert, HeapUpdate, XlTuple
from ...pg.rmgr.heap_inplace import HeapConfirm, HeapInplace, HeapLock
from ...pg.rmgr.heap_logical import HeapTruncate
from ...pg.tuple import HEAP_UPDATED, HEAP_XMAX_INVALID
from ...pg.version import Flavour
from ...pg.xlogrecord import make_block
from ..block import Block, other_block
from ..tags import MAX_U32
from .spec import Drawer, Drawn, RecordKind

__all__ = ["KINDS", "draw_cid", "has_tuples", "payload", "tuple_offset"]

_UPDATED_INFOMASK = HEAP_XMAX_INVALID | HEAP_UPDATED  # a new tuple version written by UPDATE


def draw_cid(draw: st.DrawFn, b: Block) -> int | None:
    """A t_cid when the flavour's heap records carry one (Neon); None for vanilla."""
    if b.fl is Flavour.VANILLA:
        return None
    if b.v <= 15:
        return draw(st.integers(0, 100))
    return draw(st.none() | st.integers(0, 100))


def payload(draw: st.DrawFn, max_tuple_size: int, room: int) -> bytes | None:
    """Tuple data for a tuple that may take ``room`` bytes (header included); None: no room."""
    limit = min(max_tuple_size, room - 24)
    return None if limit < 0 else draw(st.binary(max_size=limit))


def _xl_tuple(data: bytes, cid: int | None, infomask: int = HEAP_XMAX_INVALID) -> XlTuple:
    # data = the bytes from t_bits on: one padding byte up to t_hoff 24, then the payload.
    return XlTuple(1, infomask, 24, b"\0" + data, cid)


def has_tuples(b: Block) -> bool:
    return bool(b.normal_offsets())


def tuple_offset(draw: st.DrawFn, b: Block) -> int | None:
    """One of the page's LP_NORMAL tuples (None: there is none)."""
    normals = b.normal_offsets()
    if not normals:
        return None
    return normals[draw(st.integers(0, len(normals) - 1))]


def _next_offset(b: Block) -> int | None:
    """Where a new tuple goes (None: the page has no line pointer left for it)."""
    nextoff = b.insert_offsets(1)[0]
    return None if nextoff > MAX_HEAP_TUPLES_PER_PAGE else nextoff


# --------------------------------------------------------------------------- one page


def _insert(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    nextoff = _next_offset(b)
    if nextoff is None:
        return None
    data = payload(draw, max_tuple_size, b.room())
    if data is None:
        return None
    cid = draw_cid(draw, b)
    body = HeapInsert(nextoff, b.all_visible_cleared(), _xl_tuple(data, cid), False, cid)
    return Drawn(body, [b.own_block()])


def _insert_init(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """INSERT+INIT: a fresh page holding one tuple at offset 1."""
    cid = draw_cid(draw, b)
    data = payload(draw, max_tuple_size, BLCKSZ - 32)
    assert data is not None
    return Drawn(HeapInsert(1, 0, _xl_tuple(data, cid), True, cid), [b.own_block(will_init=True)], "heap")


def _delete(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    off = tuple_offset(draw, b)
    if off is None:
        return None
    cid = draw_cid(draw, b)
    body = HeapDelete(draw(st.integers(0, MAX_U32)), off, draw(st.integers(0, 0x1F)),
                      b.all_visible_cleared(), cid)
    return Drawn(body, [b.own_block()])


def _lock(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    off = tuple_offset(draw, b)
    if off is None:
        return None
    cid = draw_cid(draw, b)
    body = HeapLock(draw(st.integers(0, MAX_U32)), off, draw(st.integers(0, 0x1F)), 0, cid)
    return Drawn(body, [b.own_block()])


def _truncate(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """TRUNCATE of this relation and maybe others (logged for logical decoding; the storage
    records do the work): no block reference."""
    relids = (b.tag.rel.relnode, *draw(st.lists(st.integers(1, MAX_U32), max_size=3)))
    return Drawn(HeapTruncate(b.tag.rel.dbnode, relids, draw(st.integers(0, 3))), [])


def _confirm(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    off = tuple_offset(draw, b)
    return None if off is None else Drawn(HeapConfirm(off), [b.own_block()])


def _inplace(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INPLACE: new bytes of the same length for a tuple's data (from t_hoff on)."""
    off = tuple_offset(draw, b)
    if off is None:
        return None
    p = b.view()
    lp = p.item_id(off)
    hoff = p.item(off)[22]
    length = lp.len - hoff
    if length < 0:
        return None
    data = draw(st.binary(min_size=length, max_size=length))
    return Drawn(HeapInplace(off, data), [b.own_block()])


def _update_on_page(hot: bool) -> Drawer:
    def draw_update(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
        """UPDATE / HOT_UPDATE whose new tuple goes on the same page."""
        nextoff = _next_offset(b)
        if nextoff is None:
            return None
        off = tuple_offset(draw, b)
        if off is None:
            return None
        data = payload(draw, max_tuple_size, b.room())
        if data is None:
            return None
        cid = draw_cid(draw, b)
        body = HeapUpdate(draw(st.integers(0, MAX_U32)), off, 0, nextoff, draw(st.integers(0, 0x1F)),
                          b.all_visible_cleared(), hot, False, cid, _xl_tuple(data, cid))
        return Drawn(body, [b.own_block()])

    return draw_update


# --------------------------------------------------------------------------- across two pages
# A non-HOT UPDATE whose old and new tuples are on different blocks. No prefix/suffix
# compression: PostgreSQL uses it only when both tuples share a page.


def _cross_update_common(draw: st.DrawFn, b: Block) -> tuple[int, int | None, int, int]:
    """(the other block, t_cid, old infobits, old xmax)."""
    other = other_block(draw, (b.tag.blknum,))
    cid = draw_cid(draw, b)
    infobits = draw(st.integers(0, 0x1F))
    old_xmax = draw(st.integers(0, MAX_U32))
    return other, cid, infobits, old_xmax


def _update_new_block(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """This block is block reference 0 and receives the new tuple (with INIT_PAGE when the
    block has no heap page yet, or when drawn); the old block is another block, reference 1."""
    tag = b.tag
    other, cid, infobits, old_xmax = _cross_update_common(draw, b)
    init = b.page is None or b.kind != "heap" or draw(st.booleans())
    nextoff = 1 if init else b.insert_offsets(1)[0]
    room = BLCKSZ - 32 if init else b.room()
    if nextoff > MAX_HEAP_TUPLES_PER_PAGE or room < 24:
        return None
    data = draw(st.binary(max_size=min(max_tuple_size, room - 24)))
    flags = 0 if init else b.all_visible_cleared() << 1  # XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED
    body = HeapUpdate(old_xmax, draw(st.integers(1, 20)), 0, nextoff, infobits, flags,
                      False, init, cid, _xl_tuple(data, cid, _UPDATED_INFOMASK))
    return Drawn(body, [b.own_block(will_init=init),
                        make_block(1, b.rel3, other, forknum=tag.rel.forknum)], "heap")


def _update_old_block(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """This block is reference 1 and its tuple at ``old_offnum`` gets the new xmax;
    reference 0 is another block (maybe initialized by the record)."""
    tag = b.tag
    other, cid, infobits, old_xmax = _cross_update_common(draw, b)
    normals = b.normal_offsets()
    if b.kind != "heap" or not normals:
        return None
    off = normals[draw(st.integers(0, len(normals) - 1))]
    init = draw(st.booleans())  # the new block is a fresh page the record initializes
    new_off = 1 if init else draw(st.integers(1, 20))
    data = draw(st.binary(max_size=max_tuple_size))
    body = HeapUpdate(old_xmax, off, 0, new_off, infobits, b.all_visible_cleared(), False,
                      init, cid, _xl_tuple(data, cid, _UPDATED_INFOMASK))
    return Drawn(body, [make_block(0, b.rel3, other, forknum=tag.rel.forknum, will_init=init),
                        b.own_block(1)])


KINDS = (
    RecordKind("heap_insert", 10, _insert, on="heap"),
    RecordKind("heap_delete", 20, _delete, on="heap", applies=has_tuples),
    RecordKind("heap_lock", 30, _lock, on="heap", applies=has_tuples),
    RecordKind("heap_confirm", 40, _confirm, on="heap", applies=has_tuples),
    RecordKind("heap_inplace", 50, _inplace, on="heap", applies=has_tuples),
    RecordKind("heap_hot_update", 60, _update_on_page(hot=True), on="heap", applies=has_tuples),
    RecordKind("heap_update", 70, _update_on_page(hot=False), on="heap", applies=has_tuples),
    RecordKind("heap_insert_init", 80, _insert_init, on=None),
    RecordKind("heap_update_old_block", 160, _update_old_block, on="heap", applies=has_tuples),
    RecordKind("heap_update_new_block", 170, _update_new_block, on=None),
    RecordKind("heap_truncate", 185, _truncate, on="heap"),
)
"""The heap record kinds (cross-page UPDATE from the old and from the new page's side)."""
