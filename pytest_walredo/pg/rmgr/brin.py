"""BRIN records (RM_BRIN_ID = 17), PostgreSQL 14-17 (``access/brin_xlog.h``; the same layouts in
both flavours). Info: the op in bits 0x70, XLOG_BRIN_INIT_PAGE 0x80 (INSERT and UPDATE only).

| op | main data (little-endian) | blocks |
|---|---|---|
| CREATE_INDEX 0x00 | pagesPerRange u32, version u16 (6 bytes) | 0 metapage (WILL_INIT) |
| INSERT 0x10 | heapBlk u32, pagesPerRange u32, offnum u16 (10) | 0 regular page (data: the BrinTuple; WILL_INIT with +INIT), 1 revmap page |
| UPDATE 0x20 | oldOffnum u16, 2 pad, then INSERT's 10 bytes (14) | as INSERT, plus 2 the old regular page |
| SAMEPAGE_UPDATE 0x30 | offnum u16 | 0 regular page (data: the BrinTuple) |
| REVMAP_EXTEND 0x40 | targetBlk u32 | 0 metapage, 1 the new revmap page (WILL_INIT) |
| DESUMMARIZE 0x50 | pagesPerRange u32, heapBlk u32, regOffset u16 (10) | 0 revmap page, 1 regular page |

A block that carries a full-page image has no data (the tuple is then ``b""``).
pg_waldump's names and descriptions (``brindesc.c``, the same text in 14-17):
``CREATE_INDEX v1 pagesPerRange 128``, ``INSERT+INIT heapBlk 0 pagesPerRange 1 offnum 1``,
``UPDATE heapBlk .. pagesPerRange .. old offnum .., new offnum ..``, ``SAMEPAGE_UPDATE offnum
3``, ``REVMAP_EXTEND targetBlk 2``, ``DESUMMARIZE pagesPerRange 1, heapBlk 3, page offset 4``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.ids import RM_BRIN_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLOG_BRIN_CREATE_INDEX",
    "XLOG_BRIN_DESUMMARIZE",
    "XLOG_BRIN_INIT_PAGE",
    "XLOG_BRIN_INSERT",
    "XLOG_BRIN_REVMAP_EXTEND",
    "XLOG_BRIN_SAMEPAGE_UPDATE",
    "XLOG_BRIN_UPDATE",
    "BrinCreateIndex",
    "BrinDesummarize",
    "BrinInsert",
    "BrinRevmapExtend",
    "BrinSamepageUpdate",
    "decode_brin",
]

XLOG_BRIN_CREATE_INDEX = 0x00
XLOG_BRIN_INSERT = 0x10
XLOG_BRIN_UPDATE = 0x20
XLOG_BRIN_SAMEPAGE_UPDATE = 0x30
XLOG_BRIN_REVMAP_EXTEND = 0x40
XLOG_BRIN_DESUMMARIZE = 0x50
XLOG_BRIN_OPMASK = 0x70
XLOG_BRIN_INIT_PAGE = 0x80

_CREATE = struct.Struct("<IH")
_INSERT = struct.Struct("<IIH")
_UPDATE = struct.Struct("<H2sIIH")
_OFFNUM = struct.Struct("<H")
_EXTEND = struct.Struct("<I")
_DESUMMARIZE = struct.Struct("<IIH")


@dataclass(frozen=True)
class _Brin(RmgrRecord):
    RMGR: ClassVar[str] = "BRIN"

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_BRIN_ID


@dataclass(frozen=True)
class BrinCreateIndex(_Brin):
    """XLOG_BRIN_CREATE_INDEX: the metapage (block 0) is initialized."""

    pages_per_range: int
    version: int = 1

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BRIN_CREATE_INDEX

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "CREATE_INDEX"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _CREATE.pack(self.pages_per_range, self.version)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"v{self.version} pagesPerRange {self.pages_per_range}"


@dataclass(frozen=True)
class BrinInsert(_Brin):
    """XLOG_BRIN_INSERT, or with ``old_offnum`` set XLOG_BRIN_UPDATE (a cross-page update: the
    old tuple goes from block 2). ``init``: XLOG_BRIN_INIT_PAGE, block 0 is initialized
    first. ``tuple``: block 0's data (empty when block 0 carries an image instead)."""

    heap_blk: int
    pages_per_range: int
    offnum: int
    tuple: bytes = b""
    init: bool = False
    old_offnum: int | None = None
    pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    @property
    def op(self) -> int:
        return XLOG_BRIN_INSERT if self.old_offnum is None else XLOG_BRIN_UPDATE

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.op | (XLOG_BRIN_INIT_PAGE if self.init else 0)

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return ("INSERT" if self.old_offnum is None else "UPDATE") + ("+INIT" if self.init else "")

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        if self.old_offnum is None:
            return _INSERT.pack(self.heap_blk, self.pages_per_range, self.offnum)
        return _UPDATE.pack(self.old_offnum, self.pad, self.heap_blk, self.pages_per_range, self.offnum)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.tuple} if self.tuple else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        head = f"heapBlk {self.heap_blk} pagesPerRange {self.pages_per_range} "
        if self.old_offnum is None:
            return head + f"offnum {self.offnum}"
        return head + f"old offnum {self.old_offnum}, new offnum {self.offnum}"


@dataclass(frozen=True)
class BrinSamepageUpdate(_Brin):
    """XLOG_BRIN_SAMEPAGE_UPDATE: item ``offnum`` of block 0 is replaced by ``tuple``."""

    offnum: int
    tuple: bytes = b""

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BRIN_SAMEPAGE_UPDATE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "SAMEPAGE_UPDATE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _OFFNUM.pack(self.offnum)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.tuple} if self.tuple else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"offnum {self.offnum}"


@dataclass(frozen=True)
class BrinRevmapExtend(_Brin):
    """XLOG_BRIN_REVMAP_EXTEND: block ``target_blk`` (block 1) becomes a revmap page and the
    metapage (block 0) records it as the last one."""

    target_blk: int

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BRIN_REVMAP_EXTEND

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "REVMAP_EXTEND"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _EXTEND.pack(self.target_blk)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"targetBlk {self.target_blk}"


@dataclass(frozen=True)
class BrinDesummarize(_Brin):
    """XLOG_BRIN_DESUMMARIZE: the revmap entry of ``heap_blk`` (block 0) is invalidated and
    item ``reg_offset`` of the regular page (block 1) removed."""

    pages_per_range: int
    heap_blk: int
    reg_offset: int

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BRIN_DESUMMARIZE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "DESUMMARIZE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _DESUMMARIZE.pack(self.pages_per_range, self.heap_blk, self.reg_offset)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"pagesPerRange {self.pages_per_range}, heapBlk {self.heap_blk}, page offset {self.reg_offset}"


def _fixed(main: bytes, st: struct.Struct, what: str) -> tuple[Any, ...]:
    if len(main) < st.size:
        raise RmgrDecodeError(f"BRIN {what} main data is {len(main)} bytes, expected {st.size}")
    return tuple(st.unpack_from(main))


def _no_data(blocks: dict[int, bytes], what: str, allowed: tuple[int, ...] = ()) -> None:
    extra = sorted(set(blocks) - set(allowed))
    if extra:
        raise RmgrDecodeError(f"BRIN {what} has block data on block(s) {extra}, expected none")


def decode_brin(info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour) -> RmgrRecord:
    op, init = info & XLOG_BRIN_OPMASK, bool(info & XLOG_BRIN_INIT_PAGE)
    if init and op not in (XLOG_BRIN_INSERT, XLOG_BRIN_UPDATE):
        raise UnsupportedRecord(f"rmgr BRIN info 0x{info & 0xF0:02X}: INIT_PAGE goes only with INSERT and UPDATE")
    if op == XLOG_BRIN_CREATE_INDEX:
        _no_data(blocks, "CREATE_INDEX")
        ppr, version = _fixed(main, _CREATE, "CREATE_INDEX")
        return BrinCreateIndex(ppr, version)
    if op == XLOG_BRIN_INSERT:
        _no_data(blocks, "INSERT", (0,))
        heap_blk, ppr, offnum = _fixed(main, _INSERT, "INSERT")
        return BrinInsert(heap_blk, ppr, offnum, blocks.get(0, b""), init)
    if op == XLOG_BRIN_UPDATE:
        _no_data(blocks, "UPDATE", (0,))
        old, pad, heap_blk, ppr, offnum = _fixed(main, _UPDATE, "UPDATE")
        return BrinInsert(heap_blk, ppr, offnum, blocks.get(0, b""), init, old, pad)
    if op == XLOG_BRIN_SAMEPAGE_UPDATE:
        _no_data(blocks, "SAMEPAGE_UPDATE", (0,))
        return BrinSamepageUpdate(_fixed(main, _OFFNUM, "SAMEPAGE_UPDATE")[0], blocks.get(0, b""))
    if op == XLOG_BRIN_REVMAP_EXTEND:
        _no_data(blocks, "REVMAP_EXTEND")
        return BrinRevmapExtend(_fixed(main, _EXTEND, "REVMAP_EXTEND")[0])
    if op == XLOG_BRIN_DESUMMARIZE:
        _no_data(blocks, "DESUMMARIZE")
        ppr, heap_blk, reg = _fixed(main, _DESUMMARIZE, "DESUMMARIZE")
        return BrinDesummarize(ppr, heap_blk, reg)
    # brin_redo PANICs on any other op code ("brin_redo: unknown op code")
    raise UnsupportedRecord(f"rmgr BRIN info 0x{info & 0xF0:02X} is not a record of PostgreSQL 14-17")


RECORDS: tuple[type[RmgrRecord], ...] = (
    BrinCreateIndex, BrinInsert, BrinSamepageUpdate, BrinRevmapExtend, BrinDesummarize,
)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
