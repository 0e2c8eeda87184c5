"""Heap records (RM_HEAP_ID = 10) that write tuple versions, and the rmgr's decoding.

INSERT (0x00, +INIT_PAGE 0x80), DELETE (0x10), UPDATE (0x20) and HOT_UPDATE (0x40) live here;
LOCK, INPLACE and CONFIRM in :mod:`.heap_inplace`; the layouts, opcodes, flags and Neon's
cid-carrying variants (rmgr 10 in PG14/15, Neon's rmgr 134 in PG16/17) in :mod:`.heapam_xlog`.
:func:`decode_heap_op` decodes a record by its heap opcode for both rmgrs (:mod:`.neon`
routes rmgr 134 here).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import (
    RmgrRecord,
    UnsupportedRecord,
    fmt_infobits_15,
    fmt_infobits_16,
    unpack,
)
from pytest_walredo.pg.rmgr.heap_inplace import (
    HeapConfirm,
    HeapInplace,
    HeapLock,
    decode_confirm,
    decode_inplace,
    decode_lock,
)
from pytest_walredo.pg.rmgr.heap_logical import HeapTruncate, decode_truncate
from pytest_walredo.pg.rmgr.heapam_xlog import (
    XLH_DELETE_CONTAINS_OLD,
    XLH_UPDATE_CONTAINS_OLD,
    XLH_UPDATE_PREFIX_FROM_OLD,
    XLH_UPDATE_SUFFIX_FROM_OLD,
    XLOG_HEAP_CONFIRM,
    XLOG_HEAP_DELETE,
    XLOG_HEAP_HOT_UPDATE,
    XLOG_HEAP_INIT_PAGE,
    XLOG_HEAP_INPLACE,
    XLOG_HEAP_INSERT,
    XLOG_HEAP_LOCK,
    XLOG_HEAP_OPMASK,
    XLOG_HEAP_TRUNCATE,
    XLOG_HEAP_UPDATE,
    XLOG_NEON_HEAP_HOT_UPDATE,
    XLOG_NEON_HEAP_UPDATE,
    XlTuple,
    check_tuple_cid,
    exact_size,
    heap_rmid,
    neon_cid_layout,
    new_style,
    tail_tuple,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "HeapConfirm",
    "HeapDelete",
    "HeapInplace",
    "HeapInsert",
    "HeapLock",
    "HeapTruncate",
    "HeapUpdate",
    "XlTuple",
    "decode_heap",
    "decode_heap_op",
]


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
        check_tuple_cid(self.tuple, cid, "heap INSERT")
        if self.tuple is not None and self.tuple.t_cid != self.t_cid:
            raise ValueError("heap INSERT: t_cid differs from tuple.t_cid")
        if self.tuple is None and self.t_cid not in (None, 0):
            raise ValueError("heap INSERT: without a tuple no cid is logged; use t_cid=0 (Neon) or None")
        return cid

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return heap_rmid(pg_version, self._cid(pg_version, flavour))

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
        if new_style(pg_version):
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
        return heap_rmid(pg_version, neon_cid_layout(pg_version, flavour, self.t_cid, "heap DELETE"))

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
        check_tuple_cid(self.old_tuple, cid, "heap DELETE")
        return out + (self.old_tuple.encode() if self.old_tuple is not None else b"")

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if new_style(pg_version):
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
        check_tuple_cid(self.new_tuple, cid, "heap UPDATE new tuple")
        check_tuple_cid(self.old_tuple, cid, "heap UPDATE old tuple")
        return cid

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return heap_rmid(pg_version, self._cid(pg_version, flavour))

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
        if new_style(pg_version):
            return (
                f"old_xmax: {self.old_xmax}, old_off: {self.old_offnum}, "
                f"{fmt_infobits_16(self.old_infobits_set, 'old_infobits')}, flags: 0x{self.flags:02X}, "
                f"new_xmax: {self.new_xmax}, new_off: {self.new_offnum}"
            )
        return (
            f"off {self.old_offnum} xmax {self.old_xmax} flags 0x{self.flags:02X} "
            f"{fmt_infobits_15(self.old_infobits_set)}; new off {self.new_offnum} xmax {self.new_xmax}"
        )


def _decode_insert(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> HeapInsert:
    """Decode a heap INSERT record."""
    init = bool(info & XLOG_HEAP_INIT_PAGE)
    exact_size(main, 3, "heap INSERT")
    offnum, flags = struct.unpack("<HB", main)
    tup = XlTuple.decode(b0, 0, cid, "heap INSERT block 0") if b0 else None
    return HeapInsert(offnum, flags, tup, init, tup.t_cid if tup is not None else (0 if cid else None))


def _decode_delete(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> HeapDelete:
    """Decode a heap DELETE record."""
    if cid and pg_version <= 15:
        xmax, offnum, pad, t_cid, infobits, flags = unpack("<IH2sIBB", main, 0, "heap DELETE")
        size = 14
        old = tail_tuple(main, size, bool(flags & XLH_DELETE_CONTAINS_OLD), cid, "heap DELETE")
        return HeapDelete(xmax, offnum, infobits, flags, t_cid, old, pad)
    elif cid:
        xmax, offnum, infobits, flags, t_cid = unpack("<IHBBI", main, 0, "heap DELETE")
        size = 12
    else:
        xmax, offnum, infobits, flags = unpack("<IHBB", main, 0, "heap DELETE")
        t_cid, size = None, 8
    old = tail_tuple(main, size, bool(flags & XLH_DELETE_CONTAINS_OLD), cid, "heap DELETE")
    return HeapDelete(xmax, offnum, infobits, flags, t_cid, old)


def _decode_update(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> HeapUpdate:
    """Decode a heap UPDATE or HOT_UPDATE record (``op`` tells which)."""
    init = bool(info & XLOG_HEAP_INIT_PAGE)
    if cid:
        old_xmax, old_off, old_bits, flags, t_cid, new_xmax, new_off = unpack(
            "<IHBBIIH", main, 0, "heap UPDATE"
        )
        size = 18
    else:
        old_xmax, old_off, old_bits, flags, new_xmax, new_off = unpack("<IHBBIH", main, 0, "heap UPDATE")
        t_cid, size = None, 14
    old = tail_tuple(main, size, bool(flags & XLH_UPDATE_CONTAINS_OLD), cid, "heap UPDATE")
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


_Decoder = Callable[[int, int, bytes, bytes, bool, int], RmgrRecord]
_DECODERS: dict[int, _Decoder] = {
    XLOG_HEAP_INSERT: _decode_insert,
    XLOG_HEAP_DELETE: _decode_delete,
    XLOG_HEAP_UPDATE: _decode_update,
    XLOG_HEAP_HOT_UPDATE: _decode_update,
    XLOG_HEAP_LOCK: decode_lock,
    XLOG_HEAP_INPLACE: decode_inplace,
    XLOG_HEAP_CONFIRM: decode_confirm,
    XLOG_HEAP_TRUNCATE: lambda op, info, main, b0, cid, pg_version: decode_truncate(main),
}
"""The decoder of each heap opcode the model knows."""


def decode_heap(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a heap (rmid 10) record's main data and block data."""
    cid = flavour is Flavour.NEON and pg_version <= 15
    return decode_heap_op(info & XLOG_HEAP_OPMASK, info, main, blocks.get(0, b""), cid, pg_version)


def decode_heap_op(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> RmgrRecord:
    """Decode a heap record whose opcode (an ``XLOG_HEAP_*`` value) is ``op``: the body of
    rmgr 10's records and, through :mod:`.neon`, of Neon's rmgr 134 (``cid``: the record
    uses Neon's cid-carrying layout). ``info`` is the record's own xl_info (INIT_PAGE)."""
    init = bool(info & XLOG_HEAP_INIT_PAGE)
    if init and op not in (XLOG_HEAP_INSERT, XLOG_HEAP_UPDATE, XLOG_HEAP_HOT_UPDATE):
        raise UnsupportedRecord(
            f"rmgr Heap info 0x{info:02X}: INIT_PAGE is only valid on INSERT/UPDATE/HOT_UPDATE"
        )
    return _DECODERS[op](op, info, main, b0, cid, pg_version)


RECORDS: tuple[type[RmgrRecord], ...] = (HeapInsert, HeapDelete, HeapUpdate,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
