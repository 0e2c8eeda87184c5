"""B-tree page deletion and metapage records: MARK_PAGE_HALFDEAD (0xB0), UNLINK_PAGE (0x80) and
UNLINK_PAGE_META (0x90), REUSE_PAGE (0xD0), META_CLEANUP (0xE0). Layouts: :mod:`.nbtxlog`.

Block references (``nbtxlog.h``):

- MARK_PAGE_HALFDEAD: block 0 the leaf being deleted (WILL_INIT: rebuilt as an empty half-dead
  page), block 1 the parent losing the downlink.
- UNLINK_PAGE(_META): block 0 the target (WILL_INIT: rebuilt as a deleted page), block 1 its
  left sibling (if any), block 2 its right sibling, block 3 the half-dead leaf when the
  target is one of its parents (WILL_INIT), block 4 the metapage (UNLINK_PAGE_META, WILL_INIT,
  data: xl_btree_metadata).
- REUSE_PAGE: no block; only a recovery-conflict point for hot standby (a no-op for pages).
- META_CLEANUP: block 0 the metapage (WILL_INIT, data: xl_btree_metadata).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, is_catalog_rel_desc
from pytest_walredo.pg.rmgr.nbtxlog import (
    XLOG_BTREE_MARK_PAGE_HALFDEAD,
    XLOG_BTREE_META_CLEANUP,
    XLOG_BTREE_REUSE_PAGE,
    XLOG_BTREE_UNLINK_PAGE,
    XLOG_BTREE_UNLINK_PAGE_META,
    BtreeMetadata,
    BtreeRecord,
    kv,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "DECODERS",
    "RECORDS",
    "BtreeMarkPageHalfdead",
    "BtreeMetaCleanup",
    "BtreeReusePage",
    "BtreeUnlinkPage",
]

_HALFDEAD = struct.Struct("<H2sIIII")
_UNLINK = struct.Struct("<III4sQIII")
_REUSE = struct.Struct("<IIIIQ")


def _full_xid(value: int) -> str:
    """A FullTransactionId as pg_waldump prints it: ``epoch:xid``."""
    return f"{value >> 32}:{value & 0xFFFFFFFF}"


@dataclass(frozen=True)
class BtreeMarkPageHalfdead(BtreeRecord):
    """XLOG_BTREE_MARK_PAGE_HALFDEAD: the first stage of deleting leaf ``leafblk``: the parent's
    downlink at ``poffset`` takes over the next one's target and that next item goes; the
    leaf becomes an empty half-dead page whose high key points to ``topparent``."""

    poffset: int
    leafblk: int
    leftblk: int
    rightblk: int
    topparent: int
    pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BTREE_MARK_PAGE_HALFDEAD

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "MARK_PAGE_HALFDEAD"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _HALFDEAD.pack(self.poffset, self.pad, self.leafblk, self.leftblk, self.rightblk, self.topparent)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return kv(
            pg_version,
            [("topparent", self.topparent), ("leaf", self.leafblk), ("left", self.leftblk),
             ("right", self.rightblk)],
        )


@dataclass(frozen=True)
class BtreeUnlinkPage(BtreeRecord):
    """XLOG_BTREE_UNLINK_PAGE, or with ``metadata`` UNLINK_PAGE_META (the metapage's new
    contents, block 4's data; ``meta=True`` with ``metadata`` None when an image replaced it).

    The target becomes a deleted page (``BTPageSetDeleted`` with ``safexid``, a
    FullTransactionId); its siblings' links skip it; when the target is an internal page,
    the half-dead leaf (block 3) is rebuilt pointing at ``leaftopparent``."""

    leftsib: int
    rightsib: int
    level: int
    safexid: int
    leafleftsib: int
    leafrightsib: int
    leaftopparent: int
    meta: bool = False
    metadata: BtreeMetadata | None = None
    pad: bytes = field(default=b"\0\0\0\0", compare=False, repr=False)

    def _check(self) -> None:
        if self.metadata is not None and not self.meta:
            raise ValueError("btree UNLINK_PAGE: metadata goes only with UNLINK_PAGE_META (meta=True)")

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        return XLOG_BTREE_UNLINK_PAGE_META if self.meta else XLOG_BTREE_UNLINK_PAGE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "UNLINK_PAGE_META" if self.meta else "UNLINK_PAGE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _UNLINK.pack(self.leftsib, self.rightsib, self.level, self.pad, self.safexid,
                            self.leafleftsib, self.leafrightsib, self.leaftopparent)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        return {4: self.metadata.encode()} if self.metadata is not None else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        first = kv(pg_version, [("left", self.leftsib), ("right", self.rightsib), ("level", self.level),
                                ("safexid", _full_xid(self.safexid))])
        second = kv(pg_version, [("leafleft", self.leafleftsib), ("leafright", self.leafrightsib),
                                 ("leaftopparent", self.leaftopparent)])
        return f"{first}, {second}" if pg_version >= 16 else f"{first}; {second}"


@dataclass(frozen=True)
class BtreeReusePage(BtreeRecord):
    """XLOG_BTREE_REUSE_PAGE: a deleted page of relation ``rel`` (spcnode, dbnode, relnode),
    block ``block``, is recycled; ``conflict_xid`` (latestRemovedFullXid, PG16+:
    snapshotConflictHorizon) is a FullTransactionId. No block reference: redo only
    resolves hot-standby conflicts, so for any page it is a no-op."""

    rel: tuple[int, int, int]
    block: int
    conflict_xid: int
    is_catalog_rel: bool = False

    def info(self, pg_version: int, flavour: Flavour) -> int:
        if self.is_catalog_rel and pg_version < 16:
            raise ValueError(f"btree REUSE_PAGE: isCatalogRel does not exist in PostgreSQL {pg_version}")
        return XLOG_BTREE_REUSE_PAGE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "REUSE_PAGE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        out = _REUSE.pack(*self.rel, self.block, self.conflict_xid)
        return out + (bytes([self.is_catalog_rel]) if pg_version >= 16 else b"")

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        rel = "/".join(str(x) for x in self.rel)
        if pg_version >= 16:
            return (f"rel: {rel}, snapshotConflictHorizon: {_full_xid(self.conflict_xid)}"
                    + is_catalog_rel_desc(self.is_catalog_rel, pg_version))
        return f"rel {rel}; latestRemovedXid {_full_xid(self.conflict_xid)}"


@dataclass(frozen=True)
class BtreeMetaCleanup(BtreeRecord):
    """XLOG_BTREE_META_CLEANUP: the metapage rewritten from ``metadata`` (block 0's data;
    None when an image replaced it)."""

    metadata: BtreeMetadata | None = None

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BTREE_META_CLEANUP

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "META_CLEANUP"

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.metadata.encode()} if self.metadata is not None else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        # pg_waldump reads block 0's data unconditionally; without it there is nothing to show.
        if self.metadata is None:
            return ""
        return kv(pg_version, [("last_cleanup_num_delpages", self.metadata.last_cleanup_num_delpages)])


def _decode_halfdead(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    if len(main) != _HALFDEAD.size:
        raise RmgrDecodeError(f"btree MARK_PAGE_HALFDEAD main data is {len(main)} bytes, expected {_HALFDEAD.size}")
    poff, pad, leaf, left, right, top = _HALFDEAD.unpack(main)
    return BtreeMarkPageHalfdead(poff, leaf, left, right, top, pad)


def _decode_unlink(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    meta = op == XLOG_BTREE_UNLINK_PAGE_META
    name = "UNLINK_PAGE_META" if meta else "UNLINK_PAGE"
    if len(main) != _UNLINK.size:
        raise RmgrDecodeError(f"btree {name} main data is {len(main)} bytes, expected {_UNLINK.size}")
    left, right, level, pad, safexid, ll, lr, ltop = _UNLINK.unpack(main)
    if 4 in blocks and not meta:
        raise RmgrDecodeError("btree UNLINK_PAGE has data on block 4, which only UNLINK_PAGE_META carries")
    md = BtreeMetadata.decode(blocks[4], f"btree {name}") if 4 in blocks else None
    return BtreeUnlinkPage(left, right, level, safexid, ll, lr, ltop, meta, md, pad)


def _decode_reuse(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    size = _REUSE.size + (1 if pg_version >= 16 else 0)
    if len(main) != size:
        raise RmgrDecodeError(f"btree REUSE_PAGE main data is {len(main)} bytes, expected {size}")
    spc, db, rel, block, xid = _REUSE.unpack_from(main)
    catalog = pg_version >= 16 and main[-1] != 0
    if pg_version >= 16 and main[-1] > 1:
        raise RmgrDecodeError(f"btree REUSE_PAGE isCatalogRel is {main[-1]}, expected 0 or 1")
    return BtreeReusePage((spc, db, rel), block, xid, catalog)


def _decode_meta_cleanup(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    if main:
        raise RmgrDecodeError(f"btree META_CLEANUP has {len(main)} bytes of main data, expected none")
    md = BtreeMetadata.decode(blocks[0], "btree META_CLEANUP") if 0 in blocks else None
    return BtreeMetaCleanup(md)


DECODERS = {
    XLOG_BTREE_MARK_PAGE_HALFDEAD: _decode_halfdead,
    XLOG_BTREE_UNLINK_PAGE: _decode_unlink,
    XLOG_BTREE_UNLINK_PAGE_META: _decode_unlink,
    XLOG_BTREE_REUSE_PAGE: _decode_reuse,
    XLOG_BTREE_META_CLEANUP: _decode_meta_cleanup,
}
"""The decoder of each opcode this module owns (joined by :func:`.btree.decode_btree`)."""

RECORDS: tuple[type[RmgrRecord], ...] = (
    BtreeMarkPageHalfdead, BtreeUnlinkPage, BtreeReusePage, BtreeMetaCleanup,
)
