"""Redo of every hash record on pages built by hand, each block of each multi-block record:
the expected pages are written out field by field from PostgreSQL's hash_xlog.c (and
hashpage.c's page initialisers), PostgreSQL 14-17. Real WAL: test_corpus_hash.py."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.hash_page import (
    HASH_MAGIC,
    INVALID_BLOCK,
    INVALID_BUCKET,
    LH_BITMAP_PAGE,
    LH_BUCKET_BEING_POPULATED,
    LH_BUCKET_BEING_SPLIT,
    LH_BUCKET_NEEDS_SPLIT_CLEANUP,
    LH_BUCKET_PAGE,
    LH_META_PAGE,
    LH_OVERFLOW_PAGE,
    LH_PAGE_HAS_DEAD_TUPLES,
    LH_UNUSED_PAGE,
    HashMeta,
    HashOpaque,
    bitmap_bit,
    hash_tuple,
    init_bitmap_page,
    init_bucket_page,
    init_meta_page,
    tuple_hashkey,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour

REL = (1663, 5, 16384)
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000


def blk(blkno: int, block_id: int, *, will_init: bool = False, image: xr.ImageRef | None = None) -> xr.BlockRef:
    return xr.make_block(block_id, REL, blkno, will_init=will_init, image=image)


def rec(body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], v: int = 15) -> bytes:
    return rmgr.build(body, blocks, pg_version=v).encode()


def redo(page: Page | None, raw: bytes, blkno: int, v: int = 15) -> Page:
    out = redo_record(page.to_bytes() if page is not None else None, spcnode=REL[0], dbnode=REL[1],
                      relnode=REL[2], forknum=0, blkno=blkno, end_lsn=LSN, record=raw, pg_version=v,
                      flavour=Flavour.NEON)
    return Page(out) if out is not None else Page()


def bucket(keys: list[int], *, flag: int = LH_BUCKET_PAGE, prev: int = 3, nxt: int = INVALID_BLOCK,
           bucket_no: int = 1) -> Page:
    page = Page()
    init_bucket_page(page, prev, bucket_no, flag)
    HashOpaque.unpack(page.data).with_(nextblkno=nxt).write(page)
    for i, k in enumerate(keys):
        page.add_item(hash_tuple(k, 1, i + 1), i + 1)
    page.lsn = OLD_LSN
    return page


def meta(num_tuples: float = 0.0, ffactor: int = 307) -> Page:
    page = Page()
    init_meta_page(page, num_tuples, 450, ffactor)
    page.lsn = OLD_LSN
    return page


def keys(page: Page) -> list[int]:
    return [tuple_hashkey(page.item(o)) for o in range(1, page.max_offset() + 1)]


def opaque(page: Page) -> HashOpaque:
    return HashOpaque.unpack(page.data)


def image(page: Page) -> xr.ImageRef:
    return xr.ImageRef.from_page(page.to_bytes(), 15)


# --------------------------------------------------------------------------- building the index


@pytest.mark.parametrize(("num_tuples", "ffactor", "maxbucket", "highmask", "ovflpoint"), [
    (0.0, 307, 1, 3, 1),  # at least two buckets
    (4000.0, 307, 15, 31, 4),  # 13.03 buckets: the next power of two
    (1e9, 10, 100663295, 0x7FFFFFF, 79),  # 1e8 buckets: a quarter-phase of 2^27 (2^26 + 2 * 2^24)
    (1e12, 10, 0x3FFFFFFF, 0x7FFFFFFF, 93),  # at most 2^30 buckets: the last phase of group 30
])
def test_init_meta_page(num_tuples: float, ffactor: int, maxbucket: int, highmask: int, ovflpoint: int) -> None:
    raw = rec(rmgr.HashInitMetaPage(num_tuples, 450, ffactor), [blk(0, 0, will_init=True)])
    page = redo(None, raw, 0)
    m = HashMeta.unpack(page.data)
    assert (m.magic, m.version, m.ntuples, m.ffactor, m.procid) == (HASH_MAGIC, 4, 0.0, ffactor, 450)
    assert (m.bsize, m.bmsize, m.bmshift) == (8152, 4096, 15)
    assert (m.maxbucket, m.highmask, m.lowmask) == (maxbucket, highmask, highmask >> 1)
    assert (m.ovflpoint, m.firstfree, m.nmaps) == (ovflpoint, 0, 0)
    assert [HashMeta.spare(page.data, i) for i in range(98)] == [1 if i == ovflpoint else 0 for i in range(98)]
    assert (page.lower, page.upper, page.special, page.lsn) == (24 + 4544, 8176, 8176, LSN)
    assert opaque(page) == HashOpaque(INVALID_BLOCK, INVALID_BLOCK, INVALID_BUCKET, LH_META_PAGE, 0xFF80)


def test_init_bitmap_page_and_the_metapage_listing_it() -> None:
    raw = rec(rmgr.HashInitBitmapPage(4096), [blk(3, 0, will_init=True), blk(0, 1)])
    bitmap = redo(None, raw, 3)
    assert opaque(bitmap).flag == LH_BITMAP_PAGE and bitmap.lower == 24 + 4096
    assert bitmap.data[24 : 24 + 4096] == b"\xff" * 4096 and not any(bitmap.data[24 + 4096 : 8176])
    m = redo(meta(), raw, 0)  # two buckets (blocks 1, 2): the bitmap page is block 3
    assert HashMeta.get(m.data, "nmaps") == 1 and HashMeta.mapp(m.data, 0) == 3 and m.lsn == LSN


def test_insert_adds_the_tuple_at_its_offset_and_counts_it() -> None:
    page = bucket([10, 30])
    raw = rec(rmgr.HashInsert(2, hash_tuple(20, 9, 9)), [blk(5, 0), blk(0, 1)])
    after = redo(page, raw, 5)
    assert keys(after) == [10, 20, 30] and after.item_id(2).len == 16 and after.lsn == LSN
    m = meta()
    HashMeta.set(m, "ntuples", 41.0)
    assert HashMeta.get(redo(m, raw, 0).data, "ntuples") == 42.0
    with pytest.raises(RedoError, match="hash_xlog_insert: failed to add item"):
        redo(page, rec(rmgr.HashInsert(9, hash_tuple(20, 9, 9)), [blk(5, 0), blk(0, 1)]), 5)
    with pytest.raises(RedoError, match="hash INSERT carries no index tuple and no image to apply"):
        redo(page, rec(rmgr.HashInsert(2), [blk(5, 0), blk(0, 1)]), 5)


def test_add_ovfl_page_every_block() -> None:
    body = rmgr.HashAddOvflPage(4096, False, 7, None, 12)
    raw = rec(body, [blk(9, 0, will_init=True), blk(5, 1), blk(8, 3, will_init=True), blk(0, 4)])
    new = redo(None, raw, 9)
    assert opaque(new) == HashOpaque(5, INVALID_BLOCK, 7, LH_OVERFLOW_PAGE) and new.max_offset() == 0
    left = redo(bucket([1]), raw, 5)
    assert opaque(left).nextblkno == 9 and opaque(left).prevblkno == 3 and keys(left) == [1]
    newmap = redo(None, raw, 8)
    assert opaque(newmap).flag == LH_BITMAP_PAGE and newmap.lower == 24 + 4096
    m0 = meta()  # ovflpoint 1, spares[1] = 1
    m = redo(m0, raw, 0)
    assert HashMeta.get(m.data, "firstfree") == 12
    assert HashMeta.spare(m.data, 1) == 3  # one for the overflow page, one for the bitmap page
    assert (HashMeta.get(m.data, "nmaps"), HashMeta.mapp(m.data, 0)) == (1, 8)
    # a recycled page: its bit is set in the bitmap page; the spares stay
    found = rmgr.HashAddOvflPage(4096, True, 7, 37, 38)
    raw = rec(found, [blk(9, 0, will_init=True), blk(5, 1), blk(4, 2), blk(0, 4)])
    bitmap = Page()
    init_bitmap_page(bitmap, 4096)
    bitmap.data[24 + 4] = 0  # bits 32..39 free
    after = redo(bitmap, raw, 4)
    assert bitmap_bit(after.data, 37) and after.data[24 + 4] == 1 << 5
    m = redo(m0, raw, 0)
    assert HashMeta.get(m.data, "firstfree") == 38 and HashMeta.spare(m.data, 1) == 1


def test_split_allocate_page_every_block() -> None:
    body = rmgr.HashSplitAllocatePage(2, LH_BUCKET_PAGE | LH_BUCKET_BEING_SPLIT,
                                      LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED, 3, (3, 7), (2, 1))
    raw = rec(body, [blk(1, 0), blk(4, 1, will_init=True), blk(0, 2)])
    old = redo(bucket([5], prev=1, bucket_no=0), raw, 1)
    assert opaque(old).flag == LH_BUCKET_PAGE | LH_BUCKET_BEING_SPLIT and opaque(old).prevblkno == 2
    new = redo(None, raw, 4)
    assert opaque(new) == HashOpaque(2, INVALID_BLOCK, 2, LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED)
    m = HashMeta.unpack(redo(meta(), raw, 0).data)
    assert (m.maxbucket, m.lowmask, m.highmask, m.ovflpoint) == (2, 3, 7, 2)
    assert HashMeta.spare(redo(meta(), raw, 0).data, 2) == 1
    # the old bucket's flag and prevblkno are set even when its image is restored
    restored = bucket([5, 6], prev=1, bucket_no=0)
    raw = rec(body, [blk(1, 0, image=image(restored)), blk(4, 1, will_init=True), blk(0, 2)])
    old = redo(bucket([], prev=1), raw, 1)
    assert keys(old) == [5, 6] and opaque(old).flag == LH_BUCKET_PAGE | LH_BUCKET_BEING_SPLIT
    assert opaque(old).prevblkno == 2 and old.lsn == LSN


def test_split_page_needs_its_image() -> None:
    full = bucket(list(range(0, 4000, 10)), flag=LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED)
    page = redo(None, rec(rmgr.HashSplitPage(), [blk(4, 0, image=image(full))]), 4)
    assert page.data[8:] == full.data[8:] and page.lsn == LSN
    with pytest.raises(RedoError, match="Hash split record did not contain a full-page image"):
        redo(full, rec(rmgr.HashSplitPage(), [blk(4, 0)]), 4)
    with pytest.raises(RedoError, match="did not contain a full-page image"):  # not the requested block
        redo(full, rec(rmgr.HashSplitPage(), [blk(4, 0, image=image(full))]), 5)


def test_split_complete_sets_both_flags_even_over_an_image() -> None:
    body = rmgr.HashSplitComplete(LH_BUCKET_PAGE | LH_BUCKET_NEEDS_SPLIT_CLEANUP, LH_BUCKET_PAGE)
    old = bucket([1], flag=LH_BUCKET_PAGE | LH_BUCKET_BEING_SPLIT)
    new = bucket([2], flag=LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED)
    raw = rec(body, [blk(1, 0), blk(4, 1, image=image(new))])
    assert opaque(redo(old, raw, 1)).flag == LH_BUCKET_PAGE | LH_BUCKET_NEEDS_SPLIT_CLEANUP
    after = redo(None, raw, 4)
    assert opaque(after).flag == LH_BUCKET_PAGE and keys(after) == [2] and after.lsn == LSN


# --------------------------------------------------------------------------- squeeze and cleanup


def test_move_page_contents_every_block() -> None:
    moved = [hash_tuple(25, 7, 7), hash_tuple(5, 7, 8)]
    body = rmgr.HashMovePageContents(2, False, (3, 1), tuple(moved), (2, 4))
    raw = rec(body, [blk(1, 0), blk(6, 1), blk(7, 2)])
    primary = bucket([1, 2])
    assert redo(primary, raw, 1).data == primary.data  # only locked
    write = redo(bucket([10, 20], flag=LH_OVERFLOW_PAGE), raw, 6)
    assert keys(write) == [5, 10, 20, 25] and write.item_id(1).len == 16 and write.lsn == LSN
    read = redo(bucket([3, 5, 7, 25], flag=LH_OVERFLOW_PAGE), raw, 7)
    assert keys(read) == [3, 7] and read.lsn == LSN


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_squeeze_page_every_block(version: int) -> None:
    body = rmgr.HashSqueezePage(6, 9, 1, True, False, (2,), (hash_tuple(15, 1, 1),), 33, 4)
    blocks = [blk(1, 1), blk(8, 2), blk(6, 3), blk(9, 4), blk(2, 5), blk(0, 6)]
    raw = rec(body, blocks, version)
    write = redo(bucket([10, 20]), raw, 1, version)
    assert keys(write) == [10, 15, 20] and write.lsn == LSN
    freed = redo(bucket([1, 2, 3], flag=LH_OVERFLOW_PAGE), raw, 8, version)
    assert opaque(freed) == HashOpaque(INVALID_BLOCK, INVALID_BLOCK, INVALID_BUCKET, LH_UNUSED_PAGE)
    assert freed.max_offset() == 0 and (freed.lower, freed.upper) == (24, 8176) and freed.lsn == LSN
    assert opaque(redo(bucket([4], flag=LH_OVERFLOW_PAGE, nxt=8), raw, 6, version)).nextblkno == 9
    assert opaque(redo(bucket([4], flag=LH_OVERFLOW_PAGE, prev=8), raw, 9, version)).prevblkno == 6
    bitmap = Page()
    init_bitmap_page(bitmap, 4096)
    after = redo(bitmap, raw, 2, version)
    assert not bitmap_bit(after.data, 33) and after.data[24 + 4] == 0xFF & ~(1 << 1)
    assert HashMeta.get(redo(meta(), raw, 0, version).data, "firstfree") == 4


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_squeeze_page_write_page_nothing_moved_to(version: int) -> None:
    """Nothing goes to the write page (the primary bucket page, not the freed page's
    predecessor): 14-16 still set its pd_lsn, 17 leaves it alone."""
    body = rmgr.HashSqueezePage(6, INVALID_BLOCK, 0, True, False, None, None, 33, None)
    raw = rec(body, [blk(1, 1), blk(8, 2), blk(6, 3), blk(2, 5)], version)
    write = bucket([10, 20])
    after = redo(write, raw, 1, version)
    assert after.lsn == (OLD_LSN if version >= 17 else LSN)
    assert after.data[8:] == write.data[8:]
    # the freed page's predecessor as write page: its next link moves in every version
    body = rmgr.HashSqueezePage(1, INVALID_BLOCK, 0, False, True, None, None, 33, None)
    raw = rec(body, [blk(4, 0), blk(1, 1), blk(8, 2), blk(2, 5)], version)
    after = redo(bucket([10], flag=LH_OVERFLOW_PAGE, nxt=8), raw, 1, version)
    assert opaque(after).nextblkno == INVALID_BLOCK and after.lsn == LSN


def test_squeeze_page_without_a_write_page_is_pg17s() -> None:
    body = rmgr.HashSqueezePage(6, INVALID_BLOCK, 0, False, False, None, None, 33, None)
    raw17 = rec(body, [blk(1, 0), blk(8, 2), blk(6, 3), blk(2, 5)], 17)
    assert redo(bucket([1], flag=LH_OVERFLOW_PAGE), raw17, 8, 17).max_offset() == 0
    raw16 = rec(body, [blk(1, 0), blk(8, 2), blk(6, 3), blk(2, 5)], 16)
    with pytest.raises(RedoError, match="failed to locate backup block with ID 1"):
        redo(bucket([1], flag=LH_OVERFLOW_PAGE), raw16, 8, 16)


def test_delete_and_split_cleanup() -> None:
    page = bucket([1, 2, 3, 4], flag=LH_OVERFLOW_PAGE | LH_PAGE_HAS_DEAD_TUPLES)
    for clear in (False, True):
        raw = rec(rmgr.HashDelete(clear, False, (1, 3)), [blk(1, 0), blk(5, 1)])
        after = redo(page, raw, 5)
        assert keys(after) == [2, 4] and after.lsn == LSN
        assert opaque(after).flag == LH_OVERFLOW_PAGE | (0 if clear else LH_PAGE_HAS_DEAD_TUPLES)
        primary = bucket([9])
        assert redo(primary, raw, 1).data == primary.data
    raw = rec(rmgr.HashSplitCleanup(), [blk(1, 0)])
    after = redo(bucket([1], flag=LH_BUCKET_PAGE | LH_BUCKET_NEEDS_SPLIT_CLEANUP | LH_PAGE_HAS_DEAD_TUPLES), raw, 1)
    assert opaque(after).flag == LH_BUCKET_PAGE | LH_PAGE_HAS_DEAD_TUPLES


def test_update_meta_page() -> None:
    m = redo(meta(), rec(rmgr.HashUpdateMetaPage(1234.5), [blk(0, 0)]), 0)
    assert HashMeta.get(m.data, "ntuples") == 1234.5 and m.lsn == LSN


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_vacuum_one_page(version: int) -> None:
    page = bucket([1, 2, 3, 4, 5], flag=LH_BUCKET_PAGE | LH_PAGE_HAS_DEAD_TUPLES)
    raw = rec(rmgr.HashVacuumOnePage(700, 3, (1, 2, 5)), [blk(5, 0), blk(0, 1)], version)
    after = redo(page, raw, 5, version)
    assert keys(after) == [3, 4] and opaque(after).flag == LH_BUCKET_PAGE and after.lsn == LSN
    m = meta()
    HashMeta.set(m, "ntuples", 10.0)
    assert HashMeta.get(redo(m, raw, 0, version).data, "ntuples") == 7.0


def test_records_for_other_blocks_leave_the_page() -> None:
    page = bucket([1, 2])
    for body, blocks in [
        (rmgr.HashInsert(1, hash_tuple(0, 1, 1)), [blk(4, 0), blk(0, 1)]),
        (rmgr.HashDelete(True, True, (1,)), [blk(4, 1)]),
        (rmgr.HashSplitComplete(2, 2), [blk(4, 0), blk(6, 1)]),
    ]:
        assert redo(page, rec(body, blocks), 5).data == page.data


def test_an_applied_record_is_not_applied_again() -> None:
    page = bucket([10, 30])
    page.lsn = LSN
    raw = rec(rmgr.HashInsert(2, hash_tuple(20, 9, 9)), [blk(5, 0), blk(0, 1)])
    assert redo(page, raw, 5).data == page.data


def test_missing_block_data_is_an_error_naming_it() -> None:
    raw = rec(rmgr.HashAddOvflPage(4096, True, 7, None, 12), [blk(9, 0, will_init=True), blk(5, 1), blk(4, 2),
                                                              blk(0, 4)])
    bitmap = Page()
    init_bitmap_page(bitmap, 4096)
    with pytest.raises(RedoError, match="hash ADD_OVFL_PAGE carries no bitmap bit and no image to apply"):
        redo(bitmap, raw, 4)
    raw = rec(rmgr.HashSplitAllocatePage(2, 2, 2, 1), [blk(1, 0), blk(4, 1, will_init=True), blk(0, 2)])
    with pytest.raises(RedoError, match="carries no metapage changes"):
        redo(meta(), raw, 0)


def test_struct_offsets_of_the_metapage() -> None:
    """HashMetaPageData as hash.h lays it out (the fields at their C offsets, after the
    24-byte page header)."""
    m = meta(4000.0)
    assert struct.unpack_from("<IId", m.data, 24) == (HASH_MAGIC, 4, 0.0)
    assert struct.unpack_from("<HHHH", m.data, 40) == (307, 8152, 4096, 15)
    assert struct.unpack_from("<7I", m.data, 48) == (15, 31, 15, 4, 0, 0, 450)
    assert struct.unpack_from("<I", m.data, 76 + 4 * 4)[0] == 1  # hashm_spares[4]
