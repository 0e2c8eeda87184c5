"""Heap2 pruning, vacuum and freezing records of PostgreSQL 14-16: PRUNE (0x10), VACUUM
(0x20), FREEZE_PAGE (0x30); and the freeze plans PG16 and PG17 share.

Layouts from PostgreSQL's ``heapam_xlog.h`` per version (little-endian):

- PG14/15 xl_heap_prune: latestRemovedXid u32, nredirected u16, ndead u16 (8); PG16 adds
  isCatalogRel bool (9). Block 0 data: redirected (from, to) pairs, dead, unused offsets.
- PG14-16 xl_heap_vacuum: nunused u16; block 0 data: unused offsets.
- PG14/15 xl_heap_freeze_page: cutoff_xid u32, ntuples u16 (6); block 0 data:
  xl_heap_freeze_tuple[ntuples] (xmax u32, offset u16, infomask2 u16, infomask u16, frzflags
  u8, pad = 12 bytes each).
- PG16 xl_heap_freeze_page: snapshotConflictHorizon u32, nplans u16, isCatalogRel bool (7);
  block 0 data: xl_heap_freeze_plan[nplans] (xmax u32, infomask2 u16, infomask u16, frzflags
  u8, pad, ntuples u16 = 12 bytes each) then the plans' offsets in plan order.

PG17 replaced these three by the records of :mod:`.heap2_prune17`.
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
from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLH_FREEZE_XVAC",
    "XLH_INVALID_XVAC",
    "XLOG_HEAP2_FREEZE_PAGE",
    "XLOG_HEAP2_PRUNE",
    "XLOG_HEAP2_VACUUM",
    "FreezePlan",
    "FreezeTuple",
    "Heap2FreezePage",
    "Heap2Prune",
    "Heap2Vacuum",
    "bool_desc",
    "decode_freeze_plans",
    "decode_prune_vacuum_freeze",
    "freeze_plans_bytes",
    "freeze_plans_desc",
    "require_version",
]

XLOG_HEAP2_PRUNE = 0x10
XLOG_HEAP2_VACUUM = 0x20
XLOG_HEAP2_FREEZE_PAGE = 0x30

# frzflags of a frozen tuple (xl_heap_freeze_tuple, freeze plans)
XLH_FREEZE_XVAC = 0x02
XLH_INVALID_XVAC = 0x04


def bool_desc(b: bool) -> str:
    """A bool as pg_waldump prints it."""
    return "T" if b else "F"


def require_version(cond: bool, pg_version: int, what: str) -> None:
    """UnsupportedRecord unless ``cond``: record ``what`` does not exist in ``pg_version``."""
    if not cond:
        raise UnsupportedRecord(f"rmgr Heap2 {what} does not exist in PostgreSQL {pg_version}")


@dataclass(frozen=True)
class FreezeTuple:
    """PG14/15 xl_heap_freeze_tuple."""

    xmax: int
    offset: int
    t_infomask2: int
    t_infomask: int
    frzflags: int
    pad: int = field(default=0, compare=False, repr=False)  # the struct's trailing C padding byte


@dataclass(frozen=True)
class FreezePlan:
    """PG16 xl_heap_freeze_plan / PG17 xlhp_freeze_plan with the offsets it applies to."""

    xmax: int
    t_infomask2: int
    t_infomask: int
    frzflags: int
    offsets: tuple[int, ...] = ()
    pad: int = field(default=0, compare=False, repr=False)  # C padding byte after frzflags


def freeze_plans_bytes(plans: tuple[FreezePlan, ...]) -> bytes:
    return b"".join(
        struct.pack("<IHHBBH", p.xmax, p.t_infomask2, p.t_infomask, p.frzflags, p.pad, len(p.offsets))
        for p in plans
    )


def freeze_plans_desc(plans: tuple[FreezePlan, ...]) -> str:
    return (
        " ["
        + ", ".join(
            f"{{ xmax: {p.xmax}, infomask: {p.t_infomask}, infomask2: {p.t_infomask2}, "
            f"ntuples: {len(p.offsets)}, offsets:{offsets_desc(p.offsets)} }}"
            for p in plans
        )
        + "]"
    )


def decode_freeze_plans(buf: bytes, pos: int, nplans: int, what: str) -> tuple[list[tuple[int, ...]], int]:
    raw = []
    for i in range(nplans):
        raw.append(unpack("<IHHBBH", buf, pos, f"{what} plan {i}"))
        pos += 12
    return raw, pos


@dataclass(frozen=True)
class Heap2Prune(RmgrRecord):
    """XLOG_HEAP2_PRUNE (0x10), PG14-16. ``latest_removed_xid`` is PG16's
    snapshotConflictHorizon; ``is_catalog_rel`` exists only in PG16.

    The offset arrays are block 0's data; ``offsets_logged=False`` when a full-page image
    replaced them (then the arrays are empty and only the counts are known).
    """

    RMGR: ClassVar[str] = "Heap2"
    PG_VERSIONS: ClassVar[tuple[int, ...]] = (14, 15, 16)
    latest_removed_xid: int
    nredirected: int
    ndead: int
    redirected: tuple[tuple[int, int], ...] = ()
    dead: tuple[int, ...] = ()
    unused: tuple[int, ...] = ()
    is_catalog_rel: bool = False
    offsets_logged: bool = True

    def _check(self, v: int) -> None:
        require_version(v <= 16, v, "PRUNE")
        if self.is_catalog_rel and v < 16:
            raise ValueError(f"heap2 PRUNE: isCatalogRel does not exist in PostgreSQL {v}")
        if self.offsets_logged:
            if len(self.redirected) != self.nredirected or len(self.dead) != self.ndead:
                raise ValueError("heap2 PRUNE: nredirected/ndead disagree with the logged arrays")
        elif self.redirected or self.dead or self.unused:
            raise ValueError("heap2 PRUNE: arrays given but offsets_logged is False")
        elif self.nredirected == 0 and self.ndead == 0:
            # Indistinguishable from a record that logged only (maybe no) unused offsets.
            raise ValueError("heap2 PRUNE: offsets_logged=False needs nredirected or ndead > 0")

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check(pg_version)
        return XLOG_HEAP2_PRUNE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "PRUNE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check(pg_version)
        out = struct.pack("<IHH", self.latest_removed_xid, self.nredirected, self.ndead)
        return out + (bytes([self.is_catalog_rel]) if pg_version >= 16 else b"")

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        if not self.offsets_logged:
            return {}
        flat = [x for pair in self.redirected for x in pair] + list(self.dead) + list(self.unused)
        return {0: struct.pack(f"<{len(flat)}H", *flat)} if flat else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            s = (
                f"snapshotConflictHorizon: {self.latest_removed_xid}, nredirected: {self.nredirected}, "
                f"ndead: {self.ndead}"
            )
            if self.offsets_logged and (self.redirected or self.dead or self.unused):
                s += f", nunused: {len(self.unused)}"
                s += ", redirected: [" + ", ".join(f"{a}->{b}" for a, b in self.redirected) + "]"
                s += ", dead:" + offsets_desc(self.dead) + ", unused:" + offsets_desc(self.unused)
            return s
        return f"latestRemovedXid {self.latest_removed_xid} nredirected {self.nredirected} ndead {self.ndead}"


@dataclass(frozen=True)
class Heap2Vacuum(RmgrRecord):
    """XLOG_HEAP2_VACUUM (0x20), PG14-16: mark LP_DEAD items unused."""

    RMGR: ClassVar[str] = "Heap2"
    PG_VERSIONS: ClassVar[tuple[int, ...]] = (14, 15, 16)
    nunused: int
    unused: tuple[int, ...] = ()
    offsets_logged: bool = True

    def _check(self, v: int) -> None:
        require_version(v <= 16, v, "VACUUM")
        if self.offsets_logged and len(self.unused) != self.nunused:
            raise ValueError("heap2 VACUUM: nunused disagrees with the logged offsets")
        if not self.offsets_logged and (self.unused or self.nunused == 0):
            raise ValueError("heap2 VACUUM: offsets_logged=False needs nunused > 0 and no offsets")

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check(pg_version)
        return XLOG_HEAP2_VACUUM

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "VACUUM"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check(pg_version)
        return struct.pack("<H", self.nunused)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        if not self.offsets_logged or not self.unused:
            return {}
        return {0: struct.pack(f"<{len(self.unused)}H", *self.unused)}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            s = f"nunused: {self.nunused}"
            if self.offsets_logged and self.unused:
                s += ", unused:" + offsets_desc(self.unused)
            return s
        return f"nunused {self.nunused}"


@dataclass(frozen=True)
class Heap2FreezePage(RmgrRecord):
    """XLOG_HEAP2_FREEZE_PAGE (0x30), PG14-16.

    PG14/15 use ``cutoff_xid`` + ``tuples`` (xl_heap_freeze_tuple); PG16 uses ``cutoff_xid``
    (snapshotConflictHorizon) + ``plans`` + ``is_catalog_rel``. ``count`` is the logged
    ntuples (PG14/15) or nplans (PG16); the arrays are empty when a full-page image replaced
    block 0's data (``offsets_logged=False``).
    """

    RMGR: ClassVar[str] = "Heap2"
    PG_VERSIONS: ClassVar[tuple[int, ...]] = (14, 15, 16)
    cutoff_xid: int
    count: int
    tuples: tuple[FreezeTuple, ...] = ()
    plans: tuple[FreezePlan, ...] = ()
    is_catalog_rel: bool = False
    offsets_logged: bool = True

    def _check(self, v: int) -> None:
        require_version(v <= 16, v, "FREEZE_PAGE")
        items = self.plans if v >= 16 else self.tuples
        other = self.tuples if v >= 16 else self.plans
        if other:
            raise ValueError(
                f"heap2 FREEZE_PAGE: PostgreSQL {v} logs {'plans' if v >= 16 else 'tuples'}, not the other form"
            )
        if self.is_catalog_rel and v < 16:
            raise ValueError(f"heap2 FREEZE_PAGE: isCatalogRel does not exist in PostgreSQL {v}")
        if self.offsets_logged and len(items) != self.count:
            raise ValueError(
                f"heap2 FREEZE_PAGE: count {self.count} disagrees with {len(items)} logged items"
            )
        if not self.offsets_logged and (items or self.count == 0):
            raise ValueError("heap2 FREEZE_PAGE: offsets_logged=False needs count > 0 and no items")

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check(pg_version)
        return XLOG_HEAP2_FREEZE_PAGE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "FREEZE_PAGE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check(pg_version)
        if pg_version >= 16:
            return struct.pack("<IHB", self.cutoff_xid, self.count, self.is_catalog_rel)
        return struct.pack("<IH", self.cutoff_xid, self.count)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        if not self.offsets_logged:
            return {}
        if pg_version >= 16:
            offs = [o for p in self.plans for o in p.offsets]
            out = freeze_plans_bytes(self.plans) + struct.pack(f"<{len(offs)}H", *offs)
        else:
            out = b"".join(
                struct.pack("<IHHHBB", t.xmax, t.offset, t.t_infomask2, t.t_infomask, t.frzflags, t.pad)
                for t in self.tuples
            )
        return {0: out} if out else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            s = (
                f"snapshotConflictHorizon: {self.cutoff_xid}, nplans: {self.count}"
            )
            if self.offsets_logged and self.plans:
                s += ", plans:" + freeze_plans_desc(self.plans)
            return s
        return f"cutoff xid {self.cutoff_xid} ntuples {self.count}"


def decode_prune_vacuum_freeze(op: int, main: bytes, b0: bytes, pg_version: int) -> RmgrRecord | None:
    """Decode a PG14-16 PRUNE, VACUUM or FREEZE_PAGE record; None for another opcode."""
    if op == XLOG_HEAP2_PRUNE:
        size = 9 if pg_version >= 16 else 8
        if len(main) != size:
            raise RmgrDecodeError(f"heap2 PRUNE main data is {len(main)} bytes, expected {size}")
        xid, nred, ndead = struct.unpack_from("<IHH", main)
        cat = bool(main[8]) if pg_version >= 16 else False
        if not b0:
            return Heap2Prune(xid, nred, ndead, is_catalog_rel=cat, offsets_logged=nred + ndead == 0)
        if len(b0) % 2 or len(b0) < 2 * (2 * nred + ndead):
            raise RmgrDecodeError(
                f"heap2 PRUNE block 0 data ({len(b0)} bytes) does not hold the counted offsets"
            )
        flat = offsets(b0, 0, len(b0) // 2, "heap2 PRUNE offsets")
        red = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(nred))
        dead = flat[2 * nred : 2 * nred + ndead]
        return Heap2Prune(xid, nred, ndead, red, dead, flat[2 * nred + ndead :], cat)
    if op == XLOG_HEAP2_VACUUM:
        if len(main) != 2:
            raise RmgrDecodeError(f"heap2 VACUUM main data is {len(main)} bytes, expected 2")
        (nunused,) = struct.unpack("<H", main)
        if not b0:
            return Heap2Vacuum(nunused, (), offsets_logged=nunused == 0)
        if len(b0) != 2 * nunused:
            raise RmgrDecodeError(f"heap2 VACUUM block 0 data is {len(b0)} bytes, expected {2 * nunused}")
        return Heap2Vacuum(nunused, offsets(b0, 0, nunused, "heap2 VACUUM offsets"))
    if op == XLOG_HEAP2_FREEZE_PAGE:
        if pg_version >= 16:
            if len(main) != 7:
                raise RmgrDecodeError(f"heap2 FREEZE_PAGE main data is {len(main)} bytes, expected 7")
            xid, nplans, cat = struct.unpack("<IHB", main)
            if not b0:
                return Heap2FreezePage(xid, nplans, is_catalog_rel=bool(cat), offsets_logged=nplans == 0)
            raw, pos = decode_freeze_plans(b0, 0, nplans, "heap2 FREEZE_PAGE")
            plans = []
            for pxmax, m2, m, frz, ppad, nt in raw:
                plans.append(
                    FreezePlan(pxmax, m2, m, frz, offsets(b0, pos, nt, "heap2 FREEZE_PAGE offsets"), ppad)
                )
                pos += 2 * nt
            if pos != len(b0):
                raise RmgrDecodeError(
                    f"heap2 FREEZE_PAGE block 0 has {len(b0) - pos} byte(s) after its plans"
                )
            return Heap2FreezePage(xid, nplans, plans=tuple(plans), is_catalog_rel=bool(cat))
        if len(main) != 6:
            raise RmgrDecodeError(f"heap2 FREEZE_PAGE main data is {len(main)} bytes, expected 6")
        xid, ntuples = struct.unpack("<IH", main)
        if not b0:
            return Heap2FreezePage(xid, ntuples, offsets_logged=ntuples == 0)
        if len(b0) != 12 * ntuples:
            raise RmgrDecodeError(f"heap2 FREEZE_PAGE block 0 is {len(b0)} bytes, expected {12 * ntuples}")
        tuples = tuple(FreezeTuple(*struct.unpack_from("<IHHHBB", b0, 12 * i)) for i in range(ntuples))
        return Heap2FreezePage(xid, ntuples, tuples=tuples)
    return None


RECORDS: tuple[type[RmgrRecord], ...] = (Heap2Prune, Heap2Vacuum, Heap2FreezePage,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
