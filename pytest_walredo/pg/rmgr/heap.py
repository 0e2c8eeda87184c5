"""Heap records (RM_HEAP_ID = 10) and their Neon variants.

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
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import (
    RmgrDecodeError,
    RmgrRecord,
    UnsupportedRecord,
    fmt_infobits_15,
    fmt_infobits_16,
    unpack,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RM_HEAP_ID",
    "RM_NEON_ID",
    "XLH_DELETE_CONTAINS_OLD",
    "XLH_INSERT_CONTAINS_NEW_TUPLE",
    "XLH_UPDATE_CONTAINS_OLD",
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
    "HeapConfirm",
    "HeapDelete",
    "HeapInplace",
    "HeapInsert",
    "HeapLock",
    "HeapUpdate",
    "XlTuple",
    "decode_heap",
    "neon_cid_layout",
]

RM_HEAP_ID = 10
RM_NEON_ID = 134

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

# Neon rmgr (PG16/17) opcodes
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


def _rmid(pg_version: int, cid: bool) -> int:
    return RM_NEON_ID if cid and pg_version >= 16 else RM_HEAP_ID


def _new_style(pg_version: int) -> bool:
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


def _check_tuple_cid(tup: XlTuple | None, cid: bool, what: str) -> None:
    if tup is not None and (tup.t_cid is not None) != cid:
        raise ValueError(f"{what}: the tuple's t_cid must be set exactly when the record carries a t_cid")


@dataclass(frozen=True)
class HeapInsert(RmgrRecord):
    """XLOG_HEAP_INSERT (0x00), with ``init_page`` XLOG_HEAP_INIT_PAGE (0x80).

    ``tuple`` is block 0's data (None when a full-page image replaced it). ``t_cid`` lives
    in ``tuple.t_cid``; the record-level ``t_cid`` must equal it (or both None). Without a
    tuple no cid is logged: the Neon layout is then written as ``t_cid=0`` (and decodes so).
    """

    RMGR: ClassVar[str] = "Heap"
    offnum: int
    flags: int = 0
    tuple: XlTuple | None = None
    init_page: bool = False
    t_cid: int | None = None

    def _cid(self, v: int, fl: Flavour) -> bool:
        cid = neon_cid_layout(v, fl, self.t_cid, "heap INSERT")
        _check_tuple_cid(self.tuple, cid, "heap INSERT")
        if self.tuple is not None and self.tuple.t_cid != self.t_cid:
            raise ValueError("heap INSERT: t_cid differs from tuple.t_cid")
        if self.tuple is None and self.t_cid not in (None, 0):
            raise ValueError("heap INSERT: without a tuple no cid is logged; use t_cid=0 (Neon) or None")
        return cid

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return _rmid(pg_version, self._cid(pg_version, flavour))

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP_INSERT | (XLOG_HEAP_INIT_PAGE if self.init_page else 0)

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "INSERT+INIT" if self.init_page else "INSERT"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._cid(pg_version, flavour)
        return struct.pack("<HB", self.offnum, self.flags)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.tuple.encode()} if self.tuple is not None else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if _new_style(pg_version):
            return f"off: {self.offnum}, flags: 0x{self.flags:02X}"
        return f"off {self.offnum} flags 0x{self.flags:02X}"


@dataclass(frozen=True)
class HeapDelete(RmgrRecord):
    """XLOG_HEAP_DELETE (0x10). ``old_tuple``: the replica-identity tuple appended to the main
    data when flags has XLH_DELETE_CONTAINS_OLD_TUPLE/KEY."""

    RMGR: ClassVar[str] = "Heap"
    xmax: int
    offnum: int
    infobits_set: int = 0
    flags: int = 0
    t_cid: int | None = None
    old_tuple: XlTuple | None = None
    # The 2 C padding bytes of Neon PG14/15's struct (kept so real records rebuild exactly).
    pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return _rmid(pg_version, neon_cid_layout(pg_version, flavour, self.t_cid, "heap DELETE"))

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP_DELETE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "DELETE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        cid = neon_cid_layout(pg_version, flavour, self.t_cid, "heap DELETE")
        if cid and pg_version <= 15:
            out = struct.pack(
                "<IH2sIBB", self.xmax, self.offnum, self.pad, self.t_cid, self.infobits_set, self.flags
            )
        elif cid:
            out = struct.pack("<IHBBI", self.xmax, self.offnum, self.infobits_set, self.flags, self.t_cid)
        else:
            out = struct.pack("<IHBB", self.xmax, self.offnum, self.infobits_set, self.flags)
        if (self.old_tuple is not None) != bool(self.flags & XLH_DELETE_CONTAINS_OLD):
            raise ValueError(
                "heap DELETE: old_tuple must be given exactly when flags has CONTAINS_OLD_TUPLE/KEY"
            )
        _check_tuple_cid(self.old_tuple, cid, "heap DELETE")
        return out + (self.old_tuple.encode() if self.old_tuple is not None else b"")

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if _new_style(pg_version):
            return (
                f"xmax: {self.xmax}, off: {self.offnum}, {fmt_infobits_16(self.infobits_set, 'infobits')}"
                f", flags: 0x{self.flags:02X}"
            )
        return f"off {self.offnum} flags 0x{self.flags:02X} {fmt_infobits_15(self.infobits_set)}"


@dataclass(frozen=True)
class HeapUpdate(RmgrRecord):
    """XLOG_HEAP_UPDATE (0x20) or, with ``hot``, XLOG_HEAP_HOT_UPDATE (0x40); ``init_page``
    adds XLOG_HEAP_INIT_PAGE.

    ``new_tuple`` (block 0 data, None when absent) with ``prefixlen`` / ``suffixlen``
    (present iff flags has PREFIX_FROM_OLD / SUFFIX_FROM_OLD and block 0 has data);
    ``old_tuple`` appended to the main data when flags has CONTAINS_OLD_TUPLE/KEY.
    """

    RMGR: ClassVar[str] = "Heap"
    old_xmax: int
    old_offnum: int
    new_xmax: int
    new_offnum: int
    old_infobits_set: int = 0
    flags: int = 0
    hot: bool = False
    init_page: bool = False
    t_cid: int | None = None
    new_tuple: XlTuple | None = None
    prefixlen: int = 0
    suffixlen: int = 0
    old_tuple: XlTuple | None = None

    def _cid(self, v: int, fl: Flavour) -> bool:
        cid = neon_cid_layout(v, fl, self.t_cid, "heap UPDATE")
        _check_tuple_cid(self.new_tuple, cid, "heap UPDATE new tuple")
        _check_tuple_cid(self.old_tuple, cid, "heap UPDATE old tuple")
        return cid

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return _rmid(pg_version, self._cid(pg_version, flavour))

    def info(self, pg_version: int, flavour: Flavour) -> int:
        cid = self._cid(pg_version, flavour)
        if cid and pg_version >= 16:
            op = XLOG_NEON_HEAP_HOT_UPDATE if self.hot else XLOG_NEON_HEAP_UPDATE
        else:
            op = XLOG_HEAP_HOT_UPDATE if self.hot else XLOG_HEAP_UPDATE
        return op | (XLOG_HEAP_INIT_PAGE if self.init_page else 0)

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return ("HOT_UPDATE" if self.hot else "UPDATE") + ("+INIT" if self.init_page else "")

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        cid = self._cid(pg_version, flavour)
        if cid:
            out = struct.pack(
                "<IHBBIIH",
                self.old_xmax,
                self.old_offnum,
                self.old_infobits_set,
                self.flags,
                self.t_cid,
                self.new_xmax,
                self.new_offnum,
            )
        else:
            out = struct.pack(
                "<IHBBIH",
                self.old_xmax,
                self.old_offnum,
                self.old_infobits_set,
                self.flags,
                self.new_xmax,
                self.new_offnum,
            )
        if (self.old_tuple is not None) != bool(self.flags & XLH_UPDATE_CONTAINS_OLD):
            raise ValueError(
                "heap UPDATE: old_tuple must be given exactly when flags has CONTAINS_OLD_TUPLE/KEY"
            )
        return out + (self.old_tuple.encode() if self.old_tuple is not None else b"")

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        if self.new_tuple is None:
            if self.prefixlen or self.suffixlen:
                raise ValueError("heap UPDATE: prefixlen/suffixlen need a new_tuple")
            return {}
        out = b""
        if self.flags & XLH_UPDATE_PREFIX_FROM_OLD:
            out += struct.pack("<H", self.prefixlen)
        elif self.prefixlen:
            raise ValueError("heap UPDATE: prefixlen set without XLH_UPDATE_PREFIX_FROM_OLD")
        if self.flags & XLH_UPDATE_SUFFIX_FROM_OLD:
            out += struct.pack("<H", self.suffixlen)
        elif self.suffixlen:
            raise ValueError("heap UPDATE: suffixlen set without XLH_UPDATE_SUFFIX_FROM_OLD")
        return {0: out + self.new_tuple.encode()}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if _new_style(pg_version):
            return (
                f"old_xmax: {self.old_xmax}, old_off: {self.old_offnum}, "
                f"{fmt_infobits_16(self.old_infobits_set, 'old_infobits')}, flags: 0x{self.flags:02X}, "
                f"new_xmax: {self.new_xmax}, new_off: {self.new_offnum}"
            )
        return (
            f"off {self.old_offnum} xmax {self.old_xmax} flags 0x{self.flags:02X} "
            f"{fmt_infobits_15(self.old_infobits_set)}; new off {self.new_offnum} xmax {self.new_xmax}"
        )


@dataclass(frozen=True)
class HeapLock(RmgrRecord):
    """XLOG_HEAP_LOCK (0x60; Neon rmgr 0x40). ``locking_xid`` may be a MultiXactId."""

    RMGR: ClassVar[str] = "Heap"
    locking_xid: int
    offnum: int
    infobits_set: int = 0
    flags: int = 0
    t_cid: int | None = None
    # The 2 C padding bytes of Neon PG14/15's struct (kept so real records rebuild exactly).
    pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return _rmid(pg_version, neon_cid_layout(pg_version, flavour, self.t_cid, "heap LOCK"))

    def info(self, pg_version: int, flavour: Flavour) -> int:
        cid = neon_cid_layout(pg_version, flavour, self.t_cid, "heap LOCK")
        return XLOG_NEON_HEAP_LOCK if cid and pg_version >= 16 else XLOG_HEAP_LOCK

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "LOCK"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        cid = neon_cid_layout(pg_version, flavour, self.t_cid, "heap LOCK")
        if cid and pg_version <= 15:
            return struct.pack(
                "<IH2sIBB",
                self.locking_xid,
                self.offnum,
                self.pad,
                self.t_cid,
                self.infobits_set,
                self.flags,
            )
        if cid:
            return struct.pack(
                "<IIHBB", self.locking_xid, self.t_cid, self.offnum, self.infobits_set, self.flags
            )
        return struct.pack("<IHBB", self.locking_xid, self.offnum, self.infobits_set, self.flags)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if _new_style(pg_version):
            return (
                f"xmax: {self.locking_xid}, off: {self.offnum}, "
                f"{fmt_infobits_16(self.infobits_set, 'infobits')}, flags: 0x{self.flags:02X}"
            )
        return (
            f"off {self.offnum}: xid {self.locking_xid}: flags 0x{self.flags:02X} "
            f"{fmt_infobits_15(self.infobits_set)}"
        )


@dataclass(frozen=True)
class HeapInplace(RmgrRecord):
    """XLOG_HEAP_INPLACE (0x70): block 0 data is the new tuple's bytes from t_hoff on."""

    RMGR: ClassVar[str] = "Heap"
    offnum: int
    tuple_data: bytes = b""

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP_INPLACE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "INPLACE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.offnum)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.tuple_data} if self.tuple_data else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"off: {self.offnum}" if _new_style(pg_version) else f"off {self.offnum}"


@dataclass(frozen=True)
class HeapConfirm(RmgrRecord):
    """XLOG_HEAP_CONFIRM (0x50): confirm a speculative insertion."""

    RMGR: ClassVar[str] = "Heap"
    offnum: int

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP_CONFIRM

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "HEAP_CONFIRM"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.offnum)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"off: {self.offnum}" if _new_style(pg_version) else f"off {self.offnum}"


def _exact(main: bytes, size: int, what: str) -> None:
    if len(main) != size:
        raise RmgrDecodeError(f"{what} main data is {len(main)} bytes, expected {size}")


def _tail_tuple(main: bytes, size: int, contains: bool, cid: bool, what: str) -> XlTuple | None:
    if contains:
        return XlTuple.decode(main, size, cid, f"{what} old tuple")
    _exact(main, size, what)
    return None


def decode_heap(
    rmid: int, info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a heap (rmid 10) or Neon (rmid 134) record's main data and block data."""
    neon_rmgr = rmid == RM_NEON_ID
    if neon_rmgr and (flavour is not Flavour.NEON or pg_version < 16):
        raise UnsupportedRecord(
            f"rmgr neon (134) records exist only in Neon PostgreSQL 16/17, not {flavour.value} {pg_version}"
        )
    cid = neon_rmgr or (flavour is Flavour.NEON and pg_version <= 15)
    init = bool(info & XLOG_HEAP_INIT_PAGE)
    op = info & XLOG_HEAP_OPMASK
    b0 = blocks.get(0, b"")
    if neon_rmgr:
        op = {
            XLOG_NEON_HEAP_INSERT: XLOG_HEAP_INSERT,
            XLOG_NEON_HEAP_DELETE: XLOG_HEAP_DELETE,
            XLOG_NEON_HEAP_UPDATE: XLOG_HEAP_UPDATE,
            XLOG_NEON_HEAP_HOT_UPDATE: XLOG_HEAP_HOT_UPDATE,
            XLOG_NEON_HEAP_LOCK: XLOG_HEAP_LOCK,
            XLOG_NEON_HEAP_MULTI_INSERT: -1,
        }.get(op, -2)
        if op == -1:
            from pytest_walredo.pg.rmgr.heap2 import decode_multi_insert

            return decode_multi_insert(main, b0, init, pg_version, flavour, neon_rmgr=True)
        if op == -2:
            raise UnsupportedRecord(f"rmgr neon info 0x{info:02X} is not supported by the model")
    if init and op not in (XLOG_HEAP_INSERT, XLOG_HEAP_UPDATE, XLOG_HEAP_HOT_UPDATE):
        raise UnsupportedRecord(
            f"rmgr Heap info 0x{info:02X}: INIT_PAGE is only valid on INSERT/UPDATE/HOT_UPDATE"
        )
    t_cid: int | None
    if op == XLOG_HEAP_INSERT:
        _exact(main, 3, "heap INSERT")
        offnum, flags = struct.unpack("<HB", main)
        tup = XlTuple.decode(b0, 0, cid, "heap INSERT block 0") if b0 else None
        return HeapInsert(offnum, flags, tup, init, tup.t_cid if tup is not None else (0 if cid else None))
    if op == XLOG_HEAP_DELETE:
        if cid and pg_version <= 15:
            xmax, offnum, pad, t_cid, infobits, flags = unpack("<IH2sIBB", main, 0, "heap DELETE")
            size = 14
            old = _tail_tuple(main, size, bool(flags & XLH_DELETE_CONTAINS_OLD), cid, "heap DELETE")
            return HeapDelete(xmax, offnum, infobits, flags, t_cid, old, pad)
        elif cid:
            xmax, offnum, infobits, flags, t_cid = unpack("<IHBBI", main, 0, "heap DELETE")
            size = 12
        else:
            xmax, offnum, infobits, flags = unpack("<IHBB", main, 0, "heap DELETE")
            t_cid, size = None, 8
        old = _tail_tuple(main, size, bool(flags & XLH_DELETE_CONTAINS_OLD), cid, "heap DELETE")
        return HeapDelete(xmax, offnum, infobits, flags, t_cid, old)
    if op in (XLOG_HEAP_UPDATE, XLOG_HEAP_HOT_UPDATE):
        if cid:
            old_xmax, old_off, old_bits, flags, t_cid, new_xmax, new_off = unpack(
                "<IHBBIIH", main, 0, "heap UPDATE"
            )
            size = 18
        else:
            old_xmax, old_off, old_bits, flags, new_xmax, new_off = unpack("<IHBBIH", main, 0, "heap UPDATE")
            t_cid, size = None, 14
        old = _tail_tuple(main, size, bool(flags & XLH_UPDATE_CONTAINS_OLD), cid, "heap UPDATE")
        prefix = suffix = 0
        new: XlTuple | None = None
        if b0:
            pos = 0
            if flags & XLH_UPDATE_PREFIX_FROM_OLD:
                (prefix,) = unpack("<H", b0, pos, "heap UPDATE prefix length")
                pos += 2
            if flags & XLH_UPDATE_SUFFIX_FROM_OLD:
                (suffix,) = unpack("<H", b0, pos, "heap UPDATE suffix length")
                pos += 2
            new = XlTuple.decode(b0, pos, cid, "heap UPDATE block 0")
        return HeapUpdate(
            old_xmax,
            old_off,
            new_xmax,
            new_off,
            old_bits,
            flags,
            op == XLOG_HEAP_HOT_UPDATE,
            init,
            t_cid,
            new,
            prefix,
            suffix,
            old,
        )
    if op == XLOG_HEAP_LOCK:
        if cid and pg_version <= 15:
            _exact(main, 14, "heap LOCK")
            xid, offnum, pad, t_cid, infobits, flags = struct.unpack("<IH2sIBB", main)
            return HeapLock(xid, offnum, infobits, flags, t_cid, pad)
        elif cid:
            _exact(main, 12, "heap LOCK")
            xid, t_cid, offnum, infobits, flags = struct.unpack("<IIHBB", main)
        else:
            _exact(main, 8, "heap LOCK")
            xid, offnum, infobits, flags = struct.unpack("<IHBB", main)
            t_cid = None
        return HeapLock(xid, offnum, infobits, flags, t_cid)
    if op == XLOG_HEAP_INPLACE:
        _exact(main, 2, "heap INPLACE")
        return HeapInplace(struct.unpack("<H", main)[0], b0)
    if op == XLOG_HEAP_CONFIRM:
        _exact(main, 2, "heap CONFIRM")
        return HeapConfirm(struct.unpack("<H", main)[0])
    name = "TRUNCATE" if op == XLOG_HEAP_TRUNCATE else f"0x{info:02X}"
    raise UnsupportedRecord(f"rmgr Heap info {name} (0x{info:02X}) is not supported by the model")
