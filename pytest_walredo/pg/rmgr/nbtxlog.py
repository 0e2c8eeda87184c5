"""What every B-tree record module shares (``access/nbtxlog.h``, PostgreSQL 14-17): opcodes,
record names, ``xl_btree_metadata`` and the description helpers.

The records live in :mod:`.btree` (inserts, splits, new root, deduplication; the rmgr's
decoder), :mod:`.btree_vacuum` (VACUUM and DELETE of leaf items, posting-list updates) and
:mod:`.btree_pagedel` (page deletion, page reuse, metapage cleanup).

Layouts, little-endian, C padding shown as ``pad`` (kept by the typed records so that real
records rebuild byte for byte):

====================  ===========================================================  ======
struct                fields                                                       size
====================  ===========================================================  ======
xl_btree_metadata     version, root, level, fastroot, fastlevel,                   28
                      last_cleanup_num_delpages (u32 each), allequalimage bool,
                      pad3 (PostgreSQL registers sizeof)
xl_btree_insert       offnum u16                                                    2
xl_btree_split        level u32, firstrightoff u16, newitemoff u16, postingoff u16  10
xl_btree_dedup        nintervals u16 (block 0: BTDedupInterval[] = baseoff u16,     2
                      nitems u16)
xl_btree_vacuum       ndeleted u16, nupdated u16                                    4
xl_btree_delete       PG14/15: latestRemovedXid u32, ndeleted u16, nupdated u16;    8 / 9
                      PG16+: snapshotConflictHorizon u32, ndeleted, nupdated,
                      isCatalogRel bool
xl_btree_update       ndeletedtids u16, then that many u16 posting-list positions   2 + 2n
xl_btree_mark_page_   poffset u16, pad2, leafblk, leftblk, rightblk, topparent      20
halfdead              (u32 each)
xl_btree_unlink_page  leftsib, rightsib, level (u32), pad4, safexid u64,            36
                      leafleftsib, leafrightsib, leaftopparent (u32)
xl_btree_reuse_page   PG14/15: spcNode, dbNode, relNode, block (u32),              24 / 25
                      latestRemovedFullXid u64; PG16+: the same with
                      snapshotConflictHorizon, then isCatalogRel bool
xl_btree_newroot      rootblk u32, level u32                                        8
====================  ===========================================================  ======

Descriptions: PostgreSQL 14/15 print ``key value`` pairs separated by ``;`` or ``,``
(``nbtdesc.c`` before 16); 16 and 17 print ``key: value`` lists and, for VACUUM and DELETE
with block data, the deleted and updated offsets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord
from pytest_walredo.pg.rmgr.ids import RM_BTREE_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "BTREE_NAMES",
    "XLOG_BTREE_DEDUP",
    "XLOG_BTREE_DELETE",
    "XLOG_BTREE_INSERT_LEAF",
    "XLOG_BTREE_INSERT_META",
    "XLOG_BTREE_INSERT_POST",
    "XLOG_BTREE_INSERT_UPPER",
    "XLOG_BTREE_MARK_PAGE_HALFDEAD",
    "XLOG_BTREE_META_CLEANUP",
    "XLOG_BTREE_NEWROOT",
    "XLOG_BTREE_REUSE_PAGE",
    "XLOG_BTREE_SPLIT_L",
    "XLOG_BTREE_SPLIT_R",
    "XLOG_BTREE_UNLINK_PAGE",
    "XLOG_BTREE_UNLINK_PAGE_META",
    "XLOG_BTREE_VACUUM",
    "BtreeMetadata",
    "BtreeRecord",
    "kv",
    "new_style",
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

BTREE_NAMES = {
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
"""pg_waldump's name of every btree opcode."""

_META = struct.Struct("<IIIIIIB3s")


class BtreeRecord(RmgrRecord):
    """Base of the btree typed records: rmgr 11 in every version and flavour."""

    RMGR: ClassVar[str] = "Btree"

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_BTREE_ID


def new_style(pg_version: int) -> bool:
    """PG16 rewrote the btree descriptions as ``key: value`` lists."""
    return pg_version >= 16


def kv(pg_version: int, pairs: list[tuple[str, object]], old_sep: str = "; ") -> str:
    """``k v`` pairs joined by ``old_sep`` (PG14/15) or ``k: v`` pairs joined by ``, `` (PG16+)."""
    if new_style(pg_version):
        return ", ".join(f"{k}: {v}" for k, v in pairs)
    return old_sep.join(f"{k} {v}" for k, v in pairs)


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

    SIZE = _META.size

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
