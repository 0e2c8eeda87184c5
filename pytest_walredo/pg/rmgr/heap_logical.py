"""Heap and heap2 records that exist for logical decoding only and name no block: heap TRUNCATE
(0x30), heap2 NEW_CID (0x70) and REWRITE (0x00). Redo changes no page with them (TRUNCATE and
NEW_CID are no-ops; REWRITE writes a logical-rewrite mapping file, never a page).

Layouts (``heapam_xlog.h``, PostgreSQL 14-17, all flavours; little-endian):

- xl_heap_truncate: dbId u32, nrelids u32, flags u8 (CASCADE 0x01, RESTART_SEQS 0x02), pad3,
  then nrelids relation OIDs (u32).
- xl_heap_new_cid: top_xid, cmin, cmax, combocid (u32), the target relation (spcnode,
  dbnode, relnode u32), target_tid (block hi u16, block lo u16, offset u16): 34 bytes.
- xl_heap_rewrite_mapping: mapped_xid, mapped_db, mapped_rel (u32), pad4, offset (i64),
  num_mappings u32, pad4, start_lsn u64 (40 bytes), then the mappings
  (LogicalRewriteMappingData, 36 bytes each), kept as bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, offsets_desc
from pytest_walredo.pg.rmgr.heapam_xlog import XLOG_HEAP_TRUNCATE
from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID, RM_HEAP_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLH_TRUNCATE_CASCADE",
    "XLH_TRUNCATE_RESTART_SEQS",
    "XLOG_HEAP2_NEW_CID",
    "XLOG_HEAP2_REWRITE",
    "Heap2NewCid",
    "Heap2Rewrite",
    "HeapTruncate",
    "decode_new_cid",
    "decode_rewrite",
    "decode_truncate",
]

XLOG_HEAP2_REWRITE = 0x00
XLOG_HEAP2_NEW_CID = 0x70
XLH_TRUNCATE_CASCADE = 0x01
XLH_TRUNCATE_RESTART_SEQS = 0x02

_TRUNCATE = struct.Struct("<IIB3s")
_NEW_CID = struct.Struct("<IIIIIIIHHH")
_REWRITE = struct.Struct("<III4sqI4sQ")


@dataclass(frozen=True)
class HeapTruncate(RmgrRecord):
    """XLOG_HEAP_TRUNCATE (0x30): TRUNCATE of ``relids`` in database ``db_id``."""

    RMGR: ClassVar[str] = "Heap"
    db_id: int
    relids: tuple[int, ...] = ()
    flags: int = 0
    pad: bytes = field(default=b"\0\0\0", compare=False, repr=False)

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP_TRUNCATE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "TRUNCATE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        head = _TRUNCATE.pack(self.db_id, len(self.relids), self.flags, self.pad)
        return head + struct.pack(f"<{len(self.relids)}I", *self.relids)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        names = [n for bit, n in ((XLH_TRUNCATE_CASCADE, "CASCADE"), (XLH_TRUNCATE_RESTART_SEQS, "RESTART_SEQS"))
                 if self.flags & bit]
        if pg_version >= 16:
            return (f"flags: [{', '.join(names)}], nrelids: {len(self.relids)}, relids:"
                    + offsets_desc(self.relids))
        old = "".join(f"{n.lower()} " for n in names)
        return f"{old}nrelids {len(self.relids)} relids" + "".join(f" {r}" for r in self.relids)


@dataclass(frozen=True)
class Heap2NewCid(RmgrRecord):
    """XLOG_HEAP2_NEW_CID (0x70): the command ids of a catalog tuple change, for logical
    decoding. ``target`` is (spcnode, dbnode, relnode), ``tid`` (block, offset)."""

    RMGR: ClassVar[str] = "Heap2"
    top_xid: int
    cmin: int
    cmax: int
    combocid: int
    target: tuple[int, int, int]
    tid: tuple[int, int]

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP2_NEW_CID

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "NEW_CID"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        blk, off = self.tid
        return _NEW_CID.pack(self.top_xid, self.cmin, self.cmax, self.combocid, *self.target,
                             blk >> 16, blk & 0xFFFF, off)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        rel = "/".join(str(x) for x in self.target)
        tid = f"{self.tid[0]}/{self.tid[1]}"
        cids = f"cmin: {self.cmin}, cmax: {self.cmax}, combo: {self.combocid}"
        if pg_version >= 16:
            return f"rel: {rel}, tid: {tid}, {cids}"
        return f"rel {rel}; tid {tid}; {cids}"


@dataclass(frozen=True)
class Heap2Rewrite(RmgrRecord):
    """XLOG_HEAP2_REWRITE (0x00): logical-rewrite mappings of a table rewrite (VACUUM FULL,
    CLUSTER) with logical decoding on. ``mappings`` are the mapping entries as logged."""

    RMGR: ClassVar[str] = "Heap2"
    mapped_xid: int
    mapped_db: int
    mapped_rel: int
    offset: int
    num_mappings: int
    start_lsn: int
    mappings: bytes = b""
    pads: bytes = field(default=bytes(8), compare=False, repr=False)

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_HEAP2_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_HEAP2_REWRITE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "REWRITE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _REWRITE.pack(self.mapped_xid, self.mapped_db, self.mapped_rel, self.pads[:4], self.offset,
                             self.num_mappings, self.pads[4:8], self.start_lsn) + self.mappings

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return ""  # heap2_desc prints nothing for REWRITE


def decode_truncate(main: bytes) -> HeapTruncate:
    if len(main) < _TRUNCATE.size:
        raise RmgrDecodeError(f"heap TRUNCATE main data is {len(main)} bytes, expected at least {_TRUNCATE.size}")
    db, n, flags, pad = _TRUNCATE.unpack_from(main)
    if len(main) != _TRUNCATE.size + 4 * n:
        raise RmgrDecodeError(f"heap TRUNCATE main data is {len(main)} bytes for {n} relids")
    return HeapTruncate(db, struct.unpack_from(f"<{n}I", main, _TRUNCATE.size), flags, pad)


def decode_new_cid(main: bytes) -> Heap2NewCid:
    if len(main) != _NEW_CID.size:
        raise RmgrDecodeError(f"heap2 NEW_CID main data is {len(main)} bytes, expected {_NEW_CID.size}")
    top, cmin, cmax, combo, spc, db, rel, hi, lo, off = _NEW_CID.unpack(main)
    return Heap2NewCid(top, cmin, cmax, combo, (spc, db, rel), ((hi << 16) | lo, off))


def decode_rewrite(main: bytes) -> Heap2Rewrite:
    if len(main) < _REWRITE.size:
        raise RmgrDecodeError(f"heap2 REWRITE main data is {len(main)} bytes, expected at least {_REWRITE.size}")
    xid, db, rel, pad1, offset, n, pad2, lsn = _REWRITE.unpack_from(main)
    return Heap2Rewrite(xid, db, rel, offset, n, lsn, bytes(main[_REWRITE.size :]), pad1 + pad2)


RECORDS: tuple[type[RmgrRecord], ...] = (HeapTruncate, Heap2NewCid, Heap2Rewrite)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
