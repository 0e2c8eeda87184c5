"""Redo of heap2 records: MULTI_INSERT, VISIBLE, LOCK_UPDATED, NEW_CID and REWRITE (no page
change), and pruning, vacuum and freezing
(``heap_xlog_multi_insert``, ``heap_xlog_visible``, ``heap_xlog_prune``/``vacuum``/
``freeze_page`` of PostgreSQL 14-16, ``heap_xlog_prune_freeze`` of 17)."""

from __future__ import annotations

from pytest_walredo.pg import tuple as tup
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import LP_DEAD, LP_REDIRECT, LP_UNUSED, PD_ALL_VISIBLE, ItemId, Page
from pytest_walredo.pg.redo import neon
from pytest_walredo.pg.redo.buffer import Apply, Routine, no_page_change
from pytest_walredo.pg.redo.heap import (
    add_heap_tuple,
    build_tuple,
    cid,
    fix_infomask_from_infobits,
    get_mask,
    heap_routine,
    normal_item,
    set_mask,
)
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.heap2 import Heap2MultiInsert, Heap2Visible
from pytest_walredo.pg.rmgr.heap2_prune import (
    XLH_FREEZE_XVAC,
    XLH_INVALID_XVAC,
    Heap2FreezePage,
    Heap2Prune,
    Heap2Vacuum,
)
from pytest_walredo.pg.rmgr.heap2_prune17 import XLHP_CLEANUP_LOCK, XLHP_PARTS, Heap2PruneFreeze
from pytest_walredo.pg.rmgr.heap_inplace import Heap2LockUpdated
from pytest_walredo.pg.rmgr.heap_logical import Heap2NewCid, Heap2Rewrite
from pytest_walredo.pg.rmgr.heapam_xlog import XLH_INSERT_ALL_FROZEN_SET, XLH_INSERT_ALL_VISIBLE_CLEARED
from pytest_walredo.pg.visibilitymap import VISIBILITYMAP_ALL_FROZEN, VISIBILITYMAP_VALID_BITS, map_position

__all__ = ["ROUTINES"]


def _multi_insert(a: Apply, body: Heap2MultiInsert, page: Page) -> None:
    b0 = a.block(0)
    if len(body.tuples) != body.ntuples:
        raise a.fail(
            f"heap2 MULTI_INSERT for block {b0.blkno} logs {body.ntuples} tuple(s) but carries"
            f" {len(body.tuples)}"
        )
    for i, t in enumerate(body.tuples):
        offnum = i + 1 if body.init_page else body.offsets[i]
        t_cid = t.t_cid if t.t_cid is not None else cid(body.t_cid)
        item = build_tuple(a, t.t_infomask2, t.t_infomask, t.t_hoff, t.data, xmin=a.rec.xid,
                           cid=t_cid, xmax=0, ctid=(b0.blkno, offnum))
        add_heap_tuple(a, page, item, offnum)
    if body.flags & XLH_INSERT_ALL_VISIBLE_CLEARED:
        page.clear_flag(PD_ALL_VISIBLE)
    if body.flags & XLH_INSERT_ALL_FROZEN_SET:  # implies all visible
        page.set_flag(PD_ALL_VISIBLE)


def _visible(a: Apply, body: Heap2Visible) -> None:
    """``heap_xlog_visible``: block 1 (heap) gets PD_ALL_VISIBLE, without an LSN bump in
    vanilla PostgreSQL (the walredo process has neither data checksums nor wal_log_hints, so
    XLogHintBitIsNeeded() is false) and with one in Neon's fork (:mod:`.neon`); block 0 (the
    VM page) gets the bits and, when they change, pd_lsn."""
    heap_blkno = a.block(1).blkno
    page = a.page_for_redo(1)
    if page is not None:
        page.set_flag(PD_ALL_VISIBLE)
        a.done(page, set_lsn=neon.visible_sets_heap_lsn(a.flavour))
    vm = a.page_for_redo(0)
    if vm is not None:
        if vm.is_new():
            vm.init(0)
            a.done(vm, set_lsn=False)
        bits = body.flags & VISIBILITYMAP_VALID_BITS
        byte, shift = map_position(heap_blkno)
        if bits != (vm.data[byte] >> shift) & VISIBILITYMAP_VALID_BITS:
            vm.data[byte] |= bits << shift
            a.done(vm)


def _freeze_tuple(a: Apply, page: Page, offnum: int, xmax: int, infomask2: int, infomask: int,
                  frzflags: int) -> None:
    """``heap_execute_freeze_tuple``: xmax, optional xvac, both infomasks."""
    lp = page.item_id(offnum)
    pos = lp.off
    if pos + tup.SIZEOF_HEAP_TUPLE_HEADER > BLCKSZ:
        raise a.fail(f"freeze: item {offnum} {lp} does not hold a tuple header")
    tup.set_u32(page.data, pos + tup.OFF_XMAX, xmax)
    if frzflags & XLH_FREEZE_XVAC:
        tup.set_u32(page.data, pos + tup.OFF_CID, 2)  # FrozenTransactionId
    if frzflags & XLH_INVALID_XVAC:
        tup.set_u32(page.data, pos + tup.OFF_CID, 0)
    set_mask(page, pos, infomask, infomask2)


def _freeze_page(a: Apply, body: Heap2FreezePage, page: Page) -> None:
    if not body.offsets_logged and body.count:
        raise a.fail("heap2 FREEZE_PAGE carries no freeze data and no image to apply")
    for t in body.tuples:
        _freeze_tuple(a, page, t.offset, t.xmax, t.t_infomask2, t.t_infomask, t.frzflags)
    for p in body.plans:
        for off in p.offsets:
            _freeze_tuple(a, page, off, p.xmax, p.t_infomask2, p.t_infomask, p.frzflags)


def _prune_execute(page: Page, redirected: tuple[tuple[int, int], ...], dead: tuple[int, ...],
                   unused: tuple[int, ...], *, truncate_only: bool) -> None:
    """``heap_page_prune_execute``: set redirects, dead and unused line pointers, then repair
    fragmentation (or, PG17 without a cleanup lock, only truncate the line pointer array)."""
    for frm, to in redirected:
        page.set_item_id(frm, ItemId(to, LP_REDIRECT, 0))
    for off in dead:
        page.set_item_id(off, ItemId(0, LP_DEAD, 0))
    for off in unused:
        page.set_item_id(off, ItemId(0, LP_UNUSED, 0))
    if truncate_only:
        page.truncate_line_pointer_array()
    else:
        page.repair_fragmentation()


def _prune(a: Apply, body: Heap2Prune, page: Page) -> None:
    if not body.offsets_logged:
        raise a.fail("heap2 PRUNE carries no offsets and no image to apply")
    _prune_execute(page, body.redirected, body.dead, body.unused, truncate_only=False)


def _vacuum(a: Apply, body: Heap2Vacuum, page: Page) -> None:
    if not body.offsets_logged:
        raise a.fail("heap2 VACUUM carries no offsets and no image to apply")
    for off in body.unused:
        page.set_item_id(off, ItemId(0, LP_UNUSED, 0))
    page.truncate_line_pointer_array()


def _prune_freeze(a: Apply, body: Heap2PruneFreeze, page: Page) -> None:
    """PG17 ``heap_xlog_prune_freeze``."""
    if body.flags & XLHP_PARTS and not body.block_data_logged:
        raise a.fail("heap2 prune/freeze carries no block data and no image to apply")
    if body.redirected or body.dead or body.unused:
        _prune_execute(page, body.redirected, body.dead, body.unused,
                       truncate_only=not body.flags & XLHP_CLEANUP_LOCK)
    for p in body.plans:
        for off in p.offsets:
            _freeze_tuple(a, page, off, p.xmax, p.t_infomask2, p.t_infomask, p.frzflags)


def _lock_updated(a: Apply, body: Heap2LockUpdated, page: Page) -> None:
    """heap2 LOCK_UPDATED: xmax and the lock bits only (no cid, no ctid, unlike LOCK)."""
    pos = normal_item(a, page, body.offnum)
    infomask, infomask2 = get_mask(page, pos)
    infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
    infomask2 &= ~tup.HEAP_KEYS_UPDATED
    infomask, infomask2 = fix_infomask_from_infobits(a, body.infobits_set, infomask, infomask2)
    set_mask(page, pos, infomask, infomask2)
    tup.set_u32(page.data, pos + tup.OFF_XMAX, body.xmax)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    Heap2MultiInsert: heap_routine(_multi_insert, vm_clear_bits=VISIBILITYMAP_VALID_BITS, heap_init=True),
    Heap2Visible: _visible,
    Heap2FreezePage: heap_routine(_freeze_page),
    Heap2Prune: heap_routine(_prune),
    Heap2Vacuum: heap_routine(_vacuum),
    Heap2PruneFreeze: heap_routine(_prune_freeze),
    # XLH_LOCK_ALL_FROZEN_CLEARED clears only the all-frozen bit
    Heap2LockUpdated: heap_routine(_lock_updated, vm_clear_bits=VISIBILITYMAP_ALL_FROZEN),
    Heap2NewCid: no_page_change,  # logical decoding only
    # The real routine writes a logical-rewrite mapping file (pg_logical/mappings), no page.
    Heap2Rewrite: no_page_change,
}
"""The redo routine of each heap2 record kind."""
