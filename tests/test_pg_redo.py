"""The redo model, record kind by record kind, against pages built by hand.

Each expectation is written from PostgreSQL's redo routine for that record (what it writes in
the tuple header, the line pointers and the page header) with explicit bytes or the page API
(itself checked by hand in test_pg_page.py), never from the model's own output.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.corpus.builder import builtin_workload
from pytest_walredo.corpus.server import PgInstall, PgServer
from pytest_walredo.lsn import parse_lsn
from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.btree_page import BTPageOpaque
from pytest_walredo.pg.mask import masked_equal
from pytest_walredo.pg.page import (
    BLCKSZ,
    LP_DEAD,
    LP_NORMAL,
    LP_REDIRECT,
    LP_UNUSED,
    PD_ALL_VISIBLE,
    PD_HAS_FREE_LINES,
    ItemId,
    Page,
)
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.tuple import HeapTupleHeader
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.walstream import iter_wal

REL = (1663, 5, 16384)
V, N = Flavour.VANILLA, Flavour.NEON
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000  # end LSN of the record under test (not 8-aligned on purpose below)

# infomask bits used below (values from htup_details.h)
XMIN_COMMITTED, XMAX_INVALID, XMAX_EXCL_LOCK, XMAX_LOCK_ONLY = 0x0100, 0x0800, 0x0040, 0x0080
XMAX_COMMITTED, COMBOCID, UPDATED, XMAX_KEYSHR_LOCK = 0x0400, 0x0020, 0x2000, 0x0010
HOT_UPDATED, HEAP_ONLY, KEYS_UPDATED = 0x4000, 0x8000, 0x2000


def tuple_bytes(*, xmin: int = 0, xmax: int = 0, cid: int = 0, ctid: tuple[int, int] = (0, 0),
                infomask2: int = 2, infomask: int = 0, hoff: int = 24, data: bytes = b"") -> bytes:
    """A heap tuple written field by field: 23-byte header, one pad byte up to t_hoff 24."""
    head = struct.pack("<IIIHHHHHB", xmin, xmax, cid, ctid[0] >> 16, ctid[0] & 0xFFFF, ctid[1],
                       infomask2, infomask, hoff)
    return head + bytes(hoff - 23) + data


def block(blkno: int = 0, *, block_id: int = 0, fork: int = 0, will_init: bool = False,
          image: xr.ImageRef | None = None, rel: tuple[int, int, int] = REL) -> xr.BlockRef:
    return xr.make_block(block_id, rel, blkno, forknum=fork, will_init=will_init, image=image)


def record(body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], *, v: int = 17,
           fl: Flavour = V, xid: int = 0) -> bytes:
    return rmgr.build(body, blocks, pg_version=v, flavour=fl, xid=xid).encode()


def redo(page: bytes | None, raw: bytes, *, blkno: int = 0, fork: int = 0, v: int = 17,
         fl: Flavour = V, lsn: int = LSN) -> bytes | None:
    return redo_record(page, spcnode=REL[0], dbnode=REL[1], relnode=REL[2], forknum=fork,
                       blkno=blkno, end_lsn=lsn, record=raw, pg_version=v, flavour=fl)


def heap_page(*tuples: bytes, lsn: int = OLD_LSN) -> Page:
    page = Page.initialized()
    for t in tuples:
        assert page.add_item(t)
    page.lsn = lsn
    return page


def _fpi(page: bytes, blocks: list[tuple[int, bool]], v: int = 17, *, for_hint: bool = False,
         hole: bool = True) -> bytes:
    refs = [block(blkno, block_id=i,
                  image=xr.ImageRef.from_page(page, v, apply=apply, hole=hole))
            for i, (blkno, apply) in enumerate(blocks)]
    return record(rmgr.XlogFpi(for_hint), refs, v=v)


# --------------------------------------------------------------------------- record framing


def test_xl_tot_len_must_match_the_message() -> None:
    raw = bytearray(_fpi(heap_page().to_bytes(), [(0, True)]))
    struct.pack_into("<I", raw, 0, 0)
    with pytest.raises(RedoError) as err:
        redo(None, bytes(raw))
    assert str(err.value) == f"mismatch between record (0) and message size ({len(raw)})"
    assert err.value.context is None


@pytest.mark.parametrize(("v", "at"), [(14, "1/2000"), (15, "0/0"), (17, "0/0")])
def test_bad_block_id_is_a_decode_failure(v: int, at: str) -> None:
    # a header (24 bytes), then block id 64, then padding so the length is plausible
    raw = bytearray(struct.pack("<IIQBBHI", 0, 0, 0, 0, 10, 0, 0) + bytes([64, 0, 0, 0]))
    struct.pack_into("<I", raw, 0, len(raw))
    with pytest.raises(RedoError, match=rf"^failed to decode WAL record: invalid block_id 64 at {at}$"):
        redo(None, bytes(raw), v=v)


def test_unknown_rmgr_is_an_error_naming_it() -> None:
    raw = xr.make_record(rmid=77, info=0, main_data=b"xyz").encode()
    with pytest.raises(RedoError, match="resource manager with ID 77"):
        redo(None, raw)


def test_unsupported_info_names_rmgr_and_info() -> None:
    raw = xr.make_record(rmid=10, info=0x30, main_data=b"\x00" * 16).encode()  # heap TRUNCATE
    with pytest.raises(RedoError) as err:
        redo(heap_page().to_bytes(), raw)
    assert "Heap" in str(err.value) and "0x30" in str(err.value)
    assert "\n" not in str(err.value)


def test_unmodelled_rmgr_without_our_block_leaves_the_page() -> None:
    raw = xr.make_record(rmid=1, info=0x00, main_data=b"\x00" * 8).encode()  # Transaction
    base = heap_page().to_bytes()
    assert redo(base, raw) is base


def test_unmodelled_rmgr_image_for_our_block_is_restored() -> None:
    # any redo routine reads its blocks through XLogReadBufferForRedo, which restores an
    # applicable image whatever the rmgr (here Storage, rmid 2, which the model does not parse
    # and no access-method work will: a made-up record naming a block)
    image = heap_page(tuple_bytes(data=b"gin?"))
    ref = block(0, image=xr.ImageRef.from_page(image.to_bytes(), 17))
    raw = xr.make_record(rmid=2, info=0x10, blocks=[ref], main_data=b"\x00" * 4).encode()
    out = redo(None, raw)
    assert out is not None and Page(out).lsn == LSN and out[8:] == image.to_bytes()[8:]
    no_image = xr.make_record(rmid=2, info=0x10, blocks=[block(0)]).encode()
    with pytest.raises(RedoError, match="Storage record info 0x10 is not supported"):
        redo(image.to_bytes(), no_image)


# --------------------------------------------------------------------------- full-page images


@pytest.mark.parametrize("v", [14, 15, 16, 17])
@pytest.mark.parametrize("hole", [True, False])
def test_fpi_is_restored_with_pd_lsn_set(v: int, hole: bool) -> None:
    image = heap_page(tuple_bytes(data=b"row"), lsn=0x5)
    image.checksum = 0xABCD
    out = redo(None, _fpi(image.to_bytes(), [(0, True)], v, hole=hole), v=v)
    # the image as logged, only pd_lsn replaced by the end LSN; pd_checksum passes through
    expected = Page(image.to_bytes())
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_fpi_for_hint_behaves_the_same() -> None:
    image = heap_page(tuple_bytes(data=b"x"))
    out = redo(None, _fpi(image.to_bytes(), [(0, True)], for_hint=True))
    assert out is not None and Page(out).lsn == LSN and out[8:] == image.to_bytes()[8:]


def test_fpi_of_a_new_page_keeps_pd_lsn() -> None:
    # an all-zero image (pd_upper 0) stays all zero: PostgreSQL does not stamp new pages
    out = redo(heap_page().to_bytes(), _fpi(bytes(BLCKSZ), [(0, True)], hole=False))
    assert out == bytes(BLCKSZ)


def test_fpi_of_other_blocks_is_skipped() -> None:
    image = heap_page(tuple_bytes(data=b"other"))
    base = heap_page().to_bytes()
    raw = _fpi(image.to_bytes(), [(3, True), (4, True)])
    assert redo(base, raw, blkno=0) is base
    assert redo(base, raw, blkno=0, fork=1) is base
    out = redo(base, raw, blkno=4)
    assert out is not None and out[8:] == image.to_bytes()[8:]


def test_fpi_without_apply_is_an_error_unless_already_applied() -> None:
    image = heap_page(tuple_bytes(data=b"x")).to_bytes()
    raw = _fpi(image, [(0, False)])
    with pytest.raises(RedoError, match=r"^unexpected XLogReadBufferForRedo result") as err:
        redo(heap_page().to_bytes(), raw)
    assert err.value.context == "WAL redo at 1/2000 for XLOG/FPI: "
    newer = heap_page(lsn=LSN + 1).to_bytes()
    assert redo(newer, raw) is newer


def test_a_record_older_than_the_page_changes_nothing() -> None:
    base = heap_page(lsn=LSN).to_bytes()  # end LSN == pd_lsn: already applied
    tup = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00" + b"abcd")
    raw = record(rmgr.HeapInsert(1, 0, tup), [block(0)], xid=900)
    assert redo(base, raw) is base


# --------------------------------------------------------------------------- heap INSERT


def test_insert_init_page_onto_nothing() -> None:
    # the behaviour doc's example: a 32-byte tuple on a fresh page at block 7
    data = b"\x00" + b"D" * 8  # pad byte to t_hoff 24, then 8 data bytes: 23 + 9 = 32
    tup = rmgr.XlTuple(2, XMAX_INVALID, 24, data)
    raw = record(rmgr.HeapInsert(1, 0, tup, init_page=True), [block(7, will_init=True)], xid=733)
    out = redo(None, raw, blkno=7)
    expected = bytearray(BLCKSZ)
    struct.pack_into("<IIHHHHHHI", expected, 0, LSN >> 32, LSN & 0xFFFFFFFF, 0, 0, 28, 8160,
                     8192, 0x2004, 0)
    struct.pack_into("<I", expected, 24, 8160 | LP_NORMAL << 15 | 32 << 17)
    expected[8160:8192] = tuple_bytes(xmin=733, ctid=(7, 1), infomask2=2, infomask=XMAX_INVALID,
                                      data=b"D" * 8)
    assert out == bytes(expected)


@pytest.mark.parametrize(("v", "rmid"), [(14, 10), (15, 10), (16, 134), (17, 134)])
def test_neon_insert_sets_t_cid_as_logged(v: int, rmid: int) -> None:
    tup = rmgr.XlTuple(1, 0x0800, 24, b"\x00" + b"abcdefgh", t_cid=5)
    rec = rmgr.build(rmgr.HeapInsert(1, 0, tup, init_page=True, t_cid=5),
                     [block(0, will_init=True)], pg_version=v, flavour=N, xid=42)
    assert rec.rmid == rmid
    out = redo(None, rec.encode(), v=v, fl=N)
    assert out is not None
    h = HeapTupleHeader.unpack(Page(out).item(1))
    assert (h.xmin, h.xmax, h.cid, h.ctid) == (42, 0, 5, (0, 1))


@pytest.mark.parametrize("v", [15, 17])
def test_neon_insert_keeps_combocid_and_all_frozen_sets_all_visible(v: int) -> None:
    # Neon stores t_cid as logged (no HeapTupleHeaderSetCmin), so HEAP_COMBOCID stays;
    # XLH_INSERT_ALL_FROZEN_SET (0x20) sets PD_ALL_VISIBLE
    tup = rmgr.XlTuple(2, XMAX_INVALID | COMBOCID, 24, b"\x00ab", t_cid=11)
    raw = record(rmgr.HeapInsert(1, 0x20, tup, t_cid=11), [block(0)], v=v, fl=N, xid=6)
    out = redo(heap_page().to_bytes(), raw, v=v, fl=N)
    expected = heap_page(tuple_bytes(xmin=6, cid=11, ctid=(0, 1),
                                     infomask=XMAX_INVALID | COMBOCID, data=b"ab"), lsn=LSN)
    expected.set_flag(PD_ALL_VISIBLE)
    assert out == expected.to_bytes()


def test_neon_rmgr_panics_carry_its_prefix() -> None:
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x", t_cid=0)
    raw = record(rmgr.HeapInsert(3, 0, tup, t_cid=0), [block(0)], v=16, fl=N, xid=6)
    with pytest.raises(RedoError, match=r"^neon_rm_redo: invalid max offset number$") as err:
        redo(heap_page().to_bytes(), raw, v=16, fl=N)
    assert err.value.context is not None and " for neon/INSERT" in err.value.context


def test_insert_at_an_offset_clears_combocid_and_all_visible() -> None:
    page = heap_page(tuple_bytes(xmin=5, data=b"first"))
    page.set_flag(PD_ALL_VISIBLE)
    # XLH_INSERT_ALL_VISIBLE_CLEARED (0x01); the logged infomask has COMBOCID, which
    # HeapTupleHeaderSetCmin clears
    tup = rmgr.XlTuple(2, XMAX_INVALID | COMBOCID, 24, b"\x00" + b"second")
    raw = record(rmgr.HeapInsert(2, 0x01, tup), [block(0)], xid=6)
    out = redo(page.to_bytes(), raw)
    expected = Page(page.to_bytes())
    expected.add_item(tuple_bytes(xmin=6, ctid=(0, 2), infomask=XMAX_INVALID, data=b"second"))
    expected.clear_flag(PD_ALL_VISIBLE)
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_insert_clears_the_visibility_map_bits_when_the_vm_page_is_the_target() -> None:
    # heap block 5 -> VM block 0, byte 24 + 5 // 4 = 25, bits at (5 % 4) * 2 = 2
    vm = Page.initialized()
    vm.data[25] = 0b1111_1111
    vm.lsn = OLD_LSN
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    raw = record(rmgr.HeapInsert(1, 0x01, tup), [block(5)], xid=6)
    out = redo(vm.to_bytes(), raw, fork=2, blkno=0)
    expected = Page(vm.to_bytes())
    expected.data[25] = 0b1111_0011  # no LSN change for a VM clear
    assert out == expected.to_bytes()


def test_insert_beyond_the_line_pointers_panics() -> None:
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    raw = record(rmgr.HeapInsert(3, 0, tup), [block(0)], xid=6)
    with pytest.raises(RedoError, match=r"^invalid max offset number$") as err:
        redo(heap_page().to_bytes(), raw)
    assert err.value.context == "WAL redo at 1/2000 for Heap/INSERT: off: 3, flags: 0x00"


def test_insert_onto_a_never_initialized_page_fails_like_postgres() -> None:
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    raw = record(rmgr.HeapInsert(1, 0, tup), [block(0)], xid=6)
    with pytest.raises(RedoError, match="corrupted page pointers: lower = 0, upper = 0"):
        redo(None, raw)


# --------------------------------------------------------------------------- INPLACE, DELETE


def test_inplace_overwrites_the_data_after_t_hoff() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"old!"))
    raw = record(rmgr.HeapInplace(1, b"new!"), [block(0)])
    out = redo(page.to_bytes(), raw)
    expected = Page(page.to_bytes())
    expected.data[8192 - 32 + 24 : 8192 - 32 + 28] = b"new!"  # tuple at 8160, data at +24
    expected.lsn = LSN
    assert out == expected.to_bytes()
    with pytest.raises(RedoError, match=r"^wrong tuple length$"):
        redo(page.to_bytes(), record(rmgr.HeapInplace(1, b"longer"), [block(0)]))


def test_delete_sets_xmax_cid_ctid_and_prune_xid() -> None:
    page = heap_page(tuple_bytes(xmin=3, cid=9, infomask2=2 | HOT_UPDATED | KEYS_UPDATED,
                                 infomask=XMIN_COMMITTED | XMAX_INVALID, data=b"row"))
    page.set_flag(PD_ALL_VISIBLE)
    # infobits KEYS_UPDATED (0x10); flags ALL_VISIBLE_CLEARED (0x01)
    raw = record(rmgr.HeapDelete(xmax=77, offnum=1, infobits_set=0x10, flags=0x01), [block(0)],
                 xid=77)
    out = redo(page.to_bytes(), raw)
    expected = heap_page(tuple_bytes(xmin=3, xmax=77, cid=0, ctid=(0, 1),
                                     infomask2=2 | KEYS_UPDATED, infomask=XMIN_COMMITTED,
                                     data=b"row"), lsn=LSN)
    expected.prune_xid = 77
    assert out == expected.to_bytes()


def test_neon_delete_sets_cmax_from_the_record() -> None:
    page = heap_page(tuple_bytes(xmin=3, data=b"row"))
    raw = record(rmgr.HeapDelete(xmax=8, offnum=1, t_cid=4), [block(0)], v=15, fl=N, xid=8)
    out = redo(page.to_bytes(), raw, v=15, fl=N)
    assert out is not None
    assert HeapTupleHeader.unpack(Page(out).item(1)).cid == 4


def test_delete_of_a_missing_item_is_invalid_lp() -> None:
    raw = record(rmgr.HeapDelete(xmax=8, offnum=2), [block(0)], xid=8)
    with pytest.raises(RedoError, match=r"^invalid lp$"):
        redo(heap_page(tuple_bytes(data=b"x")).to_bytes(), raw)


# --------------------------------------------------------------------------- UPDATE


def test_hot_update_on_one_page() -> None:
    old = tuple_bytes(xmin=3, ctid=(0, 1), infomask=XMIN_COMMITTED | XMAX_INVALID,
                      data=b"AAAAmiddleZZZZ")
    page = heap_page(old)
    # new tuple: 4-byte prefix and 4-byte suffix taken from the old tuple's data
    new = rmgr.XlTuple(2 | HEAP_ONLY, XMAX_INVALID | UPDATED, 24, b"\x00" + b"CENTRE")
    body = rmgr.HeapUpdate(old_xmax=20, old_offnum=1, new_xmax=0, new_offnum=2, hot=True,
                           flags=0x20 | 0x40, new_tuple=new, prefixlen=4, suffixlen=4)
    out = redo(page.to_bytes(), record(body, [block(0)], xid=20))
    expected = heap_page(tuple_bytes(xmin=3, xmax=20, ctid=(0, 2), infomask2=2 | HOT_UPDATED,
                                     infomask=XMIN_COMMITTED, data=b"AAAAmiddleZZZZ"), lsn=LSN)
    expected.add_item(tuple_bytes(xmin=20, ctid=(0, 2), infomask2=2 | HEAP_ONLY,
                                  infomask=XMAX_INVALID | UPDATED, data=b"AAAACENTREZZZZ"))
    expected.prune_xid = 20
    assert out == expected.to_bytes()


def _cross_page_update() -> tuple[bytes, Page, Page]:
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00" + b"moved")
    body = rmgr.HeapUpdate(old_xmax=30, old_offnum=1, new_xmax=0, new_offnum=1,
                           old_infobits_set=0, flags=0x01, new_tuple=new)
    raw = record(body, [block(9), block(4, block_id=1)], xid=30)
    old_page = heap_page(tuple_bytes(xmin=3, infomask=XMIN_COMMITTED, data=b"before"))
    old_page.set_flag(PD_ALL_VISIBLE)
    new_page = heap_page()
    return raw, old_page, new_page


def test_update_across_pages_targets_the_old_block() -> None:
    raw, old_page, _ = _cross_page_update()
    out = redo(old_page.to_bytes(), raw, blkno=4)
    expected = heap_page(tuple_bytes(xmin=3, xmax=30, ctid=(9, 1), infomask=XMIN_COMMITTED,
                                     data=b"before"), lsn=LSN)
    expected.prune_xid = 30  # OLD_ALL_VISIBLE_CLEARED (0x01) cleared PD_ALL_VISIBLE
    assert out == expected.to_bytes()


def test_update_across_pages_targets_the_new_block() -> None:
    raw, _, new_page = _cross_page_update()
    out = redo(new_page.to_bytes(), raw, blkno=9)
    expected = heap_page(tuple_bytes(xmin=30, ctid=(9, 1), infomask=XMAX_INVALID | UPDATED,
                                     data=b"moved"), lsn=LSN)
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- LOCK, CONFIRM


def test_lock_only_resets_ctid_and_hot_flag() -> None:
    page = heap_page(tuple_bytes(xmin=3, ctid=(0, 7), infomask2=2 | HOT_UPDATED,
                                 infomask=XMIN_COMMITTED | XMAX_INVALID | XMAX_COMMITTED,
                                 data=b"r"))
    # infobits LOCK_ONLY (0x02) | EXCL_LOCK (0x04)
    raw = record(rmgr.HeapLock(locking_xid=55, offnum=1, infobits_set=0x06), [block(0)], xid=55)
    out = redo(page.to_bytes(), raw)
    expected = heap_page(tuple_bytes(xmin=3, xmax=55, ctid=(0, 1), infomask2=2,
                                     infomask=XMIN_COMMITTED | XMAX_LOCK_ONLY | XMAX_EXCL_LOCK,
                                     data=b"r"), lsn=LSN)
    assert out == expected.to_bytes()


def test_key_share_lock_keeps_the_update_chain() -> None:
    # KEYSHR_LOCK alone (0x08) without LOCK_ONLY is not "locked only": ctid/HOT stay
    page = heap_page(tuple_bytes(xmin=3, ctid=(0, 7), infomask2=2 | HOT_UPDATED, data=b"r"))
    raw = record(rmgr.HeapLock(locking_xid=56, offnum=1, infobits_set=0x08), [block(0)])
    out = redo(page.to_bytes(), raw)
    expected = heap_page(tuple_bytes(xmin=3, xmax=56, ctid=(0, 7), infomask2=2 | HOT_UPDATED,
                                     infomask=XMAX_KEYSHR_LOCK, data=b"r"), lsn=LSN)
    assert out == expected.to_bytes()


def test_confirm_replaces_the_speculative_token() -> None:
    page = heap_page(tuple_bytes(xmin=3, ctid=(0xDEAD, 0xFFFE), data=b"spec"))
    out = redo(page.to_bytes(), record(rmgr.HeapConfirm(1), [block(0)]))
    assert out == heap_page(tuple_bytes(xmin=3, ctid=(0, 1), data=b"spec"), lsn=LSN).to_bytes()


# --------------------------------------------------------------------------- HEAP2


def test_multi_insert_init_page() -> None:
    tuples = tuple(rmgr.MultiInsertTuple(1, XMAX_INVALID, 24, b"\x00" + bytes([65 + i]) * (i + 1))
                   for i in range(3))
    body = rmgr.Heap2MultiInsert(flags=0, ntuples=3, tuples=tuples, init_page=True)
    out = redo(None, record(body, [block(2, will_init=True)], xid=90), blkno=2)
    expected = Page.initialized()
    for i in range(3):
        expected.add_item(tuple_bytes(xmin=90, ctid=(2, i + 1), infomask2=1,
                                      infomask=XMAX_INVALID, data=bytes([65 + i]) * (i + 1)))
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_multi_insert_neon_pg14_cid_per_tuple() -> None:
    tuples = (rmgr.MultiInsertTuple(1, 0, 24, b"\x00q", t_cid=3),)
    body = rmgr.Heap2MultiInsert(flags=0, ntuples=1, offsets=(2,), tuples=tuples)
    page = heap_page(tuple_bytes(data=b"p"))
    out = redo(page.to_bytes(), record(body, [block(0)], v=14, fl=N, xid=91), v=14, fl=N)
    assert out is not None
    assert HeapTupleHeader.unpack(Page(out).item(2)).cid == 3


def test_visible_sets_the_heap_flag_without_moving_pd_lsn() -> None:
    page = heap_page(tuple_bytes(data=b"v"))
    raw = record(rmgr.Heap2Visible(cutoff_xid=10, flags=0x03),
                 [block(0, fork=2), block(0, block_id=1)])
    out = redo(page.to_bytes(), raw)
    expected = Page(page.to_bytes())
    expected.set_flag(PD_ALL_VISIBLE)
    assert out == expected.to_bytes()


def test_visible_sets_vm_bits_and_lsn_on_the_vm_page() -> None:
    # heap block 6 -> byte 24 + 1, shift (6 % 4) * 2 = 4; a never-initialized VM page is
    # PageInit'ed first
    raw = record(rmgr.Heap2Visible(cutoff_xid=10, flags=0x01),
                 [block(0, fork=2), block(6, block_id=1)])
    out = redo(None, raw, fork=2)
    expected = Page.initialized()
    expected.data[25] = 0x01 << 4
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_freeze_page_pg15_tuples() -> None:
    page = heap_page(tuple_bytes(xmin=100, xmax=0, cid=7, data=b"a"),
                     tuple_bytes(xmin=101, data=b"b"))
    frz = rmgr.FreezeTuple(xmax=0, offset=2, t_infomask2=2, t_infomask=XMIN_COMMITTED | 0x0200,
                           frzflags=0x04)  # XLH_INVALID_XVAC: t_xvac := 0
    body = rmgr.Heap2FreezePage(cutoff_xid=50, count=1, tuples=(frz,))
    out = redo(page.to_bytes(), record(body, [block(0)], v=15), v=15)
    expected = heap_page(tuple_bytes(xmin=100, cid=7, data=b"a"),
                         tuple_bytes(xmin=101, cid=0, infomask=0x0300, data=b"b"), lsn=LSN)
    assert out == expected.to_bytes()


def test_freeze_page_pg16_plans() -> None:
    page = heap_page(tuple_bytes(xmin=100, data=b"a"), tuple_bytes(xmin=101, data=b"b"))
    plan = rmgr.FreezePlan(xmax=0, t_infomask2=2, t_infomask=0x0300, frzflags=0x02,
                           offsets=(1, 2))  # XLH_FREEZE_XVAC: t_xvac := FrozenTransactionId
    body = rmgr.Heap2FreezePage(cutoff_xid=50, count=1, plans=(plan,))
    out = redo(page.to_bytes(), record(body, [block(0)], v=16), v=16)
    expected = heap_page(tuple_bytes(xmin=100, cid=2, infomask=0x0300, data=b"a"),
                         tuple_bytes(xmin=101, cid=2, infomask=0x0300, data=b"b"), lsn=LSN)
    assert out == expected.to_bytes()


def _five_tuple_page() -> Page:
    return heap_page(*(tuple_bytes(xmin=200 + i, data=bytes([48 + i]) * 8) for i in range(5)))


def test_prune_pg15_redirect_dead_unused_then_compact() -> None:
    page = _five_tuple_page()  # tuples at 8160, 8128, 8096, 8064, 8032 (32 bytes each)
    body = rmgr.Heap2Prune(latest_removed_xid=1, nredirected=1, ndead=1, redirected=((1, 3),),
                           dead=(2,), unused=(5,))
    out = redo(page.to_bytes(), record(body, [block(0)], v=15), v=15)
    assert out is not None
    got = Page(out)
    # items 3 and 4 keep storage and move up to 8160 and 8128; lp 5 (trailing, unused) is
    # truncated away; no unused line pointers remain
    assert [got.item_id(i) for i in range(1, 5)] == [
        ItemId(3, LP_REDIRECT, 0), ItemId(0, LP_DEAD, 0),
        ItemId(8160, LP_NORMAL, 32), ItemId(8128, LP_NORMAL, 32)]
    assert (got.lower, got.upper, got.lsn) == (40, 8128, LSN)
    assert got.item(3) == page.item(3) and got.item(4) == page.item(4)
    assert not got.flags & PD_HAS_FREE_LINES


def test_vacuum_pg15_marks_unused_and_truncates() -> None:
    page = _five_tuple_page()
    for off in (2, 5):
        page.set_item_id(off, ItemId(0, LP_DEAD, 0))
    body = rmgr.Heap2Vacuum(nunused=2, unused=(2, 5))
    out = redo(page.to_bytes(), record(body, [block(0)], v=15), v=15)
    expected = Page(page.to_bytes())
    expected.set_item_id(2, ItemId(0, LP_UNUSED, 0))
    expected.set_item_id(5, ItemId(0, LP_UNUSED, 0))  # zeroed, then cut off by pd_lower
    expected.lower = 24 + 4 * 4  # lp 5 dropped, lp 2 stays unused
    expected.set_flag(PD_HAS_FREE_LINES)
    expected.lsn = LSN
    assert out == expected.to_bytes()


@pytest.mark.parametrize("cleanup_lock", [True, False])
def test_prune_freeze_pg17(cleanup_lock: bool) -> None:
    page = _five_tuple_page()
    page.set_item_id(4, ItemId(0, LP_DEAD, 0))
    flags = 0x80 | (0x04 if cleanup_lock else 0)  # HAS_NOW_UNUSED_ITEMS [| CLEANUP_LOCK]
    body = rmgr.Heap2PruneFreeze(op=0x20, reason=1, flags=flags, unused=(4,))
    out = redo(page.to_bytes(), record(body, [block(0)], v=17), v=17)
    expected = Page(page.to_bytes())
    expected.set_item_id(4, ItemId(0, LP_UNUSED, 0))
    expected.set_flag(PD_HAS_FREE_LINES)
    if cleanup_lock:  # PageRepairFragmentation: item 5 moves up next to item 3
        expected.set_item_id(5, ItemId(8064, LP_NORMAL, 32))
        expected.data[8064:8096] = page.item(5)
        expected.upper = 8064
    expected.lsn = LSN  # without a cleanup lock only the (non-trailing) array is kept
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- BTREE


def _itup(blk: int, off: int, key: bytes) -> bytes:
    size = 8 + len(key)
    return struct.pack("<HHHH", blk >> 16, blk & 0xFFFF, off, size) + key


def test_btree_insert_leaf_shifts_line_pointers() -> None:
    page = Page.initialized(16)
    BTPageOpaque(flags=0x01).write(page)
    page.add_item(_itup(0, 1, b"\x01\x00\x00\x00\x00\x00\x00\x00"))
    page.lsn = OLD_LSN
    new = _itup(0, 2, b"\x00" * 8)
    out = redo(page.to_bytes(), record(rmgr.BtreeInsert(1, new), [block(0)]))
    expected = Page(page.to_bytes())
    # PageAddItem without overwrite at offset 1: the old item becomes offset 2
    expected.set_item_id(2, expected.item_id(1))
    expected.set_item_id(1, ItemId(8176 - 16 - 16, LP_NORMAL, 16))
    expected.data[8144:8160] = new
    expected.lower, expected.upper, expected.lsn = 32, 8144, LSN
    assert out == expected.to_bytes()


def test_btree_newroot_level_1_and_metapage() -> None:
    # the root's tuple area as logged: item 2 (lower address) then item 1 (higher)
    items = [_itup(1, 1, b""), _itup(2, 1, b"\x05\x00\x00\x00\x00\x00\x00\x00")]
    area = items[1] + items[0]
    meta = rmgr.BtreeMetadata(version=4, root=3, level=1, fastroot=3, fastlevel=1,
                              last_cleanup_num_delpages=0, allequalimage=True)
    body = rmgr.BtreeNewroot(rootblk=3, level=1, tuples=area, metadata=meta)
    raw = record(body, [block(3, will_init=True), block(1, block_id=1),
                        block(0, block_id=2, will_init=True)])
    root = redo(None, raw, blkno=3)
    expected = Page.initialized(16)
    expected.add_item(items[0])
    expected.add_item(items[1])
    BTPageOpaque(0, 0, 1, 0x02, 0).write(expected)  # BTP_ROOT, internal
    expected.lsn = LSN
    assert root == expected.to_bytes()
    metapage = redo(None, raw, blkno=0)
    m = Page.initialized(16)
    m.data[24:72] = struct.pack("<IIIIIII4xd?7x", 0x053162, 4, 3, 1, 3, 1, 0, -1.0, True)
    BTPageOpaque(flags=0x08).write(m)  # BTP_META
    m.lower, m.lsn = 72, LSN
    assert metapage == m.to_bytes()


def test_btree_newroot_leaf_level() -> None:
    body = rmgr.BtreeNewroot(rootblk=1, level=0, metadata=rmgr.BtreeMetadata(4, 1, 0, 1, 0))
    raw = record(body, [block(1, will_init=True), block(0, block_id=2, will_init=True)])
    out = redo(None, raw, blkno=1)
    expected = Page.initialized(16)
    BTPageOpaque(0, 0, 0, 0x03, 0).write(expected)  # ROOT | LEAF
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_will_init_must_match_the_redo_routine() -> None:
    tup = rmgr.XlTuple(2, 0, 24, b"\x00x")
    raw = record(rmgr.HeapInsert(1, 0, tup), [block(0, will_init=True)], xid=6)
    with pytest.raises(RedoError, match="WILL_INIT flag in WAL record must be zeroed"):
        redo(heap_page().to_bytes(), raw)


# --------------------------------------------------------------------------- robustness


def _sample_records() -> list[tuple[bytes, int, Flavour]]:
    tup = rmgr.XlTuple(2, XMAX_INVALID, 24, b"\x00" + b"abcdefgh")
    plan = rmgr.FreezePlan(xmax=0, t_infomask2=2, t_infomask=0x0300, frzflags=0, offsets=(1,))
    return [
        (record(rmgr.HeapInsert(2, 0, tup), [block(0)], xid=5), 17, V),
        (record(rmgr.HeapDelete(xmax=8, offnum=1), [block(0)], xid=8), 17, V),
        (record(rmgr.HeapUpdate(old_xmax=9, old_offnum=1, new_xmax=0, new_offnum=2, hot=True,
                                new_tuple=tup), [block(0)], xid=9), 17, V),
        (record(rmgr.HeapLock(locking_xid=9, offnum=1, infobits_set=6), [block(0)]), 17, V),
        (record(rmgr.HeapInplace(1, b"x" * 8), [block(0)]), 17, V),
        (record(rmgr.Heap2Prune(latest_removed_xid=1, nredirected=0, ndead=1, dead=(1,)),
                [block(0)], v=15), 15, V),
        (record(rmgr.Heap2FreezePage(cutoff_xid=1, count=1, plans=(plan,)), [block(0)], v=16),
         16, V),
        (record(rmgr.BtreeInsert(1, _itup(0, 1, b"k" * 8)), [block(0)]), 17, V),
        (_fpi(heap_page(tuple_bytes(data=b"z")).to_bytes(), [(0, True)]), 17, V),
    ]


def _mutations() -> st.SearchStrategy[tuple[int, list[tuple[int, int]], bool]]:
    return st.tuples(st.integers(0, 8), st.lists(st.tuples(st.integers(0, 400),
                                                           st.integers(0, 255)), max_size=4),
                     st.booleans())


@settings(max_examples=300, deadline=None)
@given(_mutations())
def test_corrupted_records_fail_cleanly(m: tuple[int, list[tuple[int, int]], bool]) -> None:
    """Any byte flips in a valid record (xl_tot_len kept consistent) give a page or a
    RedoError: never another exception, which the reference server would report as a bug."""
    which, flips, keep_len = m
    raw, v, fl = _sample_records()[which]
    buf = bytearray(raw)
    for pos, val in flips:
        if pos < len(buf):
            buf[pos] = val
    if keep_len:
        struct.pack_into("<I", buf, 0, len(buf))
    base = heap_page(tuple_bytes(xmin=3, data=b"01234567")).to_bytes()
    try:
        out = redo(base, bytes(buf), v=v, fl=fl)
    except RedoError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert out is None or len(out) == BLCKSZ


# --------------------------------------------------------------------------- real PostgreSQL 15 WAL


SNAPSHOT = "-- snapshot"  # checkpoint and copy the relation files here
BTREE_WORKLOAD = "-- btree workload"  # run pytest_walredo/corpus/workloads/btree.sql here
WORKLOAD = [
    "CREATE TABLE t (a int, b text) WITH (fillfactor = 70)",
    "CREATE TABLE s (a int)",
    "CREATE INDEX s_a ON s (a)",
    "INSERT INTO s SELECT (g * 7919) % 300 FROM generate_series(1, 300) g",
    "INSERT INTO t SELECT g, repeat('x', g % 50) FROM generate_series(1, 2000) g",
    "UPDATE t SET b = b || 'y' WHERE a % 7 = 0",  # HOT updates: fillfactor leaves room
    "UPDATE t SET a = a + 100000 WHERE a % 11 = 0",
    "DELETE FROM t WHERE a % 5 = 0",
    "BEGIN; SELECT * FROM t WHERE a % 13 = 0 FOR UPDATE; COMMIT",
    # A second session updates rows and stays open; locking the old versions FOR KEY SHARE
    # (compatible with its no-key update) follows the update chain: heap2 LOCK_UPDATED.
    "CREATE EXTENSION dblink",
    "SELECT dblink_connect('other', 'host={sock} port=5432 user=postgres dbname=postgres');"
    " SELECT dblink_exec('other', 'BEGIN');"
    " SELECT dblink_exec('other', 'UPDATE t SET b = b || ''u'' WHERE a % 17 = 0');"
    " SELECT count(*) FROM (SELECT * FROM t WHERE a % 17 = 0 FOR KEY SHARE) s;"
    " SELECT dblink_exec('other', 'COMMIT'); SELECT dblink_disconnect('other')",
    BTREE_WORKLOAD,  # every btree record kind (the corpus builder's btree workload)
    SNAPSHOT,  # HOT chains, deleted and locked tuples still on the pages
    "SELECT count(*) FROM t",  # on-access pruning
    "VACUUM (TRUNCATE false) t",
    "VACUUM (FREEZE, TRUNCATE false) t",
    "COPY t FROM PROGRAM 'seq 1 500 | sed s/$/,z/' WITH (FORMAT csv)",  # multi-insert
    "INSERT INTO t VALUES (1, 'after vacuum')",  # clears all-visible / VM bits
    SNAPSHOT,
]
RELATIONS = ("t", "s_a", "bt_wide_k", "bt_dup_a", "bt_dup_b")
"""The relations whose pages are compared: the heap and the indexes."""


@dataclass(frozen=True)
class _RealRun:
    db: int
    rels: dict[str, int]  # relation name -> filenode
    records: list[tuple[int, bytes]]  # (end LSN, raw record) of the workload's segment
    # (LSN, {(relnode, fork): file bytes}) taken by a CHECKPOINT at that LSN
    snapshots: list[tuple[int, dict[tuple[int, int], bytes]]]

    @property
    def heap(self) -> int:
        return self.rels["t"]


@pytest.fixture(scope="module")
def pg15_run(pg15_install: PgInstall) -> _RealRun:
    """Run WORKLOAD on a real PostgreSQL 15 (a throwaway server of pytest_walredo.corpus.server:
    unix socket, as ``nobody`` when root) in a fresh WAL segment, checkpoint and stop it."""
    server = PgServer(pg15_install, settings={"autovacuum": "off", "max_wal_size": "'1GB'"},
                      prefix="walredo-pg15wal-")
    try:
        server.start()
        if not pg15_install.has_extension_library("dblink"):
            pytest.skip("PostgreSQL 15's dblink extension is not installed")
        server.sql("CHECKPOINT")
        server.sql("SELECT pg_switch_wal()")  # the workload starts a fresh segment
        first = server.sql("SELECT pg_current_wal_insert_lsn()")
        snapshots: list[tuple[int, dict[tuple[int, int], bytes]]] = []
        for query in WORKLOAD:
            if query == BTREE_WORKLOAD:
                server.run_file(builtin_workload("btree"))
                continue
            if query != SNAPSHOT:
                server.sql(query.replace("{sock}", str(server.socket_dir)))
                continue
            db = int(server.sql("SELECT oid FROM pg_database WHERE datname = 'postgres'"))
            rels = {r: int(server.sql(f"SELECT pg_relation_filenode('{r}')")) for r in RELATIONS}
            lsn = parse_lsn(server.sql("SELECT pg_current_wal_insert_lsn()"))
            server.sql("CHECKPOINT")  # autovacuum is off: nothing else changes the relations
            files = {}
            for rel in rels.values():
                for fork, suffix in ((0, ""), (2, "_vm")):
                    path = server.data_dir / "base" / str(db) / f"{rel}{suffix}"
                    if path.exists():
                        files[(rel, fork)] = path.read_bytes()
            snapshots.append((lsn, files))
        server.stop()
        segs = sorted(p for p in (server.data_dir / "pg_wal").iterdir() if len(p.name) == 24)
        start = parse_lsn(first)
        seg_size = segs[0].stat().st_size
        numbered = ((int(p.name[8:16], 16) * (2**32 // seg_size) + int(p.name[16:], 16), p) for p in segs)
        written = [w for w in iter_wal(((n, p.read_bytes()) for n, p in numbered if n >= start // seg_size),
                                       pg_version=15, seg_size=seg_size) if w.start >= start]
    finally:
        server.stop()
        server.cleanup()
    # The primary stamps pages with the MAXALIGNed end of the record (XLogInsert's EndPos),
    # which is also what Neon's WAL decoder hands to walredo.
    records = [((w.end + 7) & ~7, w.raw) for w in written]
    return _RealRun(db, rels, records, snapshots)


def _replay_relation(run: _RealRun, relnode: int,
                     upto: int) -> tuple[dict[tuple[int, int], bytes], Counter[str]]:
    """Redo, block by block, every record touching ``relnode`` that ends by ``upto``; heap
    records also go to visibility map block 0 (their ALL_VISIBLE_CLEARED flags clear its
    bits)."""
    pages: dict[tuple[int, int], bytes | None] = {}
    kinds: Counter[str] = Counter()
    for end, raw in run.records:
        if end > upto:
            break
        d = xr.decode_record(raw, 15)
        keys = [(b.forknum, b.blkno) for b in d.blocks if b.rel == (1663, run.db, relnode)]
        if not keys:
            continue
        kinds[str(rmgr.describe_record(d, 15)).split(" ")[1] + f"@{rmgr.rmgr_name(d.rmid)}"] += 1
        if d.rmid in (rmgr.RM_HEAP_ID, rmgr.RM_HEAP2_ID):
            keys.append((2, 0))
        for fork, blk in dict.fromkeys(keys):
            if fork == 1:
                continue  # the free space map is not modelled
            pages[(fork, blk)] = redo_record(
                pages.get((fork, blk)), spcnode=1663, dbnode=run.db, relnode=relnode,
                forknum=fork, blkno=blk, end_lsn=end, record=raw, pg_version=15, flavour=V)
    return {k: v if v is not None else bytes(BLCKSZ) for k, v in pages.items()}, kinds


def _compare(run: _RealRun, relnode: int, *, heap: bool) -> Counter[str]:
    """At each snapshot, every page the model rebuilt equals the server's (masked)."""
    kinds: Counter[str] = Counter()
    for lsn, files in run.snapshots:
        pages, kinds = _replay_relation(run, relnode, lsn)
        assert len(pages) >= 2
        for (fork, blk), got in sorted(pages.items()):
            # a block (or fork) the server never wrote reads as zeros, like an untouched page
            disk = files.get((relnode, fork), b"")[blk * BLCKSZ : (blk + 1) * BLCKSZ]
            disk = disk or bytes(BLCKSZ)
            # what PostgreSQL's own consistency checking ignores (pg/mask): heap_mask for heap
            # pages, btree_mask for index pages; visibility-map pages byte for byte except
            # pd_lsn and pd_checksum, as the heap mask would hide their whole bitmap
            rule = ("Heap" if heap else "Btree") if fork == 0 else None
            if rule is None:
                assert got[10:] == disk[10:], (lsn, fork, blk)
            else:
                assert masked_equal(got, disk, rule, blk), (lsn, fork, blk)
    return kinds  # of the last (complete) replay


@pytest.mark.needs_postgres
def test_model_reproduces_postgres15_heap_and_vm_pages(pg15_run: _RealRun) -> None:
    kinds = _compare(pg15_run, pg15_run.heap, heap=True)
    for kind in ("INSERT@Heap", "INSERT+INIT@Heap", "HOT_UPDATE@Heap", "DELETE@Heap",
                 "LOCK@Heap", "PRUNE@Heap2", "VACUUM@Heap2", "FREEZE_PAGE@Heap2",
                 "VISIBLE@Heap2", "MULTI_INSERT@Heap2", "LOCK_UPDATED@Heap2"):
        assert kinds[kind] > 0, (kind, kinds)


@pytest.mark.needs_postgres
def test_model_reproduces_postgres15_btree_pages(pg15_run: _RealRun) -> None:
    kinds: Counter[str] = Counter()
    for rel in RELATIONS[1:]:
        kinds.update(_compare(pg15_run, pg15_run.rels[rel], heap=False))
    assert kinds["INSERT_LEAF@Btree"] > 300 and kinds["NEWROOT@Btree"] > 0, kinds
    for kind in ("INSERT_UPPER", "SPLIT_L", "SPLIT_R", "DEDUP", "INSERT_POST", "DELETE", "VACUUM",
                 "MARK_PAGE_HALFDEAD", "UNLINK_PAGE", "META_CLEANUP"):
        assert kinds[f"{kind}@Btree"] > 0, (kind, kinds)
