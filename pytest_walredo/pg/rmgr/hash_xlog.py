"""What every hash record module shares (``access/hash_xlog.h``, PostgreSQL 14-17): opcodes,
record names, the record base class and the helpers of the descriptions and decoders.

The records live in :mod:`.hash` (index creation, inserts, overflow pages, bucket splits;
the rmgr's decoder) and :mod:`.hash_vacuum` (squeezing, deletion, cleanup, the metapage's
tuple count, VACUUM_ONE_PAGE).

Main data layouts, little-endian (no struct has inner padding except PG16+'s
``xl_hash_vacuum_one_page``, whose byte after isCatalogRel is kept as ``pad``):

=============================  ==========================================================  ====
struct                         fields                                                      size
=============================  ==========================================================  ====
xl_hash_init_meta_page         num_tuples float8, procid u32, ffactor u16                  14
xl_hash_init_bitmap_page       bmsize u16                                                  2
xl_hash_insert                 offnum u16                                                  2
xl_hash_add_ovfl_page          bmsize u16, bmpage_found bool                               3
xl_hash_split_allocate_page    new_bucket u32, old_bucket_flag u16, new_bucket_flag u16,   9
                               flags u8 (1 masks updated, 2 splitpoint changed)
xl_hash_split_complete         old_bucket_flag u16, new_bucket_flag u16                    4
xl_hash_move_page_contents     ntups u16, is_prim_bucket_same_wrt bool                     3
xl_hash_squeeze_page           prevblkno u32, nextblkno u32, ntups u16,                    12
                               is_prim_bucket_same_wrt bool, is_prev_bucket_same_wrt bool
xl_hash_delete                 clear_dead_marking bool, is_primary_bucket_page bool        2
xl_hash_update_meta_page       ntuples float8                                              8
xl_hash_vacuum_one_page        PG14/15: latestRemovedXid u32, ntuples int32;               8
                               PG16+: snapshotConflictHorizon u32, ntuples u16,
                               isCatalogRel bool, pad; the deleted offsets (u16) follow
=============================  ==========================================================  ====

SPLIT_PAGE and SPLIT_CLEANUP have no main data. Block data is described with each record.
PostgreSQL leaves a block's data out when the block carries a full-page image that redo
applies; the typed records then hold None for it.

Descriptions (``hashdesc.c``) are the same in 14-17 but for VACUUM_ONE_PAGE, which PG16
renamed and extended; C's ``%g`` and Python's agree on finite doubles.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from pytest_walredo.pg.btree_page import INDEX_SIZE_MASK
from pytest_walredo.pg.constants import maxalign
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, unpack
from pytest_walredo.pg.rmgr.ids import RM_HASH_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "HASH_NAMES",
    "XLH_SPLIT_META_UPDATE_MASKS",
    "XLH_SPLIT_META_UPDATE_SPLITPOINT",
    "XLOG_HASH_ADD_OVFL_PAGE",
    "XLOG_HASH_DELETE",
    "XLOG_HASH_INIT_BITMAP_PAGE",
    "XLOG_HASH_INIT_META_PAGE",
    "XLOG_HASH_INSERT",
    "XLOG_HASH_MOVE_PAGE_CONTENTS",
    "XLOG_HASH_SPLIT_ALLOCATE_PAGE",
    "XLOG_HASH_SPLIT_CLEANUP",
    "XLOG_HASH_SPLIT_COMPLETE",
    "XLOG_HASH_SPLIT_PAGE",
    "XLOG_HASH_SQUEEZE_PAGE",
    "XLOG_HASH_UPDATE_META_PAGE",
    "XLOG_HASH_VACUUM_ONE_PAGE",
    "HashRecord",
    "exact",
    "flag_char",
    "join_tuples",
    "no_data",
    "opt_u32",
    "pack_offsets",
    "read_bool",
    "split_tuples",
    "u32_data",
]

XLOG_HASH_INIT_META_PAGE = 0x00
XLOG_HASH_INIT_BITMAP_PAGE = 0x10
XLOG_HASH_INSERT = 0x20
XLOG_HASH_ADD_OVFL_PAGE = 0x30
XLOG_HASH_SPLIT_ALLOCATE_PAGE = 0x40
XLOG_HASH_SPLIT_PAGE = 0x50
XLOG_HASH_SPLIT_COMPLETE = 0x60
XLOG_HASH_MOVE_PAGE_CONTENTS = 0x70
XLOG_HASH_SQUEEZE_PAGE = 0x80
XLOG_HASH_DELETE = 0x90
XLOG_HASH_SPLIT_CLEANUP = 0xA0
XLOG_HASH_UPDATE_META_PAGE = 0xB0
XLOG_HASH_VACUUM_ONE_PAGE = 0xC0

XLH_SPLIT_META_UPDATE_MASKS = 1 << 0
XLH_SPLIT_META_UPDATE_SPLITPOINT = 1 << 1

HASH_NAMES = {
    XLOG_HASH_INIT_META_PAGE: "INIT_META_PAGE",
    XLOG_HASH_INIT_BITMAP_PAGE: "INIT_BITMAP_PAGE",
    XLOG_HASH_INSERT: "INSERT",
    XLOG_HASH_ADD_OVFL_PAGE: "ADD_OVFL_PAGE",
    XLOG_HASH_SPLIT_ALLOCATE_PAGE: "SPLIT_ALLOCATE_PAGE",
    XLOG_HASH_SPLIT_PAGE: "SPLIT_PAGE",
    XLOG_HASH_SPLIT_COMPLETE: "SPLIT_COMPLETE",
    XLOG_HASH_MOVE_PAGE_CONTENTS: "MOVE_PAGE_CONTENTS",
    XLOG_HASH_SQUEEZE_PAGE: "SQUEEZE_PAGE",
    XLOG_HASH_DELETE: "DELETE",
    XLOG_HASH_SPLIT_CLEANUP: "SPLIT_CLEANUP",
    XLOG_HASH_UPDATE_META_PAGE: "UPDATE_META_PAGE",
    XLOG_HASH_VACUUM_ONE_PAGE: "VACUUM_ONE_PAGE",
}
"""pg_waldump's name of every hash opcode."""


class HashRecord(RmgrRecord):
    """Base of the hash typed records: rmgr 12 in every version and flavour; ``OP`` is the
    record's opcode."""

    RMGR: ClassVar[str] = "Hash"
    OP: ClassVar[int] = -1

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HASH_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.OP

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return HASH_NAMES[self.OP]


def flag_char(value: bool) -> str:
    """hashdesc's ``%c`` of a bool: ``T`` or ``F``."""
    return "T" if value else "F"


def exact(main: bytes, size: int, op: int) -> None:
    if len(main) != size:
        raise RmgrDecodeError(f"hash {HASH_NAMES[op]} main data is {len(main)} bytes, expected {size}")


def read_bool(value: int, what: str) -> bool:
    """A C bool as logged: 0 or 1 (PostgreSQL never logs another value)."""
    if value > 1:
        raise RmgrDecodeError(f"hash {what} is {value}, expected 0 or 1")
    return bool(value)


def u32_data(blocks: dict[int, bytes], block_id: int, what: str) -> int | None:
    """A block's uint32 payload, or None when the block carries no data (an image replaced it)."""
    data = blocks.get(block_id)
    if data is None:
        return None
    if len(data) != 4:
        raise RmgrDecodeError(f"hash {what} block {block_id} data is {len(data)} bytes, expected 4")
    return struct.unpack("<I", data)[0]


def no_data(record: object, *names: str) -> None:
    """An array a record logs as block data is None when not logged, never empty: PostgreSQL
    writes no data for an empty array, which decodes as None."""
    for name in names:
        if getattr(record, name, None) == ():
            raise ValueError(f"hash {type(record).__name__}.{name}: an empty array is logged as no data; use None")


def opt_u32(value: int | None) -> bytes:
    return b"" if value is None else struct.pack("<I", value)


def pack_offsets(offsets: tuple[int, ...] | None) -> bytes:
    return b"" if not offsets else struct.pack(f"<{len(offsets)}H", *offsets)


def split_tuples(data: bytes, count: int, what: str) -> tuple[bytes, ...]:
    """``count`` index tuples laid end to end in ``data``, each ``MAXALIGN(IndexTupleSize)``
    bytes as hash redo steps over them; the data must end with the last one."""
    out = []
    pos = 0
    while pos < len(data):
        (t_info,) = unpack("<H", data, pos + 6, f"hash {what} index tuple header")
        size = maxalign(t_info & INDEX_SIZE_MASK)
        if size == 0 or pos + size > len(data):
            raise RmgrDecodeError(f"hash {what} index tuple at byte {pos} claims {size} bytes; "
                                  f"the data has {len(data) - pos}")
        out.append(data[pos : pos + size])
        pos += size
    if len(out) != count:
        raise RmgrDecodeError(f"hash {what} logs {len(out)} index tuples for ntups {count}")
    return tuple(out)


def join_tuples(offsets: tuple[int, ...] | None, tuples: tuple[bytes, ...] | None) -> bytes:
    """The write page's block data of MOVE_PAGE_CONTENTS and SQUEEZE_PAGE: the offsets, then
    the tuples."""
    if offsets is None or tuples is None:
        return b""
    return pack_offsets(offsets) + b"".join(tuples)
