"""B-tree records that remove leaf items: VACUUM (0xC0) and DELETE (0x70, simple and bottom-up
index deletion). Layouts: :mod:`.nbtxlog`.

Both log, as block 0's data, the deleted offsets, then the updated offsets, then one
``xl_btree_update`` per updated posting list (ndeletedtids u16 and that many u16 positions in
the posting list). Redo first rewrites the updated posting lists (``_bt_update_posting``),
then deletes the deleted items (``PageIndexMultiDelete``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pytest_walredo.pg.rmgr._base import (
    RmgrDecodeError,
    RmgrRecord,
    is_catalog_rel_desc,
    offsets,
    offsets_desc,
    unpack,
)
from pytest_walredo.pg.rmgr.nbtxlog import XLOG_BTREE_DELETE, XLOG_BTREE_VACUUM, BtreeRecord, kv, new_style
from pytest_walredo.pg.version import Flavour

__all__ = ["DECODERS", "RECORDS", "BtreeDelete", "BtreeUpdate", "BtreeVacuum"]


@dataclass(frozen=True)
class BtreeUpdate:
    """One updated posting list: its page offset and the posting-list positions (ascending)
    of the heap TIDs it loses (``xl_btree_update`` + its array)."""

    offnum: int
    deletetids: tuple[int, ...]


class _Items(BtreeRecord):
    """The block 0 payload VACUUM and DELETE share. ``items_logged`` is False when a
    full-page image replaced block 0's data (then only the counts are known)."""

    ndeleted: int
    nupdated: int
    deleted: tuple[int, ...]
    updates: tuple[BtreeUpdate, ...]
    items_logged: bool

    def _check(self) -> None:
        if self.items_logged:
            if len(self.deleted) != self.ndeleted or len(self.updates) != self.nupdated:
                raise ValueError(
                    f"btree {self.identify(15, Flavour.VANILLA)}: ndeleted/nupdated disagree with the"
                    f" logged arrays ({len(self.deleted)}/{len(self.updates)})"
                )
        elif self.deleted or self.updates:
            raise ValueError("btree VACUUM/DELETE: arrays given but items_logged is False")

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        if not self.items_logged:
            return {}
        out = struct.pack(f"<{len(self.deleted)}H", *self.deleted)
        out += struct.pack(f"<{len(self.updates)}H", *(u.offnum for u in self.updates))
        for u in self.updates:
            out += struct.pack(f"<H{len(u.deletetids)}H", len(u.deletetids), *u.deletetids)
        # An empty payload is "no block data": PostgreSQL registers none when both counts are 0.
        return {0: out} if out else {}

    def _arrays_desc(self) -> str:
        """PG16+ ``delvacuum_desc`` (only when block 0 carries data)."""
        ups = ", ".join(
            f"{{ off: {u.offnum}, nptids: {len(u.deletetids)}, ptids: ["
            + ", ".join(str(t) for t in u.deletetids)
            + "] }"
            for u in self.updates
        )
        return f", deleted:{offsets_desc(self.deleted)}, updated: [{ups}]"

    def _has_block_data(self) -> bool:
        return self.items_logged and bool(self.deleted or self.updates)


def _decode_items(b0: bytes | None, ndeleted: int, nupdated: int, what: str) -> tuple[
    tuple[int, ...], tuple[BtreeUpdate, ...], bool
]:
    if b0 is None:
        return (), (), False
    deleted = offsets(b0, 0, ndeleted, f"{what} deleted offsets")
    pos = 2 * ndeleted
    updoffs = offsets(b0, pos, nupdated, f"{what} updated offsets")
    pos += 2 * nupdated
    updates = []
    for i, off in enumerate(updoffs):
        (n,) = unpack("<H", b0, pos, f"{what} update {i}")
        tids = offsets(b0, pos + 2, n, f"{what} update {i} positions")
        updates.append(BtreeUpdate(off, tids))
        pos += 2 + 2 * n
    if pos != len(b0):
        raise RmgrDecodeError(f"{what} block 0 has {len(b0) - pos} byte(s) after its items")
    return deleted, tuple(updates), True


@dataclass(frozen=True)
class BtreeVacuum(_Items):
    """XLOG_BTREE_VACUUM (0xC0): VACUUM deletes leaf items and shrinks posting lists."""

    ndeleted: int
    nupdated: int
    deleted: tuple[int, ...] = ()
    updates: tuple[BtreeUpdate, ...] = ()
    items_logged: bool = True

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        return XLOG_BTREE_VACUUM

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "VACUUM"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<HH", self.ndeleted, self.nupdated)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        s = kv(pg_version, [("ndeleted", self.ndeleted), ("nupdated", self.nupdated)])
        if new_style(pg_version) and self._has_block_data():
            s += self._arrays_desc()
        return s


@dataclass(frozen=True)
class BtreeDelete(_Items):
    """XLOG_BTREE_DELETE (0x70): index tuple deletion outside VACUUM. ``conflict_xid`` is
    latestRemovedXid (PG14/15) / snapshotConflictHorizon (PG16+); ``is_catalog_rel``
    exists from PG16 on."""

    conflict_xid: int
    ndeleted: int
    nupdated: int
    deleted: tuple[int, ...] = ()
    updates: tuple[BtreeUpdate, ...] = ()
    items_logged: bool = True
    is_catalog_rel: bool = False

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        if self.is_catalog_rel and pg_version < 16:
            raise ValueError(f"btree DELETE: isCatalogRel does not exist in PostgreSQL {pg_version}")
        return XLOG_BTREE_DELETE

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "DELETE"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        out = struct.pack("<IHH", self.conflict_xid, self.ndeleted, self.nupdated)
        return out + (bytes([self.is_catalog_rel]) if pg_version >= 16 else b"")

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if not new_style(pg_version):
            return (
                f"latestRemovedXid {self.conflict_xid}; ndeleted {self.ndeleted}; nupdated {self.nupdated}"
            )
        s = (
            f"snapshotConflictHorizon: {self.conflict_xid}, ndeleted: {self.ndeleted}, "
            f"nupdated: {self.nupdated}"
        ) + is_catalog_rel_desc(self.is_catalog_rel, pg_version)
        if self._has_block_data():
            s += self._arrays_desc()
        return s


def _decode_vacuum(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    if len(main) != 4:
        raise RmgrDecodeError(f"btree VACUUM main data is {len(main)} bytes, expected 4")
    nd, nu = struct.unpack("<HH", main)
    deleted, updates, logged = _decode_items(blocks.get(0), nd, nu, "btree VACUUM")
    return BtreeVacuum(nd, nu, deleted, updates, logged or (nd == 0 and nu == 0))


def _decode_delete(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    size = 9 if pg_version >= 16 else 8
    if len(main) != size:
        raise RmgrDecodeError(f"btree DELETE main data is {len(main)} bytes, expected {size}")
    xid, nd, nu = struct.unpack_from("<IHH", main)
    catalog = pg_version >= 16 and main[8] != 0
    if pg_version >= 16 and main[8] > 1:
        raise RmgrDecodeError(f"btree DELETE isCatalogRel is {main[8]}, expected 0 or 1")
    deleted, updates, logged = _decode_items(blocks.get(0), nd, nu, "btree DELETE")
    return BtreeDelete(xid, nd, nu, deleted, updates, logged or (nd == 0 and nu == 0), catalog)


DECODERS = {XLOG_BTREE_VACUUM: _decode_vacuum, XLOG_BTREE_DELETE: _decode_delete}
"""The decoder of each opcode this module owns (joined by :func:`.btree.decode_btree`)."""

RECORDS: tuple[type[RmgrRecord], ...] = (BtreeVacuum, BtreeDelete)
