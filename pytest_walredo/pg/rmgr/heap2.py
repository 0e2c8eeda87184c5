"""Heap2 records (RM_HEAP2_ID = 9): MULTI_INSERT and VISIBLE, and the rmgr's decoding.

Pruning, vacuum and freezing live in :mod:`.heap2_prune` (PostgreSQL 14-16) and
:mod:`.heap2_prune17` (17); :func:`decode_heap2` routes to them.

Layouts from PostgreSQL's ``heapam_xlog.h`` (little-endian):

- xl_heap_multi_insert: flags u8, pad, ntuples u16, then ntuples offsets u16 unless
  INIT_PAGE (4 bytes + offsets). Neon PG16/17 (rmgr 134 MULTI_INSERT 0x50): flags, pad,
  ntuples u16, t_cid u32, offsets (8 bytes + offsets). Block 0 data: per tuple, at an even
  offset (SHORTALIGN), xl_multi_insert_tuple (datalen u16, infomask2 u16, infomask u16, hoff
  u8 = 7 bytes; Neon PG14/15: datalen, infomask2, infomask, pad2, t_cid u32, hoff = 13 bytes)
  then ``datalen`` tuple bytes.
- xl_heap_visible: cutoff_xid (PG16+: snapshotConflictHorizon) u32, flags u8 (5 bytes).
  Block 0 = visibility-map page, block 1 = heap page.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import (
    RmgrDecodeError,
    RmgrRecord,
    UnsupportedRecord,
    offsets,
    offsets_desc,
    unpack,
)
from pytest_walredo.pg.rmgr.heap2_prune import (
    FreezePlan,
    FreezeTuple,
    Heap2FreezePage,
    Heap2Prune,
    Heap2Vacuum,
    decode_prune_vacuum_freeze,
)
from pytest_walredo.pg.rmgr.heap2_prune17 import PRUNE17_NAMES, Heap2PruneFreeze, decode_prune17
from pytest_walredo.pg.rmgr.heap_inplace import XLOG_HEAP2_LOCK_UPDATED, decode_lock_updated
from pytest_walredo.pg.rmgr.heap_logical import (
    XLOG_HEAP2_NEW_CID,
    XLOG_HEAP2_REWRITE,
    decode_new_cid,
    decode_rewrite,
)
from pytest_walredo.pg.rmgr.heapam_xlog import XLOG_HEAP_INIT_PAGE, XLOG_NEON_HEAP_MULTI_INSERT
from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID, RM_NEON_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLOG_HEAP2_LOCK_UPDATED",
    "XLOG_HEAP2_MULTI_INSERT",
    "XLOG_HEAP2_NEW_CID",
    "XLOG_HEAP2_REWRITE",
    "XLOG_HEAP2_VISIBLE",
    "FreezePlan",
    "FreezeTuple",
    "Heap2FreezePage",
    "Heap2MultiInsert",
    "Heap2Prune",
    "Heap2PruneFreeze",
    "Heap2Vacuum",
    "Heap2Visible",
    "MultiInsertTuple",
    "decode_heap2",
    "decode_multi_insert",
]

XLOG_HEAP2_VISIBLE = 0x40
XLOG_HEAP2_MULTI_INSERT = 0x50


@dataclass(frozen=True)
class MultiInsertTuple:
    """One tuple of a multi-insert: xl_multi_insert_tuple fields plus the tuple bytes
    from t_bits on (``datalen`` is ``len(data)``). ``t_cid`` only in Neon PG14/15."""

    t_infomask2: int
    t_infomask: int
    t_hoff: int
    data: bytes = b""
    t_cid: int | None = None


@dataclass(frozen=True)
class Heap2MultiInsert(RmgrRecord):
    """XLOG_HEAP2_MULTI_INSERT (0x50), ``init_page`` adds INIT_PAGE (0x80).

    ``offsets`` are logged unless ``init_page`` (then they are 1..ntuples, implied).
    ``tuples`` is block 0's data (empty when a full-page image replaced it). ``t_cid`` set
    means Neon PG16/17's rmgr-134 layout; Neon PG14/15 put a cid in each tuple instead.
    """

    RMGR: ClassVar[str] = "Heap2"
    flags: int
    ntuples: int
    offsets: tuple[int, ...] = ()
    tuples: tuple[MultiInsertTuple, ...] = ()
    init_page: bool = False
    t_cid: int | None = None
    # C padding PostgreSQL leaves uninitialised, kept so real records rebuild exactly: the
    # byte after ``flags`` and, in block 0, the alignment byte before each tuple header that
    # needs one plus Neon PG14/15's 2 bytes inside it, in order. Missing bytes encode as 0.
    main_pad: int = field(default=0, compare=False, repr=False)
    block_pad: bytes = field(default=b"", compare=False, repr=False)

    def _layout(self, v: int, fl: Flavour) -> tuple[bool, bool]:
        """(record-level cid, per-tuple cid)"""
        if fl is Flavour.VANILLA and self.t_cid is not None:
            raise ValueError("heap2 MULTI_INSERT: vanilla records carry no t_cid")
        if self.t_cid is not None and v <= 15:
            raise ValueError("heap2 MULTI_INSERT: Neon PG14/15 put t_cid in each tuple, not in the record")
        per_tuple = fl is Flavour.NEON and v <= 15
        for t in self.tuples:
            if (t.t_cid is not None) != per_tuple:
                raise ValueError(
                    f"heap2 MULTI_INSERT: tuple t_cid must be {'set' if per_tuple else 'None'} "
                    f"for {fl.value} PostgreSQL {v}"
                )
        if self.init_page and self.offsets:
            raise ValueError("heap2 MULTI_INSERT: offsets are implied (not logged) with INIT_PAGE")
        if not self.init_page and len(self.offsets) != self.ntuples:
            raise ValueError(f"heap2 MULTI_INSERT: {len(self.offsets)} offsets for ntuples {self.ntuples}")
        if self.tuples and len(self.tuples) != self.ntuples:
            raise ValueError(f"heap2 MULTI_INSERT: {len(self.tuples)} tuples for ntuples {self.ntuples}")
        return self.t_cid is not None, per_tuple

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        top, _ = self._layout(pg_version, flavour)
        return RM_NEON_ID if top else RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        top, _ = self._layout(pg_version, flavour)
        op = XLOG_NEON_HEAP_MULTI_INSERT if top else XLOG_HEAP2_MULTI_INSERT
        return op | (XLOG_HEAP_INIT_PAGE if self.init_page else 0)

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "MULTI_INSERT+INIT" if self.init_page else "MULTI_INSERT"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        top, _ = self._layout(pg_version, flavour)
        head = (
            struct.pack("<BBHI", self.flags, self.main_pad, self.ntuples, self.t_cid)
            if top
            else struct.pack("<BBH", self.flags, self.main_pad, self.ntuples)
        )
        return head + struct.pack(f"<{len(self.offsets)}H", *self.offsets)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        _, per_tuple = self._layout(pg_version, flavour)
        out = bytearray()
        pads = iter(self.block_pad)
        for t in self.tuples:
            if len(out) % 2:
                out.append(next(pads, 0))  # SHORTALIGN
            if per_tuple:
                inner = bytes((next(pads, 0), next(pads, 0)))
                out += struct.pack(
                    "<HHH2sIB", len(t.data), t.t_infomask2, t.t_infomask, inner, t.t_cid, t.t_hoff
                )
            else:
                out += struct.pack("<HHHB", len(t.data), t.t_infomask2, t.t_infomask, t.t_hoff)
            out += t.data
        return {0: bytes(out)} if out else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            s = f"ntuples: {self.ntuples}, flags: 0x{self.flags:02X}"
            if self.tuples and not self.init_page:
                s += ", offsets:" + offsets_desc(self.offsets)
            return s
        return f"{self.ntuples} tuples flags 0x{self.flags:02X}"


def decode_multi_insert(
    main: bytes, b0: bytes, init: bool, pg_version: int, flavour: Flavour, *, neon_rmgr: bool
) -> Heap2MultiInsert:
    if neon_rmgr:
        flags, main_pad, ntuples, t_cid = unpack("<BBHI", main, 0, "neon MULTI_INSERT")
        pos: int = 8
    else:
        flags, main_pad, ntuples = unpack("<BBH", main, 0, "heap2 MULTI_INSERT")
        t_cid, pos = None, 4
    n_off = 0 if init else ntuples
    if len(main) != pos + 2 * n_off:
        raise RmgrDecodeError(
            f"MULTI_INSERT main data is {len(main)} bytes, expected {pos + 2 * n_off} for ntuples {ntuples}"
        )
    offs = offsets(main, pos, n_off, "MULTI_INSERT offsets")
    per_tuple = flavour is Flavour.NEON and pg_version <= 15 and not neon_rmgr
    tuples: list[MultiInsertTuple] = []
    pad = bytearray()
    if b0:
        p = 0
        for i in range(ntuples):
            if p % 2:
                if p >= len(b0):
                    raise RmgrDecodeError(f"MULTI_INSERT tuple {i} is missing (block 0 ends at {p})")
                pad.append(b0[p])
                p += 1
            what = f"MULTI_INSERT tuple {i}"
            if per_tuple:
                datalen, m2, m, inner, cid, hoff = unpack("<HHH2sIB", b0, p, what)
                pad += inner
                p += 13
            else:
                datalen, m2, m, hoff = unpack("<HHHB", b0, p, what)
                cid, p = None, p + 7
            if p + datalen > len(b0):
                raise RmgrDecodeError(f"{what} says {datalen} data bytes but only {len(b0) - p} remain")
            tuples.append(MultiInsertTuple(m2, m, hoff, bytes(b0[p : p + datalen]), cid))
            p += datalen
        if p != len(b0):
            raise RmgrDecodeError(
                f"MULTI_INSERT block 0 has {len(b0) - p} byte(s) after its {ntuples} tuples"
            )
    return Heap2MultiInsert(flags, ntuples, offs, tuple(tuples), init, t_cid, main_pad, bytes(pad))


@dataclass(frozen=True)
class Heap2Visible(RmgrRecord):
    """XLOG_HEAP2_VISIBLE (0x40). ``cutoff_xid`` is PG16+'s snapshotConflictHorizon.
    Block 0 is the visibility-map page, block 1 the heap page."""

    RMGR: ClassVar[str] = "Heap2"
    cutoff_xid: int
    flags: int

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP2_VISIBLE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "VISIBLE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<IB", self.cutoff_xid, self.flags)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            return f"snapshotConflictHorizon: {self.cutoff_xid}, flags: 0x{self.flags:02X}"
        return f"cutoff xid {self.cutoff_xid} flags 0x{self.flags:02X}"


def decode_heap2(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a heap2 (rmid 9) record."""
    op = info & 0x70
    init = bool(info & XLOG_HEAP_INIT_PAGE)
    b0 = blocks.get(0, b"")
    if init and op != XLOG_HEAP2_MULTI_INSERT:
        raise UnsupportedRecord(f"rmgr Heap2 info 0x{info:02X}: INIT_PAGE is only valid on MULTI_INSERT")
    if op == XLOG_HEAP2_MULTI_INSERT:
        return decode_multi_insert(main, b0, init, pg_version, flavour, neon_rmgr=False)
    if op == XLOG_HEAP2_VISIBLE:
        if len(main) != 5:
            raise RmgrDecodeError(f"heap2 VISIBLE main data is {len(main)} bytes, expected 5")
        return Heap2Visible(*struct.unpack("<IB", main))
    if pg_version >= 17 and op in PRUNE17_NAMES:
        return decode_prune17(op, main, b0)
    if op == XLOG_HEAP2_LOCK_UPDATED:
        return decode_lock_updated(main)
    if op == XLOG_HEAP2_NEW_CID:
        return decode_new_cid(main)
    if op == XLOG_HEAP2_REWRITE:
        return decode_rewrite(main)
    pruned = decode_prune_vacuum_freeze(op, main, b0, pg_version)
    if pruned is not None:
        return pruned
    raise UnsupportedRecord(
        f"rmgr Heap2 info 0x{info:02X} is not a heap2 record of PostgreSQL {pg_version}"
    )


RECORDS: tuple[type[RmgrRecord], ...] = (Heap2MultiInsert, Heap2Visible,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
