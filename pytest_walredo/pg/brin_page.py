"""BRIN pages (``access/brin_page.h``, ``brin_pageops.c``, ``brin_revmap.c``; the same in 14-17).

Every BRIN page has an 8-byte special space (``BrinSpecialSpace``) whose last two uint16 are
the flags (special + 4) and the page type (special + 6):

- the metapage (type 0xF091): ``BrinMetaPageData`` right after the page header (byte 24):
  magic 0xA8109CFA, version, pagesPerRange, lastRevmapPage (u32 each); pd_lower 40;
- revmap pages (0xF092): an array of ItemPointerData (6 bytes: block hi u16, block lo u16,
  offset u16) from byte 24, ``REVMAP_PAGE_MAXITEMS`` (1360) of them; the entry of heap block
  ``b`` is number ``(b / pagesPerRange) % 1360``; an invalid pointer is block 0xFFFFFFFF,
  offset 0; pd_lower stays 24;
- regular pages (0xF093): BRIN tuples as ordinary items with line pointers.

Also here: ``PageIndexTupleDeleteNoCompact`` (``bufpage.c``), which only BRIN's redo uses in
14-17.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.constants import BLCKSZ, maxalign
from pytest_walredo.pg.page import ITEM_ID_SIZE, SIZE_OF_PAGE_HEADER, ItemId, Page, PageError

__all__ = [
    "BRIN_META_MAGIC",
    "BRIN_PAGETYPE_META",
    "BRIN_PAGETYPE_REGULAR",
    "BRIN_PAGETYPE_REVMAP",
    "BRIN_SPECIAL_SIZE",
    "INVALID_TID",
    "META_LAST_REVMAP_OFFSET",
    "META_PD_LOWER",
    "REVMAP_PAGE_MAXITEMS",
    "brin_page_init",
    "brin_page_type",
    "index_tuple_delete_no_compact",
    "metapage_init",
    "read_meta",
    "revmap_index",
    "revmap_tid",
    "set_revmap_tid",
]

BRIN_PAGETYPE_META = 0xF091
BRIN_PAGETYPE_REVMAP = 0xF092
BRIN_PAGETYPE_REGULAR = 0xF093
BRIN_META_MAGIC = 0xA8109CFA
BRIN_SPECIAL_SIZE = 8  # sizeof(BrinSpecialSpace) = MAXALIGN(1)
REVMAP_PAGE_MAXITEMS = (BLCKSZ - SIZE_OF_PAGE_HEADER - BRIN_SPECIAL_SIZE) // 6
INVALID_TID = (0xFFFFFFFF, 0)

_META = struct.Struct("<IIII")
_TID = struct.Struct("<HHH")
META_OFFSET = SIZE_OF_PAGE_HEADER  # PageGetContents: MAXALIGN(SizeOfPageHeaderData)
META_LAST_REVMAP_OFFSET = META_OFFSET + 12
META_PD_LOWER = META_OFFSET + _META.size


def brin_page_init(page: Page, page_type: int) -> None:
    """``brin_page_init``: ``PageInit`` with the 8-byte special space, then the page type."""
    page.init(BRIN_SPECIAL_SIZE)
    struct.pack_into("<H", page.data, page.special + 6, page_type)


def brin_page_type(page: Page) -> int | None:
    """The page type in the special space, or None when the page has no BRIN special space."""
    if page.special != BLCKSZ - BRIN_SPECIAL_SIZE:
        return None
    return int(struct.unpack_from("<H", page.data, page.special + 6)[0])


def read_meta(page: Page) -> tuple[int, int, int, int]:
    """(magic, version, pagesPerRange, lastRevmapPage) of a metapage."""
    magic, version, ppr, last = _META.unpack_from(page.data, META_OFFSET)
    return magic, version, ppr, last


def metapage_init(page: Page, pages_per_range: int, version: int) -> None:
    """``brin_metapage_init``: a metapage with lastRevmapPage 0 and pd_lower just past the
    metadata."""
    brin_page_init(page, BRIN_PAGETYPE_META)
    _META.pack_into(page.data, META_OFFSET, BRIN_META_MAGIC, version, pages_per_range, 0)
    page.lower = META_PD_LOWER


def revmap_index(pages_per_range: int, heap_blk: int) -> int:
    """``HEAPBLK_TO_REVMAP_INDEX``. A pagesPerRange of 0 is a division by zero in
    PostgreSQL (it never logs one); here a ValueError."""
    if pages_per_range == 0:
        raise ValueError("pagesPerRange 0: the revmap index divides by it")
    return (heap_blk // pages_per_range) % REVMAP_PAGE_MAXITEMS


def revmap_tid(page: Page, index: int) -> tuple[int, int]:
    hi, lo, off = _TID.unpack_from(page.data, META_OFFSET + 6 * index)
    return (hi << 16) | lo, off


def set_revmap_tid(page: Page, index: int, tid: tuple[int, int]) -> None:
    """``brinSetHeapBlockItemptr`` on entry ``index``: ``tid`` (block, offset), or
    :data:`INVALID_TID`."""
    blk, off = tid
    _TID.pack_into(page.data, META_OFFSET + 6 * index, blk >> 16, blk & 0xFFFF, off)


def index_tuple_delete_no_compact(page: Page, offnum: int) -> None:
    """``PageIndexTupleDeleteNoCompact``: remove item ``offnum`` keeping the other items'
    offset numbers: its line pointer becomes unused (or is dropped when it is the last one),
    the tuples below it move up by its MAXALIGNed size and their line pointers follow."""
    lower, upper, special = page.lower, page.upper, page.special
    if (lower < SIZE_OF_PAGE_HEADER or lower > upper or upper > special or special > BLCKSZ
            or special != maxalign(special)):
        raise PageError(f"corrupted page pointers: lower = {lower}, upper = {upper}, special = {special}")
    nline = page.max_offset()
    if offnum <= 0 or offnum > nline:
        raise PageError(f"invalid index offnum: {offnum}")
    lp = page.item_id(offnum)
    size, offset = lp.len, lp.off
    if offset < upper or offset + size > special or offset != maxalign(offset):
        raise PageError(f"corrupted line pointer: offset = {offset}, size = {size}")
    size = maxalign(size)
    if offnum < nline:
        page.set_item_id(offnum, ItemId())
    else:
        page.lower = lower - ITEM_ID_SIZE
        nline -= 1
    if offset > upper:
        page.data[upper + size : offset + size] = page.data[upper:offset]
    page.upper = upper + size
    if not page.is_empty():
        for i in range(1, nline + 1):
            ii = page.item_id(i)
            if ii.has_storage and ii.off <= offset:
                page.set_item_id(i, ItemId(ii.off + size, ii.flags, ii.len))
