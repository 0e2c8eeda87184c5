"""The PostgreSQL 17 prune/freeze records of heap2: PRUNE_ON_ACCESS (0x10), PRUNE_VACUUM_SCAN
(0x20) and PRUNE_VACUUM_CLEANUP (0x30), which replaced PRUNE, VACUUM and FREEZE_PAGE.

Layout (``heapam_xlog.h``, little-endian): xl_heap_prune = reason u8, flags u8 (XLHP_*), then
the conflict horizon u32 when XLHP_HAS_CONFLICT_HORIZON. Block 0 data, each part present iff
its flag: freeze plans (nplans u16, pad2, xlhp_freeze_plan[nplans] of 12 bytes),
redirections (n u16, 2n offsets), dead (n u16, n offsets), now-unused (n u16, n offsets),
then the frozen offsets of all plans.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, offsets, offsets_desc, unpack
from pytest_walredo.pg.rmgr.heap2_prune import (
    FreezePlan,
    bool_desc,
    decode_freeze_plans,
    freeze_plans_bytes,
    freeze_plans_desc,
    require_version,
)
from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "PRUNE17_NAMES",
    "PRUNE_REASONS",
    "RECORDS",
    "XLHP_CLEANUP_LOCK",
    "XLHP_HAS_CONFLICT_HORIZON",
    "XLHP_HAS_DEAD_ITEMS",
    "XLHP_HAS_FREEZE_PLANS",
    "XLHP_HAS_NOW_UNUSED_ITEMS",
    "XLHP_HAS_REDIRECTIONS",
    "XLHP_IS_CATALOG_REL",
    "XLHP_PARTS",
    "XLOG_HEAP2_PRUNE_ON_ACCESS",
    "XLOG_HEAP2_PRUNE_VACUUM_CLEANUP",
    "XLOG_HEAP2_PRUNE_VACUUM_SCAN",
    "Heap2PruneFreeze",
    "decode_prune17",
]

XLOG_HEAP2_PRUNE_ON_ACCESS = 0x10
XLOG_HEAP2_PRUNE_VACUUM_SCAN = 0x20
XLOG_HEAP2_PRUNE_VACUUM_CLEANUP = 0x30

XLHP_IS_CATALOG_REL = 1 << 1
XLHP_CLEANUP_LOCK = 1 << 2
XLHP_HAS_CONFLICT_HORIZON = 1 << 3
XLHP_HAS_FREEZE_PLANS = 1 << 4
XLHP_HAS_REDIRECTIONS = 1 << 5
XLHP_HAS_DEAD_ITEMS = 1 << 6
XLHP_HAS_NOW_UNUSED_ITEMS = 1 << 7
XLHP_PARTS = XLHP_HAS_FREEZE_PLANS | XLHP_HAS_REDIRECTIONS | XLHP_HAS_DEAD_ITEMS | XLHP_HAS_NOW_UNUSED_ITEMS
"""The HAS_* bits that announce a part of block 0's data."""

PRUNE17_NAMES = {
    XLOG_HEAP2_PRUNE_ON_ACCESS: "PRUNE_ON_ACCESS",
    XLOG_HEAP2_PRUNE_VACUUM_SCAN: "PRUNE_VACUUM_SCAN",
    XLOG_HEAP2_PRUNE_VACUUM_CLEANUP: "PRUNE_VACUUM_CLEANUP",
}

PRUNE_REASONS = {
    XLOG_HEAP2_PRUNE_ON_ACCESS: 0,
    XLOG_HEAP2_PRUNE_VACUUM_SCAN: 1,
    XLOG_HEAP2_PRUNE_VACUUM_CLEANUP: 2,
}
"""xl_heap_prune.reason of each opcode (PRUNE_ON_ACCESS, PRUNE_VACUUM_SCAN, PRUNE_VACUUM_CLEANUP)."""


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
    PG_VERSIONS: ClassVar[tuple[int, ...]] = (17,)
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
        require_version(v >= 17, v, PRUNE17_NAMES.get(self.op, f"0x{self.op:02X}"))
        if self.op not in PRUNE17_NAMES:
            raise ValueError(f"heap2 prune/freeze: op 0x{self.op:02X} is not 0x10, 0x20 or 0x30")
        if bool(self.flags & XLHP_HAS_CONFLICT_HORIZON) != (self.conflict_xid is not None):
            raise ValueError("heap2 prune/freeze: HAS_CONFLICT_HORIZON must be set iff conflict_xid is given")
        parts = self.content_flags()
        if parts and (self.flags & XLHP_PARTS) != parts:
            raise ValueError(
                f"heap2 prune/freeze: flags 0x{self.flags:02X} disagree with the logged parts (need 0x{parts:02X})"
            )

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check(pg_version)
        return self.op

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return PRUNE17_NAMES.get(self.op, f"UNKNOWN ({self.op:x})")

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check(pg_version)
        out = struct.pack("<BB", self.reason, self.flags)
        return out + (struct.pack("<I", self.conflict_xid) if self.conflict_xid is not None else b"")

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        out = b""
        if self.plans:
            out += struct.pack("<H2s", len(self.plans), self.plans_pad) + freeze_plans_bytes(self.plans)
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
        s += f", isCatalogRel: {bool_desc(bool(self.flags & XLHP_IS_CATALOG_REL))}"
        if self.plans or self.redirected or self.dead or self.unused:
            s += (
                f", nplans: {len(self.plans)}, nredirected: {len(self.redirected)}, "
                f"ndead: {len(self.dead)}, nunused: {len(self.unused)}"
            )
            if self.plans:
                s += ", plans:" + freeze_plans_desc(self.plans)
            if self.redirected:
                s += ", redirected: [" + ", ".join(f"{a}->{b}" for a, b in self.redirected) + "]"
            if self.dead:
                s += ", dead:" + offsets_desc(self.dead)
            if self.unused:
                s += ", unused:" + offsets_desc(self.unused)
        return s


def decode_prune17(op: int, main: bytes, b0: bytes) -> Heap2PruneFreeze:
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
            raw_plans, pos = decode_freeze_plans(b0, pos + 4, nplans, what)
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
    if b0 and rec.content_flags() != flags & XLHP_PARTS:
        raise RmgrDecodeError(f"{what}: flags 0x{flags:02X} announce parts that are empty")
    return rec


RECORDS: tuple[type[RmgrRecord], ...] = (Heap2PruneFreeze,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
