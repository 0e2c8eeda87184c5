"""B-tree records (RM_BTREE_ID = 11): INSERT_LEAF / INSERT_UPPER / INSERT_META and NEWROOT.

Layouts from PostgreSQL's ``src/include/access/nbtxlog.h`` (PG14-17, little-endian):

- xl_btree_insert: offnum u16. Block 0 data: the new IndexTuple. INSERT_UPPER: block 1 is
  the child whose incomplete-split flag is cleared. INSERT_META: block 2 is the metapage
  with an xl_btree_metadata as its data.
- xl_btree_newroot: rootblk u32, level u32. Block 0: the new root (WILL_INIT), data = its
  tuples when level > 0; block 1: the left child (level > 0); block 2: the metapage, data =
  xl_btree_metadata.
- xl_btree_metadata (PG14+): version u32, root u32, level u32, fastroot u32, fastlevel u32,
  last_cleanup_num_delpages u32, allequalimage bool, 3 padding bytes (sizeof = 28, and
  PostgreSQL registers sizeof).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.ids import RM_BTREE_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLOG_BTREE_INSERT_LEAF",
    "XLOG_BTREE_INSERT_META",
    "XLOG_BTREE_INSERT_UPPER",
    "XLOG_BTREE_NEWROOT",
    "BtreeInsert",
    "BtreeMetadata",
    "BtreeNewroot",
    "decode_btree",
]

XLOG_BTREE_INSERT_LEAF = 0x00
XLOG_BTREE_INSERT_UPPER = 0x10
XLOG_BTREE_INSERT_META = 0x20
XLOG_BTREE_SPLIT_L = 0x30
XLOG_BTREE_SPLIT_R = 0x40
XLOG_BTREE_INSERT_POST = 0x50
XLOG_BTREE_DEDUP = 0x60
XLOG_BTREE_DELETE = 0x70
XLOG_BTREE_UNLINK_PAGE = 0x80
XLOG_BTREE_UNLINK_PAGE_META = 0x90
XLOG_BTREE_NEWROOT = 0xA0
XLOG_BTREE_MARK_PAGE_HALFDEAD = 0xB0
XLOG_BTREE_VACUUM = 0xC0
XLOG_BTREE_REUSE_PAGE = 0xD0
XLOG_BTREE_META_CLEANUP = 0xE0

_NAMES = {
    XLOG_BTREE_INSERT_LEAF: "INSERT_LEAF",
    XLOG_BTREE_INSERT_UPPER: "INSERT_UPPER",
    XLOG_BTREE_INSERT_META: "INSERT_META",
    XLOG_BTREE_SPLIT_L: "SPLIT_L",
    XLOG_BTREE_SPLIT_R: "SPLIT_R",
    XLOG_BTREE_INSERT_POST: "INSERT_POST",
    XLOG_BTREE_DEDUP: "DEDUP",
    XLOG_BTREE_DELETE: "DELETE",
    XLOG_BTREE_UNLINK_PAGE: "UNLINK_PAGE",
    XLOG_BTREE_UNLINK_PAGE_META: "UNLINK_PAGE_META",
    XLOG_BTREE_NEWROOT: "NEWROOT",
    XLOG_BTREE_MARK_PAGE_HALFDEAD: "MARK_PAGE_HALFDEAD",
    XLOG_BTREE_VACUUM: "VACUUM",
    XLOG_BTREE_REUSE_PAGE: "REUSE_PAGE",
    XLOG_BTREE_META_CLEANUP: "META_CLEANUP",
}

_META = struct.Struct("<IIIIIIB3s")


@dataclass(frozen=True)
class BtreeMetadata:
    """xl_btree_metadata (PG14+)."""

    version: int
    root: int
    level: int
    fastroot: int
    fastlevel: int
    last_cleanup_num_delpages: int = 0
    allequalimage: bool = False
    # The struct's 3 trailing C padding bytes (kept so real records rebuild exactly).
    pad: bytes = field(default=b"\0\0\0", compare=False, repr=False)

    def encode(self) -> bytes:
        return _META.pack(
            self.version,
            self.root,
            self.level,
            self.fastroot,
            self.fastlevel,
            self.last_cleanup_num_delpages,
            self.allequalimage,
            self.pad,
        )

    @classmethod
    def decode(cls, buf: bytes, what: str) -> BtreeMetadata:
        if len(buf) != _META.size:
            raise RmgrDecodeError(f"{what} xl_btree_metadata is {len(buf)} bytes, expected {_META.size}")
        v, root, lev, fr, fl, dp, ae, pad = _META.unpack(buf)
        if ae > 1:
            raise RmgrDecodeError(f"{what} allequalimage is {ae}, expected 0 or 1")
        return cls(v, root, lev, fr, fl, dp, bool(ae), pad)


@dataclass(frozen=True)
class BtreeInsert(RmgrRecord):
    """XLOG_BTREE_INSERT_LEAF (0x00), INSERT_UPPER (0x10) or INSERT_META (0x20): ``op``.

    ``tuple`` is block 0's data (the IndexTuple; empty when a full-page image replaced it),
    ``metadata`` block 2's data (INSERT_META only, None when replaced by an image).
    """

    RMGR: ClassVar[str] = "Btree"
    offnum: int
    tuple: bytes = b""
    op: int = XLOG_BTREE_INSERT_LEAF
    metadata: BtreeMetadata | None = None

    def _check(self) -> None:
        if self.op not in (XLOG_BTREE_INSERT_LEAF, XLOG_BTREE_INSERT_UPPER, XLOG_BTREE_INSERT_META):
            raise ValueError(f"btree insert: op 0x{self.op:02X} is not INSERT_LEAF/UPPER/META")
        if self.metadata is not None and self.op != XLOG_BTREE_INSERT_META:
            raise ValueError("btree insert: metadata only goes with INSERT_META")

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_BTREE_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        return self.op

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return _NAMES[self.op]

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.offnum)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        out = {0: self.tuple} if self.tuple else {}
        if self.metadata is not None:
            out[2] = self.metadata.encode()
        return out

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"off: {self.offnum}" if pg_version >= 16 else f"off {self.offnum}"


@dataclass(frozen=True)
class BtreeNewroot(RmgrRecord):
    """XLOG_BTREE_NEWROOT (0xA0). ``tuples``: block 0's data (the root's tuples, level > 0);
    ``metadata``: block 2's data (None when replaced by an image)."""

    RMGR: ClassVar[str] = "Btree"
    rootblk: int
    level: int
    tuples: bytes = b""
    metadata: BtreeMetadata | None = None

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_BTREE_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BTREE_NEWROOT

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "NEWROOT"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<II", self.rootblk, self.level)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        out = {0: self.tuples} if self.tuples else {}
        if self.metadata is not None:
            out[2] = self.metadata.encode()
        return out

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"level: {self.level}" if pg_version >= 16 else f"lev {self.level}"


def decode_btree(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a btree record's main data and block data."""
    op = info & 0xF0
    if op in (XLOG_BTREE_INSERT_LEAF, XLOG_BTREE_INSERT_UPPER, XLOG_BTREE_INSERT_META):
        if len(main) != 2:
            raise RmgrDecodeError(f"btree {_NAMES[op]} main data is {len(main)} bytes, expected 2")
        if op != XLOG_BTREE_INSERT_META and 2 in blocks:
            raise RmgrDecodeError(f"btree {_NAMES[op]} has data on block 2, which only INSERT_META carries")
        meta = BtreeMetadata.decode(blocks[2], f"btree {_NAMES[op]}") if 2 in blocks else None
        return BtreeInsert(struct.unpack("<H", main)[0], blocks.get(0, b""), op, meta)
    if op == XLOG_BTREE_NEWROOT:
        if len(main) != 8:
            raise RmgrDecodeError(f"btree NEWROOT main data is {len(main)} bytes, expected 8")
        rootblk, level = struct.unpack("<II", main)
        meta = BtreeMetadata.decode(blocks[2], "btree NEWROOT") if 2 in blocks else None
        return BtreeNewroot(rootblk, level, blocks.get(0, b""), meta)
    raise UnsupportedRecord(
        f"rmgr Btree info {_NAMES.get(op, 'UNKNOWN')} (0x{info:02X}) is not supported by the model"
    )


RECORDS: tuple[type[RmgrRecord], ...] = (BtreeInsert, BtreeNewroot,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
