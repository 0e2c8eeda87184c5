"""Heap records that change a tuple where it stands, writing no new version: LOCK (0x60;
Neon rmgr 134: 0x40), INPLACE (0x70) and CONFIRM (0x50), and heap2's LOCK_UPDATED (0x60).
Layouts: :mod:`.heapam_xlog`; xl_heap_lock_updated is xmax u32, offnum u16, infobits_set u8,
flags u8 (8 bytes) in every version and flavour (Neon's fork logs no cid with it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrRecord, fmt_infobits_15, fmt_infobits_16
from pytest_walredo.pg.rmgr.heapam_xlog import (
    XLOG_HEAP_CONFIRM,
    XLOG_HEAP_INPLACE,
    XLOG_HEAP_LOCK,
    XLOG_NEON_HEAP_LOCK,
    exact_size,
    heap_rmid,
    neon_cid_layout,
    new_style,
)
from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID, RM_HEAP_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLOG_HEAP2_LOCK_UPDATED",
    "Heap2LockUpdated",
    "HeapConfirm",
    "HeapInplace",
    "HeapLock",
    "decode_confirm",
    "decode_inplace",
    "decode_lock",
    "decode_lock_updated",
]

XLOG_HEAP2_LOCK_UPDATED = 0x60


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
        return heap_rmid(pg_version, neon_cid_layout(pg_version, flavour, self.t_cid, "heap LOCK"))

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
        if new_style(pg_version):
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
        return f"off: {self.offnum}" if new_style(pg_version) else f"off {self.offnum}"


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
        return f"off: {self.offnum}" if new_style(pg_version) else f"off {self.offnum}"


@dataclass(frozen=True)
class Heap2LockUpdated(RmgrRecord):
    """XLOG_HEAP2_LOCK_UPDATED (heap2 0x60): a lock on a later version of an updated row
    (``heap_lock_updated_tuple``): xmax and infomask bits only, no cid, no ctid change.
    ``flags`` bit 0x01 is XLH_LOCK_ALL_FROZEN_CLEARED."""

    RMGR: ClassVar[str] = "Heap2"
    xmax: int
    offnum: int
    infobits_set: int = 0
    flags: int = 0

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP2_LOCK_UPDATED

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "LOCK_UPDATED"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<IHBB", self.xmax, self.offnum, self.infobits_set, self.flags)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if new_style(pg_version):
            return (
                f"xmax: {self.xmax}, off: {self.offnum}, "
                f"{fmt_infobits_16(self.infobits_set, 'infobits')}, flags: 0x{self.flags:02X}"
            )
        return (
            f"off {self.offnum}: xmax {self.xmax}: flags 0x{self.flags:02X} "
            f"{fmt_infobits_15(self.infobits_set)}"
        )


def decode_lock_updated(main: bytes) -> Heap2LockUpdated:
    """Decode a heap2 LOCK_UPDATED record's main data."""
    exact_size(main, 8, "heap2 LOCK_UPDATED")
    return Heap2LockUpdated(*struct.unpack("<IHBB", main))


def decode_lock(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> HeapLock:
    """Decode a heap LOCK record's main data."""
    if cid and pg_version <= 15:
        exact_size(main, 14, "heap LOCK")
        xid, offnum, pad, t_cid, infobits, flags = struct.unpack("<IH2sIBB", main)
        return HeapLock(xid, offnum, infobits, flags, t_cid, pad)
    elif cid:
        exact_size(main, 12, "heap LOCK")
        xid, t_cid, offnum, infobits, flags = struct.unpack("<IIHBB", main)
    else:
        exact_size(main, 8, "heap LOCK")
        xid, offnum, infobits, flags = struct.unpack("<IHBB", main)
        t_cid = None
    return HeapLock(xid, offnum, infobits, flags, t_cid)


def decode_inplace(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> HeapInplace:
    """Decode a heap INPLACE record."""
    exact_size(main, 2, "heap INPLACE")
    return HeapInplace(struct.unpack("<H", main)[0], b0)


def decode_confirm(op: int, info: int, main: bytes, b0: bytes, cid: bool, pg_version: int) -> HeapConfirm:
    """Decode a heap CONFIRM record."""
    exact_size(main, 2, "heap CONFIRM")
    return HeapConfirm(struct.unpack("<H", main)[0])


RECORDS: tuple[type[RmgrRecord], ...] = (HeapLock, HeapInplace, HeapConfirm, Heap2LockUpdated)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
