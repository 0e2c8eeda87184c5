"""Redo of hash records that build and grow the index (``hash_xlog.c``, PostgreSQL 14-17:
``hash_xlog_init_meta_page``, ``_init_bitmap_page``, ``_insert``, ``_add_ovfl_page``,
``_split_allocate_page``, ``_split_page``, ``_split_complete``), and the helpers the other
hash routines (:mod:`.hash_vacuum`) share. Page layouts: :mod:`pytest_walredo.pg.hash_page`.

Every routine touches only the requested block, through :class:`~.buffer.Apply`. Where
PostgreSQL changes a page whether redo needs it or restored it from an image (the bucket
flags of SPLIT_ALLOCATE_PAGE and SPLIT_COMPLETE), so does the model. Where a routine reads
block data that PostgreSQL always logs but the record lacks (left out only when an image
is applied instead), redo fails naming what is missing. Neon's fork redoes hash records
as PostgreSQL does.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_walredo.pg.hash_page import (
    INVALID_BLOCK,
    LH_OVERFLOW_PAGE,
    HashMeta,
    HashOpaque,
    init_bitmap_page,
    init_bucket_page,
    init_meta_page,
    set_bitmap_bit,
    set_meta_u32_at,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo.buffer import BLK_NEEDS_REDO, BLK_RESTORED, Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.hash import (
    HashAddOvflPage,
    HashInitBitmapPage,
    HashInitMetaPage,
    HashInsert,
    HashSplitAllocatePage,
    HashSplitComplete,
    HashSplitPage,
)
from pytest_walredo.pg.rmgr.hash_xlog import (
    HASH_NAMES,
    XLH_SPLIT_META_UPDATE_MASKS,
    XLH_SPLIT_META_UPDATE_SPLITPOINT,
)

__all__ = ["ROUTINES", "add_ntuples", "logged", "set_flag", "set_logged_bit", "set_prev", "update_meta"]


_META_CHANGES = XLH_SPLIT_META_UPDATE_MASKS | XLH_SPLIT_META_UPDATE_SPLITPOINT


def logged(a: Apply, value: object, what: str) -> None:
    """Block data the routine reads must be in the record."""
    if value is None:
        name = HASH_NAMES[a.rec.info & 0xF0]
        raise a.fail(f"hash {name} carries no {what} and no image to apply")


def set_flag(page: Page, flag: int) -> None:
    HashOpaque.unpack(page.data).with_(flag=flag).write(page)


def update_meta(a: Apply, block_id: int, change: Callable[[Page], None]) -> None:
    """``change`` the metapage (block ``block_id``) when it needs redo."""
    page = a.page_for_redo(block_id)
    if page is not None:
        change(page)
        a.done(page)


def add_ntuples(delta: float) -> Callable[[Page], None]:
    """hashm_ntuples += ``delta`` (a C double)."""
    return lambda meta: HashMeta.set(meta, "ntuples", float(HashMeta.get(meta.data, "ntuples")) + delta)


def _init_meta_page(a: Apply, body: HashInitMetaPage) -> None:
    page = a.init_for_redo(0)
    if page is not None:
        init_meta_page(page, body.num_tuples, body.procid, body.ffactor)
        a.done(page)


def _init_bitmap_page(a: Apply, body: HashInitBitmapPage) -> None:
    page = a.init_for_redo(0)
    if page is not None:
        init_bitmap_page(page, body.bmsize)
        a.done(page)
    meta = a.page_for_redo(1)
    if meta is not None:
        # the new bitmap page is listed at block maxbucket + 2, right after the buckets
        nmaps = int(HashMeta.get(meta.data, "nmaps"))
        set_meta_u32_at(meta, "mapp", nmaps, int(HashMeta.get(meta.data, "maxbucket")) + 2)
        HashMeta.set(meta, "nmaps", nmaps + 1)
        a.done(meta)


def _insert(a: Apply, body: HashInsert) -> None:
    page = a.page_for_redo(0)
    if page is not None:
        if not body.tuple:
            logged(a, None, "index tuple")
        if page.add_item(body.tuple, body.offnum) == 0:
            raise a.fail("hash_xlog_insert: failed to add item")
        a.done(page)
    update_meta(a, 1, add_ntuples(1))


def _add_ovfl_page(a: Apply, body: HashAddOvflPage) -> None:
    right_blk = a.block(0).blkno
    left_blk = a.block(1).blkno
    ovfl = a.init_for_redo(0)
    if ovfl is not None:
        logged(a, body.bucket, "bucket number")
        assert body.bucket is not None
        init_bucket_page(ovfl, INVALID_BLOCK, body.bucket, LH_OVERFLOW_PAGE)
        set_prev(ovfl, left_blk)
        a.done(ovfl)
    left = a.page_for_redo(1)
    if left is not None:
        HashOpaque.unpack(left.data).with_(nextblkno=right_blk).write(left)
        a.done(left)
    if a.has_block(2):
        set_logged_bit(a, 2, body.bitmap_bit, True)
    new_bitmap_blk = None
    if a.has_block(3):
        new_bitmap_blk = a.block(3).blkno
        newmap = a.init_for_redo(3)
        if newmap is not None:
            init_bitmap_page(newmap, body.bmsize)
            a.done(newmap)
    meta = a.page_for_redo(4)
    if meta is not None:
        logged(a, body.firstfree, "firstfree")
        HashMeta.set(meta, "firstfree", body.firstfree or 0)
        if not body.bmpage_found:
            # a page past the end: one more spare at the current splitpoint (two with a
            # new bitmap page, which the metapage lists)
            ovflpoint = int(HashMeta.get(meta.data, "ovflpoint"))
            _bump_spare(meta, ovflpoint)
            if new_bitmap_blk is not None:
                nmaps = int(HashMeta.get(meta.data, "nmaps"))
                set_meta_u32_at(meta, "mapp", nmaps, new_bitmap_blk)
                HashMeta.set(meta, "nmaps", nmaps + 1)
                _bump_spare(meta, ovflpoint)
        a.done(meta)


def set_logged_bit(a: Apply, block_id: int, bit: int | None, value: bool) -> None:
    """The bitmap page at ``block_id`` with the logged ``bit`` set or cleared (ADD_OVFL_PAGE
    recycling an overflow page, SQUEEZE_PAGE freeing one)."""
    mappage = a.page_for_redo(block_id)
    if mappage is not None:
        logged(a, bit, "bitmap bit")
        assert bit is not None
        set_bitmap_bit(mappage, bit, value)
        a.done(mappage)


def set_prev(page: Page, blkno: int) -> None:
    HashOpaque.unpack(page.data).with_(prevblkno=blkno).write(page)


def _bump_spare(meta: Page, index: int) -> None:
    set_meta_u32_at(meta, "spares", index, HashMeta.spare(meta.data, index) + 1)


def _split_allocate_page(a: Apply, body: HashSplitAllocatePage) -> None:
    action, old = a.read_for_redo(0)
    if old is not None and action in (BLK_NEEDS_REDO, BLK_RESTORED):
        HashOpaque.unpack(old.data).with_(flag=body.old_bucket_flag, prevblkno=body.new_bucket).write(old)
        a.done(old)
    new = a.init_for_redo(1)
    if new is not None:
        init_bucket_page(new, body.new_bucket, body.new_bucket, body.new_bucket_flag)
        a.done(new)
    meta = a.page_for_redo(2)
    if meta is not None:
        if body.flags & _META_CHANGES and body.masks is None and body.splitpoint is None:
            logged(a, None, "metapage changes")
        HashMeta.set(meta, "maxbucket", body.new_bucket)
        if body.masks is not None:
            HashMeta.set(meta, "lowmask", body.masks[0])
            HashMeta.set(meta, "highmask", body.masks[1])
        if body.splitpoint is not None:
            ovflpoint, ovflpages = body.splitpoint
            set_meta_u32_at(meta, "spares", ovflpoint, ovflpages)
            HashMeta.set(meta, "ovflpoint", ovflpoint)
        a.done(meta)


def _split_page(a: Apply, body: HashSplitPage) -> None:
    """The page is the record's image; anything else is PostgreSQL's ERROR (also when block 0
    is not the requested block: the walredo filter reports it as already done)."""
    action, _page = a.read_for_redo(0)
    if action != BLK_RESTORED:
        raise a.fail("Hash split record did not contain a full-page image")


def _split_complete(a: Apply, body: HashSplitComplete) -> None:
    for block_id, flag in ((0, body.old_bucket_flag), (1, body.new_bucket_flag)):
        action, page = a.read_for_redo(block_id)
        if page is not None and action in (BLK_NEEDS_REDO, BLK_RESTORED):
            set_flag(page, flag)
            a.done(page)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    HashInitMetaPage: _init_meta_page,
    HashInitBitmapPage: _init_bitmap_page,
    HashInsert: _insert,
    HashAddOvflPage: _add_ovfl_page,
    HashSplitAllocatePage: _split_allocate_page,
    HashSplitPage: _split_page,
    HashSplitComplete: _split_complete,
}
"""The redo routine of each hash record kind that builds or grows the index."""
