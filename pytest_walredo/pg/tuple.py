"""The heap tuple header (``HeapTupleHeaderData``, ``htup_details.h``) and its flag bits.

Layout (23 bytes, then the null bitmap ``t_bits``, then padding up to ``t_hoff``)::

    off  0  t_xmin       u32   inserting xact
    off  4  t_xmax       u32   deleting or locking xact
    off  8  t_cid/t_xvac u32   union: command id, or the old VACUUM FULL xact id
    off 12  t_ctid       6 B   block number as two u16 halves (bi_hi, bi_lo), then ip_posid u16
    off 18  t_infomask2  u16   number of attributes (low 11 bits) + flags
    off 20  t_infomask   u16   flags
    off 22  t_hoff       u8    offset of the user data (MAXALIGNed header length)
    off 23  t_bits[]           null bitmap, one bit per attribute when HEAP_HASNULL

All little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "HEAP2_XACT_MASK",
    "HEAP_COMBOCID",
    "HEAP_HASNULL",
    "HEAP_HOT_UPDATED",
    "HEAP_KEYS_UPDATED",
    "HEAP_MOVED",
    "HEAP_NATTS_MASK",
    "HEAP_ONLY_TUPLE",
    "HEAP_UPDATED",
    "HEAP_XACT_MASK",
    "HEAP_XMAX_BITS",
    "HEAP_XMAX_COMMITTED",
    "HEAP_XMAX_EXCL_LOCK",
    "HEAP_XMAX_INVALID",
    "HEAP_XMAX_IS_MULTI",
    "HEAP_XMAX_KEYSHR_LOCK",
    "HEAP_XMAX_LOCK_ONLY",
    "HEAP_XMIN_COMMITTED",
    "HEAP_XMIN_FROZEN",
    "HEAP_XMIN_INVALID",
    "SIZEOF_HEAP_TUPLE_HEADER",
    "SPEC_TOKEN_OFFSET_NUMBER",
    "HeapTupleHeader",
    "infomask2_names",
    "infomask_names",
]

SIZEOF_HEAP_TUPLE_HEADER = 23  # offsetof(HeapTupleHeaderData, t_bits)

# t_infomask
HEAP_HASNULL = 0x0001
HEAP_HASVARWIDTH = 0x0002
HEAP_HASEXTERNAL = 0x0004
HEAP_HASOID_OLD = 0x0008
HEAP_XMAX_KEYSHR_LOCK = 0x0010
HEAP_COMBOCID = 0x0020
HEAP_XMAX_EXCL_LOCK = 0x0040
HEAP_XMAX_LOCK_ONLY = 0x0080
HEAP_XMIN_COMMITTED = 0x0100
HEAP_XMIN_INVALID = 0x0200
HEAP_XMAX_COMMITTED = 0x0400
HEAP_XMAX_INVALID = 0x0800
HEAP_XMAX_IS_MULTI = 0x1000
HEAP_UPDATED = 0x2000
HEAP_MOVED_OFF = 0x4000
HEAP_MOVED_IN = 0x8000
HEAP_XMIN_FROZEN = HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID
HEAP_XMAX_SHR_LOCK = HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK
HEAP_LOCK_MASK = HEAP_XMAX_SHR_LOCK | HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK
HEAP_MOVED = HEAP_MOVED_OFF | HEAP_MOVED_IN
HEAP_XACT_MASK = 0xFFF0  # visibility-related bits
HEAP_XMAX_BITS = (
    HEAP_XMAX_COMMITTED
    | HEAP_XMAX_INVALID
    | HEAP_XMAX_IS_MULTI
    | HEAP_LOCK_MASK
    | HEAP_XMAX_LOCK_ONLY
)

# t_infomask2
HEAP_NATTS_MASK = 0x07FF
HEAP_KEYS_UPDATED = 0x2000
HEAP_HOT_UPDATED = 0x4000
HEAP_ONLY_TUPLE = 0x8000
HEAP2_XACT_MASK = 0xE000

# a speculative insertion keeps its token in t_ctid with this offset number
SPEC_TOKEN_OFFSET_NUMBER = 0xFFFE

_INFOMASK_NAMES = (
    (HEAP_HASNULL, "HASNULL"),
    (HEAP_HASVARWIDTH, "HASVARWIDTH"),
    (HEAP_HASEXTERNAL, "HASEXTERNAL"),
    (HEAP_HASOID_OLD, "HASOID_OLD"),
    (HEAP_XMAX_KEYSHR_LOCK, "XMAX_KEYSHR_LOCK"),
    (HEAP_COMBOCID, "COMBOCID"),
    (HEAP_XMAX_EXCL_LOCK, "XMAX_EXCL_LOCK"),
    (HEAP_XMAX_LOCK_ONLY, "XMAX_LOCK_ONLY"),
    (HEAP_XMIN_COMMITTED, "XMIN_COMMITTED"),
    (HEAP_XMIN_INVALID, "XMIN_INVALID"),
    (HEAP_XMAX_COMMITTED, "XMAX_COMMITTED"),
    (HEAP_XMAX_INVALID, "XMAX_INVALID"),
    (HEAP_XMAX_IS_MULTI, "XMAX_IS_MULTI"),
    (HEAP_UPDATED, "UPDATED"),
    (HEAP_MOVED_OFF, "MOVED_OFF"),
    (HEAP_MOVED_IN, "MOVED_IN"),
)
_INFOMASK2_NAMES = (
    (HEAP_KEYS_UPDATED, "KEYS_UPDATED"),
    (HEAP_HOT_UPDATED, "HOT_UPDATED"),
    (HEAP_ONLY_TUPLE, "HEAP_ONLY_TUPLE"),
)

_FIXED = struct.Struct("<IIIHHHHHB")


def infomask_names(infomask: int) -> list[str]:
    """Names of the set ``t_infomask`` bits, low bit first."""
    return [name for bit, name in _INFOMASK_NAMES if infomask & bit]


def infomask2_names(infomask2: int) -> list[str]:
    """Names of the set ``t_infomask2`` flag bits (the attribute count is not a flag)."""
    return [name for bit, name in _INFOMASK2_NAMES if infomask2 & bit]


@dataclass(frozen=True)
class HeapTupleHeader:
    """The fixed 23-byte tuple header plus the null bitmap.

    ``cid`` is the raw ``t_field3`` union (``t_cid`` or ``t_xvac``). ``ctid_block`` is the
    full 32-bit block number (PostgreSQL splits it into ``bi_hi``/``bi_lo`` u16 halves).
    ``bits`` holds the bytes from offset 23 to ``t_hoff`` (null bitmap and padding) when the
    tuple is long enough, so ``pack()`` of an unpacked header gives back the same bytes.
    """

    xmin: int = 0
    xmax: int = 0
    cid: int = 0
    ctid_block: int = 0
    ctid_offset: int = 0
    infomask2: int = 0
    infomask: int = 0
    hoff: int = SIZEOF_HEAP_TUPLE_HEADER + 1  # MAXALIGN(23) = 24 with no null bitmap
    bits: bytes = b""

    @property
    def natts(self) -> int:
        return self.infomask2 & HEAP_NATTS_MASK

    @property
    def xvac(self) -> int:
        return self.cid

    @property
    def ctid(self) -> tuple[int, int]:
        return (self.ctid_block, self.ctid_offset)

    def flag_names(self) -> list[str]:
        return infomask_names(self.infomask) + infomask2_names(self.infomask2)

    def pack(self) -> bytes:
        return (
            _FIXED.pack(
                self.xmin,
                self.xmax,
                self.cid,
                self.ctid_block >> 16,
                self.ctid_block & 0xFFFF,
                self.ctid_offset,
                self.infomask2,
                self.infomask,
                self.hoff,
            )
            + self.bits
        )

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> HeapTupleHeader:
        """Read the header at the start of ``data`` (a whole tuple, or at least 23 bytes)."""
        if len(data) < SIZEOF_HEAP_TUPLE_HEADER:
            raise ValueError(
                f"a heap tuple header needs {SIZEOF_HEAP_TUPLE_HEADER} bytes, got {len(data)}"
            )
        xmin, xmax, cid, bi_hi, bi_lo, posid, m2, m, hoff = _FIXED.unpack_from(data, 0)
        end = min(max(hoff, SIZEOF_HEAP_TUPLE_HEADER), len(data))
        bits = bytes(data[SIZEOF_HEAP_TUPLE_HEADER:end])
        return cls(xmin, xmax, cid, (bi_hi << 16) | bi_lo, posid, m2, m, hoff, bits)


# Field offsets inside a tuple, for in-place edits during redo.
OFF_XMIN = 0
OFF_XMAX = 4
OFF_CID = 8
OFF_CTID = 12
OFF_INFOMASK2 = 18
OFF_INFOMASK = 20
OFF_HOFF = 22


def set_ctid(buf: bytearray | memoryview, pos: int, block: int, offset: int) -> None:
    """Write ``t_ctid`` of the tuple starting at ``buf[pos]``."""
    struct.pack_into("<HHH", buf, pos + OFF_CTID, block >> 16, block & 0xFFFF, offset)


def get_u16(buf: bytearray | memoryview, pos: int) -> int:
    return struct.unpack_from("<H", buf, pos)[0]


def set_u16(buf: bytearray | memoryview, pos: int, value: int) -> None:
    struct.pack_into("<H", buf, pos, value)


def set_u32(buf: bytearray | memoryview, pos: int, value: int) -> None:
    struct.pack_into("<I", buf, pos, value)


def get_u32(buf: bytearray | memoryview, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]
