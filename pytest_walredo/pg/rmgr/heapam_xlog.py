"""What every heap record module shares: opcodes, flags, Neon's cid layout rule, xl_heap_header.

The heap rmgr (RM_HEAP_ID = 10, :mod:`.heap` and :mod:`.heap_inplace`) and, in Neon PG16/17,
Neon's rmgr 134 (:mod:`.neon`) log the records below; heap2 MULTI_INSERT (:mod:`.heap2`) uses
the same cid rule.

Layouts (little-endian, C struct padding shown as ``pad``), from PostgreSQL's
``src/include/access/heapam_xlog.h`` and Neon's fork (``neondatabase/postgres``
``heapam_xlog.h`` for PG14/15, ``access/neon_xlog.h`` for PG16/17):

=====================  =====================================  ==========================================
struct                 vanilla PG14-17                        Neon
=====================  =====================================  ==========================================
xl_heap_header         infomask2 u16, infomask u16, hoff u8   PG14-17: infomask2, infomask, t_cid u32,
                       (5 bytes)                              hoff (9 bytes)
xl_heap_insert         offnum u16, flags u8 (3)               same
xl_heap_delete         xmax u32, offnum u16, infobits u8,     PG14/15: xmax, offnum, pad2, t_cid, infobits,
                       flags u8 (8)                           flags (14); PG16/17 (rmgr 134): xmax, offnum,
                                                              infobits, flags, t_cid (12)
xl_heap_update         old_xmax u32, old_offnum u16,          old_xmax, old_offnum, old_infobits, flags,
                       old_infobits u8, flags u8, new_xmax    t_cid u32, new_xmax, new_offnum (18)
                       u32, new_offnum u16 (14)
xl_heap_lock           locking_xid u32, offnum u16,           PG14/15: locking_xid, offnum, pad2, t_cid,
                       infobits u8, flags u8 (8)              infobits, flags (14); PG16/17: xmax, t_cid,
                                                              offnum, infobits, flags (12)
xl_heap_confirm        offnum u16 (2)                         same (stays in the heap rmgr)
xl_heap_inplace        offnum u16 (2)                         same (stays in the heap rmgr)
=====================  =====================================  ==========================================

Neon PG16/17 logs INSERT/DELETE/UPDATE/HOT_UPDATE/LOCK/MULTI_INSERT through RM_NEON_ID (134)
with info INSERT 0x00, DELETE 0x10, UPDATE 0x20, HOT_UPDATE 0x30, LOCK 0x40, MULTI_INSERT
0x50, INIT_PAGE 0x80. In this model a record's ``t_cid`` decides the layout: ``None`` is the
vanilla layout (rmgr 10), an integer the Neon cid-carrying one (rmgr 10 in PG14/15, rmgr 134
in PG16/17). Neon PG14/15 heap records always carry a cid; vanilla records never do.

Block data: INSERT block 0 = xl_heap_header + tuple bytes from t_bits on (absent when a
full-page image replaced it); UPDATE block 0 = [prefix len u16][suffix len u16] +
xl_heap_header + tuple bytes, block 1 = old page when different; INPLACE block 0 = the new
tuple bytes from t_hoff on. DELETE/UPDATE with CONTAINS_OLD_* append xl_heap_header + old
tuple bytes to the main data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, unpack
from pytest_walredo.pg.rmgr.ids import RM_HEAP_ID, RM_NEON_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "XLHL_KEYS_UPDATED",
    "XLHL_XMAX_EXCL_LOCK",
    "XLHL_XMAX_IS_MULTI",
    "XLHL_XMAX_KEYSHR_LOCK",
    "XLHL_XMAX_LOCK_ONLY",
    "XLH_DELETE_ALL_VISIBLE_CLEARED",
    "XLH_DELETE_CONTAINS_OLD",
    "XLH_DELETE_CONTAINS_OLD_KEY",
    "XLH_DELETE_CONTAINS_OLD_TUPLE",
    "XLH_DELETE_IS_PARTITION_MOVE",
    "XLH_DELETE_IS_SUPER",
    "XLH_INSERT_ALL_FROZEN_SET",
    "XLH_INSERT_ALL_VISIBLE_CLEARED",
    "XLH_INSERT_CONTAINS_NEW_TUPLE",
    "XLH_INSERT_IS_SPECULATIVE",
    "XLH_INSERT_LAST_IN_MULTI",
    "XLH_INSERT_ON_TOAST_RELATION",
    "XLH_LOCK_ALL_FROZEN_CLEARED",
    "XLH_UPDATE_CONTAINS_NEW_TUPLE",
    "XLH_UPDATE_CONTAINS_OLD",
    "XLH_UPDATE_CONTAINS_OLD_KEY",
    "XLH_UPDATE_CONTAINS_OLD_TUPLE",
    "XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED",
    "XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED",
    "XLH_UPDATE_PREFIX_FROM_OLD",
    "XLH_UPDATE_SUFFIX_FROM_OLD",
    "XLOG_HEAP_CONFIRM",
    "XLOG_HEAP_DELETE",
    "XLOG_HEAP_HOT_UPDATE",
    "XLOG_HEAP_INIT_PAGE",
    "XLOG_HEAP_INPLACE",
    "XLOG_HEAP_INSERT",
    "XLOG_HEAP_LOCK",
    "XLOG_HEAP_OPMASK",
    "XLOG_HEAP_TRUNCATE",
    "XLOG_HEAP_UPDATE",
    "XLOG_NEON_HEAP_DELETE",
    "XLOG_NEON_HEAP_HOT_UPDATE",
    "XLOG_NEON_HEAP_INSERT",
    "XLOG_NEON_HEAP_LOCK",
    "XLOG_NEON_HEAP_MULTI_INSERT",
    "XLOG_NEON_HEAP_UPDATE",
    "XLOG_NEON_INIT_PAGE",
    "XLOG_NEON_OPMASK",
    "XlTuple",
    "check_tuple_cid",
    "exact_size",
    "heap_rmid",
    "neon_cid_layout",
    "new_style",
    "tail_tuple",
]

XLOG_HEAP_INSERT = 0x00
XLOG_HEAP_DELETE = 0x10
XLOG_HEAP_UPDATE = 0x20
XLOG_HEAP_TRUNCATE = 0x30
XLOG_HEAP_HOT_UPDATE = 0x40
XLOG_HEAP_CONFIRM = 0x50
XLOG_HEAP_LOCK = 0x60
XLOG_HEAP_INPLACE = 0x70
XLOG_HEAP_OPMASK = 0x70
XLOG_HEAP_INIT_PAGE = 0x80

# Neon's rmgr 134 (PG16/17) opcodes of the same records (``access/neon_xlog.h``); decoding
# them is routed by :mod:`.neon`.
XLOG_NEON_HEAP_INSERT = 0x00
XLOG_NEON_HEAP_DELETE = 0x10
XLOG_NEON_HEAP_UPDATE = 0x20
XLOG_NEON_HEAP_HOT_UPDATE = 0x30
XLOG_NEON_HEAP_LOCK = 0x40
XLOG_NEON_HEAP_MULTI_INSERT = 0x50
XLOG_NEON_INIT_PAGE = 0x80
XLOG_NEON_OPMASK = 0x70

# xl_heap_insert / multi_insert flags
XLH_INSERT_ALL_VISIBLE_CLEARED = 0x01
XLH_INSERT_LAST_IN_MULTI = 0x02
XLH_INSERT_IS_SPECULATIVE = 0x04
XLH_INSERT_CONTAINS_NEW_TUPLE = 0x08
XLH_INSERT_ON_TOAST_RELATION = 0x10
XLH_INSERT_ALL_FROZEN_SET = 0x20
# xl_heap_update flags
XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED = 0x01
XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED = 0x02
XLH_UPDATE_CONTAINS_OLD_TUPLE = 0x04
XLH_UPDATE_CONTAINS_OLD_KEY = 0x08
XLH_UPDATE_CONTAINS_NEW_TUPLE = 0x10
XLH_UPDATE_PREFIX_FROM_OLD = 0x20
XLH_UPDATE_SUFFIX_FROM_OLD = 0x40
XLH_UPDATE_CONTAINS_OLD = XLH_UPDATE_CONTAINS_OLD_TUPLE | XLH_UPDATE_CONTAINS_OLD_KEY
# xl_heap_delete flags
XLH_DELETE_ALL_VISIBLE_CLEARED = 0x01
XLH_DELETE_CONTAINS_OLD_TUPLE = 0x02
XLH_DELETE_CONTAINS_OLD_KEY = 0x04
XLH_DELETE_IS_SUPER = 0x08
XLH_DELETE_IS_PARTITION_MOVE = 0x10
XLH_DELETE_CONTAINS_OLD = XLH_DELETE_CONTAINS_OLD_TUPLE | XLH_DELETE_CONTAINS_OLD_KEY
# infobits_set
XLHL_XMAX_IS_MULTI = 0x01
XLHL_XMAX_LOCK_ONLY = 0x02
XLHL_XMAX_EXCL_LOCK = 0x04
XLHL_XMAX_KEYSHR_LOCK = 0x08
XLHL_KEYS_UPDATED = 0x10
# xl_heap_lock flags
XLH_LOCK_ALL_FROZEN_CLEARED = 0x01


def neon_cid_layout(pg_version: int, flavour: Flavour, t_cid: int | None, what: str) -> bool:
    """Whether a record uses the cid-carrying layout; checks ``t_cid`` fits the flavour."""
    if flavour is Flavour.VANILLA:
        if t_cid is not None:
            raise ValueError(f"{what}: vanilla PostgreSQL {pg_version} records carry no t_cid (got {t_cid})")
        return False
    if pg_version <= 15 and t_cid is None:
        raise ValueError(f"{what}: Neon PostgreSQL {pg_version} heap records need a t_cid")
    return t_cid is not None


def heap_rmid(pg_version: int, cid: bool) -> int:
    """The rmgr a heap record goes to: Neon's 134 for a cid-carrying PG16/17 record, else Heap."""
    return RM_NEON_ID if cid and pg_version >= 16 else RM_HEAP_ID


def new_style(pg_version: int) -> bool:
    """PG16 rewrote the rmgr descriptions as ``key: value`` lists."""
    return pg_version >= 16


@dataclass(frozen=True)
class XlTuple:
    """A tuple as logged: the xl_heap_header fields plus the bytes from t_bits on.

    ``t_cid`` is present (an int) only in Neon's cid-carrying layout.
    """

    t_infomask2: int
    t_infomask: int
    t_hoff: int
    data: bytes = b""
    t_cid: int | None = None

    def encode(self) -> bytes:
        if self.t_cid is None:
            return struct.pack("<HHB", self.t_infomask2, self.t_infomask, self.t_hoff) + self.data
        return struct.pack("<HHIB", self.t_infomask2, self.t_infomask, self.t_cid, self.t_hoff) + self.data

    @classmethod
    def decode(cls, buf: bytes, offset: int, cid: bool, what: str) -> XlTuple:
        if cid:
            m2, m, c, hoff = unpack("<HHIB", buf, offset, f"{what} xl_heap_header")
            return cls(m2, m, hoff, bytes(buf[offset + 9 :]), c)
        m2, m, hoff = unpack("<HHB", buf, offset, f"{what} xl_heap_header")
        return cls(m2, m, hoff, bytes(buf[offset + 5 :]))


def check_tuple_cid(tup: XlTuple | None, cid: bool, what: str) -> None:
    """A logged tuple carries a t_cid exactly when its record does."""
    if tup is not None and (tup.t_cid is not None) != cid:
        raise ValueError(f"{what}: the tuple's t_cid must be set exactly when the record carries a t_cid")


def exact_size(main: bytes, size: int, what: str) -> None:
    """Main data of exactly ``size`` bytes, or RmgrDecodeError."""
    if len(main) != size:
        raise RmgrDecodeError(f"{what} main data is {len(main)} bytes, expected {size}")


def tail_tuple(main: bytes, size: int, contains: bool, cid: bool, what: str) -> XlTuple | None:
    """The old tuple appended after ``size`` bytes of main data (when ``contains``)."""
    if contains:
        return XlTuple.decode(main, size, cid, f"{what} old tuple")
    exact_size(main, size, what)
    return None
