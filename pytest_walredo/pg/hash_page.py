"""Hash index pages (``hash.h``, PostgreSQL 14-17): the special space, the metapage, bitmap
pages and hash index tuples, and the page-level helpers hash redo calls (``_hash_pageinit``,
``_hash_initbuf``, ``_hash_initbitmapbuffer``, ``_hash_init_metabuffer``).

Every hash page is a standard page whose special space (at pd_special, 16 bytes) is::

    hasho_prevblkno u32 | hasho_nextblkno u32 | hasho_bucket u32 | hasho_flag u16 | hasho_page_id u16

hasho_page_id is always 0xFF80. The page type is in the low bits of hasho_flag (unused 0,
overflow, bucket, bitmap, meta); the other bits mark split states and dead tuples. On a
primary bucket page hasho_prevblkno holds hashm_maxbucket as of the bucket's last split.

The metapage is block 0. ``HashMetaPageData`` starts at byte 24 (PageGetContents)::

    magic u32, version u32, ntuples float8, ffactor u16, bsize u16, bmsize u16, bmshift u16,
    maxbucket, highmask, lowmask, ovflpoint, firstfree, nmaps, procid (u32 each),
    spares[98] u32, mapp[1024] u32                       (4540 bytes, sizeof 4544)

and pd_lower is set just past it (24 + 4544). A bitmap page holds its bits from byte 24
(bit N is bit N % 8 of byte 24 + N / 8: uint32 words, little-endian), pd_lower just past
them. Hash index tuples are an ``IndexTupleData`` header and the uint32 hash code: 16 bytes
after MAXALIGN; INDEX_MOVED_BY_SPLIT_MASK (t_info 0x2000) marks a tuple a split copied.

Where redo would write outside the page (a hashm_mapp or hashm_spares index, or a bitmap
bit, past its end; a pd_special that leaves no room for the special space), PostgreSQL
scribbles on memory; these helpers raise :class:`~pytest_walredo.pg.page.PageError` instead.
PostgreSQL never logs such values.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from pytest_walredo.pg.btree_page import INDEX_AM_RESERVED_BIT, INDEX_SIZE_MASK, IndexTuple
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page, PageError

__all__ = [
    "HASHO_PAGE_ID",
    "HASH_MAGIC",
    "HASH_MAX_BITMAPS",
    "HASH_MAX_SPLITPOINTS",
    "HASH_META_SIZE",
    "HASH_OPAQUE_SIZE",
    "HASH_TUPLE_SIZE",
    "HASH_VERSION",
    "INDEX_MOVED_BY_SPLIT_MASK",
    "INVALID_BLOCK",
    "INVALID_BUCKET",
    "LH_BITMAP_PAGE",
    "LH_BUCKET_BEING_POPULATED",
    "LH_BUCKET_BEING_SPLIT",
    "LH_BUCKET_NEEDS_SPLIT_CLEANUP",
    "LH_BUCKET_PAGE",
    "LH_META_PAGE",
    "LH_OVERFLOW_PAGE",
    "LH_PAGE_HAS_DEAD_TUPLES",
    "LH_PAGE_TYPE",
    "LH_UNUSED_PAGE",
    "META_FIELDS",
    "HashMeta",
    "HashOpaque",
    "binsearch",
    "bitmap_bit",
    "hash_page_init",
    "hash_tuple",
    "hashkey2bucket",
    "init_bitmap_page",
    "init_bucket_page",
    "init_meta_page",
    "is_hash_page",
    "meta_u32_at",
    "set_bitmap_bit",
    "set_meta_u32_at",
    "spare_index",
    "total_buckets",
    "tuple_hashkey",
    "tuple_size",
]

HASH_OPAQUE_SIZE = 16
HASHO_PAGE_ID = 0xFF80
HASH_MAGIC = 0x6440640
HASH_VERSION = 4
HASH_MAX_BITMAPS = 1024  # Min(BLCKSZ / 8, 1024)
_SPLITPOINT_PHASE_BITS = 2
_SPLITPOINT_GROUPS_WITH_ONE_PHASE = 10
HASH_MAX_SPLITPOINTS = (32 - _SPLITPOINT_GROUPS_WITH_ONE_PHASE) * (1 << _SPLITPOINT_PHASE_BITS) + 10  # 98
INVALID_BLOCK = 0xFFFFFFFF
INVALID_BUCKET = 0xFFFFFFFF
HASH_TUPLE_SIZE = 16  # MAXALIGN(8-byte header + uint32 hash code)
INDEX_MOVED_BY_SPLIT_MASK = INDEX_AM_RESERVED_BIT

LH_UNUSED_PAGE = 0
LH_OVERFLOW_PAGE = 1 << 0
LH_BUCKET_PAGE = 1 << 1
LH_BITMAP_PAGE = 1 << 2
LH_META_PAGE = 1 << 3
LH_BUCKET_BEING_POPULATED = 1 << 4
LH_BUCKET_BEING_SPLIT = 1 << 5
LH_BUCKET_NEEDS_SPLIT_CLEANUP = 1 << 6
LH_PAGE_HAS_DEAD_TUPLES = 1 << 7
LH_PAGE_TYPE = LH_OVERFLOW_PAGE | LH_BUCKET_PAGE | LH_BITMAP_PAGE | LH_META_PAGE

_OPAQUE = struct.Struct("<IIIHH")
_META = struct.Struct("<IIdHHHHIIIIIII")  # the scalar fields, spares and mapp follow
_META_AT = SIZE_OF_PAGE_HEADER  # PageGetContents: MAXALIGN(SizeOfPageHeaderData)
_SPARES_AT = _META_AT + _META.size
_MAPP_AT = _SPARES_AT + 4 * HASH_MAX_SPLITPOINTS
HASH_META_SIZE = 4544  # sizeof(HashMetaPageData): 4540 bytes of fields, padded to 8
_BITMAP_AT = SIZE_OF_PAGE_HEADER
_MAX_BITMAP_SIZE = BLCKSZ - (SIZE_OF_PAGE_HEADER + HASH_OPAQUE_SIZE)  # HashGetMaxBitmapSize
assert _MAPP_AT + 4 * HASH_MAX_BITMAPS == _META_AT + 4540

META_FIELDS = ("magic", "version", "ntuples", "ffactor", "bsize", "bmsize", "bmshift", "maxbucket",
               "highmask", "lowmask", "ovflpoint", "firstfree", "nmaps", "procid")
"""The scalar fields of ``HashMetaPageData`` (``hashm_`` left out), in order."""
_FIELD_AT = {name: _META_AT + struct.calcsize("<" + _META.format[1:][:i]) for i, name in enumerate(META_FIELDS)}
_FIELD_FMT = {name: "<" + _META.format[1:][i] for i, name in enumerate(META_FIELDS)}


@dataclass(frozen=True)
class HashOpaque:
    """``HashPageOpaqueData``, read from and written at pd_special."""

    prevblkno: int = INVALID_BLOCK
    nextblkno: int = INVALID_BLOCK
    bucket: int = INVALID_BUCKET
    flag: int = 0
    page_id: int = HASHO_PAGE_ID

    @property
    def page_type(self) -> int:
        return self.flag & LH_PAGE_TYPE

    @staticmethod
    def _at(data: bytes | bytearray | memoryview) -> int:
        special = int.from_bytes(data[16:18], "little")
        if not SIZE_OF_PAGE_HEADER <= special <= BLCKSZ - HASH_OPAQUE_SIZE:
            raise PageError(f"pd_special {special} leaves no room for the hash special space")
        return special

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> HashOpaque:
        return cls(*_OPAQUE.unpack_from(data, cls._at(data)))

    def write(self, page: Page) -> None:
        _OPAQUE.pack_into(page.data, self._at(page.data), self.prevblkno, self.nextblkno, self.bucket,
                          self.flag, self.page_id)

    def with_(self, **fields: int) -> HashOpaque:
        values = {"prevblkno": self.prevblkno, "nextblkno": self.nextblkno, "bucket": self.bucket,
                  "flag": self.flag, "page_id": self.page_id}
        values.update(fields)
        return HashOpaque(**values)


def is_hash_page(data: bytes | None) -> bool:
    """A page with a 16-byte special space ending in the hash page id."""
    if data is None:
        return False
    special = int.from_bytes(data[16:18], "little")
    return special == BLCKSZ - HASH_OPAQUE_SIZE and int.from_bytes(data[-2:], "little") == HASHO_PAGE_ID


def hash_page_init(page: Page) -> None:
    """``_hash_pageinit``: ``PageInit`` with room for ``HashPageOpaqueData``."""
    page.init(HASH_OPAQUE_SIZE)


def init_bucket_page(page: Page, max_bucket: int, bucket: int, flag: int) -> None:
    """``_hash_initbuf`` (initpage): a fresh bucket or overflow page; hasho_prevblkno is
    ``max_bucket``, no next page."""
    hash_page_init(page)
    HashOpaque(max_bucket, INVALID_BLOCK, bucket, flag).write(page)


def init_bitmap_page(page: Page, bmsize: int) -> None:
    """``_hash_initbitmapbuffer`` (initpage): every one of ``bmsize`` bytes of bits set (all
    overflow pages in use), pd_lower just past them."""
    hash_page_init(page)
    HashOpaque(flag=LH_BITMAP_PAGE).write(page)
    end = _BITMAP_AT + bmsize
    if end > BLCKSZ:
        raise PageError(f"a bitmap of {bmsize} bytes does not fit in a page")
    page.data[_BITMAP_AT:end] = b"\xff" * bmsize
    page.lower = end


def _bitmap_pos(bit: int) -> int:
    pos = _BITMAP_AT + bit // 8
    if pos >= BLCKSZ:
        raise PageError(f"bitmap bit {bit} is beyond the page")
    return pos


def bitmap_bit(data: bytes | bytearray, bit: int) -> bool:
    """Whether overflow bit ``bit`` of a bitmap page is set."""
    return bool(data[_bitmap_pos(bit)] >> (bit % 8) & 1)


def set_bitmap_bit(page: Page, bit: int, value: bool) -> None:
    """``SETBIT`` / ``CLRBIT`` on the page's bitmap."""
    pos = _bitmap_pos(bit)
    if value:
        page.data[pos] |= 1 << (bit % 8)
    else:
        page.data[pos] &= ~(1 << (bit % 8)) & 0xFF


# -- the metapage -----------------------------------------------------------------------------


def meta_u32_at(name: str, index: int) -> int:
    """The byte offset of ``hashm_spares[index]`` (``name`` "spares") or ``hashm_mapp[index]``
    ("mapp") on the metapage; PageError when that is outside the page."""
    at = (_SPARES_AT if name == "spares" else _MAPP_AT) + 4 * index
    if not 0 <= at <= BLCKSZ - 4:
        raise PageError(f"hashm_{name}[{index}] is outside the page")
    return at


def set_meta_u32_at(page: Page, name: str, index: int, value: int) -> None:
    struct.pack_into("<I", page.data, meta_u32_at(name, index), value & 0xFFFFFFFF)


@dataclass(frozen=True)
class HashMeta:
    """The scalar fields of ``HashMetaPageData`` (what redo and the drawers read); the
    arrays are read with :meth:`spare` and :meth:`mapp`."""

    magic: int
    version: int
    ntuples: float
    ffactor: int
    bsize: int
    bmsize: int
    bmshift: int
    maxbucket: int
    highmask: int
    lowmask: int
    ovflpoint: int
    firstfree: int
    nmaps: int
    procid: int

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> HashMeta:
        return cls(*_META.unpack_from(data, _META_AT))

    @staticmethod
    def get(data: bytes | bytearray | memoryview, name: str) -> int | float:
        return struct.unpack_from(_FIELD_FMT[name], data, _FIELD_AT[name])[0]

    @staticmethod
    def set(page: Page, name: str, value: int | float) -> None:
        """Store one scalar field (u32 and u16 fields wrap as C's unsigned arithmetic does)."""
        fmt = _FIELD_FMT[name]
        if fmt != "<d":
            value = int(value) & (0xFFFF if fmt == "<H" else 0xFFFFFFFF)
        struct.pack_into(fmt, page.data, _FIELD_AT[name], value)

    @staticmethod
    def spare(data: bytes | bytearray | memoryview, index: int) -> int:
        return struct.unpack_from("<I", data, meta_u32_at("spares", index))[0]

    @staticmethod
    def mapp(data: bytes | bytearray | memoryview, index: int) -> int:
        return struct.unpack_from("<I", data, meta_u32_at("mapp", index))[0]


def _ceil_log2(n: int) -> int:
    """``pg_ceil_log2_32``: 0 for 0 and 1."""
    return 0 if n <= 1 else (n - 1).bit_length()


def spare_index(num_bucket: int) -> int:
    """``_hash_spareindex``: the splitpoint phase at which bucket count ``num_bucket`` ends."""
    group = _ceil_log2(num_bucket)
    if group < _SPLITPOINT_GROUPS_WITH_ONE_PHASE:
        return group
    phases = _SPLITPOINT_GROUPS_WITH_ONE_PHASE + ((group - _SPLITPOINT_GROUPS_WITH_ONE_PHASE) << _SPLITPOINT_PHASE_BITS)
    return phases + (((num_bucket - 1) >> (group - (_SPLITPOINT_PHASE_BITS + 1))) & 3)


def total_buckets(phase: int) -> int:
    """``_hash_get_totalbuckets``: the buckets allocated once splitpoint ``phase`` is done."""
    if phase < _SPLITPOINT_GROUPS_WITH_ONE_PHASE:
        return 1 << phase
    group = _SPLITPOINT_GROUPS_WITH_ONE_PHASE + ((phase - _SPLITPOINT_GROUPS_WITH_ONE_PHASE) >> _SPLITPOINT_PHASE_BITS)
    within = ((phase - _SPLITPOINT_GROUPS_WITH_ONE_PHASE) & 3) + 1
    return (1 << (group - 1)) + ((1 << (group - 1)) >> _SPLITPOINT_PHASE_BITS) * within


def _initial_buckets(num_tuples: float, ffactor: int) -> int:
    """The bucket count ``_hash_init_metabuffer`` starts with: num_tuples / ffactor rounded up
    to a whole splitpoint, at least 2 and at most 2^30 (the division in C doubles)."""
    if ffactor == 0:
        d = math.copysign(math.inf, num_tuples) if num_tuples else math.nan
    else:
        d = num_tuples / ffactor
    if math.isnan(d):
        raise PageError("hash metapage: num_tuples / ffactor is not a number")
    if d <= 2.0:
        return 2
    if d >= float(0x40000000):
        return 0x40000000
    return total_buckets(spare_index(int(d)))


def init_meta_page(page: Page, num_tuples: float, procid: int, ffactor: int) -> None:
    """``_hash_init_metabuffer`` (initpage): the metapage of a new index sized for
    ``num_tuples`` at fill factor ``ffactor`` (in tuples per bucket)."""
    num_buckets = _initial_buckets(num_tuples, ffactor)
    spares_at = spare_index(num_buckets)
    hash_page_init(page)
    HashOpaque(flag=LH_META_PAGE).write(page)
    bsize = _MAX_BITMAP_SIZE
    lshift = bsize.bit_length() - 1  # pg_leftmost_one_pos32
    highmask = (1 << num_buckets.bit_length()) - 1  # pg_nextpower2_32(num_buckets + 1) - 1
    _META.pack_into(page.data, _META_AT, HASH_MAGIC, HASH_VERSION, 0.0, ffactor, bsize, 1 << lshift,
                    lshift + 3, num_buckets - 1, highmask, highmask >> 1, spares_at, 0, 0, procid)
    set_meta_u32_at(page, "spares", spares_at, 1)
    page.lower = _META_AT + HASH_META_SIZE


# -- tuples -------------------------------------------------------------------------------------


def hash_tuple(hashkey: int, tid_block: int, tid_offset: int, *, moved_by_split: bool = False) -> bytes:
    """A hash index tuple: heap TID, t_info (size 16, maybe INDEX_MOVED_BY_SPLIT_MASK) and
    the hash code, zero-padded."""
    info = HASH_TUPLE_SIZE | (INDEX_MOVED_BY_SPLIT_MASK if moved_by_split else 0)
    return IndexTuple(tid_block, tid_offset, info, struct.pack("<II", hashkey, 0)).pack()


def tuple_hashkey(tup: bytes | memoryview) -> int:
    """``_hash_get_indextuple_hashkey``: the uint32 right after the 8-byte header."""
    if len(tup) < 12:
        raise PageError(f"a hash index tuple of {len(tup)} bytes has no hash code")
    return struct.unpack_from("<I", tup, 8)[0]


def tuple_size(tup: bytes | memoryview) -> int:
    """``IndexTupleSize``."""
    return struct.unpack_from("<H", tup, 6)[0] & INDEX_SIZE_MASK


def binsearch(page: Page, hashkey: int) -> int:
    """``_hash_binsearch``: the first offset whose tuple's hash code is >= ``hashkey`` (one
    past the end when none is): where an insert keeps the page ordered by hash code."""
    lower, upper = 1, page.max_offset() + 1
    while upper > lower:
        off = (upper + lower) // 2
        if tuple_hashkey(page.item(off)) < hashkey:
            lower = off + 1
        else:
            upper = off
    return lower


def hashkey2bucket(hashkey: int, maxbucket: int, highmask: int, lowmask: int) -> int:
    """``_hash_hashkey2bucket``."""
    bucket = hashkey & highmask
    return bucket & lowmask if bucket > maxbucket else bucket
