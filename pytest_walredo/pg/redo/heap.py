"""Redo of heap records (``heap_xlog_insert``/``delete``/``update``/``lock``/``confirm``/
``inplace``), and the helpers heap2's routines share: the one-heap-page routine wrapper,
``visibilitymap_clear`` during redo, tuple building and infomask handling.

Neon's rmgr-134 records decode into the same typed records; :mod:`.neon` says what differs.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, Protocol

from pytest_walredo.pg import tuple as tup
from pytest_walredo.pg.constants import BLCKSZ, VISIBILITYMAP_FORKNUM
from pytest_walredo.pg.page import LP_NORMAL, PD_ALL_VISIBLE, Page, PageError
from pytest_walredo.pg.redo import neon
from pytest_walredo.pg.redo.buffer import Apply, RedoError, Routine, no_page_change
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.heap import HeapDelete, HeapInsert, HeapUpdate
from pytest_walredo.pg.rmgr.heap_inplace import HeapConfirm, HeapInplace, HeapLock
from pytest_walredo.pg.rmgr.heap_logical import HeapTruncate
from pytest_walredo.pg.rmgr.heapam_xlog import (
    XLH_DELETE_ALL_VISIBLE_CLEARED,
    XLH_DELETE_IS_PARTITION_MOVE,
    XLH_DELETE_IS_SUPER,
    XLH_INSERT_ALL_FROZEN_SET,
    XLH_INSERT_ALL_VISIBLE_CLEARED,
    XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED,
    XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED,
    XLHL_KEYS_UPDATED,
    XLHL_XMAX_EXCL_LOCK,
    XLHL_XMAX_IS_MULTI,
    XLHL_XMAX_KEYSHR_LOCK,
    XLHL_XMAX_LOCK_ONLY,
)
from pytest_walredo.pg.visibilitymap import (
    VISIBILITYMAP_ALL_FROZEN,
    VISIBILITYMAP_VALID_BITS,
    map_block,
    map_position,
)

__all__ = [
    "ROUTINES",
    "add_heap_tuple",
    "build_tuple",
    "cid",
    "fix_infomask_from_infobits",
    "get_mask",
    "heap_routine",
    "normal_item",
    "panic",
    "set_mask",
    "vm_clear",
]

# Neon's extra infobits flag for a combo command id. Its value is not in the sources we could
# read; 0x20 (the first bit after XLHL_KEYS_UPDATED) is an assumption.
XLHL_COMBOCID = 0x20

# t_ctid of a tuple moved to another partition (HeapTupleHeaderSetMovedPartitions)
_MOVED_PARTITIONS_BLOCK = 0xFFFFFFFF
_MOVED_PARTITIONS_OFFSET = 0xFFFD


# --------------------------------------------------------------------------- shared helpers


def panic(a: Apply, message: str) -> RedoError:
    """A redo routine's own elog(PANIC)."""
    return RedoError(neon.panic_message(a.rec, message), a.context)


def cid(value: int | None) -> int:
    """The command id redo writes: Neon logs it, vanilla PostgreSQL writes FirstCommandId."""
    return 0 if value is None else value


def _neon(a: Apply) -> bool:
    return neon.writes_logged_cid(a.rec, a.version, a.flavour)


def normal_item(a: Apply, page: Page, offnum: int) -> int:
    """Byte position of the tuple at ``offnum``, which must be LP_NORMAL ("invalid lp")."""
    if page.max_offset() < offnum or offnum < 1:
        raise panic(a, "invalid lp")
    lp = page.item_id(offnum)
    if lp.flags != LP_NORMAL:
        raise panic(a, "invalid lp")
    if lp.off + lp.len > BLCKSZ or lp.len < tup.SIZEOF_HEAP_TUPLE_HEADER:
        raise a.fail(f"invalid lp: item {offnum} {lp} does not hold a tuple header")
    return lp.off


def add_heap_tuple(a: Apply, page: Page, item: bytes, offnum: int) -> None:
    if page.max_offset() + 1 < offnum:
        raise panic(a, "invalid max offset number")
    try:
        got = page.add_item(item, offnum, overwrite=True, is_heap=True)
    except PageError as exc:
        raise a.fail(str(exc)) from None
    if got == 0:
        raise panic(a, "failed to add tuple")


def vm_clear(a: Apply, heap_blkno: int, bits: int) -> None:
    """``visibilitymap_clear`` during redo: touches the VM page only when it is the
    target (the walredo process reads it outside the block filter). A new VM page is
    initialized first (``vm_readbuf``); no LSN change."""
    b0 = a.block(0)
    if not (
        a.target.forknum == VISIBILITYMAP_FORKNUM
        and a.target.same_rel(b0)
        and a.target.blkno == map_block(heap_blkno)
    ):
        return
    page = a.current()
    if page.is_new():
        page.init(0)
        a.dirty = True
    byte, shift = map_position(heap_blkno)
    if page.data[byte] & (bits << shift):
        page.data[byte] &= ~(bits << shift) & 0xFF
        a.dirty = True


def fix_infomask_from_infobits(a: Apply, infobits: int, infomask: int,
                               infomask2: int) -> tuple[int, int]:
    """``fix_infomask_from_infobits``: the xmax lock bits and KEYS_UPDATED from the record's
    infobits (Neon's variant also HEAP_COMBOCID)."""
    infomask &= ~(
        tup.HEAP_XMAX_IS_MULTI
        | tup.HEAP_XMAX_LOCK_ONLY
        | tup.HEAP_XMAX_KEYSHR_LOCK
        | tup.HEAP_XMAX_EXCL_LOCK
    )
    if _neon(a):
        infomask &= ~tup.HEAP_COMBOCID
        if infobits & XLHL_COMBOCID:
            infomask |= tup.HEAP_COMBOCID
    infomask2 &= ~tup.HEAP_KEYS_UPDATED
    if infobits & XLHL_XMAX_IS_MULTI:
        infomask |= tup.HEAP_XMAX_IS_MULTI
    if infobits & XLHL_XMAX_LOCK_ONLY:
        infomask |= tup.HEAP_XMAX_LOCK_ONLY
    if infobits & XLHL_XMAX_EXCL_LOCK:
        infomask |= tup.HEAP_XMAX_EXCL_LOCK
    if infobits & XLHL_XMAX_KEYSHR_LOCK:
        infomask |= tup.HEAP_XMAX_KEYSHR_LOCK
    if infobits & XLHL_KEYS_UPDATED:
        infomask2 |= tup.HEAP_KEYS_UPDATED
    return infomask, infomask2


def build_tuple(a: Apply, xlt_infomask2: int, xlt_infomask: int, hoff: int, data: bytes, *,
                xmin: int, cid: int, xmax: int, ctid: tuple[int, int]) -> bytes:
    """A heap tuple as redo rebuilds it: a zeroed 23-byte header with the logged infomasks
    and t_hoff, xmin = the record's xid, t_cid (vanilla: HeapTupleHeaderSetCmin, which
    clears HEAP_COMBOCID; Neon: stored as logged), xmax, ctid; then the logged bytes from
    t_bits on."""
    infomask = xlt_infomask if _neon(a) else xlt_infomask & ~tup.HEAP_COMBOCID
    return (
        struct.pack(
            "<IIIHHHHHB",
            xmin,
            xmax,
            cid,
            ctid[0] >> 16,
            ctid[0] & 0xFFFF,
            ctid[1],
            xlt_infomask2,
            infomask,
            hoff,
        )
        + data
    )


def get_mask(page: Page, pos: int) -> tuple[int, int]:
    return tup.get_u16(page.data, pos + tup.OFF_INFOMASK), tup.get_u16(
        page.data, pos + tup.OFF_INFOMASK2
    )


def set_mask(page: Page, pos: int, infomask: int, infomask2: int) -> None:
    tup.set_u16(page.data, pos + tup.OFF_INFOMASK, infomask & 0xFFFF)
    tup.set_u16(page.data, pos + tup.OFF_INFOMASK2, infomask2 & 0xFFFF)


def _set_cmax(a: Apply, page: Page, pos: int, cid: int) -> None:
    """Vanilla HeapTupleHeaderSetCmax(htup, FirstCommandId, false): t_cid = 0 and
    HEAP_COMBOCID cleared. Neon: t_cid = the logged value, infomask untouched."""
    tup.set_u32(page.data, pos + tup.OFF_CID, cid)
    if _neon(a):
        return
    infomask, infomask2 = get_mask(page, pos)
    set_mask(page, pos, infomask & ~tup.HEAP_COMBOCID, infomask2)


class _HeapFlags(Protocol):
    flags: int  # bit 0x01: XLH_*_ALL_VISIBLE_CLEARED / XLH_LOCK_ALL_FROZEN_CLEARED
    init_page: bool  # XLOG_HEAP_INIT_PAGE


def _heap_page_init(page: Page) -> None:
    page.init(0)


def heap_routine(change: Callable[[Apply, Any, Page], None], *, vm_clear_bits: int | None = None,
                 heap_init: bool = False) -> Routine:
    """The redo routine of a record kind that changes one heap page, block 0, made from what
    it changes (``change``); the wrapper does the rest, in PostgreSQL's order:

    1. ``vm_clear_bits``: when the record's ``flags & 0x01`` (the ``*_ALL_VISIBLE_CLEARED`` /
       ``ALL_FROZEN_CLEARED`` bit of every such record), ``visibilitymap_clear`` of those bits
       for block 0's heap block (a no-op unless the target is that VM page);
    2. :meth:`Apply.page_for_redo` for block 0 (``heap_init``: the record's ``init_page``
       zeroes and initializes it instead); when it needs no redo, stop;
    3. ``change`` changes the page;
    4. :meth:`Apply.done`: pd_lsn = the record's end LSN, the page is dirty.
    """

    # a partial of a module-level function rather than a closure: the routine's body is then
    # looked up when a record is applied, not fixed when the ROUTINES table is built at import
    # (what lets mutation testing reach it; behaviour is the same)
    return functools.partial(_heap_one_page, change, vm_clear_bits, heap_init)


def _heap_one_page(change: Callable[[Apply, Any, Page], None], vm_clear_bits: int | None,
                   heap_init: bool, a: Apply, body: _HeapFlags) -> None:
    """The routine :func:`heap_routine` makes (its steps are listed there)."""
    if vm_clear_bits is not None:
        b0 = a.block(0)
        if body.flags & 0x01:
            vm_clear(a, b0.blkno, vm_clear_bits)
    init = _heap_page_init if heap_init and body.init_page else None
    page = a.page_for_redo(0, init=init)
    if page is None:
        return
    change(a, body, page)
    a.done(page)


# --------------------------------------------------------------------------- heap routines


def _insert(a: Apply, body: HeapInsert, page: Page) -> None:
    b0 = a.block(0)
    if page.max_offset() + 1 < body.offnum:
        raise panic(a, "invalid max offset number")
    if body.tuple is None:
        raise a.fail(f"heap INSERT for block {b0.blkno} carries no tuple data and no image to apply")
    t = body.tuple
    item = build_tuple(a, t.t_infomask2, t.t_infomask, t.t_hoff, t.data, xmin=a.rec.xid,
                       cid=cid(t.t_cid), xmax=0, ctid=(b0.blkno, body.offnum))
    add_heap_tuple(a, page, item, body.offnum)
    if body.flags & XLH_INSERT_ALL_VISIBLE_CLEARED:
        page.clear_flag(PD_ALL_VISIBLE)
    if body.flags & XLH_INSERT_ALL_FROZEN_SET:  # implies all visible
        page.set_flag(PD_ALL_VISIBLE)


def _delete(a: Apply, body: HeapDelete, page: Page) -> None:
    b0 = a.block(0)
    pos = normal_item(a, page, body.offnum)
    infomask, infomask2 = get_mask(page, pos)
    infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
    infomask2 &= ~(tup.HEAP_KEYS_UPDATED | tup.HEAP_HOT_UPDATED)
    infomask, infomask2 = fix_infomask_from_infobits(a, body.infobits_set, infomask, infomask2)
    set_mask(page, pos, infomask, infomask2)
    if not body.flags & XLH_DELETE_IS_SUPER:
        tup.set_u32(page.data, pos + tup.OFF_XMAX, body.xmax)
    else:
        tup.set_u32(page.data, pos + tup.OFF_XMIN, 0)
    _set_cmax(a, page, pos, cid(body.t_cid))
    page.update_prune_xid(a.rec.xid)
    if body.flags & XLH_DELETE_ALL_VISIBLE_CLEARED:
        page.clear_flag(PD_ALL_VISIBLE)
    if body.flags & XLH_DELETE_IS_PARTITION_MOVE:
        tup.set_ctid(page.data, pos, _MOVED_PARTITIONS_BLOCK, _MOVED_PARTITIONS_OFFSET)
    else:
        tup.set_ctid(page.data, pos, b0.blkno, body.offnum)


def _update(a: Apply, body: HeapUpdate) -> None:
    """Two pages (or one, twice, when the new tuple stays on the old page), so the routine
    runs the per-page prologue (:meth:`Apply.page_for_redo`) and epilogue itself."""
    b0 = a.block(0)
    newblk = b0.blkno
    b1 = a.rec.block(1)
    oldblk = b1.blkno if b1 is not None else newblk
    # heap_xlog_update compares block numbers only: a block 1 that names the new tuple's block
    # number is the same page (log_heap_update never registers one, but a record may)
    same_page = oldblk == newblk
    if body.flags & XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED:
        vm_clear(a, oldblk, VISIBILITYMAP_VALID_BITS)
    opage = a.page_for_redo(0 if same_page else 1)
    old_tuple: bytes | None = None
    if opage is not None:
        pos = normal_item(a, opage, body.old_offnum)
        infomask, infomask2 = get_mask(opage, pos)
        infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
        infomask2 &= ~tup.HEAP_KEYS_UPDATED
        if body.hot:
            infomask2 |= tup.HEAP_HOT_UPDATED
        else:
            infomask2 &= ~tup.HEAP_HOT_UPDATED
        infomask, infomask2 = fix_infomask_from_infobits(a, body.old_infobits_set, infomask, infomask2)
        set_mask(opage, pos, infomask, infomask2)
        tup.set_u32(opage.data, pos + tup.OFF_XMAX, body.old_xmax)
        _set_cmax(a, opage, pos, cid(body.t_cid))
        tup.set_ctid(opage.data, pos, newblk, body.new_offnum)
        opage.update_prune_xid(a.rec.xid)
        if body.flags & XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED:
            opage.clear_flag(PD_ALL_VISIBLE)
        a.done(opage)
        old_tuple = opage.item(body.old_offnum)
    if same_page:
        npage = opage
    else:
        npage = a.page_for_redo(0, init=_heap_page_init if body.init_page else None)
    if body.flags & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED:
        vm_clear(a, newblk, VISIBILITYMAP_VALID_BITS)
    if npage is None:
        return
    if npage.max_offset() + 1 < body.new_offnum:
        raise panic(a, "invalid max offset number")
    t = body.new_tuple
    if t is None:
        raise a.fail(f"heap UPDATE for block {newblk} carries no new tuple and no image to apply")
    if (body.prefixlen or body.suffixlen) and (old_tuple is None or not same_page):
        raise a.fail("heap UPDATE with prefix/suffix from the old tuple needs the old tuple on the same page")
    data = t.data
    if body.prefixlen:
        assert old_tuple is not None
        old_hoff = old_tuple[tup.OFF_HOFF]
        head = t.t_hoff - tup.SIZEOF_HEAP_TUPLE_HEADER
        data = data[:head] + old_tuple[old_hoff : old_hoff + body.prefixlen] + data[head:]
    if body.suffixlen:
        assert old_tuple is not None
        data = data + old_tuple[len(old_tuple) - body.suffixlen :]
    item = build_tuple(a, t.t_infomask2, t.t_infomask, t.t_hoff, data, xmin=a.rec.xid,
                       cid=cid(t.t_cid), xmax=body.new_xmax, ctid=(newblk, body.new_offnum))
    add_heap_tuple(a, npage, item, body.new_offnum)
    if body.flags & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED:
        npage.clear_flag(PD_ALL_VISIBLE)
    a.done(npage)


def _xmax_is_locked_only(infomask: int) -> bool:
    return bool(infomask & tup.HEAP_XMAX_LOCK_ONLY) or (
        infomask & (tup.HEAP_XMAX_IS_MULTI | tup.HEAP_LOCK_MASK)
    ) == tup.HEAP_XMAX_EXCL_LOCK


def _lock(a: Apply, body: HeapLock, page: Page) -> None:
    b0 = a.block(0)
    pos = normal_item(a, page, body.offnum)
    infomask, infomask2 = get_mask(page, pos)
    infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
    infomask2 &= ~tup.HEAP_KEYS_UPDATED
    infomask, infomask2 = fix_infomask_from_infobits(a, body.infobits_set, infomask, infomask2)
    if _xmax_is_locked_only(infomask):
        infomask2 &= ~tup.HEAP_HOT_UPDATED
        tup.set_ctid(page.data, pos, b0.blkno, body.offnum)
    set_mask(page, pos, infomask, infomask2)
    tup.set_u32(page.data, pos + tup.OFF_XMAX, body.locking_xid)
    _set_cmax(a, page, pos, cid(body.t_cid))


def _confirm(a: Apply, body: HeapConfirm, page: Page) -> None:
    pos = normal_item(a, page, body.offnum)
    tup.set_ctid(page.data, pos, a.block(0).blkno, body.offnum)


def _inplace(a: Apply, body: HeapInplace, page: Page) -> None:
    pos = normal_item(a, page, body.offnum)
    lp = page.item_id(body.offnum)
    hoff = page.data[pos + tup.OFF_HOFF]
    oldlen = lp.len - hoff
    if oldlen != len(body.tuple_data):
        raise a.fail("wrong tuple length")
    page.data[pos + hoff : pos + hoff + oldlen] = body.tuple_data


ROUTINES: dict[type[RmgrRecord], Routine] = {
    HeapInsert: heap_routine(_insert, vm_clear_bits=VISIBILITYMAP_VALID_BITS, heap_init=True),
    HeapDelete: heap_routine(_delete, vm_clear_bits=VISIBILITYMAP_VALID_BITS),
    HeapUpdate: _update,
    # XLH_LOCK_ALL_FROZEN_CLEARED clears only the all-frozen bit
    HeapLock: heap_routine(_lock, vm_clear_bits=VISIBILITYMAP_ALL_FROZEN),
    HeapConfirm: heap_routine(_confirm),
    HeapInplace: heap_routine(_inplace),
    HeapTruncate: no_page_change,  # the SMGR records truncate; this one is for logical decoding
}
"""The redo routine of each heap record kind."""
