"""GIN pages (``ginblock.h``, the same in PostgreSQL 14-17): the special space, the metapage,
data pages (posting trees) and what GIN redo does to them.

Every GIN page is a standard page whose last 8 bytes are ``GinPageOpaqueData``::

    rightlink u32 | maxoff u16 | flags u16

``GinInitPage`` is ``PageInit`` with that special space, rightlink InvalidBlockNumber and the
given flags. Page kinds by flag: entry tree pages (no GIN_DATA: standard index tuples, leaf
or internal), data pages of a posting tree (GIN_DATA; leaves hold compressed posting lists,
GIN_COMPRESSED, internal pages an array of ``PostingItem``), pending-list pages (GIN_LIST,
standard index tuples) and the metapage (block 0, GIN_META).

A data page keeps its right bound (an ItemPointer, 6 bytes) at byte 24 and its data from
byte 32 (``GinDataPageGetData``: the page contents plus MAXALIGN(6)); pd_lower marks the end
of the data (``GinDataPageSetDataSize``). On an internal data page ``maxoff`` counts the
10-byte ``PostingItem`` s (child block as BlockIdData: bi_hi u16, bi_lo u16; then the key
ItemPointer: bi_hi, bi_lo, posid); on a compressed leaf ``maxoff`` is 0 and the posting-list
segments fill the data area (:mod:`pytest_walredo.pg.gin_posting`).

The metapage keeps ``GinMetaPageData`` (56 bytes, below) right after the page header, and
pd_lower just past it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page, PageError

__all__ = [
    "GIN_COMPRESSED",
    "GIN_CURRENT_VERSION",
    "GIN_DATA",
    "GIN_DATA_OFFSET",
    "GIN_DELETED",
    "GIN_INCOMPLETE_SPLIT",
    "GIN_LEAF",
    "GIN_LIST",
    "GIN_LIST_FULLROW",
    "GIN_META",
    "GIN_META_SIZE",
    "GIN_OPAQUE_SIZE",
    "INVALID_BLOCK",
    "POSTING_ITEM_SIZE",
    "GinMeta",
    "GinOpaque",
    "PostingItem",
    "add_posting_item",
    "data_size",
    "delete_posting_item",
    "gin_init_page",
    "init_metapage",
    "posting_items",
    "set_data_size",
    "set_downlink",
]

GIN_DATA = 1 << 0
GIN_LEAF = 1 << 1
GIN_DELETED = 1 << 2
GIN_META = 1 << 3
GIN_LIST = 1 << 4
GIN_LIST_FULLROW = 1 << 5
GIN_INCOMPLETE_SPLIT = 1 << 6
GIN_COMPRESSED = 1 << 7

GIN_OPAQUE_SIZE = 8
GIN_CURRENT_VERSION = 2
INVALID_BLOCK = 0xFFFFFFFF
GIN_DATA_OFFSET = SIZE_OF_PAGE_HEADER + 8  # GinDataPageGetData: contents + MAXALIGN(ItemPointerData)
POSTING_ITEM_SIZE = 10

_OPAQUE = struct.Struct("<IHH")
# head, tail, tailFreeSize, nPendingPages, nPendingHeapTuples (i64), nTotalPages, nEntryPages,
# nDataPages, 4 bytes of C padding, nEntries (i64), ginVersion (i32), 4 bytes of C padding
_META = struct.Struct("<IIIIqIII4sqi4s")
GIN_META_SIZE = _META.size  # 56
_POSTING_ITEM = struct.Struct("<HHHHH")


@dataclass(frozen=True)
class GinOpaque:
    """``GinPageOpaqueData``."""

    rightlink: int = INVALID_BLOCK
    maxoff: int = 0
    flags: int = 0

    @classmethod
    def unpack(cls, page: bytes | bytearray | memoryview) -> GinOpaque:
        return cls(*_OPAQUE.unpack_from(page, BLCKSZ - GIN_OPAQUE_SIZE))

    def write(self, page: Page) -> None:
        _OPAQUE.pack_into(page.data, BLCKSZ - GIN_OPAQUE_SIZE, self.rightlink, self.maxoff, self.flags)

    def replace(self, **fields: int) -> GinOpaque:
        return GinOpaque(**{"rightlink": self.rightlink, "maxoff": self.maxoff, "flags": self.flags, **fields})


def gin_init_page(page: Page, flags: int) -> None:
    """``GinInitPage``: a zeroed standard page with GIN's special space, ``flags``, rightlink
    InvalidBlockNumber, maxoff 0."""
    page.init(GIN_OPAQUE_SIZE)
    GinOpaque(INVALID_BLOCK, 0, flags).write(page)


@dataclass(frozen=True)
class GinMeta:
    """``GinMetaPageData`` (the C padding kept, so that logged copies rebuild exactly)."""

    head: int = INVALID_BLOCK
    tail: int = INVALID_BLOCK
    tail_free_size: int = 0
    n_pending_pages: int = 0
    n_pending_heap_tuples: int = 0
    n_total_pages: int = 0
    n_entry_pages: int = 0
    n_data_pages: int = 0
    n_entries: int = 0
    gin_version: int = GIN_CURRENT_VERSION
    pad1: bytes = field(default=b"\0" * 4, compare=False, repr=False)
    pad2: bytes = field(default=b"\0" * 4, compare=False, repr=False)

    SIZE = GIN_META_SIZE

    def pack(self) -> bytes:
        return _META.pack(self.head, self.tail, self.tail_free_size, self.n_pending_pages,
                          self.n_pending_heap_tuples, self.n_total_pages, self.n_entry_pages,
                          self.n_data_pages, self.pad1, self.n_entries, self.gin_version, self.pad2)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> GinMeta:
        (head, tail, free, npages, ntuples, total, entry, data, pad1, nentries, version,
         pad2) = _META.unpack_from(buf, offset)
        return cls(head, tail, free, npages, ntuples, total, entry, data, nentries, version,
                   bytes(pad1), bytes(pad2))


def init_metapage(page: Page, meta: GinMeta) -> None:
    """``GinInitMetabuffer`` followed by the redo routines' copy of the logged metadata: a GIN
    metapage holding ``meta``, pd_lower just past it."""
    gin_init_page(page, GIN_META)
    page.data[SIZE_OF_PAGE_HEADER : SIZE_OF_PAGE_HEADER + GIN_META_SIZE] = meta.pack()
    page.lower = SIZE_OF_PAGE_HEADER + GIN_META_SIZE


def set_downlink(tup: memoryview | bytearray, blkno: int) -> None:
    """``GinSetDownlink``: an entry tree tuple's t_tid becomes (``blkno``, InvalidOffsetNumber)."""
    struct.pack_into("<HHH", tup, 0, blkno >> 16, blkno & 0xFFFF, 0)


# -- data pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostingItem:
    """``PostingItem``: a downlink of an internal data page (child block, key item pointer)."""

    child: int
    key_block: int
    key_offset: int

    def pack(self) -> bytes:
        return _POSTING_ITEM.pack(self.child >> 16, self.child & 0xFFFF, self.key_block >> 16,
                                  self.key_block & 0xFFFF, self.key_offset)

    @classmethod
    def unpack(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> PostingItem:
        chi, clo, khi, klo, off = _POSTING_ITEM.unpack_from(buf, offset)
        return cls((chi << 16) | clo, (khi << 16) | klo, off)


def data_size(page: Page) -> int:
    """``GinDataLeafPageGetPostingListSize``: the bytes of data below pd_lower."""
    return page.lower - GIN_DATA_OFFSET


def set_data_size(page: Page, size: int) -> None:
    """``GinDataPageSetDataSize``: pd_lower just past ``size`` bytes of data."""
    if size < 0 or GIN_DATA_OFFSET + size > page.special:
        raise PageError(f"GIN data of {size} bytes does not fit in the page (pd_special {page.special})")
    page.lower = GIN_DATA_OFFSET + size


def _item_pos(n: int) -> int:
    return GIN_DATA_OFFSET + (n - 1) * POSTING_ITEM_SIZE


def posting_items(page: Page) -> list[PostingItem]:
    """The ``maxoff`` posting items of an internal data page."""
    maxoff = GinOpaque.unpack(page.data).maxoff
    if _item_pos(maxoff + 1) > page.special:
        raise PageError(f"GIN internal data page claims {maxoff} posting items; they do not fit")
    return [PostingItem.unpack(page.data, _item_pos(n)) for n in range(1, maxoff + 1)]


def add_posting_item(page: Page, item: PostingItem, offset: int) -> None:
    """``GinDataPageAddPostingItem``: ``item`` goes in at ``offset`` (0: after the last), the
    later items move up one, maxoff grows, and pd_lower follows the items."""
    opaque = GinOpaque.unpack(page.data)
    maxoff = opaque.maxoff
    if offset == 0:
        offset = maxoff + 1
    if not 1 <= offset <= maxoff + 1 or _item_pos(maxoff + 2) > page.special:
        raise PageError(f"cannot add a posting item at offset {offset} of a page with {maxoff}")
    pos = _item_pos(offset)
    end = _item_pos(maxoff + 1)
    page.data[pos + POSTING_ITEM_SIZE : end + POSTING_ITEM_SIZE] = page.data[pos:end]
    page.data[pos : pos + POSTING_ITEM_SIZE] = item.pack()
    opaque.replace(maxoff=maxoff + 1).write(page)
    set_data_size(page, (maxoff + 1) * POSTING_ITEM_SIZE)


def delete_posting_item(page: Page, offset: int) -> None:
    """``GinPageDeletePostingItem``: the later items move down one (the old last item's bytes
    stay past pd_lower), maxoff shrinks, and pd_lower follows."""
    opaque = GinOpaque.unpack(page.data)
    maxoff = opaque.maxoff
    if not 1 <= offset <= maxoff or _item_pos(maxoff + 1) > page.special:
        raise PageError(f"cannot delete posting item {offset} of a page with {maxoff}")
    pos = _item_pos(offset)
    end = _item_pos(maxoff + 1)
    page.data[pos : end - POSTING_ITEM_SIZE] = page.data[pos + POSTING_ITEM_SIZE : end]
    opaque.replace(maxoff=maxoff - 1).write(page)
    set_data_size(page, (maxoff - 1) * POSTING_ITEM_SIZE)
