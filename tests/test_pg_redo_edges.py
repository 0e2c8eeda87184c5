"""Edges of the heap redo routines that the record-by-record tests of test_pg_redo.py leave
open: the exact offset where PostgreSQL panics, flags a record does NOT carry (what they must
leave alone), the delete variants (super-deletion, partition move), the visibility map of
either page of an update, the "locked only" rule, Neon's logged command ids and its
HEAP_COMBOCID infobit, and the errors of line pointers that hold no tuple.

Every expected page is written from PostgreSQL's heapam.c redo routines (heap_xlog_*,
fix_infomask_from_infobits, HEAP_XMAX_IS_LOCKED_ONLY, visibilitymap_clear), never from the
model's own output.
"""

from __future__ import annotations

import struct

import pytest
from test_pg_redo import (
    COMBOCID,
    HOT_UPDATED,
    LSN,
    OLD_LSN,
    UPDATED,
    XMAX_EXCL_LOCK,
    XMAX_INVALID,
    XMAX_KEYSHR_LOCK,
    XMAX_LOCK_ONLY,
    XMIN_COMMITTED,
    N,
    block,
    heap_page,
    record,
    redo,
    tuple_bytes,
)

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.page import BLCKSZ, LP_DEAD, LP_NORMAL, LP_UNUSED, PD_ALL_VISIBLE, ItemId, Page
from pytest_walredo.pg.redo import RedoError
from pytest_walredo.pg.tuple import HeapTupleHeader

XMAX_IS_MULTI = 0x1000
VM_FORK = 2


def _context(err: pytest.ExceptionInfo[RedoError], kind: str) -> None:
    assert err.value.context is not None
    assert err.value.context.startswith(f"WAL redo at 1/2000 for Heap/{kind}: "), err.value.context


def _all_visible(page: Page) -> Page:
    page.set_flag(PD_ALL_VISIBLE)
    return page


# --------------------------------------------------------------------------- offsets and line pointers


@pytest.mark.parametrize(("offnum", "message"), [
    (3, "invalid max offset number"),  # PageGetMaxOffsetNumber(page) + 1 < offnum; one past is fine
    (1, "failed to add tuple"),  # PageAddItem(..., overwrite) refuses a used ItemId (a WARNING)
])
def test_insert_at_an_offset_it_cannot_use_panics(offnum: int, message: str) -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"a"))
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    with pytest.raises(RedoError, match=f"^{message}$") as err:
        redo(page.to_bytes(), record(rmgr.HeapInsert(offnum, 0, tup), [block(0)], xid=6))
    _context(err, "INSERT")


def test_update_two_past_the_last_line_pointer_panics() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"a"))
    new = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00b")
    body = rmgr.HeapUpdate(old_xmax=9, old_offnum=1, new_xmax=0, new_offnum=3, new_tuple=new)
    with pytest.raises(RedoError, match=r"^invalid max offset number$") as err:
        redo(page.to_bytes(), record(body, [block(0)], xid=9))
    _context(err, "UPDATE")


def test_insert_reuses_an_unused_line_pointer_at_its_offset() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"a"), tuple_bytes(xmin=3, data=b"b"))
    page.set_item_id(1, ItemId(0, LP_UNUSED, 0))
    tup = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00new")
    out = redo(page.to_bytes(), record(rmgr.HeapInsert(1, 0, tup), [block(0)], xid=6))
    assert out is not None
    got = Page(out)
    assert got.max_offset() == 2  # the free slot, not a third line pointer
    assert got.item(1) == tuple_bytes(xmin=6, ctid=(0, 1), infomask=XMAX_INVALID, data=b"new")
    assert got.item(2) == page.item(2)


def test_a_heap_page_takes_no_more_than_max_heap_tuples_per_page() -> None:
    # MaxHeapTuplesPerPage is 291 for 8 kB pages: PageAddItem refuses a 292nd line pointer on a
    # heap page although the tuple would fit
    page = Page.initialized()
    for _ in range(291):
        assert page.add_item(b"12345678")
    page.lsn = OLD_LSN
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    with pytest.raises(RedoError, match=r"^failed to add tuple$"):
        redo(page.to_bytes(), record(rmgr.HeapInsert(292, 0, tup), [block(0)], xid=6))


def test_the_ctid_of_a_tuple_beyond_block_65535_has_both_halves() -> None:
    tup = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00x")
    raw = record(rmgr.HeapInsert(1, 0, tup, init_page=True), [block(0x12345, will_init=True)], xid=6)
    out = redo(None, raw, blkno=0x12345)
    assert out is not None
    assert Page(out).item(1) == tuple_bytes(xmin=6, ctid=(0x12345, 1), infomask=XMAX_INVALID, data=b"x")
    assert HeapTupleHeader.unpack(Page(out).item(1)).ctid == (0x12345, 1)


def _lock(off: int = 1) -> rmgr.RmgrRecord:
    return rmgr.HeapLock(locking_xid=5, offnum=off)


_ON_ONE_ITEM = {
    "DELETE": lambda off: rmgr.HeapDelete(xmax=5, offnum=off),
    "UPDATE": lambda off: rmgr.HeapUpdate(old_xmax=5, old_offnum=off, new_xmax=0, new_offnum=2,
                                          new_tuple=rmgr.XlTuple(2, 0, 24, b"\x00n")),
    "HOT_UPDATE": lambda off: rmgr.HeapUpdate(old_xmax=5, old_offnum=off, new_xmax=0, new_offnum=2, hot=True,
                                              new_tuple=rmgr.XlTuple(2, 0, 24, b"\x00n")),
    "LOCK": _lock,
    "HEAP_CONFIRM": lambda off: rmgr.HeapConfirm(off),
    "INPLACE": lambda off: rmgr.HeapInplace(off, b"x"),
}


@pytest.mark.parametrize("kind", sorted(_ON_ONE_ITEM))
@pytest.mark.parametrize("what", ["past the end", "offset 0", "a dead item"])
def test_every_record_on_an_existing_tuple_refuses_an_item_that_is_no_tuple(kind: str, what: str) -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"a"))
    off = {"past the end": 2, "offset 0": 0, "a dead item": 1}[what]
    if what == "a dead item":
        page.set_item_id(1, ItemId(page.item_id(1).off, LP_DEAD, page.item_id(1).len))
    with pytest.raises(RedoError, match=r"^invalid lp$") as err:
        redo(page.to_bytes(), record(_ON_ONE_ITEM[kind](off), [block(0)], xid=5))
    _context(err, kind)


@pytest.mark.parametrize(("off", "length"), [(8180, 30), (8000, 22)])
def test_a_line_pointer_that_cannot_hold_a_tuple_header_is_an_error(off: int, length: int) -> None:
    # past the end of the page, or shorter than the 23-byte header: the model refuses to read a
    # tuple header there (PostgreSQL would read whatever lies at that spot)
    page = heap_page(tuple_bytes(xmin=3, data=b"a"))
    page.set_item_id(1, ItemId(off, LP_NORMAL, length))
    with pytest.raises(RedoError, match=r"^invalid lp: item 1 .* does not hold a tuple header$") as err:
        redo(page.to_bytes(), record(rmgr.HeapDelete(xmax=5, offnum=1), [block(0)], xid=5))
    _context(err, "DELETE")


def test_a_tuple_of_just_its_header_can_be_deleted() -> None:
    page = heap_page(tuple_bytes(xmin=3, hoff=23))
    assert page.item_id(1).len == 23
    out = redo(page.to_bytes(), record(rmgr.HeapDelete(xmax=5, offnum=1), [block(0)], xid=5))
    expected = heap_page(tuple_bytes(xmin=3, xmax=5, ctid=(0, 1), hoff=23), lsn=LSN)
    expected.prune_xid = 5
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- records without data


def test_insert_without_tuple_data_is_an_error_naming_the_block() -> None:
    raw = record(rmgr.HeapInsert(1, 0, None), [block(4)], xid=6)
    with pytest.raises(RedoError, match=r"^heap INSERT for block 4 carries no tuple data and no image to apply$"):
        redo(heap_page().to_bytes(), raw, blkno=4)


def test_update_without_a_new_tuple_is_an_error_naming_the_block() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"a"))
    body = rmgr.HeapUpdate(old_xmax=9, old_offnum=1, new_xmax=0, new_offnum=2, new_tuple=None)
    with pytest.raises(RedoError, match=r"^heap UPDATE for block 0 carries no new tuple and no image to apply$"):
        redo(page.to_bytes(), record(body, [block(0)], xid=9))


@pytest.mark.parametrize(("prefix", "suffix"), [(3, 0), (0, 3)])
def test_update_to_another_page_cannot_take_a_prefix_or_suffix_from_the_old_tuple(prefix: int, suffix: int) -> None:
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00mid")
    body = rmgr.HeapUpdate(old_xmax=30, old_offnum=1, new_xmax=0, new_offnum=1, new_tuple=new,
                           flags=(0x20 if prefix else 0) | (0x40 if suffix else 0),
                           prefixlen=prefix, suffixlen=suffix)
    raw = record(body, [block(9), block(4, block_id=1)], xid=30)
    with pytest.raises(RedoError, match=r"^heap UPDATE with prefix/suffix from the old tuple needs the old tuple"
                                        r" on the same page$"):
        redo(heap_page().to_bytes(), raw, blkno=9)


# --------------------------------------------------------------------------- flags not set


def test_insert_without_all_visible_cleared_keeps_pd_all_visible() -> None:
    page = _all_visible(heap_page())
    tup = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00x")
    out = redo(page.to_bytes(), record(rmgr.HeapInsert(1, 0, tup), [block(0)], xid=6))
    expected = _all_visible(heap_page(tuple_bytes(xmin=6, ctid=(0, 1), infomask=XMAX_INVALID, data=b"x"),
                                      lsn=LSN))
    assert out == expected.to_bytes()


def test_delete_without_all_visible_cleared_keeps_pd_all_visible() -> None:
    page = _all_visible(heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED, data=b"r")))
    out = redo(page.to_bytes(), record(rmgr.HeapDelete(xmax=7, offnum=1), [block(0)], xid=7))
    expected = _all_visible(heap_page(tuple_bytes(xmin=3, xmax=7, ctid=(0, 1), infomask=XMIN_COMMITTED,
                                                  data=b"r"), lsn=LSN))
    expected.prune_xid = 7
    assert out == expected.to_bytes()


def test_update_on_one_page_without_all_visible_cleared_keeps_pd_all_visible() -> None:
    page = _all_visible(heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED, data=b"r")))
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00s")
    body = rmgr.HeapUpdate(old_xmax=8, old_offnum=1, new_xmax=0, new_offnum=2, new_tuple=new)
    out = redo(page.to_bytes(), record(body, [block(0)], xid=8))
    assert out is not None
    assert Page(out).flags & PD_ALL_VISIBLE


@pytest.mark.parametrize("flags", [0x02, 0x03])
def test_update_new_all_visible_cleared_clears_the_new_page(flags: int) -> None:
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00moved")
    body = rmgr.HeapUpdate(old_xmax=30, old_offnum=1, new_xmax=0, new_offnum=1, flags=flags, new_tuple=new)
    raw = record(body, [block(9), block(4, block_id=1)], xid=30)
    out = redo(_all_visible(heap_page()).to_bytes(), raw, blkno=9)
    expected = heap_page(tuple_bytes(xmin=30, ctid=(9, 1), infomask=XMAX_INVALID | UPDATED, data=b"moved"),
                         lsn=LSN)
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- DELETE variants


def test_super_delete_invalidates_xmin_and_keeps_xmax() -> None:
    # XLH_DELETE_IS_SUPER (0x08): a speculative insertion killed: xmin = InvalidTransactionId,
    # xmax not set; the rest as for any delete
    page = heap_page(tuple_bytes(xmin=3, xmax=12, cid=4, ctid=(0, 1), infomask=XMIN_COMMITTED | XMAX_INVALID,
                                 data=b"spec"))
    out = redo(page.to_bytes(), record(rmgr.HeapDelete(xmax=77, offnum=1, flags=0x08), [block(0)], xid=77))
    expected = heap_page(tuple_bytes(xmin=0, xmax=12, cid=0, ctid=(0, 1), infomask=XMIN_COMMITTED, data=b"spec"),
                         lsn=LSN)
    expected.prune_xid = 77
    assert out == expected.to_bytes()


def test_delete_for_a_partition_move_marks_the_ctid_moved() -> None:
    # XLH_DELETE_IS_PARTITION_MOVE (0x10): HeapTupleHeaderSetMovedPartitions, block
    # InvalidBlockNumber and offset MovedPartitionsOffsetNumber (0xFFFD)
    page = heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED, data=b"row"))
    out = redo(page.to_bytes(), record(rmgr.HeapDelete(xmax=7, offnum=1, flags=0x10), [block(0)], xid=7))
    expected = heap_page(tuple_bytes(xmin=3, xmax=7, ctid=(0xFFFFFFFF, 0xFFFD), infomask=XMIN_COMMITTED,
                                     data=b"row"), lsn=LSN)
    expected.prune_xid = 7
    assert out == expected.to_bytes()


def test_delete_sets_the_multixact_and_key_share_bits_it_logs() -> None:
    # infobits XLHL_XMAX_IS_MULTI (0x01) | XLHL_XMAX_KEYSHR_LOCK (0x08); the other bits stay
    page = heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED | XMAX_INVALID, data=b"row"))
    out = redo(page.to_bytes(), record(rmgr.HeapDelete(xmax=7, offnum=1, infobits_set=0x09), [block(0)], xid=7))
    assert out is not None
    h = HeapTupleHeader.unpack(Page(out).item(1))
    assert h.infomask == XMIN_COMMITTED | XMAX_IS_MULTI | XMAX_KEYSHR_LOCK


# --------------------------------------------------------------------------- LOCK: HEAP_XMAX_IS_LOCKED_ONLY


@pytest.mark.parametrize(("infobits", "locked_only", "infomask"), [
    (0x02, True, XMAX_LOCK_ONLY),  # XLHL_XMAX_LOCK_ONLY alone
    (0x04, True, XMAX_EXCL_LOCK),  # an exclusive lock without a multixact: locked only
    (0x05, False, XMAX_IS_MULTI | XMAX_EXCL_LOCK),  # a multixact: may be an update
])
def test_lock_resets_the_update_chain_exactly_when_xmax_is_locked_only(infobits: int, locked_only: bool,
                                                                      infomask: int) -> None:
    page = heap_page(tuple_bytes(xmin=3, ctid=(0, 7), infomask2=2 | HOT_UPDATED, infomask=XMIN_COMMITTED,
                                 data=b"r"))
    out = redo(page.to_bytes(), record(rmgr.HeapLock(locking_xid=55, offnum=1, infobits_set=infobits),
                                       [block(0)], xid=55))
    expected = heap_page(tuple_bytes(xmin=3, xmax=55, ctid=(0, 1) if locked_only else (0, 7),
                                     infomask2=2 if locked_only else 2 | HOT_UPDATED,
                                     infomask=XMIN_COMMITTED | infomask, data=b"r"), lsn=LSN)
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- visibility map


def _vm(byte25: int = 0, byte26: int = 0) -> Page:
    vm = Page.initialized()
    vm.data[25] = byte25  # heap blocks 4-7
    vm.data[26] = byte26  # heap blocks 8-11
    vm.lsn = OLD_LSN
    return vm


def test_vm_clear_clears_only_the_bits_of_its_heap_block() -> None:
    # heap block 5: byte 25, bits 2-3; the bits of blocks 4, 6 and 7 stay as they are
    vm = _vm(byte25=0b0100_1101)
    raw = record(rmgr.HeapInsert(1, 0x01, rmgr.XlTuple(2, 0, 24, b"\x00x")), [block(5)], xid=6)
    out = redo(vm.to_bytes(), raw, fork=VM_FORK, blkno=0)
    assert out == _vm(byte25=0b0100_0001).to_bytes()


def test_vm_clear_of_a_block_mapped_to_another_vm_page_leaves_the_target() -> None:
    # heap block 5 is on VM page 0; VM page 1 (heap blocks 32672 and on) is not touched
    vm = _vm(byte25=0xFF)
    raw = record(rmgr.HeapInsert(1, 0x01, rmgr.XlTuple(2, 0, 24, b"\x00x")), [block(5)], xid=6)
    assert redo(vm.to_bytes(), raw, fork=VM_FORK, blkno=1) == vm.to_bytes()


def test_vm_clear_of_another_relation_leaves_the_target() -> None:
    vm = _vm(byte25=0xFF)
    raw = record(rmgr.HeapInsert(1, 0x01, rmgr.XlTuple(2, 0, 24, b"\x00x")), [block(5, rel=(1663, 5, 999))],
                 xid=6)
    assert redo(vm.to_bytes(), raw, fork=VM_FORK, blkno=0) == vm.to_bytes()


def test_vm_clear_on_a_never_initialized_vm_page_initializes_it() -> None:
    # vm_readbuf extends the map with a PageInit'ed page (no special space, pd_lsn 0); no bit
    # is set there, so nothing else changes
    raw = record(rmgr.HeapInsert(1, 0x01, rmgr.XlTuple(2, 0, 24, b"\x00x")), [block(5)], xid=6)
    out = redo(None, raw, fork=VM_FORK, blkno=0)
    expected = bytearray(BLCKSZ)
    struct.pack_into("<HHHH", expected, 12, 24, 8192, 8192, 0x2004)
    assert out == bytes(expected)


@pytest.mark.parametrize(("flags", "byte25", "byte26"), [
    (0x01, 0b1111_1100, 0xFF),  # OLD_ALL_VISIBLE_CLEARED: heap block 4 (byte 25, bits 0-1)
    (0x02, 0xFF, 0b1111_0011),  # NEW_ALL_VISIBLE_CLEARED: heap block 9 (byte 26, bits 2-3)
    (0x03, 0b1111_1100, 0b1111_0011),
])
def test_update_across_pages_clears_the_vm_bits_of_the_page_each_flag_names(flags: int, byte25: int,
                                                                          byte26: int) -> None:
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00moved")
    body = rmgr.HeapUpdate(old_xmax=30, old_offnum=1, new_xmax=0, new_offnum=1, flags=flags, new_tuple=new)
    raw = record(body, [block(9), block(4, block_id=1)], xid=30)
    out = redo(_vm(0xFF, 0xFF).to_bytes(), raw, fork=VM_FORK, blkno=0)
    assert out == _vm(byte25, byte26).to_bytes()


# --------------------------------------------------------------------------- Neon: logged command ids, HEAP_COMBOCID


def test_neon_update_sets_cmax_of_the_old_and_cid_of_the_new_tuple_as_logged() -> None:
    page = heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED, data=b"old"))
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00new", t_cid=7)
    body = rmgr.HeapUpdate(old_xmax=20, old_offnum=1, new_xmax=0, new_offnum=2, new_tuple=new, t_cid=6)
    out = redo(page.to_bytes(), record(body, [block(0)], v=15, fl=N, xid=20), v=15, fl=N)
    assert out is not None
    old, newer = (HeapTupleHeader.unpack(Page(out).item(i)) for i in (1, 2))
    assert (old.xmax, old.cid, newer.xmin, newer.cid) == (20, 6, 20, 7)


def test_neon_lock_sets_cmax_as_logged() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"r"))
    raw = record(rmgr.HeapLock(locking_xid=55, offnum=1, infobits_set=0x06, t_cid=9), [block(0)], v=15, fl=N,
                 xid=55)
    out = redo(page.to_bytes(), raw, v=15, fl=N)
    assert out is not None
    assert HeapTupleHeader.unpack(Page(out).item(1)).cid == 9


@pytest.mark.parametrize(("infobits", "combocid"), [(0x00, False), (0x20, True), (0x22, True)])
def test_neon_delete_takes_heap_combocid_from_the_record(infobits: int, combocid: bool) -> None:
    # Neon's fix_infomask_from_infobits clears HEAP_COMBOCID and sets it again when the record's
    # infobits carry XLHL_COMBOCID (0x20 in the model, an assumption: see redo/heap.py); the
    # other bits of the tuple stay
    page = heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED | COMBOCID, data=b"r"))
    raw = record(rmgr.HeapDelete(xmax=8, offnum=1, infobits_set=infobits, t_cid=4), [block(0)], v=15, fl=N, xid=8)
    out = redo(page.to_bytes(), raw, v=15, fl=N)
    assert out is not None
    expected = XMIN_COMMITTED | (COMBOCID if combocid else 0) | (XMAX_LOCK_ONLY if infobits & 0x02 else 0)
    assert HeapTupleHeader.unpack(Page(out).item(1)).infomask == expected


# --------------------------------------------------------------------------- heap2 MULTI_INSERT


def test_multi_insert_without_its_tuples_or_an_image_is_an_error() -> None:
    # the tuples are block 0's data, left out when an image of the block replaces it
    body = rmgr.Heap2MultiInsert(flags=0, ntuples=2, offsets=(1, 2), tuples=())
    with pytest.raises(RedoError, match=r"^heap2 MULTI_INSERT for block 3 logs 2 tuple\(s\) but carries 0$"):
        redo(heap_page().to_bytes(), record(body, [block(3)], xid=90), blkno=3)


def test_multi_insert_flags_clear_or_set_pd_all_visible() -> None:
    tuples = (rmgr.MultiInsertTuple(1, XMAX_INVALID, 24, b"\x00a"),)
    for flags, before, after in [(0x00, True, True), (0x01, True, False), (0x20, False, True)]:
        page = heap_page()
        if before:
            page.set_flag(PD_ALL_VISIBLE)
        body = rmgr.Heap2MultiInsert(flags=flags, ntuples=1, offsets=(1,), tuples=tuples)
        out = redo(page.to_bytes(), record(body, [block(0)], xid=90))
        assert out is not None
        assert bool(Page(out).flags & PD_ALL_VISIBLE) is after, flags


def test_multi_insert_beyond_the_line_pointers_panics() -> None:
    tuples = (rmgr.MultiInsertTuple(1, XMAX_INVALID, 24, b"\x00a"),)
    body = rmgr.Heap2MultiInsert(flags=0, ntuples=1, offsets=(2,), tuples=tuples)
    with pytest.raises(RedoError, match=r"^invalid max offset number$") as err:
        redo(heap_page().to_bytes(), record(body, [block(0)], xid=90))
    assert err.value.context is not None and "Heap2/MULTI_INSERT" in err.value.context


def test_neon_pg16_multi_insert_gives_every_tuple_the_records_cid() -> None:
    tuples = tuple(rmgr.MultiInsertTuple(1, XMAX_INVALID, 24, b"\x00" + bytes([65 + i])) for i in range(2))
    body = rmgr.Heap2MultiInsert(flags=0, ntuples=2, tuples=tuples, init_page=True, t_cid=12)
    out = redo(None, record(body, [block(0, will_init=True)], v=16, fl=N, xid=90), v=16, fl=N)
    assert out is not None
    assert [HeapTupleHeader.unpack(Page(out).item(i)).cid for i in (1, 2)] == [12, 12]


# --------------------------------------------------------------------------- heap2 VISIBLE


def _visible_on_vm(heap_blkno: int, flags: int, vm: Page) -> bytes | None:
    raw = record(rmgr.Heap2Visible(cutoff_xid=10, flags=flags), [block(0, fork=VM_FORK),
                                                                 block(heap_blkno, block_id=1)])
    return redo(vm.to_bytes(), raw, fork=VM_FORK)


@pytest.mark.parametrize(("heap_blkno", "before"), [
    (4, 0b0000_0101),  # block 4 (bits 0-1) already all-visible; block 5's bit above it
    (5, 0b0000_0100),  # block 5 (bits 2-3) already all-visible
])
def test_visible_with_bits_already_set_changes_nothing(heap_blkno: int, before: int) -> None:
    # visibilitymap_set changes the map (and pd_lsn) only when the block's two bits differ
    vm = _vm(byte25=before)
    assert _visible_on_vm(heap_blkno, 0x01, vm) == vm.to_bytes()


def test_visible_adds_its_bits_to_those_of_the_other_blocks() -> None:
    out = _visible_on_vm(5, 0x03, _vm(byte25=0b1100_0001))
    expected = _vm(byte25=0b1100_1101)
    expected.lsn = LSN
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- heap2 freezing


def test_freeze_without_xvac_flags_keeps_t_cid() -> None:
    # frzflags 0: xmax and the infomasks only; t_cid (t_xvac) stays
    page = heap_page(tuple_bytes(xmin=100, cid=7, data=b"a"))
    plan = rmgr.FreezePlan(xmax=0, t_infomask2=2, t_infomask=0x0300, frzflags=0, offsets=(1,))
    out = redo(page.to_bytes(), record(rmgr.Heap2FreezePage(cutoff_xid=50, count=1, plans=(plan,)), [block(0)],
                                       v=16), v=16)
    assert out == heap_page(tuple_bytes(xmin=100, cid=7, infomask=0x0300, data=b"a"), lsn=LSN).to_bytes()


def test_freeze_invalid_xvac_zeroes_t_cid_and_nothing_before_it() -> None:
    page = heap_page(tuple_bytes(xmin=100, xmax=33, cid=7, data=b"a"))
    frz = rmgr.FreezeTuple(xmax=0, offset=1, t_infomask2=2, t_infomask=0x0300, frzflags=0x04)
    out = redo(page.to_bytes(), record(rmgr.Heap2FreezePage(cutoff_xid=50, count=1, tuples=(frz,)), [block(0)],
                                       v=15), v=15)
    assert out == heap_page(tuple_bytes(xmin=100, xmax=0, cid=0, infomask=0x0300, data=b"a"), lsn=LSN).to_bytes()


@pytest.mark.parametrize("v", [15, 16, 17])
def test_freeze_of_an_item_whose_header_runs_off_the_page_is_an_error(v: int) -> None:
    page = heap_page(tuple_bytes(xmin=100, data=b"a"))
    page.set_item_id(1, ItemId(8180, LP_NORMAL, 12))
    if v == 15:
        body: rmgr.RmgrRecord = rmgr.Heap2FreezePage(cutoff_xid=50, count=1, tuples=(
            rmgr.FreezeTuple(xmax=0, offset=1, t_infomask2=2, t_infomask=0x0300, frzflags=0),))
    else:
        plan = rmgr.FreezePlan(xmax=0, t_infomask2=2, t_infomask=0x0300, frzflags=0, offsets=(1,))
        body = (rmgr.Heap2FreezePage(cutoff_xid=50, count=1, plans=(plan,)) if v == 16 else
                rmgr.Heap2PruneFreeze(op=0x20, reason=1, flags=0x10, plans=(plan,)))
    with pytest.raises(RedoError, match=r"^freeze: item 1 .* does not hold a tuple header$"):
        redo(page.to_bytes(), record(body, [block(0)], v=v), v=v)


def test_freeze_of_a_header_ending_at_the_last_byte_of_the_page() -> None:
    page = heap_page(tuple_bytes(xmin=100, data=b"a"))
    page.set_item_id(1, ItemId(8169, LP_NORMAL, 23))
    page.data[8169:8192] = tuple_bytes(xmin=100, hoff=23)
    plan = rmgr.FreezePlan(xmax=0, t_infomask2=2, t_infomask=0x0300, frzflags=0, offsets=(1,))
    out = redo(page.to_bytes(), record(rmgr.Heap2FreezePage(cutoff_xid=50, count=1, plans=(plan,)), [block(0)],
                                       v=16), v=16)
    assert out is not None
    assert Page(out).data[8169:8192] == tuple_bytes(xmin=100, infomask=0x0300, hoff=23)


def test_prune_freeze_pg17_freezes_by_plan() -> None:
    page = heap_page(tuple_bytes(xmin=100, xmax=5, cid=7, data=b"a"), tuple_bytes(xmin=101, data=b"b"),
                     tuple_bytes(xmin=102, cid=9, data=b"c"))
    plans = (rmgr.FreezePlan(xmax=0, t_infomask2=2, t_infomask=0x0300, frzflags=0x02, offsets=(1,)),
             rmgr.FreezePlan(xmax=0, t_infomask2=3, t_infomask=0x0B00, frzflags=0x04, offsets=(3,)))
    body = rmgr.Heap2PruneFreeze(op=0x20, reason=1, flags=0x10, plans=plans)
    out = redo(page.to_bytes(), record(body, [block(0)], v=17), v=17)
    expected = heap_page(tuple_bytes(xmin=100, xmax=0, cid=2, infomask=0x0300, data=b"a"),
                         tuple_bytes(xmin=101, data=b"b"),
                         tuple_bytes(xmin=102, cid=0, infomask2=3, infomask=0x0B00, data=b"c"), lsn=LSN)
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- heap2 records whose data an image replaced


def test_prune_freeze_without_parts_only_moves_pd_lsn() -> None:
    page = heap_page(tuple_bytes(xmin=100, data=b"a"))
    body = rmgr.Heap2PruneFreeze(op=0x20, reason=1, flags=0)
    out = redo(page.to_bytes(), record(body, [block(0)], v=17), v=17)
    assert out == heap_page(tuple_bytes(xmin=100, data=b"a"), lsn=LSN).to_bytes()


@pytest.mark.parametrize(("v", "body", "message"), [
    (15, rmgr.Heap2Prune(latest_removed_xid=1, nredirected=0, ndead=1, offsets_logged=False),
     "heap2 PRUNE carries no offsets and no image to apply"),
    (15, rmgr.Heap2Vacuum(nunused=1, offsets_logged=False), "heap2 VACUUM carries no offsets and no image to apply"),
    (15, rmgr.Heap2FreezePage(cutoff_xid=5, count=1, offsets_logged=False),
     "heap2 FREEZE_PAGE carries no freeze data and no image to apply"),
    (17, rmgr.Heap2PruneFreeze(op=0x20, reason=1, flags=0x80),
     "heap2 prune/freeze carries no block data and no image to apply"),
])
def test_a_heap2_record_without_its_block_data_or_an_image_is_an_error(v: int, body: rmgr.RmgrRecord,
                                                                       message: str) -> None:
    page = heap_page(tuple_bytes(xmin=100, data=b"a"))
    with pytest.raises(RedoError, match=f"^{message}$"):
        redo(page.to_bytes(), record(body, [block(0)], v=v), v=v)


def test_update_whose_block_1_names_the_new_block_is_an_update_on_one_page() -> None:
    # heap_xlog_update takes the old block from block 1 when there is one, then treats
    # oldblk == newblk as one page: both tuples on block 0's page, the prefix from the old tuple
    old = tuple_bytes(xmin=3, ctid=(0, 1), infomask=XMIN_COMMITTED | XMAX_INVALID, data=b"AAAAold")
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00new")
    body = rmgr.HeapUpdate(old_xmax=20, old_offnum=1, new_xmax=0, new_offnum=2, flags=0x20, new_tuple=new,
                           prefixlen=4)
    raw = record(body, [block(0), block(0, block_id=1)], xid=20)
    out = redo(heap_page(old).to_bytes(), raw)
    expected = heap_page(tuple_bytes(xmin=3, xmax=20, ctid=(0, 2), infomask=XMIN_COMMITTED, data=b"AAAAold"),
                         lsn=LSN)
    expected.add_item(tuple_bytes(xmin=20, ctid=(0, 2), infomask=XMAX_INVALID | UPDATED, data=b"AAAAnew"))
    expected.prune_xid = 20
    assert out == expected.to_bytes()


def test_the_offset_is_checked_before_the_tuple_data_is_read() -> None:
    # heap_xlog_insert and heap_xlog_update PANIC on the offset before they look at the data
    page = heap_page(tuple_bytes(xmin=3, data=b"a"))
    with pytest.raises(RedoError, match=r"^invalid max offset number$"):
        redo(page.to_bytes(), record(rmgr.HeapInsert(3, 0, None), [block(0)], xid=6))
    body = rmgr.HeapUpdate(old_xmax=9, old_offnum=1, new_xmax=0, new_offnum=3, new_tuple=None)
    with pytest.raises(RedoError, match=r"^invalid max offset number$"):
        redo(page.to_bytes(), record(body, [block(0)], xid=9))


def test_update_onto_a_used_line_pointer_fails_to_add_the_tuple() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"a"), tuple_bytes(xmin=3, data=b"b"))
    new = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00c")
    body = rmgr.HeapUpdate(old_xmax=9, old_offnum=1, new_xmax=0, new_offnum=2, new_tuple=new)
    with pytest.raises(RedoError, match=r"^failed to add tuple$") as err:
        redo(page.to_bytes(), record(body, [block(0)], xid=9))
    _context(err, "UPDATE")


@pytest.mark.parametrize("kind", ["INSERT", "DELETE", "LOCK"])
def test_a_record_without_its_all_visible_cleared_flag_leaves_the_vm_page(kind: str) -> None:
    vm = _vm(byte25=0xFF)
    body = {"INSERT": rmgr.HeapInsert(1, 0, rmgr.XlTuple(2, 0, 24, b"\x00x")),
            "DELETE": rmgr.HeapDelete(xmax=5, offnum=1),
            "LOCK": rmgr.HeapLock(locking_xid=5, offnum=1, infobits_set=0x06)}[kind]
    assert redo(vm.to_bytes(), record(body, [block(5)], xid=5), fork=VM_FORK, blkno=0) == vm.to_bytes()


def test_lock_all_frozen_cleared_clears_only_the_all_frozen_bit() -> None:
    # XLH_LOCK_ALL_FROZEN_CLEARED: visibilitymap_clear(..., VISIBILITYMAP_ALL_FROZEN); heap
    # block 5's all-visible bit (bit 2) stays, its all-frozen bit (bit 3) goes
    raw = record(rmgr.HeapLock(locking_xid=5, offnum=1, infobits_set=0x06, flags=0x01), [block(5)], xid=5)
    assert redo(_vm(byte25=0xFF).to_bytes(), raw, fork=VM_FORK, blkno=0) == _vm(byte25=0b1111_0111).to_bytes()


# --------------------------------------------------------------------------- framework: messages and CONTEXT lines


@pytest.mark.parametrize(("rmid", "info", "context"), [
    (11, 0xF0, "Btree/UNKNOWN (F0): "),  # xlog_outdesc's "UNKNOWN (%X)", upper case (not pg_waldump's %x)
    (12, 0xD3, "Hash/UNKNOWN (D0): "),  # the info's low bits are not part of the opcode
    (0, 0xC0, "XLOG/UNKNOWN (C0): "),
    (1, 0x00, "Transaction/UNKNOWN (0): "),
])
def test_the_context_of_a_record_of_an_unknown_opcode(rmid: int, info: int, context: str) -> None:
    raw = xr.make_record(rmid=rmid, info=info, main_data=b"\x01", blocks=[block(0)]).encode()
    with pytest.raises(RedoError) as err:
        redo(heap_page().to_bytes(), raw)
    assert err.value.context == f"WAL redo at 1/2000 for {context}"


def test_the_page_must_be_a_whole_block() -> None:
    raw = record(rmgr.HeapDelete(xmax=5, offnum=1), [block(0)], xid=5)
    with pytest.raises(ValueError, match=r"^page is 8191 bytes, expected 8192$"):
        redo(bytes(8191), raw)


def test_a_message_shorter_than_a_record_header_is_refused_before_decoding() -> None:
    with pytest.raises(RedoError, match=r"^insufficient data left in message$") as err:
        redo(None, bytes(23))
    assert err.value.context is None
    header_only = bytearray(24)
    struct.pack_into("<I", header_only, 0, 24)  # a whole header: decoded, then refused for what it holds
    with pytest.raises(RedoError) as err:
        redo(None, bytes(header_only))
    assert str(err.value) != "insufficient data left in message"


@pytest.mark.parametrize(("tot_len", "printed"), [
    (0xFFFFFFFF, -1), (0x80000000, -2147483648), (0x7FFFFFFF, 2147483647), (25, 25)])
def test_a_length_that_disagrees_with_the_message_is_printed_signed(tot_len: int, printed: int) -> None:
    # ReadRecord's "mismatch between record (%d) and message size (%d)": xl_tot_len as a C int
    raw = bytearray(record(rmgr.HeapDelete(xmax=5, offnum=1), [block(0)], xid=5))
    struct.pack_into("<I", raw, 0, tot_len)
    with pytest.raises(RedoError, match=rf"^mismatch between record \({printed}\) and message size \({len(raw)}\)$"):
        redo(heap_page().to_bytes(), bytes(raw))


def test_blocks_out_of_order_are_a_decode_failure() -> None:
    raw = bytearray(record(rmgr.Heap2Visible(cutoff_xid=10, flags=1), [block(0, fork=VM_FORK),
                                                                       block(6, block_id=1)]))
    # the block headers: ids 0 and 1 at bytes 24 and 44 (20 bytes for the first, with its
    # relation); swap them
    assert (raw[24], raw[44]) == (0, 1)
    raw[24], raw[44] = 1, 0
    with pytest.raises(RedoError, match=r"^failed to decode WAL record: out-of-order block_id 0 at 0/0$") as err:
        redo(None, bytes(raw), fork=VM_FORK)
    assert err.value.context is None


def test_an_unregistered_rmgr_names_its_id_in_the_context() -> None:
    raw = xr.make_record(rmid=77, info=0, main_data=b"xyz").encode()
    with pytest.raises(RedoError) as err:
        redo(None, raw)
    assert err.value.context == "WAL redo at 1/2000 for rmgr77"


@pytest.mark.parametrize(("rmid", "info", "message", "context"), [
    (10, 0x10, "Heap record (info 0x10) is malformed: heap DELETE needs 8 bytes at offset 0, the data has 1",
     "Heap/DELETE: "),
    (0, 0x00, "XLOG record (info 0x00) is malformed: XLOG CHECKPOINT_SHUTDOWN main data is 1 bytes, expected at"
     " least 88", "XLOG/CHECKPOINT_SHUTDOWN: "),
])
def test_a_malformed_record_is_named_from_its_info_bits(rmid: int, info: int, message: str, context: str) -> None:
    raw = xr.make_record(rmid=rmid, info=info, main_data=b"\x01", blocks=[block(0)]).encode()
    with pytest.raises(RedoError) as err:
        redo(heap_page().to_bytes(), raw)
    assert (str(err.value), err.value.context) == (message, f"WAL redo at 1/2000 for {context}")


@pytest.mark.parametrize(("v", "fl", "context"), [
    (15, "vanilla", "Heap/DELETE: off 3 flags 0x00 LOCK_ONLY KEYS_UPDATED "),
    (15, "neon", "Heap/DELETE: off 3 flags 0x00 LOCK_ONLY KEYS_UPDATED "),
    (16, "vanilla", "Heap/DELETE: xmax: 8, off: 3, infobits: [LOCK_ONLY, KEYS_UPDATED], flags: 0x00"),
    (16, "neon", "neon/DELETE: xmax: 8, off: 3, infobits: [LOCK_ONLY, KEYS_UPDATED], flags: 0x00"),
])
def test_the_context_describes_the_record_as_its_version_and_flavour_print_it(v: int, fl: str, context: str) -> None:
    flavour = N if fl == "neon" else rmgr.Flavour.VANILLA
    body = rmgr.HeapDelete(xmax=8, offnum=3, infobits_set=0x12, t_cid=4 if fl == "neon" else None)
    with pytest.raises(RedoError) as err:
        redo(heap_page().to_bytes(), record(body, [block(0)], v=v, fl=flavour, xid=8), v=v, fl=flavour)
    assert err.value.context == f"WAL redo at 1/2000 for {context}"


def test_a_kind_without_a_routine_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # every typed record has a routine today (test_record_kinds.py); a kind added without one
    # must be refused by name, not crash
    from pytest_walredo.pg import redo as redo_module

    monkeypatch.delitem(redo_module.ROUTINES, rmgr.HeapDelete)
    with pytest.raises(RedoError, match=r"^Heap/DELETE \(info 0x10\) is not supported by the redo model$") as err:
        redo(heap_page().to_bytes(), record(rmgr.HeapDelete(xmax=8, offnum=3), [block(0)], v=16, xid=8), v=16)
    assert err.value.context == "WAL redo at 1/2000 for Heap/DELETE: xmax: 8, off: 3, infobits: [], flags: 0x00"


def test_a_record_without_a_block_its_routine_needs_is_an_error() -> None:
    raw = record(rmgr.Heap2Visible(cutoff_xid=10, flags=1), [block(0, fork=VM_FORK)])
    with pytest.raises(RedoError, match=r"^failed to locate backup block with ID 1 in WAL record$") as err:
        redo(None, raw, fork=VM_FORK)
    assert err.value.context == "WAL redo at 1/2000 for Heap2/VISIBLE: snapshotConflictHorizon: 10, flags: 0x01"


def test_will_init_and_the_routines_page_initialization_must_agree() -> None:
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    with pytest.raises(RedoError, match=r"^block with WILL_INIT flag in WAL record must be zeroed by redo routine$"):
        redo(heap_page().to_bytes(), record(rmgr.HeapInsert(1, 0, tup), [block(0, will_init=True)], xid=6))
    with pytest.raises(RedoError, match=r"^block to be initialized in redo routine must be marked with WILL_INIT flag"
                                        r" in the WAL record$"):
        redo(heap_page().to_bytes(), record(rmgr.HeapInsert(1, 0, tup, init_page=True), [block(0)], xid=6))


def test_an_image_in_a_heap_record_replaces_the_page_and_the_record_is_not_replayed() -> None:
    # XLogReadBufferForRedo restores the image (BLK_RESTORED, pd_lsn := end LSN) and the
    # routine skips its own change
    image = heap_page(tuple_bytes(xmin=3, data=b"imaged"))
    ref = block(0, image=xr.ImageRef.from_page(image.to_bytes(), 17))
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    out = redo(heap_page().to_bytes(), record(rmgr.HeapInsert(2, 0, tup), [ref], xid=6))
    expected = Page(image.to_bytes())
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_an_image_that_does_not_decompress_is_an_error_naming_the_lsn() -> None:
    image = heap_page(tuple_bytes(xmin=3, data=b"z" * 400))
    good = xr.ImageRef.from_page(image.to_bytes(), 17, compression="pglz", force_compression=True)
    bad = xr.ImageRef(b"\xff" * len(good.data), good.hole_offset, good.hole_length, good.bimg_info, 17)
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    with pytest.raises(RedoError, match=r"^could not restore image at 1/2000: .+"):
        redo(heap_page().to_bytes(), record(rmgr.HeapInsert(2, 0, tup), [block(0, image=bad)], xid=6))


def test_an_unmodelled_rmgr_names_the_opcode_without_its_flag_bits() -> None:
    raw = xr.make_record(rmid=2, info=0x11, blocks=[block(0)]).encode()  # Storage, with a low flag bit
    with pytest.raises(RedoError) as err:
        redo(heap_page().to_bytes(), raw)
    assert str(err.value) == ("Storage record info 0x10 is not supported by the redo model (rmgr Storage (id 2) info"
                              " 0x10 is not supported by the model)")
    assert err.value.context == "WAL redo at 1/2000 for Storage/CREATE: "


def test_an_unmodelled_rmgr_image_of_a_will_init_block_is_restored() -> None:
    image = heap_page(tuple_bytes(data=b"new"))
    ref = block(0, will_init=True, image=xr.ImageRef.from_page(image.to_bytes(), 17))
    out = redo(None, xr.make_record(rmid=2, info=0x10, blocks=[ref], main_data=b"\x00" * 4).encode())
    expected = Page(image.to_bytes())
    expected.lsn = LSN
    assert out == expected.to_bytes()


@pytest.mark.parametrize(("v", "fl"), [(14, "vanilla"), (16, "neon")])
def test_a_record_without_a_logged_cid_clears_heap_combocid(v: int, fl: str) -> None:
    # vanilla PostgreSQL, and Neon's records in the vanilla layout (PG16+ without a t_cid go to
    # rmgr Heap), run HeapTupleHeaderSetCmin, which clears HEAP_COMBOCID
    flavour = N if fl == "neon" else rmgr.Flavour.VANILLA
    tup = rmgr.XlTuple(2, XMAX_INVALID | COMBOCID, 24, b"\x00x")
    out = redo(heap_page().to_bytes(), record(rmgr.HeapInsert(1, 0, tup), [block(0)], v=v, fl=flavour, xid=6),
               v=v, fl=flavour)
    assert out is not None
    assert HeapTupleHeader.unpack(Page(out).item(1)).infomask == XMAX_INVALID


# --------------------------------------------------------------------------- heap2 LOCK_UPDATED, VISIBLE without bits


def test_lock_updated_sets_xmax_and_the_lock_bits_and_keeps_the_rest_of_the_tuple() -> None:
    # heap_xlog_lock_updated: infomask loses HEAP_XMAX_BITS/HEAP_MOVED, infomask2 loses only
    # KEYS_UPDATED (natts and HOT_UPDATED stay), then the logged infobits; xmax set; no cid, no ctid
    page = heap_page(tuple_bytes(xmin=3, cid=4, ctid=(0, 7), infomask2=2 | HOT_UPDATED | 0x2000,
                                 infomask=XMIN_COMMITTED | XMAX_INVALID, data=b"r"))
    raw = record(rmgr.Heap2LockUpdated(xmax=77, offnum=1, infobits_set=0x08, flags=0), [block(0)], xid=77)
    out = redo(page.to_bytes(), raw)
    expected = heap_page(tuple_bytes(xmin=3, xmax=77, cid=4, ctid=(0, 7), infomask2=2 | HOT_UPDATED,
                                     infomask=XMIN_COMMITTED | XMAX_KEYSHR_LOCK, data=b"r"), lsn=LSN)
    assert out == expected.to_bytes()


def test_lock_updated_of_an_item_that_is_no_tuple_is_invalid_lp() -> None:
    raw = record(rmgr.Heap2LockUpdated(xmax=77, offnum=2, infobits_set=0x08, flags=0), [block(0)], xid=77)
    with pytest.raises(RedoError, match=r"^invalid lp$") as err:
        redo(heap_page(tuple_bytes(xmin=3, data=b"r")).to_bytes(), raw)
    assert err.value.context is not None and " for Heap2/LOCK_UPDATED: " in err.value.context


def test_visible_without_a_visibility_bit_initializes_a_new_vm_page_without_an_lsn() -> None:
    # visibilitymap_set changes nothing when the logged bits equal the block's (none here), so
    # the PageInit'ed page keeps pd_lsn 0
    raw = record(rmgr.Heap2Visible(cutoff_xid=10, flags=0), [block(0, fork=VM_FORK), block(6, block_id=1)])
    assert redo(None, raw, fork=VM_FORK) == Page.initialized().to_bytes()


def test_a_page_error_inside_a_routine_is_reported_with_the_pages_message_and_the_context() -> None:
    page = heap_page(tuple_bytes(data=b"a"), tuple_bytes(data=b"b"))
    page.upper = 20  # pd_upper below pd_lower: PageRepairFragmentation refuses the page
    with pytest.raises(Exception) as expected:  # what the page code says (test_pg_page.py)
        Page(page.to_bytes()).repair_fragmentation()
    body = rmgr.Heap2Prune(latest_removed_xid=1, nredirected=0, ndead=1, dead=(1,))
    with pytest.raises(RedoError) as err:
        redo(page.to_bytes(), record(body, [block(0)], v=15), v=15)
    assert str(err.value) == str(expected.value) == "corrupted page pointers: lower = 32, upper = 20, special = 8192"
    assert err.value.context == "WAL redo at 1/2000 for Heap2/PRUNE: latestRemovedXid 1 nredirected 0 ndead 1"
