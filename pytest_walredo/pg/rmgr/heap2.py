"""Heap2 records (RM_HEAP2_ID = 9): multi-insert, visibility map, pruning, vacuum, freezing.

Layouts from PostgreSQL's ``heapam_xlog.h`` per version (little-endian):

- xl_heap_multi_insert: flags u8, pad, ntuples u16, then ntuples offsets u16 unless
  INIT_PAGE (4 bytes + offsets). Neon PG16/17 (rmgr 134 MULTI_INSERT 0x50): flags, pad,
  ntuples u16, t_cid u32, offsets (8 bytes + offsets). Block 0 data: per tuple, at an even
  offset (SHORTALIGN), xl_multi_insert_tuple (datalen u16, infomask2 u16, infomask u16, hoff
  u8 = 7 bytes; Neon PG14/15: datalen, infomask2, infomask, pad2, t_cid u32, hoff = 13 bytes)
  then ``datalen`` tuple bytes.
- xl_heap_visible: cutoff_xid (PG16+: snapshotConflictHorizon) u32, flags u8 (5 bytes).
  Block 0 = visibility-map page, block 1 = heap page.
- PG14/15 xl_heap_prune: latestRemovedXid u32, nredirected u16, ndead u16 (8); PG16 adds
  isCatalogRel bool (9). Block 0 data: redirected (from, to) pairs, dead, unused offsets.
- PG14-16 xl_heap_vacuum: nunused u16; block 0 data: unused offsets.
- PG14/15 xl_heap_freeze_page: cutoff_xid u32, ntuples u16 (6); block 0 data:
  xl_heap_freeze_tuple[ntuples] (xmax u32, offset u16, infomask2 u16, infomask u16, frzflags
  u8, pad = 12 bytes each).
- PG16 xl_heap_freeze_page: snapshotConflictHorizon u32, nplans u16, isCatalogRel bool (7);
  block 0 data: xl_heap_freeze_plan[nplans] (xmax u32, infomask2 u16, infomask u16, frzflags
  u8, pad, ntuples u16 = 12 bytes each) then the plans' offsets in plan order.
- PG17 replaced PRUNE/VACUUM/FREEZE_PAGE by PRUNE_ON_ACCESS 0x10 / PRUNE_VACUUM_SCAN 0x20 /
  PRUNE_VACUUM_CLEANUP 0x30 with xl_heap_prune = reason u8, flags u8 (XLHP_*), then the
  conflict horizon u32 when XLHP_HAS_CONFLICT_HORIZON. Block 0 data, each part present iff
  its flag: freeze plans (nplans u16, pad2, xlhp_freeze_plan[nplans] of 12 bytes),
  redirections (n u16, 2n offsets), dead (n u16, n offsets), now-unused (n u16, n offsets),
  then the frozen offsets of all plans.
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
from pytest_walredo.pg.rmgr.heap import RM_NEON_ID, XLOG_NEON_HEAP_MULTI_INSERT
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RM_HEAP2_ID",
    "XLHP_CLEANUP_LOCK",
    "XLHP_HAS_CONFLICT_HORIZON",
    "XLHP_HAS_DEAD_ITEMS",
    "XLHP_HAS_FREEZE_PLANS",
    "XLHP_HAS_NOW_UNUSED_ITEMS",
    "XLHP_HAS_REDIRECTIONS",
    "XLHP_IS_CATALOG_REL",
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

RM_HEAP2_ID = 9

XLOG_HEAP2_REWRITE = 0x00
XLOG_HEAP2_PRUNE = 0x10
XLOG_HEAP2_VACUUM = 0x20
XLOG_HEAP2_FREEZE_PAGE = 0x30
XLOG_HEAP2_PRUNE_ON_ACCESS = 0x10  # PG17
XLOG_HEAP2_PRUNE_VACUUM_SCAN = 0x20  # PG17
XLOG_HEAP2_PRUNE_VACUUM_CLEANUP = 0x30  # PG17
XLOG_HEAP2_VISIBLE = 0x40
XLOG_HEAP2_MULTI_INSERT = 0x50
XLOG_HEAP2_LOCK_UPDATED = 0x60
XLOG_HEAP2_NEW_CID = 0x70
XLOG_HEAP_INIT_PAGE = 0x80

XLHP_IS_CATALOG_REL = 1 << 1
XLHP_CLEANUP_LOCK = 1 << 2
XLHP_HAS_CONFLICT_HORIZON = 1 << 3
XLHP_HAS_FREEZE_PLANS = 1 << 4
XLHP_HAS_REDIRECTIONS = 1 << 5
XLHP_HAS_DEAD_ITEMS = 1 << 6
XLHP_HAS_NOW_UNUSED_ITEMS = 1 << 7
_PARTS = XLHP_HAS_FREEZE_PLANS | XLHP_HAS_REDIRECTIONS | XLHP_HAS_DEAD_ITEMS | XLHP_HAS_NOW_UNUSED_ITEMS

VISIBILITYMAP_ALL_VISIBLE = 0x01
VISIBILITYMAP_ALL_FROZEN = 0x02

_PRUNE17_NAMES = {
    XLOG_HEAP2_PRUNE_ON_ACCESS: "PRUNE_ON_ACCESS",
    XLOG_HEAP2_PRUNE_VACUUM_SCAN: "PRUNE_VACUUM_SCAN",
    XLOG_HEAP2_PRUNE_VACUUM_CLEANUP: "PRUNE_VACUUM_CLEANUP",
}


def _tf(b: bool) -> str:
    return "T" if b else "F"


def _require(cond: bool, pg_version: int, what: str) -> None:
    if not cond:
        raise UnsupportedRecord(f"rmgr Heap2 {what} does not exist in PostgreSQL {pg_version}")


# --------------------------------------------------------------------------------------------
# MULTI_INSERT
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# VISIBLE
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# PG14-16 PRUNE and VACUUM
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heap2Prune(RmgrRecord):
    """XLOG_HEAP2_PRUNE (0x10), PG14-16. ``latest_removed_xid`` is PG16's
    snapshotConflictHorizon; ``is_catalog_rel`` exists only in PG16.

    The offset arrays are block 0's data; ``offsets_logged=False`` when a full-page image
    replaced them (then the arrays are empty and only the counts are known).
    """

    RMGR: ClassVar[str] = "Heap2"
    latest_removed_xid: int
    nredirected: int
    ndead: int
    redirected: tuple[tuple[int, int], ...] = ()
    dead: tuple[int, ...] = ()
    unused: tuple[int, ...] = ()
    is_catalog_rel: bool = False
    offsets_logged: bool = True

    def _check(self, v: int) -> None:
        _require(v <= 16, v, "PRUNE")
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
                f"ndead: {self.ndead}, isCatalogRel: {_tf(self.is_catalog_rel)}"
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
    nunused: int
    unused: tuple[int, ...] = ()
    offsets_logged: bool = True

    def _check(self, v: int) -> None:
        _require(v <= 16, v, "VACUUM")
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


# --------------------------------------------------------------------------------------------
# FREEZE_PAGE (PG14-16) and the PG17 prune/freeze records
# --------------------------------------------------------------------------------------------


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


def _plans_bytes(plans: tuple[FreezePlan, ...]) -> bytes:
    return b"".join(
        struct.pack("<IHHBBH", p.xmax, p.t_infomask2, p.t_infomask, p.frzflags, p.pad, len(p.offsets))
        for p in plans
    )


def _plans_desc(plans: tuple[FreezePlan, ...]) -> str:
    return (
        " ["
        + ", ".join(
            f"{{ xmax: {p.xmax}, infomask: {p.t_infomask}, infomask2: {p.t_infomask2}, "
            f"ntuples: {len(p.offsets)}, offsets:{offsets_desc(p.offsets)} }}"
            for p in plans
        )
        + "]"
    )


def _decode_plans(buf: bytes, pos: int, nplans: int, what: str) -> tuple[list[tuple[int, ...]], int]:
    raw = []
    for i in range(nplans):
        raw.append(unpack("<IHHBBH", buf, pos, f"{what} plan {i}"))
        pos += 12
    return raw, pos


@dataclass(frozen=True)
class Heap2FreezePage(RmgrRecord):
    """XLOG_HEAP2_FREEZE_PAGE (0x30), PG14-16.

    PG14/15 use ``cutoff_xid`` + ``tuples`` (xl_heap_freeze_tuple); PG16 uses ``cutoff_xid``
    (snapshotConflictHorizon) + ``plans`` + ``is_catalog_rel``. ``count`` is the logged
    ntuples (PG14/15) or nplans (PG16); the arrays are empty when a full-page image replaced
    block 0's data (``offsets_logged=False``).
    """

    RMGR: ClassVar[str] = "Heap2"
    cutoff_xid: int
    count: int
    tuples: tuple[FreezeTuple, ...] = ()
    plans: tuple[FreezePlan, ...] = ()
    is_catalog_rel: bool = False
    offsets_logged: bool = True

    def _check(self, v: int) -> None:
        _require(v <= 16, v, "FREEZE_PAGE")
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
            out = _plans_bytes(self.plans) + struct.pack(f"<{len(offs)}H", *offs)
        else:
            out = b"".join(
                struct.pack("<IHHHBB", t.xmax, t.offset, t.t_infomask2, t.t_infomask, t.frzflags, t.pad)
                for t in self.tuples
            )
        return {0: out} if out else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            s = (
                f"snapshotConflictHorizon: {self.cutoff_xid}, nplans: {self.count}, "
                f"isCatalogRel: {_tf(self.is_catalog_rel)}"
            )
            if self.offsets_logged and self.plans:
                s += ", plans:" + _plans_desc(self.plans)
            return s
        return f"cutoff xid {self.cutoff_xid} ntuples {self.count}"


@dataclass(frozen=True)
class Heap2PruneFreeze(RmgrRecord):
    """PG17 XLOG_HEAP2_PRUNE_ON_ACCESS (0x10) / PRUNE_VACUUM_SCAN (0x20) /
    PRUNE_VACUUM_CLEANUP (0x30): ``op`` is the info opcode, ``reason`` the xl_heap_prune
    reason byte (PRUNE_ON_ACCESS 0, PRUNE_VACUUM_SCAN 1, PRUNE_VACUUM_CLEANUP 2).

    ``flags`` is the stored XLHP_* byte. HAS_CONFLICT_HORIZON must be set iff
    ``conflict_xid`` is given. When any part (plans, redirected, dead, unused) is non-empty,
    each HAS_* bit must be set iff its part is non-empty; when all are empty, HAS_* bits may
    still be set: a full-page image replaced block 0's data.
    """

    RMGR: ClassVar[str] = "Heap2"
    op: int
    reason: int
    flags: int = 0
    conflict_xid: int | None = None
    plans: tuple[FreezePlan, ...] = ()
    redirected: tuple[tuple[int, int], ...] = ()
    dead: tuple[int, ...] = ()
    unused: tuple[int, ...] = ()
    # xlhp_freeze_plans' 2 C padding bytes after nplans (kept so real records rebuild exactly).
    plans_pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    def content_flags(self) -> int:
        """The HAS_* bits the non-empty parts call for."""
        f = 0
        if self.plans:
            f |= XLHP_HAS_FREEZE_PLANS
        if self.redirected:
            f |= XLHP_HAS_REDIRECTIONS
        if self.dead:
            f |= XLHP_HAS_DEAD_ITEMS
        if self.unused:
            f |= XLHP_HAS_NOW_UNUSED_ITEMS
        return f

    @property
    def block_data_logged(self) -> bool:
        return bool(self.content_flags())

    def _check(self, v: int) -> None:
        _require(v >= 17, v, _PRUNE17_NAMES.get(self.op, f"0x{self.op:02X}"))
        if self.op not in _PRUNE17_NAMES:
            raise ValueError(f"heap2 prune/freeze: op 0x{self.op:02X} is not 0x10, 0x20 or 0x30")
        if bool(self.flags & XLHP_HAS_CONFLICT_HORIZON) != (self.conflict_xid is not None):
            raise ValueError("heap2 prune/freeze: HAS_CONFLICT_HORIZON must be set iff conflict_xid is given")
        parts = self.content_flags()
        if parts and (self.flags & _PARTS) != parts:
            raise ValueError(
                f"heap2 prune/freeze: flags 0x{self.flags:02X} disagree with the logged parts (need 0x{parts:02X})"
            )

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check(pg_version)
        return self.op

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return _PRUNE17_NAMES.get(self.op, f"UNKNOWN ({self.op:x})")

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check(pg_version)
        out = struct.pack("<BB", self.reason, self.flags)
        return out + (struct.pack("<I", self.conflict_xid) if self.conflict_xid is not None else b"")

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        out = b""
        if self.plans:
            out += struct.pack("<H2s", len(self.plans), self.plans_pad) + _plans_bytes(self.plans)
        if self.redirected:
            flat = [x for pair in self.redirected for x in pair]
            out += struct.pack(f"<H{len(flat)}H", len(self.redirected), *flat)
        for items in (self.dead, self.unused):
            if items:
                out += struct.pack(f"<H{len(items)}H", len(items), *items)
        frz = [o for p in self.plans for o in p.offsets]
        out += struct.pack(f"<{len(frz)}H", *frz)
        return {0: out} if out else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        s = f"snapshotConflictHorizon: {self.conflict_xid}" if self.conflict_xid is not None else ""
        s += f", isCatalogRel: {_tf(bool(self.flags & XLHP_IS_CATALOG_REL))}"
        if self.plans or self.redirected or self.dead or self.unused:
            s += (
                f", nplans: {len(self.plans)}, nredirected: {len(self.redirected)}, "
                f"ndead: {len(self.dead)}, nunused: {len(self.unused)}"
            )
            if self.plans:
                s += ", plans:" + _plans_desc(self.plans)
            if self.redirected:
                s += ", redirected: [" + ", ".join(f"{a}->{b}" for a, b in self.redirected) + "]"
            if self.dead:
                s += ", dead:" + offsets_desc(self.dead)
            if self.unused:
                s += ", unused:" + offsets_desc(self.unused)
        return s


def _decode_prune17(op: int, main: bytes, b0: bytes) -> Heap2PruneFreeze:
    reason, flags = unpack("<BB", main, 0, "heap2 prune/freeze")
    conflict = None
    size = 2
    if flags & XLHP_HAS_CONFLICT_HORIZON:
        (conflict,) = unpack("<I", main, 2, "heap2 prune/freeze conflict horizon")
        size = 6
    if len(main) != size:
        raise RmgrDecodeError(f"heap2 prune/freeze main data is {len(main)} bytes, expected {size}")
    pos = 0
    plans_pad = b"\0\0"
    raw_plans: list[tuple[int, ...]] = []
    redirected: tuple[tuple[int, int], ...] = ()
    dead: tuple[int, ...] = ()
    unused: tuple[int, ...] = ()
    what = "heap2 prune/freeze block 0"
    if b0:
        if flags & XLHP_HAS_FREEZE_PLANS:
            nplans, plans_pad = unpack("<H2s", b0, pos, f"{what} nplans")
            raw_plans, pos = _decode_plans(b0, pos + 4, nplans, what)
        if flags & XLHP_HAS_REDIRECTIONS:
            (n,) = unpack("<H", b0, pos, f"{what} nredirected")
            flat = offsets(b0, pos + 2, 2 * n, f"{what} redirections")
            redirected = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(n))
            pos += 2 + 4 * n
        for bit, name in ((XLHP_HAS_DEAD_ITEMS, "dead"), (XLHP_HAS_NOW_UNUSED_ITEMS, "unused")):
            if flags & bit:
                (n,) = unpack("<H", b0, pos, f"{what} n{name}")
                items = offsets(b0, pos + 2, n, f"{what} {name} items")
                pos += 2 + 2 * n
                if name == "dead":
                    dead = items
                else:
                    unused = items
    plans = []
    for xmax, m2, m, frz, ppad, nt in raw_plans:
        plans.append(FreezePlan(xmax, m2, m, frz, offsets(b0, pos, nt, f"{what} frozen offsets"), ppad))
        pos += 2 * nt
    if pos != len(b0):
        raise RmgrDecodeError(f"{what} has {len(b0) - pos} unexplained byte(s) (flags 0x{flags:02X})")
    rec = Heap2PruneFreeze(op, reason, flags, conflict, tuple(plans), redirected, dead, unused, plans_pad)
    if b0 and rec.content_flags() != flags & _PARTS:
        raise RmgrDecodeError(f"{what}: flags 0x{flags:02X} announce parts that are empty")
    return rec


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
    if pg_version >= 17 and op in _PRUNE17_NAMES:
        return _decode_prune17(op, main, b0)
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
            raw, pos = _decode_plans(b0, 0, nplans, "heap2 FREEZE_PAGE")
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
    names = {
        XLOG_HEAP2_REWRITE: "REWRITE",
        XLOG_HEAP2_LOCK_UPDATED: "LOCK_UPDATED",
        XLOG_HEAP2_NEW_CID: "NEW_CID",
    }
    raise UnsupportedRecord(
        f"rmgr Heap2 info {names.get(op, 'UNKNOWN')} (0x{info:02X}) is not supported by the model "
        f"for PostgreSQL {pg_version}"
    )
