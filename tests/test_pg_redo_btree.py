"""Redo of the btree records beyond inserts and new roots, heap2 LOCK_UPDATED and the records
that change no page, on pages built by hand: each expected page is written out field by field
from PostgreSQL's redo routines (nbtxlog.c, nbtdedup.c, heapam.c), and Neon's differences
(the split's right page cycle id, VISIBLE's pd_lsn) are checked against vanilla's."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.btree_page import BTP_HAS_GARBAGE, BTP_INCOMPLETE_SPLIT, BTP_LEAF, BTPageOpaque
from pytest_walredo.pg.btree_posting import (
    BT_IS_POSTING,
    INDEX_ALT_TID_MASK,
    form_posting,
    heap_tids,
    is_posting,
    swap_posting,
    update_posting,
)
from pytest_walredo.pg.page import PD_ALL_VISIBLE, Page
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.version import Flavour

REL = (1663, 5, 16384)
V, N = Flavour.VANILLA, Flavour.NEON
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000


def itup(key: int, tid: tuple[int, int] = (1, 1)) -> bytes:
    """A 16-byte leaf tuple: heap TID, t_info 16, an 8-byte key."""
    blk, off = tid
    return struct.pack("<HHHHq", blk >> 16, blk & 0xFFFF, off, 16, key)


def key_of(tup: bytes) -> int:
    return int(struct.unpack_from("<q", tup, 8)[0])


def leaf(keys: list[int], *, nxt: int = 0, prev: int = 0, hikey: int | None = None, flags: int = BTP_LEAF,
         cycleid: int = 0, tids: list[tuple[int, int]] | None = None) -> Page:
    """A leaf: the high key first unless rightmost (``nxt`` 0), then the keys in order."""
    page = Page.initialized(16)
    BTPageOpaque(prev, nxt, 0, flags, cycleid).write(page)
    if nxt:
        page.add_item(itup(hikey if hikey is not None else max(keys) + 1))
    for i, k in enumerate(keys):
        page.add_item(itup(k, tids[i] if tids else (1, i + 1)))
    page.lsn = OLD_LSN
    return page


def items(page: Page) -> list[bytes]:
    return [page.item(o) for o in range(1, page.max_offset() + 1)]


def block(blkno: int, *, block_id: int, will_init: bool = False, image: xr.ImageRef | None = None) -> xr.BlockRef:
    return xr.make_block(block_id, REL, blkno, will_init=will_init, image=image)


def record(body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], *, v: int = 17, fl: Flavour = V) -> bytes:
    return rmgr.build(body, blocks, pg_version=v, flavour=fl).encode()


def redo(page: Page | bytes | None, raw: bytes, *, blkno: int = 0, v: int = 17, fl: Flavour = V,
         fork: int = 0) -> Page:
    data = page.to_bytes() if isinstance(page, Page) else page
    out = redo_record(data, spcnode=REL[0], dbnode=REL[1], relnode=REL[2], forknum=fork, blkno=blkno,
                      end_lsn=LSN, record=raw, pg_version=v, flavour=fl)
    return Page(out) if out is not None else Page()


def right_area(tuples: list[bytes]) -> bytes:
    """A right page's tuple area as a split logs it: highest item number first."""
    return b"".join(reversed(tuples))


# --------------------------------------------------------------------------- split


def _split(onleft: bool, *, v: int = 17, fl: Flavour = V, left_image: xr.ImageRef | None = None,
           cycleid: int = 0) -> tuple[Page, bytes, list[bytes], bytes]:
    """A rightmost leaf with keys 10..60 (items 1..6) splits after key 30: the new item 35
    (SPLIT_R, offset 4 goes right) or 25 (SPLIT_L, offset 3 stays left). Blocks: left 5, right
    9, no right sibling."""
    orig = leaf([10, 20, 30, 40, 50, 60], cycleid=cycleid)
    new = itup(25 if onleft else 35, (2, 7))
    firstright = 4  # item 4 (key 40) is the first that moves right
    right = [itup(40, (1, 4)), itup(50, (1, 5)), itup(60, (1, 6))]
    if not onleft:
        right.insert(0, new)
    hikey = itup(key_of(right[0]), (0, 0))  # the left page's new high key: the right page's first
    body = rmgr.BtreeSplit(0, firstright, 3 if onleft else 4, 0, onleft, new if onleft else b"", hikey,
                           right_area(right))
    raw = record(body, [block(5, block_id=0, image=left_image), block(9, block_id=1, will_init=True)], v=v, fl=fl)
    return orig, raw, right, hikey


@pytest.mark.parametrize("onleft", [True, False])
def test_split_leaf_rebuilds_both_halves(onleft: bool) -> None:
    orig, raw, right, hikey = _split(onleft)
    left = redo(orig, raw, blkno=5)
    keys = [key_of(t) for t in items(left)[1:]]
    assert items(left)[0] == hikey
    assert keys == ([10, 20, 25, 30] if onleft else [10, 20, 30])
    op = BTPageOpaque.unpack(left.data)
    assert (op.prev, op.next, op.level, op.flags, op.cycleid) == (0, 9, 0, BTP_INCOMPLETE_SPLIT | BTP_LEAF, 0)
    assert left.lsn == LSN and left.flags == 0
    rpage = redo(None, raw, blkno=9)
    assert items(rpage) == right  # rightmost: no high key on the new right page
    assert BTPageOpaque.unpack(rpage.data) == BTPageOpaque(5, 0, 0, BTP_LEAF, 0)
    assert rpage.lsn == LSN
    # the union holds every old tuple and the new one, in key order
    union = [key_of(t) for t in items(left)[1:] + items(rpage)]
    assert union == sorted([10, 20, 30, 40, 50, 60, 25 if onleft else 35])


def test_split_left_page_is_a_fresh_page_in_item_order() -> None:
    """The left half is built on an initialized copy (PageGetTempPageCopySpecial): the tuples lie
    in item order from pd_special down, stale bytes and pd_flags are gone."""
    orig, raw, _right, _hikey = _split(True)
    orig.data[2000:2100] = b"\xAA" * 100  # garbage in free space
    orig.flags = 0x0002
    left = redo(orig, raw, blkno=5)
    assert bytes(left.data[2000:2100]) == bytes(100) and left.flags == 0
    assert [left.item_id(o).off for o in range(1, 6)] == [8160, 8144, 8128, 8112, 8096]


def test_split_internal_clears_the_childs_incomplete_split_and_moves_the_next_pages_prev() -> None:
    hikey = itup(30, (0, 0))
    body = rmgr.BtreeSplit(1, 3, 2, 0, True, itup(15, (0, 0)), hikey, right_area([itup(30), itup(40)]))
    raw = record(body, [block(5, block_id=0), block(9, block_id=1, will_init=True), block(11, block_id=2),
                        block(4, block_id=3)])
    child = leaf([1, 2], nxt=77, flags=BTP_LEAF | BTP_INCOMPLETE_SPLIT)
    out = redo(child, raw, blkno=4)
    assert BTPageOpaque.unpack(out.data).flags == BTP_LEAF and out.lsn == LSN
    nxt = leaf([50, 60], prev=5, nxt=12)
    out = redo(nxt, raw, blkno=11)
    assert BTPageOpaque.unpack(out.data).prev == 9 and out.lsn == LSN
    rpage = redo(None, raw, blkno=9)
    assert BTPageOpaque.unpack(rpage.data) == BTPageOpaque(5, 11, 1, 0, 0)  # internal: no LEAF flag


def test_split_with_a_posting_list_split_replaces_the_posting_list() -> None:
    """postingoff != 0: the logged item is the original new item; the posting list at
    newitemoff - 1 takes its TID, the new item takes the posting list's last TID."""
    posting = form_posting(itup(20), [(1, 1), (1, 5), (1, 9)])
    orig = Page.initialized(16)
    BTPageOpaque(0, 0, 0, BTP_LEAF, 0).write(orig)
    for t in (itup(10), posting, itup(30, (1, 2)), itup(40, (1, 3))):
        orig.add_item(t)
    orig.lsn = OLD_LSN
    orignew = itup(20, (1, 6))  # falls inside the posting list, between (1,5) and (1,9)
    hikey = itup(20, (0, 0))
    body = rmgr.BtreeSplit(0, 3, 3, 2, True, orignew, hikey, right_area([itup(30, (1, 2)), itup(40, (1, 3))]))
    left = redo(orig, record(body, [block(5, block_id=0), block(9, block_id=1, will_init=True)]), blkno=5)
    got = items(left)
    assert got[0] == hikey and got[1] == itup(10)
    assert heap_tids(got[2]) == [(1, 1), (1, 5), (1, 6)]  # the posting list after the swap
    assert got[3] == itup(20, (1, 9))  # the new item carries the old last TID


def _image_of(page: Page, v: int, compression: str) -> xr.ImageRef:
    return xr.ImageRef.from_page(page.to_bytes(), v, compression=compression, force_compression=compression != "none")


@pytest.mark.parametrize("v", [14, 15, 16, 17])
@pytest.mark.parametrize("compression", ["none", "pglz"])
def test_neon_split_right_page_takes_the_cycle_id_of_the_left_pages_image(v: int, compression: str) -> None:
    orig = leaf([10, 20, 30, 40, 50, 60], cycleid=0x1234)
    image = _image_of(orig, v, compression)
    _o, raw, _right, _h = _split(False, v=v, left_image=image)
    vanilla = redo(None, raw, blkno=9, v=v, fl=V)
    neon = redo(None, raw, blkno=9, v=v, fl=N)
    assert BTPageOpaque.unpack(vanilla.data).cycleid == 0
    assert BTPageOpaque.unpack(neon.data).cycleid == 0x1234
    assert neon.data[:-2] == vanilla.data[:-2]  # nothing else differs
    # without an image on the left page, Neon keeps 0 too
    _o, raw, _r, _h = _split(False, v=v)
    assert BTPageOpaque.unpack(redo(None, raw, blkno=9, v=v, fl=N).data).cycleid == 0


# --------------------------------------------------------------------------- posting lists


def test_insert_post_splits_the_posting_list_in_place() -> None:
    posting = form_posting(itup(20), [(1, 1), (1, 5), (1, 9)])
    page = Page.initialized(16)
    BTPageOpaque(0, 0, 0, BTP_LEAF, 0).write(page)
    page.add_item(itup(10))
    page.add_item(posting)
    page.lsn = OLD_LSN
    off = page.item_id(2).off
    body = rmgr.BtreeInsert(3, itup(20, (1, 6)), 0x50, None, 2)
    out = redo(page, record(body, [block(0, block_id=0)]))
    assert out.item_id(2).off == off  # rewritten where it lies
    assert heap_tids(out.item(2)) == [(1, 1), (1, 5), (1, 6)]
    assert out.item(3) == itup(20, (1, 9))
    assert out.lsn == LSN


def test_posting_list_format() -> None:
    p = form_posting(itup(7), [(1, 2), (3, 4)])
    assert is_posting(p) and len(p) == 32  # 16-byte key part + 2 TIDs, MAXALIGNed
    hi, lo, posid, info = struct.unpack_from("<HHHH", p)
    assert ((hi << 16) | lo, posid, info) == (16, 2 | BT_IS_POSTING, 32 | INDEX_ALT_TID_MASK)
    assert p[16:28] == struct.pack("<HHHHHH", 0, 1, 2, 0, 3, 4) and p[28:] == bytes(4)
    one = update_posting(p, [0])
    assert one == itup(7, (3, 4))  # one TID left: a plain tuple again
    n, final = swap_posting(itup(7, (2, 1)), form_posting(itup(7), [(1, 1), (3, 3)]), 1)
    assert heap_tids(n) == [(1, 1), (2, 1)] and heap_tids(final) == [(3, 3)]


def test_dedup_merges_the_logged_intervals() -> None:
    page = leaf([10, 10, 10, 20, 30, 30], tids=[(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6)],
                flags=BTP_LEAF | BTP_HAS_GARBAGE)
    body = rmgr.BtreeDedup(2, ((1, 3), (5, 2)))
    out = redo(page, record(body, [block(0, block_id=0)]))
    got = items(out)
    assert len(got) == 3
    assert heap_tids(got[0]) == [(1, 1), (1, 2), (1, 3)] and heap_tids(got[1]) == [(1, 4)]
    assert heap_tids(got[2]) == [(1, 5), (1, 6)]
    assert [tid for t in got for tid in heap_tids(t)] == [(1, i) for i in range(1, 7)]
    assert BTPageOpaque.unpack(out.data).flags == BTP_LEAF  # BTP_HAS_GARBAGE cleared


# --------------------------------------------------------------------------- vacuum / delete


@pytest.mark.parametrize("v", [14, 15, 16, 17])
@pytest.mark.parametrize("kind", ["vacuum", "delete"])
def test_vacuum_and_delete_remove_exactly_the_logged_items(v: int, kind: str) -> None:
    posting = form_posting(itup(50), [(2, 1), (2, 2), (2, 3)])
    page = leaf([10, 20, 30, 40], flags=BTP_LEAF | BTP_HAS_GARBAGE, cycleid=7)
    page.add_item(posting)
    page.lsn = OLD_LSN
    deleted, updates = (1, 3, 4), (rmgr.BtreeUpdate(5, (0, 2)),)
    body: rmgr.RmgrRecord = (rmgr.BtreeVacuum(3, 1, deleted, updates) if kind == "vacuum"
                             else rmgr.BtreeDelete(99, 3, 1, deleted, updates, True, v >= 16))
    raw = record(body, [block(0, block_id=0)], v=v)
    assert len(xr.decode_record(raw, v).main_data) == {"vacuum": 4, "delete": 9 if v >= 16 else 8}[kind]
    out = redo(page, raw, v=v)
    got = items(out)
    assert [key_of(t) for t in got] == [20, 50]
    assert got[1] == itup(50, (2, 2))
    op = BTPageOpaque.unpack(out.data)
    assert op.flags == BTP_LEAF and op.cycleid == 7  # PG14-17 VACUUM keeps the cycle id
    assert out.lsn == LSN


def test_vacuum_without_items_or_image_fails_cleanly() -> None:
    body = rmgr.BtreeVacuum(2, 0, items_logged=False)
    with pytest.raises(RedoError, match="carries no items and no image"):
        redo(leaf([1, 2]), record(body, [block(0, block_id=0)]))


# --------------------------------------------------------------------------- page deletion


def test_mark_page_halfdead_rewrites_leaf_and_parent() -> None:
    parent = Page.initialized(16)
    BTPageOpaque(0, 0, 1, 0, 0).write(parent)
    for child in (3, 4, 5):
        parent.add_item(itup(child * 10, (child, 0)))
    parent.lsn = OLD_LSN
    body = rmgr.BtreeMarkPageHalfdead(poffset=1, leafblk=4, leftblk=3, rightblk=5, topparent=0xFFFFFFFF)
    raw = record(body, [block(4, block_id=0, will_init=True), block(8, block_id=1)])
    out = redo(parent, raw, blkno=8)
    assert [struct.unpack_from("<HH", t)[1] for t in items(out)] == [4, 5]  # item 1 now points at 4
    assert key_of(out.item(1)) == 30
    leafpage = redo(leaf([1, 2, 3], nxt=5), raw, blkno=4)
    assert items(leafpage) == [struct.pack("<HHHH", 0xFFFF, 0xFFFF, 0, 8 | INDEX_ALT_TID_MASK)]
    assert BTPageOpaque.unpack(leafpage.data) == BTPageOpaque(3, 5, 0, 0x10 | BTP_LEAF, 0)


@pytest.mark.parametrize("meta", [False, True])
def test_unlink_page_deletes_target_and_relinks_siblings(meta: bool) -> None:
    md = rmgr.BtreeMetadata(4, 9, 1, 9, 1, 3, True) if meta else None
    body = rmgr.BtreeUnlinkPage(3, 5, 1, (2 << 32) | 777, 10, 11, 12, meta, md)
    blocks = [block(4, block_id=0, will_init=True), block(3, block_id=1), block(5, block_id=2),
              block(6, block_id=3, will_init=True)]
    if meta:
        blocks.append(block(0, block_id=4, will_init=True))
    raw = record(body, blocks)
    target = redo(leaf([1]), raw, blkno=4)
    assert BTPageOpaque.unpack(target.data) == BTPageOpaque(3, 5, 1, 0x04 | 0x100, 0)  # DELETED|HAS_FULLXID
    assert (target.lower, target.upper, target.special) == (32, 8176, 8176)
    assert struct.unpack_from("<Q", target.data, 24)[0] == (2 << 32) | 777
    assert BTPageOpaque.unpack(redo(leaf([1], nxt=4), raw, blkno=3).data).next == 5
    assert BTPageOpaque.unpack(redo(leaf([9], prev=4), raw, blkno=5).data).prev == 3
    half = redo(None, raw, blkno=6)
    assert BTPageOpaque.unpack(half.data) == BTPageOpaque(10, 11, 0, 0x10 | BTP_LEAF, 0)
    assert items(half) == [struct.pack("<HHHH", 0, 12, 0, 8 | INDEX_ALT_TID_MASK)]
    metapage = redo(None, raw, blkno=0)
    assert metapage.is_new() != meta


def test_meta_cleanup_restores_the_metapage() -> None:
    md = rmgr.BtreeMetadata(4, 1, 1, 1, 1, 42, False)
    out = redo(None, record(rmgr.BtreeMetaCleanup(md), [block(0, block_id=0, will_init=True)]))
    assert struct.unpack_from("<IIIIIII", out.data, 24) == (0x053162, 4, 1, 1, 1, 1, 42)
    assert out.lower == 72 and out.lsn == LSN


# --------------------------------------------------------------------------- heap and no-ops


@pytest.mark.parametrize("body", [
    rmgr.BtreeReusePage(REL, 4, 99),
    rmgr.HeapTruncate(5, (16384, 16390), 1),
    rmgr.Heap2NewCid(7, 1, 2, 3, REL, (0, 1)),
    rmgr.Heap2Rewrite(7, 5, 16384, 0, 0, 0x1000000),
])
def test_records_that_change_no_page_leave_it_alone(body: rmgr.RmgrRecord) -> None:
    page = leaf([1, 2])
    raw = record(body, [])
    assert redo(page, raw).to_bytes() == page.to_bytes()
    assert redo_record(None, spcnode=1663, dbnode=5, relnode=16384, forknum=0, blkno=0, end_lsn=LSN,
                       record=raw, pg_version=17, flavour=V) is None


def _heap_tuple(xmax: int, infomask: int) -> bytes:
    return struct.pack("<IIIHHHHHB", 5, xmax, 9, 0, 0, 1, 2, infomask, 24) + bytes(1) + b"payload!"


@pytest.mark.parametrize("fl", [V, N])
def test_lock_updated_sets_xmax_and_lock_bits_only(fl: Flavour) -> None:
    page = Page.initialized()
    page.add_item(_heap_tuple(0, 0x0800 | 0x0100))  # XMAX_INVALID | XMIN_COMMITTED
    page.lsn = OLD_LSN
    body = rmgr.Heap2LockUpdated(xmax=77, offnum=1, infobits_set=0x08, flags=0)  # KEYSHR_LOCK
    out = redo(page, record(body, [block(0, block_id=0)], v=15, fl=fl), v=15, fl=fl)
    t = out.item(1)
    xmax, cid = struct.unpack_from("<II", t, 4)
    (infomask,) = struct.unpack_from("<H", t, 20)
    assert (xmax, cid) == (77, 9)  # no cmax, unlike LOCK
    assert infomask == 0x0100 | 0x0010  # XMAX_INVALID cleared, KEYSHR_LOCK set
    assert struct.unpack_from("<HHH", t, 12) == (0, 0, 1)  # ctid untouched
    assert out.lsn == LSN


@pytest.mark.parametrize("v", [14, 15, 16, 17])
def test_visible_moves_the_heap_pages_lsn_only_in_neon(v: int) -> None:
    page = Page.initialized()
    page.add_item(_heap_tuple(0, 0x0800))
    page.lsn = OLD_LSN
    raw = record(rmgr.Heap2Visible(5, 1), [xr.make_block(0, REL, 0, forknum=2), block(0, block_id=1)], v=v)
    vanilla, neon = redo(page, raw, v=v, fl=V), redo(page, raw, v=v, fl=N)
    assert vanilla.flags & PD_ALL_VISIBLE and neon.flags & PD_ALL_VISIBLE
    assert (vanilla.lsn, neon.lsn) == (OLD_LSN, LSN)
