"""B-tree pages (``nbtree.h``): the special space ``BTPageOpaqueData``, the metapage and
index tuples (``IndexTupleData``, ``itup.h``).

A btree page is a standard page (:mod:`pytest_walredo.pg.page`) whose last 16 bytes are::

    btpo_prev u32 | btpo_next u32 | btpo_level u32 | btpo_flags u16 | btpo_cycleid u16

(PostgreSQL 14+ named the third field ``btpo_level``; it is 0 on leaves.) The metapage
(block 0) keeps ``BTMetaPageData`` right after the 24-byte header and sets pd_lower just past
it. Index tuples start with an 8-byte ``IndexTupleData``: the heap TID (bi_hi u16, bi_lo
u16, posid u16) and ``t_info`` (size in the low 13 bits, then AM-reserved, has-varwidth and
has-nulls bits). Little-endian throughout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pytest_walredo.pg.page import BLCKSZ, Page, maxalign

__all__ = [
    "BTP_DELETED",
    "BTP_HALF_DEAD",
    "BTP_HAS_GARBAGE",
    "BTP_INCOMPLETE_SPLIT",
    "BTP_LEAF",
    "BTP_META",
    "BTP_ROOT",
    "BTP_SPLIT_END",
    "BTREE_MAGIC",
    "BT_META_SIZE",
    "BT_OPAQUE_SIZE",
    "INDEX_NULL_MASK",
    "INDEX_SIZE_MASK",
    "INDEX_VAR_MASK",
    "BTMetaPageData",
    "BTPageOpaque",
    "IndexTuple",
    "btree_page_init",
    "split_index_tuples",
]

BT_OPAQUE_SIZE = 16  # sizeof(BTPageOpaqueData)
BT_META_SIZE = 48  # sizeof(BTMetaPageData): 7 u32, pad to 8, float8, bool, pad to 8
BTREE_MAGIC = 0x053162

BTP_LEAF = 1 << 0
BTP_ROOT = 1 << 1
BTP_DELETED = 1 << 2
BTP_META = 1 << 3
BTP_HALF_DEAD = 1 << 4
BTP_SPLIT_END = 1 << 5
BTP_HAS_GARBAGE = 1 << 6
BTP_INCOMPLETE_SPLIT = 1 << 7
BTP_HAS_FULLXID = 1 << 8

_FLAG_NAMES = (
    (BTP_LEAF, "LEAF"),
    (BTP_ROOT, "ROOT"),
    (BTP_DELETED, "DELETED"),
    (BTP_META, "META"),
    (BTP_HALF_DEAD, "HALF_DEAD"),
    (BTP_SPLIT_END, "SPLIT_END"),
    (BTP_HAS_GARBAGE, "HAS_GARBAGE"),
    (BTP_INCOMPLETE_SPLIT, "INCOMPLETE_SPLIT"),
    (BTP_HAS_FULLXID, "HAS_FULLXID"),
)

INDEX_SIZE_MASK = 0x1FFF
INDEX_AM_RESERVED_BIT = 0x2000
INDEX_VAR_MASK = 0x4000
INDEX_NULL_MASK = 0x8000

_OPAQUE = struct.Struct("<IIIHH")
_META = struct.Struct("<IIIIIII4xd?7x")
_ITUP = struct.Struct("<HHHH")
assert _OPAQUE.size == BT_OPAQUE_SIZE and _META.size == BT_META_SIZE


@dataclass(frozen=True)
class BTPageOpaque:
    """``BTPageOpaqueData``: sibling links, level, flags and vacuum cycle id."""

    prev: int = 0
    next: int = 0
    level: int = 0
    flags: int = 0
    cycleid: int = 0

    def pack(self) -> bytes:
        return _OPAQUE.pack(self.prev, self.next, self.level, self.flags, self.cycleid)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> BTPageOpaque:
        """Read the special space of a page (its last 16 bytes)."""
        return cls(*_OPAQUE.unpack_from(data, BLCKSZ - BT_OPAQUE_SIZE))

    def write(self, page: Page) -> None:
        page.data[BLCKSZ - BT_OPAQUE_SIZE :] = self.pack()

    def flag_names(self) -> list[str]:
        return [name for bit, name in _FLAG_NAMES if self.flags & bit]


@dataclass(frozen=True)
class BTMetaPageData:
    """``BTMetaPageData`` (PostgreSQL 14+ field set), stored at offset 24 of block 0."""

    magic: int = BTREE_MAGIC
    version: int = 4
    root: int = 0
    level: int = 0
    fastroot: int = 0
    fastlevel: int = 0
    last_cleanup_num_delpages: int = 0
    last_cleanup_num_heap_tuples: float = -1.0
    allequalimage: bool = False

    def pack(self) -> bytes:
        return _META.pack(
            self.magic,
            self.version,
            self.root,
            self.level,
            self.fastroot,
            self.fastlevel,
            self.last_cleanup_num_delpages,
            self.last_cleanup_num_heap_tuples,
            self.allequalimage,
        )

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> BTMetaPageData:
        return cls(*_META.unpack_from(data, 24))


@dataclass(frozen=True)
class IndexTuple:
    """``IndexTupleData`` header (heap TID + t_info) and the key bytes after it."""

    tid_block: int
    tid_offset: int
    info: int
    data: bytes = b""

    @property
    def size(self) -> int:
        """``IndexTupleSize``: the total tuple length from t_info."""
        return self.info & INDEX_SIZE_MASK

    @property
    def has_nulls(self) -> bool:
        return bool(self.info & INDEX_NULL_MASK)

    @property
    def has_varwidths(self) -> bool:
        return bool(self.info & INDEX_VAR_MASK)

    def pack(self) -> bytes:
        return (
            _ITUP.pack(self.tid_block >> 16, self.tid_block & 0xFFFF, self.tid_offset, self.info)
            + self.data
        )

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> IndexTuple:
        if len(data) < _ITUP.size:
            raise ValueError(f"an index tuple needs at least 8 bytes, got {len(data)}")
        hi, lo, posid, info = _ITUP.unpack_from(data, 0)
        return cls((hi << 16) | lo, posid, info, bytes(data[_ITUP.size :]))


def btree_page_init(page: Page) -> None:
    """``_bt_pageinit``: ``PageInit`` with room for ``BTPageOpaqueData``."""
    page.init(BT_OPAQUE_SIZE)


def split_index_tuples(data: bytes) -> list[bytes]:
    """Cut a run of MAXALIGNed index tuples (a page's tuple area, as btree WAL logs it) into
    the tuples, each ``MAXALIGN(IndexTupleSize)`` bytes long. Raises ValueError when a size
    is 0 or runs past the end."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + _ITUP.size > len(data):
            raise ValueError(f"index tuple header at byte {pos} runs past the end ({len(data)})")
        size = maxalign(_ITUP.unpack_from(data, pos)[3] & INDEX_SIZE_MASK)
        if size == 0 or pos + size > len(data):
            raise ValueError(
                f"index tuple at byte {pos} has size {size}, which does not fit in {len(data)}"
            )
        out.append(data[pos : pos + size])
        pos += size
    return out
