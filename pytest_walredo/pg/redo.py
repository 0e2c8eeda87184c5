"""The redo model: apply one WAL record to one block, as Neon's walredo process does.

This is the oracle of the test suite and what the reference walredo server runs. It follows
PostgreSQL's redo routines (``xlog_redo``, ``heap_xlog_*``, ``heap2`` prune/vacuum/freeze/
visible/multi-insert, ``btree_xlog_insert``/``newroot``) for PostgreSQL 14-17 in both the
vanilla and the Neon flavour, and the walredo process's rules (``shared/walredo-behaviour.md``):

* Only the block named by (rel, fork, blkno) is touched. Like Neon's
  ``redo_read_buffer_filter``, every other block reference of the record reads as "already
  done" (``BLK_DONE``) and is skipped.
* ``XLogReadBufferForRedoExtended``: an image with BKPIMAGE_APPLY for the target block is
  restored (hole zero-filled) and pd_lsn set to the record's end LSN unless the restored page
  is new (pd_upper == 0): ``BLK_RESTORED``. Otherwise, for a block the routine initializes
  (WILL_INIT), the page is zeroed: ``BLK_NEEDS_REDO``; else the page is read and the record
  is ``BLK_DONE`` when its end LSN <= pd_lsn, ``BLK_NEEDS_REDO`` otherwise.
* pd_checksum is never recomputed.
* A block never pushed nor initialized is ``None``; reading it gives an all-zero page.

Not modelled (the walredo process does them on pages that are not the target, or they do not
show in the target page): free space map updates (``XLogRecordPageWithFreeSpace``), hot
standby conflict resolution, relcache invalidations.

Error messages are PostgreSQL's own (one line); ``RedoError.context`` is the line PostgreSQL
prints as ``CONTEXT:`` (``WAL redo at X/Y for Heap/INSERT: off: 3, flags: 0x00``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg import rmgr
from pytest_walredo.pg import tuple as tup
from pytest_walredo.pg.btree_page import (
    BT_META_SIZE,
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    BTMetaPageData,
    BTPageOpaque,
    btree_page_init,
    split_index_tuples,
)
from pytest_walredo.pg.page import (
    BLCKSZ,
    LP_DEAD,
    LP_NORMAL,
    LP_REDIRECT,
    LP_UNUSED,
    PD_ALL_VISIBLE,
    ItemId,
    Page,
    PageError,
)
from pytest_walredo.pg.version import Flavour, check_version
from pytest_walredo.pg.xlogrecord import (
    SIZE_OF_XLOG_RECORD,
    BlockRef,
    DecodedRecord,
    RecordDecodeError,
    decode_record,
)

__all__ = ["RedoError", "redo_record"]

MAIN_FORKNUM = 0
FSM_FORKNUM = 1
VISIBILITYMAP_FORKNUM = 2

# XLogRedoAction
BLK_NEEDS_REDO = 0
BLK_DONE = 1
BLK_RESTORED = 2
BLK_NOTFOUND = 3

# visibility map geometry: 2 bits per heap block after a MAXALIGNed page header
VISIBILITYMAP_ALL_VISIBLE = 0x01
VISIBILITYMAP_ALL_FROZEN = 0x02
VISIBILITYMAP_VALID_BITS = 0x03
_VM_MAPSIZE = BLCKSZ - 24
_VM_HEAPBLOCKS_PER_BYTE = 4
_VM_HEAPBLOCKS_PER_PAGE = _VM_MAPSIZE * _VM_HEAPBLOCKS_PER_BYTE

# t_ctid of a tuple moved to another partition (HeapTupleHeaderSetMovedPartitions)
_MOVED_PARTITIONS_BLOCK = 0xFFFFFFFF
_MOVED_PARTITIONS_OFFSET = 0xFFFD


class RedoError(Exception):
    """A record the model cannot apply, as the walredo process would fail on it.

    ``str(e)`` is the one-line FATAL message; ``e.context`` is the
    ``WAL redo at X/Y for RMGR/INFO: ...`` line, or None when the failure comes before the
    record is decoded.
    """

    def __init__(self, message: str, context: str | None = None) -> None:
        super().__init__(message)
        self.context = context


@dataclass(frozen=True)
class _Target:
    spcnode: int
    dbnode: int
    relnode: int
    forknum: int
    blkno: int

    def matches(self, b: BlockRef) -> bool:
        return (b.spcnode, b.dbnode, b.relnode, b.forknum, b.blkno) == (
            self.spcnode,
            self.dbnode,
            self.relnode,
            self.forknum,
            self.blkno,
        )

    def same_rel(self, b: BlockRef) -> bool:
        return (b.spcnode, b.dbnode, b.relnode) == (self.spcnode, self.dbnode, self.relnode)


class _Apply:
    """The state of applying one record: the decoded record, the typed body, and the target
    page (a working copy, created when the redo routine first reads it)."""

    def __init__(
        self,
        page: bytes | None,
        target: _Target,
        end_lsn: int,
        rec: DecodedRecord,
        body: rmgr.RmgrRecord | None,
        pg_version: int,
        flavour: Flavour,
    ) -> None:
        self.original = page
        self.target = target
        self.lsn = end_lsn
        self.rec = rec
        self.body = body
        self.version = pg_version
        self.flavour = flavour
        self.work: Page | None = None  # the target page once read
        self.dirty = False
        # Neon's heap redo (rmgr 134 in PG16/17, Neon's heapam in PG14/15) writes the logged
        # t_cid as is (HEAP_COMBOCID untouched) and restores HEAP_COMBOCID from the infobits;
        # vanilla redo goes through HeapTupleHeaderSetCmin/SetCmax, which clear it.
        self.neon_heap = rec.rmid == rmgr.RM_NEON_ID or (
            flavour is Flavour.NEON
            and pg_version <= 15
            and rec.rmid in (rmgr.RM_HEAP_ID, rmgr.RM_HEAP2_ID)
        )

    # -- errors ---------------------------------------------------------------------------------
    @property
    def context(self) -> str:
        """The CONTEXT line; built only when an error needs it (describing every record
        would cost more than applying most of them)."""
        return _context(self.rec, self.body, self.lsn, self.version, self.flavour)

    def fail(self, message: str) -> RedoError:
        return RedoError(message, self.context)

    def panic(self, message: str) -> RedoError:
        """A redo routine's own elog(PANIC): Neon's rmgr prefixes its messages."""
        if self.rec.rmid == rmgr.RM_NEON_ID:
            message = f"neon_rm_redo: {message}"
        return RedoError(message, self.context)

    # -- buffers ----------------------------------------------------------------------------------
    def _current(self) -> Page:
        if self.work is None:
            self.work = Page(self.original) if self.original is not None else Page()
        return self.work

    def block(self, block_id: int) -> BlockRef:
        b = self.rec.block(block_id)
        if b is None:
            raise self.fail(f"failed to locate backup block with ID {block_id} in WAL record")
        return b

    def has_block(self, block_id: int) -> bool:
        return self.rec.block(block_id) is not None

    def read_for_redo(self, block_id: int, *, zero: bool = False) -> tuple[int, Page | None]:
        """``XLogReadBufferForRedoExtended`` behind Neon's block filter.

        Returns (action, page): the page is the target's working copy, or None for any other
        block (skipped as ``BLK_DONE``). ``zero`` is RBM_ZERO_AND_LOCK (the caller
        initializes the page).
        """
        b = self.block(block_id)
        if not self.target.matches(b):
            return BLK_DONE, None
        willinit = b.will_init
        if willinit and not zero:
            raise self.fail(
                "block with WILL_INIT flag in WAL record must be zeroed by redo routine"
            )
        if zero and not willinit:
            raise self.fail(
                "block to be initialized in redo routine must be marked with WILL_INIT flag"
                " in the WAL record"
            )
        page = self._current()
        if b.apply_image:
            assert b.image is not None
            try:
                restored = b.image.restore_page()
            except ValueError as exc:
                raise self.fail(f"could not restore image at {format_lsn(self.lsn)}: {exc}") from None
            page.data[:] = restored
            if not page.is_new():
                page.lsn = self.lsn
            self.dirty = True
            return BLK_RESTORED, page
        if zero:
            page.data[:] = bytes(BLCKSZ)
            self.dirty = True
        if self.lsn <= page.lsn:
            return BLK_DONE, page
        return BLK_NEEDS_REDO, page

    def init_for_redo(self, block_id: int) -> Page | None:
        """``XLogInitBufferForRedo``: the zeroed target page (any image is restored first and
        then overwritten by the caller, as in PostgreSQL), or None for another block."""
        _action, page = self.read_for_redo(block_id, zero=True)
        if page is not None:
            page.data[:] = bytes(BLCKSZ)
            self.dirty = True
        return page

    def page_for_redo(self, block_id: int, *,
                      init: Callable[[Page], None] | None = None) -> Page | None:
        """The prologue every redo routine repeats for a block it changes: the target's page
        when the record must be replayed on it, else None (another block, an applied image,
        or end LSN <= pd_lsn: already done).

        ``init`` (``XLogInitBufferForRedo`` + the routine's ``PageInit``, e.g. for
        XLOG_HEAP_INIT_PAGE): the block is zeroed and ``init`` run on it, and it always needs
        redo. The epilogue is :meth:`done` after the change.
        """
        if init is not None:
            page = self.init_for_redo(block_id)
            if page is not None:
                init(page)
            return page
        action, page = self.read_for_redo(block_id)
        return page if action == BLK_NEEDS_REDO else None

    def done(self, page: Page, *, set_lsn: bool = True) -> None:
        """The redo routine changed ``page``: ``PageSetLSN`` + ``MarkBufferDirty``."""
        if set_lsn:
            page.lsn = self.lsn
        self.dirty = True

    def result(self) -> bytes | None:
        if self.work is None or not self.dirty:
            return self.original
        return self.work.to_bytes()

    # -- helpers shared by heap routines --------------------------------------------------------
    def cid(self, value: int | None) -> int:
        """The command id redo writes: Neon logs it, vanilla PostgreSQL writes FirstCommandId."""
        return 0 if value is None else value

    def normal_item(self, page: Page, offnum: int) -> int:
        """Byte position of the tuple at ``offnum``, which must be LP_NORMAL ("invalid lp")."""
        if page.max_offset() < offnum or offnum < 1:
            raise self.panic("invalid lp")
        lp = page.item_id(offnum)
        if lp.flags != LP_NORMAL:
            raise self.panic("invalid lp")
        if lp.off + lp.len > BLCKSZ or lp.len < tup.SIZEOF_HEAP_TUPLE_HEADER:
            raise self.fail(f"invalid lp: item {offnum} {lp} does not hold a tuple header")
        return lp.off

    def add_heap_tuple(self, page: Page, item: bytes, offnum: int) -> None:
        if page.max_offset() + 1 < offnum:
            raise self.panic("invalid max offset number")
        try:
            got = page.add_item(item, offnum, overwrite=True, is_heap=True)
        except PageError as exc:
            raise self.fail(str(exc)) from None
        if got == 0:
            raise self.panic("failed to add tuple")

    def vm_clear(self, heap_blkno: int, bits: int) -> None:
        """``visibilitymap_clear`` during redo: touches the VM page only when it is the
        target (the walredo process reads it outside the block filter). A new VM page is
        initialized first (``vm_readbuf``); no LSN change."""
        b0 = self.block(0)
        if not (
            self.target.forknum == VISIBILITYMAP_FORKNUM
            and self.target.same_rel(b0)
            and self.target.blkno == heap_blkno // _VM_HEAPBLOCKS_PER_PAGE
        ):
            return
        page = self._current()
        if page.is_new():
            page.init(0)
            self.dirty = True
        byte, shift = _vm_position(heap_blkno)
        if page.data[byte] & (bits << shift):
            page.data[byte] &= ~(bits << shift) & 0xFF
            self.dirty = True


def _vm_position(heap_blkno: int) -> tuple[int, int]:
    in_page = heap_blkno % _VM_HEAPBLOCKS_PER_PAGE
    return 24 + in_page // _VM_HEAPBLOCKS_PER_BYTE, (heap_blkno % _VM_HEAPBLOCKS_PER_BYTE) * 2


# --------------------------------------------------------------------------- dispatch

_Handler = Callable[[_Apply], None]
_HANDLERS: dict[type, _Handler] = {}
"""The redo routine of each typed record; filled by :func:`_redo` and :func:`_redo_block`."""

_R = TypeVar("_R", bound=rmgr.RmgrRecord)


def _redo(kind: type[_R]) -> Callable[[Callable[[_Apply, _R], None]], _Handler]:
    """Register a redo routine for records of ``kind`` (it receives the typed body)."""

    def register(routine: Callable[[_Apply, _R], None]) -> _Handler:
        def handler(a: _Apply) -> None:
            body = a.body
            assert isinstance(body, kind)
            routine(a, body)

        _HANDLERS[kind] = handler
        return handler

    return register


class _HeapFlags(Protocol):
    flags: int  # bit 0x01: XLH_*_ALL_VISIBLE_CLEARED / XLH_LOCK_ALL_FROZEN_CLEARED
    init_page: bool  # XLOG_HEAP_INIT_PAGE


def _heap_page_init(page: Page) -> None:
    page.init(0)


def _redo_block(kind: type[_R], *, vm_clear: int | None = None, heap_init: bool = False,
                ) -> Callable[[Callable[[_Apply, _R, Page], None]], _Handler]:
    """Register the redo routine of a record kind that changes one page, block 0, and say
    only what it changes: the wrapper does the rest, in PostgreSQL's order.

    1. ``vm_clear``: when the record's ``flags & 0x01``, ``visibilitymap_clear`` of those bits
       for block 0's heap block (a no-op unless the target is that VM page);
    2. :meth:`_Apply.page_for_redo` for block 0 (``heap_init``: the record's ``init_page``
       zeroes and initializes it instead); when it needs no redo, stop;
    3. the routine changes the page;
    4. :meth:`_Apply.done`: pd_lsn = the record's end LSN, the page is dirty.
    """

    def register(change: Callable[[_Apply, _R, Page], None]) -> _Handler:
        def routine(a: _Apply, body: _R) -> None:
            heap = cast(_HeapFlags, body)
            if vm_clear is not None:
                b0 = a.block(0)
                if heap.flags & 0x01:
                    a.vm_clear(b0.blkno, vm_clear)
            page = a.page_for_redo(0, init=_heap_page_init if heap_init and heap.init_page else None)
            if page is None:
                return
            change(a, body, page)
            a.done(page)

        return _redo(kind)(routine)

    return register


# --------------------------------------------------------------------------- XLOG


@_redo(rmgr.XlogFpi)
def _redo_fpi(a: _Apply, body: rmgr.XlogFpi) -> None:
    """``xlog_redo`` for XLOG_FPI / XLOG_FPI_FOR_HINT: restore every image; a block of this
    record that is not the target is skipped (Neon's filter answers BLK_DONE)."""
    for b in a.rec.blocks:
        if b.image is None:
            if not body.for_hint:
                raise a.fail("XLOG_FPI record did not contain a full-page image")
            continue
        action, _page = a.read_for_redo(b.block_id)
        if action not in (BLK_RESTORED, BLK_DONE):
            raise a.fail("unexpected XLogReadBufferForRedo result when restoring backup block")


# --------------------------------------------------------------------------- heap


# Neon's extra infobits flag for a combo command id. Its value is not in the sources we could
# read; 0x20 (the first bit after XLHL_KEYS_UPDATED) is an assumption.
XLHL_COMBOCID = 0x20


def _fix_infomask_from_infobits(a: _Apply, infobits: int, infomask: int,
                                infomask2: int) -> tuple[int, int]:
    """``fix_infomask_from_infobits``: the xmax lock bits and KEYS_UPDATED from the record's
    infobits (Neon's variant also HEAP_COMBOCID)."""
    infomask &= ~(
        tup.HEAP_XMAX_IS_MULTI
        | tup.HEAP_XMAX_LOCK_ONLY
        | tup.HEAP_XMAX_KEYSHR_LOCK
        | tup.HEAP_XMAX_EXCL_LOCK
    )
    if a.neon_heap:
        infomask &= ~tup.HEAP_COMBOCID
        if infobits & XLHL_COMBOCID:
            infomask |= tup.HEAP_COMBOCID
    infomask2 &= ~tup.HEAP_KEYS_UPDATED
    if infobits & 0x01:  # XLHL_XMAX_IS_MULTI
        infomask |= tup.HEAP_XMAX_IS_MULTI
    if infobits & 0x02:  # XLHL_XMAX_LOCK_ONLY
        infomask |= tup.HEAP_XMAX_LOCK_ONLY
    if infobits & 0x04:  # XLHL_XMAX_EXCL_LOCK
        infomask |= tup.HEAP_XMAX_EXCL_LOCK
    if infobits & 0x08:  # XLHL_XMAX_KEYSHR_LOCK
        infomask |= tup.HEAP_XMAX_KEYSHR_LOCK
    if infobits & 0x10:  # XLHL_KEYS_UPDATED
        infomask2 |= tup.HEAP_KEYS_UPDATED
    return infomask, infomask2


def _build_tuple(a: _Apply, xlt_infomask2: int, xlt_infomask: int, hoff: int, data: bytes, *,
                 xmin: int, cid: int, xmax: int, ctid: tuple[int, int]) -> bytes:
    """A heap tuple as redo rebuilds it: a zeroed 23-byte header with the logged infomasks
    and t_hoff, xmin = the record's xid, t_cid (vanilla: HeapTupleHeaderSetCmin, which
    clears HEAP_COMBOCID; Neon: stored as logged), xmax, ctid; then the logged bytes from
    t_bits on."""
    infomask = xlt_infomask if a.neon_heap else xlt_infomask & ~tup.HEAP_COMBOCID
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


def _get_mask(page: Page, pos: int) -> tuple[int, int]:
    return tup.get_u16(page.data, pos + tup.OFF_INFOMASK), tup.get_u16(
        page.data, pos + tup.OFF_INFOMASK2
    )


def _set_mask(page: Page, pos: int, infomask: int, infomask2: int) -> None:
    tup.set_u16(page.data, pos + tup.OFF_INFOMASK, infomask & 0xFFFF)
    tup.set_u16(page.data, pos + tup.OFF_INFOMASK2, infomask2 & 0xFFFF)


def _set_cmax(a: _Apply, page: Page, pos: int, cid: int) -> None:
    """Vanilla HeapTupleHeaderSetCmax(htup, FirstCommandId, false): t_cid = 0 and
    HEAP_COMBOCID cleared. Neon: t_cid = the logged value, infomask untouched."""
    tup.set_u32(page.data, pos + tup.OFF_CID, cid)
    if a.neon_heap:
        return
    infomask, infomask2 = _get_mask(page, pos)
    _set_mask(page, pos, infomask & ~tup.HEAP_COMBOCID, infomask2)


@_redo_block(rmgr.HeapInsert, vm_clear=VISIBILITYMAP_VALID_BITS, heap_init=True)
def _redo_heap_insert(a: _Apply, body: rmgr.HeapInsert, page: Page) -> None:
    b0 = a.block(0)
    if page.max_offset() + 1 < body.offnum:
        raise a.panic("invalid max offset number")
    if body.tuple is None:
        raise a.fail(f"heap INSERT for block {b0.blkno} carries no tuple data and no image to apply")
    t = body.tuple
    item = _build_tuple(a, t.t_infomask2, t.t_infomask, t.t_hoff, t.data, xmin=a.rec.xid,
                        cid=a.cid(t.t_cid), xmax=0, ctid=(b0.blkno, body.offnum))
    a.add_heap_tuple(page, item, body.offnum)
    if body.flags & 0x01:  # XLH_INSERT_ALL_VISIBLE_CLEARED
        page.clear_flag(PD_ALL_VISIBLE)
    if body.flags & 0x20:  # XLH_INSERT_ALL_FROZEN_SET implies all visible
        page.set_flag(PD_ALL_VISIBLE)


@_redo_block(rmgr.HeapDelete, vm_clear=VISIBILITYMAP_VALID_BITS)
def _redo_heap_delete(a: _Apply, body: rmgr.HeapDelete, page: Page) -> None:
    b0 = a.block(0)
    pos = a.normal_item(page, body.offnum)
    infomask, infomask2 = _get_mask(page, pos)
    infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
    infomask2 &= ~(tup.HEAP_KEYS_UPDATED | tup.HEAP_HOT_UPDATED)
    infomask, infomask2 = _fix_infomask_from_infobits(a, body.infobits_set, infomask, infomask2)
    _set_mask(page, pos, infomask, infomask2)
    if not body.flags & 0x08:  # XLH_DELETE_IS_SUPER
        tup.set_u32(page.data, pos + tup.OFF_XMAX, body.xmax)
    else:
        tup.set_u32(page.data, pos + tup.OFF_XMIN, 0)
    _set_cmax(a, page, pos, a.cid(body.t_cid))
    page.update_prune_xid(a.rec.xid)
    if body.flags & 0x01:  # XLH_DELETE_ALL_VISIBLE_CLEARED
        page.clear_flag(PD_ALL_VISIBLE)
    if body.flags & 0x10:  # XLH_DELETE_IS_PARTITION_MOVE
        tup.set_ctid(page.data, pos, _MOVED_PARTITIONS_BLOCK, _MOVED_PARTITIONS_OFFSET)
    else:
        tup.set_ctid(page.data, pos, b0.blkno, body.offnum)


@_redo(rmgr.HeapUpdate)
def _redo_heap_update(a: _Apply, body: rmgr.HeapUpdate) -> None:
    """Two pages (or one, twice, when the new tuple stays on the old page), so the routine
    runs the per-page prologue (:meth:`_Apply.page_for_redo`) and epilogue itself."""
    b0 = a.block(0)
    newblk = b0.blkno
    b1 = a.rec.block(1)
    oldblk = b1.blkno if b1 is not None else newblk
    same_page = b1 is None
    if body.flags & 0x01:  # XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED
        a.vm_clear(oldblk, VISIBILITYMAP_VALID_BITS)
    opage = a.page_for_redo(0 if same_page else 1)
    old_tuple: bytes | None = None
    if opage is not None:
        pos = a.normal_item(opage, body.old_offnum)
        infomask, infomask2 = _get_mask(opage, pos)
        infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
        infomask2 &= ~tup.HEAP_KEYS_UPDATED
        if body.hot:
            infomask2 |= tup.HEAP_HOT_UPDATED
        else:
            infomask2 &= ~tup.HEAP_HOT_UPDATED
        infomask, infomask2 = _fix_infomask_from_infobits(a, body.old_infobits_set, infomask, infomask2)
        _set_mask(opage, pos, infomask, infomask2)
        tup.set_u32(opage.data, pos + tup.OFF_XMAX, body.old_xmax)
        _set_cmax(a, opage, pos, a.cid(body.t_cid))
        tup.set_ctid(opage.data, pos, newblk, body.new_offnum)
        opage.update_prune_xid(a.rec.xid)
        if body.flags & 0x01:
            opage.clear_flag(PD_ALL_VISIBLE)
        a.done(opage)
        old_tuple = opage.item(body.old_offnum)
    if same_page:
        npage = opage
    else:
        npage = a.page_for_redo(0, init=_heap_page_init if body.init_page else None)
    if body.flags & 0x02:  # XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED
        a.vm_clear(newblk, VISIBILITYMAP_VALID_BITS)
    if npage is None:
        return
    if npage.max_offset() + 1 < body.new_offnum:
        raise a.panic("invalid max offset number")
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
    item = _build_tuple(a, t.t_infomask2, t.t_infomask, t.t_hoff, data, xmin=a.rec.xid,
                        cid=a.cid(t.t_cid), xmax=body.new_xmax, ctid=(newblk, body.new_offnum))
    a.add_heap_tuple(npage, item, body.new_offnum)
    if body.flags & 0x02:
        npage.clear_flag(PD_ALL_VISIBLE)
    a.done(npage)


def _xmax_is_locked_only(infomask: int) -> bool:
    return bool(infomask & tup.HEAP_XMAX_LOCK_ONLY) or (
        infomask & (tup.HEAP_XMAX_IS_MULTI | tup.HEAP_LOCK_MASK)
    ) == tup.HEAP_XMAX_EXCL_LOCK


@_redo_block(rmgr.HeapLock, vm_clear=VISIBILITYMAP_ALL_FROZEN)  # XLH_LOCK_ALL_FROZEN_CLEARED
def _redo_heap_lock(a: _Apply, body: rmgr.HeapLock, page: Page) -> None:
    b0 = a.block(0)
    pos = a.normal_item(page, body.offnum)
    infomask, infomask2 = _get_mask(page, pos)
    infomask &= ~(tup.HEAP_XMAX_BITS | tup.HEAP_MOVED)
    infomask2 &= ~tup.HEAP_KEYS_UPDATED
    infomask, infomask2 = _fix_infomask_from_infobits(a, body.infobits_set, infomask, infomask2)
    if _xmax_is_locked_only(infomask):
        infomask2 &= ~tup.HEAP_HOT_UPDATED
        tup.set_ctid(page.data, pos, b0.blkno, body.offnum)
    _set_mask(page, pos, infomask, infomask2)
    tup.set_u32(page.data, pos + tup.OFF_XMAX, body.locking_xid)
    _set_cmax(a, page, pos, a.cid(body.t_cid))


@_redo_block(rmgr.HeapConfirm)
def _redo_heap_confirm(a: _Apply, body: rmgr.HeapConfirm, page: Page) -> None:
    pos = a.normal_item(page, body.offnum)
    tup.set_ctid(page.data, pos, a.block(0).blkno, body.offnum)


@_redo_block(rmgr.HeapInplace)
def _redo_heap_inplace(a: _Apply, body: rmgr.HeapInplace, page: Page) -> None:
    pos = a.normal_item(page, body.offnum)
    lp = page.item_id(body.offnum)
    hoff = page.data[pos + tup.OFF_HOFF]
    oldlen = lp.len - hoff
    if oldlen != len(body.tuple_data):
        raise a.fail("wrong tuple length")
    page.data[pos + hoff : pos + hoff + oldlen] = body.tuple_data


# --------------------------------------------------------------------------- heap2


@_redo_block(rmgr.Heap2MultiInsert, vm_clear=VISIBILITYMAP_VALID_BITS, heap_init=True)
def _redo_multi_insert(a: _Apply, body: rmgr.Heap2MultiInsert, page: Page) -> None:
    b0 = a.block(0)
    if len(body.tuples) != body.ntuples:
        raise a.fail(
            f"heap2 MULTI_INSERT for block {b0.blkno} logs {body.ntuples} tuple(s) but carries"
            f" {len(body.tuples)}"
        )
    for i, t in enumerate(body.tuples):
        offnum = i + 1 if body.init_page else body.offsets[i]
        cid = t.t_cid if t.t_cid is not None else a.cid(body.t_cid)
        item = _build_tuple(a, t.t_infomask2, t.t_infomask, t.t_hoff, t.data, xmin=a.rec.xid,
                            cid=cid, xmax=0, ctid=(b0.blkno, offnum))
        a.add_heap_tuple(page, item, offnum)
    if body.flags & 0x01:  # XLH_INSERT_ALL_VISIBLE_CLEARED
        page.clear_flag(PD_ALL_VISIBLE)
    if body.flags & 0x20:  # XLH_INSERT_ALL_FROZEN_SET implies all visible
        page.set_flag(PD_ALL_VISIBLE)


@_redo(rmgr.Heap2Visible)
def _redo_visible(a: _Apply, body: rmgr.Heap2Visible) -> None:
    """``heap_xlog_visible``: block 1 (heap) gets PD_ALL_VISIBLE without an LSN bump (the
    walredo process has neither data checksums nor wal_log_hints, so XLogHintBitIsNeeded()
    is false); block 0 (the VM page) gets the bits and, when they change, pd_lsn."""
    heap_blkno = a.block(1).blkno
    page = a.page_for_redo(1)
    if page is not None:
        page.set_flag(PD_ALL_VISIBLE)
        a.done(page, set_lsn=False)
    vm = a.page_for_redo(0)
    if vm is not None:
        if vm.is_new():
            vm.init(0)
            a.done(vm, set_lsn=False)
        bits = body.flags & VISIBILITYMAP_VALID_BITS
        byte, shift = _vm_position(heap_blkno)
        if bits != (vm.data[byte] >> shift) & VISIBILITYMAP_VALID_BITS:
            vm.data[byte] |= bits << shift
            a.done(vm)


def _freeze_tuple(a: _Apply, page: Page, offnum: int, xmax: int, infomask2: int, infomask: int,
                  frzflags: int) -> None:
    """``heap_execute_freeze_tuple``: xmax, optional xvac, both infomasks."""
    lp = page.item_id(offnum)
    pos = lp.off
    if pos + tup.SIZEOF_HEAP_TUPLE_HEADER > BLCKSZ:
        raise a.fail(f"freeze: item {offnum} {lp} does not hold a tuple header")
    tup.set_u32(page.data, pos + tup.OFF_XMAX, xmax)
    if frzflags & 0x02:  # XLH_FREEZE_XVAC
        tup.set_u32(page.data, pos + tup.OFF_CID, 2)  # FrozenTransactionId
    if frzflags & 0x04:  # XLH_INVALID_XVAC
        tup.set_u32(page.data, pos + tup.OFF_CID, 0)
    _set_mask(page, pos, infomask, infomask2)


@_redo_block(rmgr.Heap2FreezePage)
def _redo_freeze_page(a: _Apply, body: rmgr.Heap2FreezePage, page: Page) -> None:
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


@_redo_block(rmgr.Heap2Prune)
def _redo_prune(a: _Apply, body: rmgr.Heap2Prune, page: Page) -> None:
    if not body.offsets_logged:
        raise a.fail("heap2 PRUNE carries no offsets and no image to apply")
    _prune_execute(page, body.redirected, body.dead, body.unused, truncate_only=False)


@_redo_block(rmgr.Heap2Vacuum)
def _redo_vacuum(a: _Apply, body: rmgr.Heap2Vacuum, page: Page) -> None:
    if not body.offsets_logged:
        raise a.fail("heap2 VACUUM carries no offsets and no image to apply")
    for off in body.unused:
        page.set_item_id(off, ItemId(0, LP_UNUSED, 0))
    page.truncate_line_pointer_array()


@_redo_block(rmgr.Heap2PruneFreeze)
def _redo_prune_freeze(a: _Apply, body: rmgr.Heap2PruneFreeze, page: Page) -> None:
    """PG17 ``heap_xlog_prune_freeze``."""
    if body.flags & _XLHP_PARTS and not body.block_data_logged:
        raise a.fail("heap2 prune/freeze carries no block data and no image to apply")
    if body.redirected or body.dead or body.unused:
        _prune_execute(page, body.redirected, body.dead, body.unused,
                       truncate_only=not body.flags & _XLHP_CLEANUP_LOCK)
    for p in body.plans:
        for off in p.offsets:
            _freeze_tuple(a, page, off, p.xmax, p.t_infomask2, p.t_infomask, p.frzflags)


_XLHP_CLEANUP_LOCK = 1 << 2
_XLHP_PARTS = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7)


# --------------------------------------------------------------------------- btree


def _bt_clear_incomplete_split(a: _Apply, block_id: int) -> None:
    page = a.page_for_redo(block_id)
    if page is not None:
        op = BTPageOpaque.unpack(page.data)
        BTPageOpaque(op.prev, op.next, op.level, op.flags & ~BTP_INCOMPLETE_SPLIT,
                     op.cycleid).write(page)
        a.done(page)


def _bt_restore_meta(a: _Apply, block_id: int, meta: rmgr.BtreeMetadata | None) -> None:
    page = a.page_for_redo(block_id, init=btree_page_init)
    if page is None:
        return
    if meta is None:
        raise a.fail(f"btree metapage block {block_id} carries no metadata")
    page.data[24 : 24 + BT_META_SIZE] = BTMetaPageData(
        version=meta.version,
        root=meta.root,
        level=meta.level,
        fastroot=meta.fastroot,
        fastlevel=meta.fastlevel,
        last_cleanup_num_delpages=meta.last_cleanup_num_delpages,
        last_cleanup_num_heap_tuples=-1.0,
        allequalimage=meta.allequalimage,
    ).pack()
    BTPageOpaque(flags=BTP_META).write(page)
    page.lower = 24 + BT_META_SIZE
    a.done(page)


@_redo(rmgr.BtreeInsert)
def _redo_btree_insert(a: _Apply, body: rmgr.BtreeInsert) -> None:
    """``btree_xlog_insert`` for INSERT_LEAF / INSERT_UPPER / INSERT_META (no posting)."""
    if body.op == 0x10 or body.op == 0x20:  # INSERT_UPPER / INSERT_META: internal page
        if a.has_block(1):
            _bt_clear_incomplete_split(a, 1)
    page = a.page_for_redo(0)
    if page is not None:
        if not body.tuple:
            raise a.fail("btree INSERT carries no index tuple and no image to apply")
        try:
            got = page.add_item(body.tuple, body.offnum)
        except PageError as exc:
            raise a.fail(str(exc)) from None
        if got == 0:
            raise a.fail("failed to add new item")
        a.done(page)
    if body.op == 0x20:
        _bt_restore_meta(a, 2, body.metadata)


@_redo(rmgr.BtreeNewroot)
def _redo_btree_newroot(a: _Apply, body: rmgr.BtreeNewroot) -> None:
    page = a.page_for_redo(0, init=btree_page_init)
    if page is not None:
        flags = BTP_ROOT | (BTP_LEAF if body.level == 0 else 0)
        BTPageOpaque(0, 0, body.level, flags, 0).write(page)
        if body.level > 0:
            try:
                items = split_index_tuples(body.tuples)
            except ValueError as exc:
                raise a.fail(f"_bt_restore_page: {exc}") from None
            n = len(items)
            for i in range(n - 1, -1, -1):
                if page.add_item(items[i], n - i) == 0:
                    raise a.fail("_bt_restore_page: cannot add item to page")
        a.done(page)
    if body.level > 0 and a.has_block(1):
        _bt_clear_incomplete_split(a, 1)
    _bt_restore_meta(a, 2, body.metadata)




def _decode_error_message(exc: RecordDecodeError, pg_version: int, end_lsn: int) -> str:
    """PostgreSQL's ``failed to decode WAL record: ...`` line. The position printed is the
    reader's ReadRecPtr: the end LSN in the PG14 walredo, still 0/0 in PG15+ (set only after
    decoding)."""
    at = format_lsn(end_lsn) if pg_version == 14 else "0/0"
    detail = exc.detail
    if exc.field == "block id" and detail.startswith("invalid block id "):
        detail = "invalid block_id " + detail[len("invalid block id ") :]
    elif exc.field == "block id" and detail.startswith("out-of-order block id "):
        detail = "out-of-order block_id " + detail[len("out-of-order block id ") :].split()[0]
    return f"failed to decode WAL record: {detail} at {at}"


def _context(rec: DecodedRecord, body: rmgr.RmgrRecord | None, end_lsn: int, pg_version: int,
             flavour: Flavour) -> str:
    name = rmgr.rmgr_name(rec.rmid)
    if body is None:
        what = f"{name}/UNKNOWN ({rec.info & 0xF0:X}): "
    else:
        what = f"{name}/{body.identify(pg_version, flavour)}: {body.describe(pg_version, flavour)}"
    return f"WAL redo at {format_lsn(end_lsn)} for {what}"


def redo_record(
    page: bytes | None,
    *,
    spcnode: int,
    dbnode: int,
    relnode: int,
    forknum: int,
    blkno: int,
    end_lsn: int,
    record: bytes,
    pg_version: int,
    flavour: Flavour,
) -> bytes | None:
    """Apply one raw XLogRecord (header included) to block (rel, fork, blkno) whose current
    content is ``page`` (None = never initialized). Returns the new page, or ``page`` itself
    when the record does not change the block. Raises :class:`RedoError`.
    """
    check_version(pg_version)
    flavour = Flavour.parse(flavour)
    if page is not None and len(page) != BLCKSZ:
        raise ValueError(f"page is {len(page)} bytes, expected {BLCKSZ}")
    if len(record) < SIZE_OF_XLOG_RECORD:
        raise RedoError("insufficient data left in message")
    (tot_len,) = struct.unpack_from("<I", record, 0)
    if tot_len != len(record):
        signed = tot_len - (1 << 32) if tot_len >= 1 << 31 else tot_len
        raise RedoError(f"mismatch between record ({signed}) and message size ({len(record)})")
    try:
        rec = decode_record(record, pg_version)
    except RecordDecodeError as exc:
        raise RedoError(_decode_error_message(exc, pg_version, end_lsn)) from None
    target = _Target(spcnode, dbnode, relnode, forknum, blkno)
    if rec.rmid not in rmgr.RMGR_NAMES:
        raise RedoError(
            f"resource manager with ID {rec.rmid} not registered (the real walredo process"
            f" crashes on this record)",
            f"WAL redo at {format_lsn(end_lsn)} for {rmgr.rmgr_name(rec.rmid)}",
        )
    try:
        body: rmgr.RmgrRecord | None = rmgr.parse(rec, pg_version, flavour)
    except rmgr.UnsupportedRecord as exc:
        return _unsupported(page, target, end_lsn, rec, pg_version, flavour, str(exc))
    except (rmgr.RmgrDecodeError, ValueError) as exc:
        raise RedoError(
            f"{rmgr.rmgr_name(rec.rmid)} record (info 0x{rec.info:02X}) is malformed: {exc}",
            _context(rec, None, end_lsn, pg_version, flavour),
        ) from None
    assert body is not None
    handler = _HANDLERS.get(type(body))
    if handler is None:
        raise RedoError(
            f"{rmgr.rmgr_name(rec.rmid)}/{body.identify(pg_version, flavour)} (info"
            f" 0x{rec.info:02X}) is not supported by the redo model",
            _context(rec, body, end_lsn, pg_version, flavour),
        )
    a = _Apply(page, target, end_lsn, rec, body, pg_version, flavour)
    try:
        handler(a)
    except PageError as exc:
        raise a.fail(str(exc)) from None
    return a.result()


def _unsupported(page: bytes | None, target: _Target, end_lsn: int, rec: DecodedRecord,
                 pg_version: int, flavour: Flavour, why: str) -> bytes | None:
    """A record of a PostgreSQL resource manager the model does not interpret.

    Its redo routine would read the target block through XLogReadBufferForRedo, so an
    applicable image for the target is restored exactly as for any record. A record none of
    whose blocks is the target cannot change it. Anything else is an error naming the
    rmgr and info.
    """
    a = _Apply(page, target, end_lsn, rec, None, pg_version, flavour)
    mine = [b for b in rec.blocks if target.matches(b)]
    if rec.rmid in (rmgr.RM_HEAP_ID, rmgr.RM_HEAP2_ID, rmgr.RM_BTREE_ID, rmgr.RM_XLOG_ID,
                    rmgr.RM_NEON_ID) or (mine and not all(b.apply_image for b in mine)):
        raise RedoError(
            f"{rmgr.rmgr_name(rec.rmid)} record info 0x{rec.info & 0xF0:02X} is not supported by"
            f" the redo model ({why})",
            a.context,
        )
    for b in mine:
        a.read_for_redo(b.block_id, zero=b.will_init)
    return a.result()
