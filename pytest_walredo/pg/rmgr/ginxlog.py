"""What every GIN record module shares (``access/ginxlog.h``, PostgreSQL 14-17, the same
layouts in both flavours): opcodes, the record base class, and the leaf recompression data
that INSERT (data leaves) and VACUUM_DATA_LEAF_PAGE log.

The records live in :mod:`.gin` (the entry and posting trees: CREATE_PTREE, INSERT, SPLIT,
VACUUM_PAGE, VACUUM_DATA_LEAF_PAGE, DELETE_PAGE; and the rmgr's decoder) and
:mod:`.gin_fast` (fast update's pending list: UPDATE_META_PAGE, INSERT_LISTPAGE,
DELETE_LISTPAGE). PostgreSQL 10 dropped CREATE_INDEX (0x00): the index build logs its pages
as XLOG full-page images.

Layouts, little-endian, C padding shown as ``pad`` (kept so that real records rebuild byte
for byte); a BlockIdData is bi_hi u16, bi_lo u16:

=========================  ==============================================================  =====
struct                     fields                                                          size
=========================  ==============================================================  =====
ginxlogCreatePostingTree   size u32, then that many bytes of posting-list segments         4 + n
ginxlogInsert              flags u16 (ISDATA 0x01, ISLEAF 0x02); not leaf: left and         2 / 10
                           right child as BlockIdData
ginxlogInsertEntry         offset u16, isDelete bool, pad1, IndexTuple (block 0)            4 + n
ginxlogRecompressDataLeaf  nactions u16, then the segment actions (block 0)                 2 + n
ginxlogInsertDataInternal  offset u16, PostingItem (child BlockIdData, key ItemPointer)     12
ginxlogSplit               node (spc, db, rel u32), rrlink, leftChildBlkno,                 28
                           rightChildBlkno u32, flags u16 (+ ROOT 0x04), pad2
ginxlogDeletePage          parentOffset u16, pad2, rightLink u32, deleteXid u32             12
ginxlogUpdateMeta          node, pad4, GinMetaPageData (56), prevTail, newRightlink u32,   88
                           ntuples i32, pad4; block 1: the tuples
ginxlogInsertListPage      rightlink u32, ntuples i32; block 0: the tuples                  8
ginxlogDeleteListPages     GinMetaPageData, ndeleted i32, pad4                              64
=========================  ==============================================================  =====

Descriptions (``gindesc.c``): INSERT prints ``isdata: T isleaf: F``, the children of a
non-leaf insert, then either the block 0 image (``(full page image)``, or ``(full page
image, for WAL verification)`` for a consistency image) or what block 0's data says; so the
typed INSERT and VACUUM_DATA_LEAF_PAGE records carry ``fpi``, block 0's image as pg_waldump
sees it, which :func:`note_block_images` fills in when a record is parsed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import ClassVar

from pytest_walredo.pg.gin_posting import (
    GIN_SEGMENT_ADDITEMS,
    GIN_SEGMENT_DELETE,
    GIN_SEGMENT_INSERT,
    GIN_SEGMENT_REPLACE,
    SegmentAction,
    segment_size,
    unpack_items,
)
from pytest_walredo.pg.page import PageError
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, unpack
from pytest_walredo.pg.rmgr.ids import RM_GIN_ID
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import DecodedRecord

__all__ = [
    "FPI_APPLY",
    "FPI_CHECK",
    "GIN_INSERT_ISDATA",
    "GIN_INSERT_ISLEAF",
    "GIN_NAMES",
    "GIN_SPLIT_ROOT",
    "XLOG_GIN_CREATE_PTREE",
    "XLOG_GIN_DELETE_LISTPAGE",
    "XLOG_GIN_DELETE_PAGE",
    "XLOG_GIN_INSERT",
    "XLOG_GIN_INSERT_LISTPAGE",
    "XLOG_GIN_SPLIT",
    "XLOG_GIN_UPDATE_META_PAGE",
    "XLOG_GIN_VACUUM_DATA_LEAF_PAGE",
    "XLOG_GIN_VACUUM_PAGE",
    "GinRecord",
    "LeafActions",
    "exact",
    "fpi_desc",
    "note_block_images",
]

XLOG_GIN_CREATE_PTREE = 0x10
XLOG_GIN_INSERT = 0x20
XLOG_GIN_SPLIT = 0x30
XLOG_GIN_VACUUM_PAGE = 0x40
XLOG_GIN_DELETE_PAGE = 0x50
XLOG_GIN_UPDATE_META_PAGE = 0x60
XLOG_GIN_INSERT_LISTPAGE = 0x70
XLOG_GIN_DELETE_LISTPAGE = 0x80
XLOG_GIN_VACUUM_DATA_LEAF_PAGE = 0x90

GIN_NAMES = {
    XLOG_GIN_CREATE_PTREE: "CREATE_PTREE",
    XLOG_GIN_INSERT: "INSERT",
    XLOG_GIN_SPLIT: "SPLIT",
    XLOG_GIN_VACUUM_PAGE: "VACUUM_PAGE",
    XLOG_GIN_DELETE_PAGE: "DELETE_PAGE",
    XLOG_GIN_UPDATE_META_PAGE: "UPDATE_META_PAGE",
    XLOG_GIN_INSERT_LISTPAGE: "INSERT_LISTPAGE",
    XLOG_GIN_DELETE_LISTPAGE: "DELETE_LISTPAGE",
    XLOG_GIN_VACUUM_DATA_LEAF_PAGE: "VACUUM_DATA_LEAF_PAGE",
}
"""pg_waldump's name of every GIN opcode."""

GIN_INSERT_ISDATA = 0x01
GIN_INSERT_ISLEAF = 0x02
GIN_SPLIT_ROOT = 0x04

FPI_APPLY = "apply"
FPI_CHECK = "check"


class GinRecord(RmgrRecord):
    """Base of the GIN typed records: rmgr 13 in every version and flavour."""

    RMGR: ClassVar[str] = "Gin"
    OP: ClassVar[int] = 0

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_GIN_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.OP

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return GIN_NAMES[self.OP]


def exact(main: bytes, size: int, op: int) -> None:
    if len(main) != size:
        raise RmgrDecodeError(f"Gin {GIN_NAMES[op]} main data is {len(main)} bytes, expected {size}")


def fpi_desc(fpi: str) -> str:
    """What gin_desc prints for block 0's image."""
    return " (full page image)" if fpi == FPI_APPLY else " (full page image, for WAL verification)"


def note_block_images(body: RmgrRecord, rec: DecodedRecord) -> RmgrRecord:
    """``body`` with ``fpi`` set from block 0's image, for the records whose description
    depends on it (INSERT, VACUUM_DATA_LEAF_PAGE)."""
    if not hasattr(body, "fpi"):
        return body
    b0 = rec.block(0)
    fpi = "" if b0 is None or b0.image is None else (FPI_APPLY if b0.image.apply else FPI_CHECK)
    return replace(body, fpi=fpi)  # type: ignore[call-arg]


@dataclass(frozen=True)
class LeafActions:
    """``ginxlogRecompressDataLeaf``: the segment actions of a data leaf change.

    ``nactions`` is the logged count (None: ``len(actions)``); parsing stops after an unknown
    action, as redo (which fails there) and gin_desc do, and what follows is kept in
    ``tail``, like any bytes after the last action (PostgreSQL writes none), so that odd data
    rebuilds exactly."""

    actions: tuple[SegmentAction, ...]
    tail: bytes = b""
    nactions: int | None = None

    @property
    def count(self) -> int:
        return len(self.actions) if self.nactions is None else self.nactions

    def encode(self) -> bytes:
        return struct.pack("<H", self.count) + b"".join(a.encode() for a in self.actions) + self.tail

    @classmethod
    def decode(cls, buf: bytes, what: str) -> LeafActions:
        (n,) = unpack("<H", buf, 0, f"{what} nactions")
        pos = 2
        actions = []
        for _ in range(n):
            segno, action = unpack("<BB", buf, pos, f"{what} segment action")
            pos += 2
            if action in (GIN_SEGMENT_INSERT, GIN_SEGMENT_REPLACE):
                try:
                    size = segment_size(buf, pos)
                except PageError as exc:
                    raise RmgrDecodeError(f"{what}: {exc}") from None
                actions.append(SegmentAction(segno, action, bytes(buf[pos : pos + size])))
                pos += size
            elif action == GIN_SEGMENT_ADDITEMS:
                (nitems,) = unpack("<H", buf, pos, f"{what} ADDITEMS count")
                try:
                    items = unpack_items(buf, nitems, pos + 2)
                except PageError as exc:
                    raise RmgrDecodeError(f"{what}: {exc}") from None
                actions.append(SegmentAction(segno, action, items=tuple(items)))
                pos += 2 + 6 * nitems
            else:
                actions.append(SegmentAction(segno, action))
                if action != GIN_SEGMENT_DELETE:
                    break
        return cls(tuple(actions), bytes(buf[pos:]), None if len(actions) == n else n)

    def describe(self) -> str:
        """``desc_recompress_leaf``."""
        out = [f" {self.count} segments:"]
        for a in self.actions:
            if a.action == GIN_SEGMENT_ADDITEMS:
                out.append(f" {a.segno} (add {len(a.items)} items)")
            elif a.action in _KNOWN:
                out.append(f" {a.segno} ({_KNOWN[a.action]})")
            else:
                out.append(f" {a.segno} unknown action {a.action} ???")
        return "".join(out)


_KNOWN = {GIN_SEGMENT_DELETE: "delete", GIN_SEGMENT_INSERT: "insert", GIN_SEGMENT_REPLACE: "replace",
          GIN_SEGMENT_ADDITEMS: "add"}
