"""GiST records (RM_GIST_ID = 14, ``access/gistxlog.h``, PostgreSQL 14-17).

Layouts, little-endian; ``pad`` is C padding, kept so that real records rebuild byte for byte:

======================  ================================================================  =====
struct                  fields                                                            size
======================  ================================================================  =====
gistxlogPageUpdate      ntodelete u16, ntoinsert u16                                       4
                        (block 0: the offsets to delete, then the new tuples, unaligned)
gistxlogDelete          PG14/15: latestRemovedXid u32, ntodelete u16;                      6 / 8
                        PG16+: snapshotConflictHorizon u32, ntodelete u16, isCatalogRel,
                        pad1; then the offsets (main data, also when block 0 has an image)
gistxlogPageReuse       spcNode, dbNode, relNode, block (u32), latestRemovedFullXid u64;  24 / 25
                        PG16+ (snapshotConflictHorizon) then isCatalogRel bool
gistxlogPageSplit       origrlink u32, pad4, orignsn u64, origleaf bool, pad1, npage u16,  24
                        markfollowright bool, pad3 (block i+1 of each new page: int num,
                        then num tuples, unaligned)
gistxlogPageDelete      deleteXid u64, downlinkOffset u16                                  10
ASSIGN_LSN              a dummy int 0                                                      4
======================  ================================================================  =====

Block references: PAGE_UPDATE 0 the page, 1 the left child whose F_FOLLOW_RIGHT is cleared
(when the update completes a split); DELETE 0 the leaf; PAGE_SPLIT 0 that left child, 1..npage
the new pages (WILL_INIT; the first is the original page, or the root in a root split);
PAGE_DELETE 0 the deleted leaf, 1 its parent. PAGE_REUSE and ASSIGN_LSN name no block.

Descriptions (``gistdesc.c``): PAGE_UPDATE and ASSIGN_LSN print nothing; PG16 renamed the
conflict xids and added the ``isCatalogRel`` field, which PG17 prints.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.gist_page import split_packed_tuples
from pytest_walredo.pg.rmgr._base import (
    RmgrDecodeError,
    RmgrRecord,
    UnsupportedRecord,
    is_catalog_rel_desc,
    offsets,
)
from pytest_walredo.pg.rmgr.ids import RM_GIST_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "GIST_NAMES",
    "RECORDS",
    "XLOG_GIST_ASSIGN_LSN",
    "XLOG_GIST_DELETE",
    "XLOG_GIST_PAGE_DELETE",
    "XLOG_GIST_PAGE_REUSE",
    "XLOG_GIST_PAGE_SPLIT",
    "XLOG_GIST_PAGE_UPDATE",
    "GistAssignLsn",
    "GistDelete",
    "GistPageDelete",
    "GistPageReuse",
    "GistPageSplit",
    "GistPageUpdate",
    "decode_gist",
]

XLOG_GIST_PAGE_UPDATE = 0x00
XLOG_GIST_DELETE = 0x10
XLOG_GIST_PAGE_REUSE = 0x20
XLOG_GIST_PAGE_SPLIT = 0x30
XLOG_GIST_PAGE_DELETE = 0x60
XLOG_GIST_ASSIGN_LSN = 0x70

GIST_NAMES = {
    XLOG_GIST_PAGE_UPDATE: "PAGE_UPDATE",
    XLOG_GIST_DELETE: "DELETE",
    XLOG_GIST_PAGE_REUSE: "PAGE_REUSE",
    XLOG_GIST_PAGE_SPLIT: "PAGE_SPLIT",
    XLOG_GIST_PAGE_DELETE: "PAGE_DELETE",
    XLOG_GIST_ASSIGN_LSN: "ASSIGN_LSN",
}
"""pg_waldump's name of every GiST opcode (0x40 and 0x50 are no longer written)."""

_SPLIT = struct.Struct("<I4sQ?sH?3s")
_REUSE = struct.Struct("<IIIIQ")
_PAGE_DELETE = struct.Struct("<QH")
assert _SPLIT.size == 24 and _REUSE.size == 24 and _PAGE_DELETE.size == 10


def _full_xid(value: int) -> str:
    """A FullTransactionId as gistdesc prints it: ``epoch:xid``."""
    return f"{value >> 32}:{value & 0xFFFFFFFF}"


class GistRecord(RmgrRecord):
    """Base of the GiST typed records: rmgr 14 in every version and flavour."""

    RMGR: ClassVar[str] = "Gist"
    OP: ClassVar[int] = -1

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_GIST_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.OP

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return GIST_NAMES[self.OP]


@dataclass(frozen=True)
class GistPageUpdate(GistRecord):
    """XLOG_GIST_PAGE_UPDATE: delete ``todelete`` from block 0 and append ``tuples``; with
    exactly one of each, the tuple overwrites the deleted one in place. ``todelete`` and
    ``tuples`` are None when an image replaced block 0's data."""

    OP: ClassVar[int] = XLOG_GIST_PAGE_UPDATE

    ntodelete: int
    ntoinsert: int
    todelete: tuple[int, ...] | None = ()
    tuples: tuple[bytes, ...] | None = ()

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<HH", self.ntodelete, self.ntoinsert)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        if self.todelete is None or self.tuples is None:
            return {}
        data = struct.pack(f"<{len(self.todelete)}H", *self.todelete) + b"".join(self.tuples)
        return {0: data} if data else {}


@dataclass(frozen=True)
class GistDelete(GistRecord):
    """XLOG_GIST_DELETE: the leaf's dead items ``offsets`` go (``gistprunepage``)."""

    OP: ClassVar[int] = XLOG_GIST_DELETE

    conflict_xid: int
    ntodelete: int
    offsets: tuple[int, ...] = ()
    is_catalog_rel: bool = False
    pad: bytes = field(default=b"\0", compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        head = struct.pack("<IH", self.conflict_xid, self.ntodelete)
        if pg_version >= 16:
            head += bytes([self.is_catalog_rel]) + self.pad
        return head + struct.pack(f"<{len(self.offsets)}H", *self.offsets)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            return (f"delete: snapshotConflictHorizon {self.conflict_xid}, nitems: {self.ntodelete}"
                    + is_catalog_rel_desc(self.is_catalog_rel, pg_version, sep=" "))
        return f"delete: latestRemovedXid {self.conflict_xid}, nitems: {self.ntodelete}"


@dataclass(frozen=True)
class GistPageReuse(GistRecord):
    """XLOG_GIST_PAGE_REUSE: a hot-standby conflict point before a deleted page is reused; it
    names no block and changes no page."""

    OP: ClassVar[int] = XLOG_GIST_PAGE_REUSE

    rel: tuple[int, int, int]
    block: int
    conflict_xid: int
    is_catalog_rel: bool = False

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        out = _REUSE.pack(*self.rel, self.block, self.conflict_xid)
        return out + (bytes([self.is_catalog_rel]) if pg_version >= 16 else b"")

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        rel = "/".join(str(x) for x in self.rel)
        if pg_version >= 16:
            return (f"rel {rel}; blk {self.block}; snapshotConflictHorizon {_full_xid(self.conflict_xid)}"
                    + is_catalog_rel_desc(self.is_catalog_rel, pg_version, sep=" "))
        return f"rel {rel}; blk {self.block}; latestRemovedXid {_full_xid(self.conflict_xid)}"


@dataclass(frozen=True)
class GistPageSplit(GistRecord):
    """XLOG_GIST_PAGE_SPLIT: ``pages[i]`` are the tuples of block i+1 (None when that block
    carries no data), each page rebuilt from scratch; page i links right to page i+1, the last
    one to ``origrlink``."""

    OP: ClassVar[int] = XLOG_GIST_PAGE_SPLIT

    origrlink: int
    orignsn: int
    origleaf: bool
    npage: int
    markfollowright: bool
    pages: tuple[tuple[bytes, ...] | None, ...] = ()
    # the struct's padding after origrlink (4), origleaf (1) and markfollowright (3)
    pad: bytes = field(default=bytes(8), compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _SPLIT.pack(self.origrlink, self.pad[:4], self.orignsn, self.origleaf, self.pad[4:5],
                           self.npage, self.markfollowright, self.pad[5:8])

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {i + 1: struct.pack("<i", len(t)) + b"".join(t)
                for i, t in enumerate(self.pages) if t is not None}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"page_split: splits to {self.npage} pages"


@dataclass(frozen=True)
class GistPageDelete(GistRecord):
    """XLOG_GIST_PAGE_DELETE: block 0 (an empty leaf) becomes a deleted page keeping
    ``delete_xid``; block 1, its parent, loses the downlink at ``downlink_offset``."""

    OP: ClassVar[int] = XLOG_GIST_PAGE_DELETE

    delete_xid: int
    downlink_offset: int

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _PAGE_DELETE.pack(self.delete_xid, self.downlink_offset)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"deleteXid {_full_xid(self.delete_xid)}; downlink {self.downlink_offset}"


@dataclass(frozen=True)
class GistAssignLsn(GistRecord):
    """XLOG_GIST_ASSIGN_LSN: an empty record that only takes an LSN (``gistGetFakeLSN``)."""

    OP: ClassVar[int] = XLOG_GIST_ASSIGN_LSN

    dummy: int = 0

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<i", self.dummy)


def _exact(main: bytes, size: int, op: int) -> None:
    if len(main) != size:
        raise RmgrDecodeError(f"Gist {GIST_NAMES[op]} main data is {len(main)} bytes, expected {size}")


def _tuples(data: bytes, count: int | None, what: str) -> tuple[bytes, ...]:
    try:
        return tuple(split_packed_tuples(data, count))
    except ValueError as exc:
        raise RmgrDecodeError(f"Gist {what}: {exc}") from None


def _decode_update(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    _exact(main, 4, op)
    ndel, nins = struct.unpack("<HH", main)
    if 0 not in blocks:
        if ndel or nins:  # the data went with block 0's image
            return GistPageUpdate(ndel, nins, None, None)
        return GistPageUpdate(0, 0)
    data = blocks[0]
    todelete = offsets(data, 0, ndel, "Gist PAGE_UPDATE offsets")
    return GistPageUpdate(ndel, nins, todelete, _tuples(data[2 * ndel :], None, "PAGE_UPDATE new tuples"))


def _decode_delete(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    head = 8 if v >= 16 else 6
    if len(main) < head:
        raise RmgrDecodeError(f"Gist DELETE main data is {len(main)} bytes, expected at least {head}")
    xid, n = struct.unpack_from("<IH", main)
    rest = main[head:]
    if len(rest) != 2 * n:
        raise RmgrDecodeError(f"Gist DELETE logs {len(rest)} bytes of offsets for ntodelete {n}")
    catalog = v >= 16 and main[6] != 0
    if v >= 16 and main[6] > 1:
        raise RmgrDecodeError(f"Gist DELETE isCatalogRel is {main[6]}, expected 0 or 1")
    return GistDelete(xid, n, offsets(rest, 0, n, "Gist DELETE offsets"), catalog,
                      main[7:8] if v >= 16 else b"\0")


def _decode_reuse(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    _exact(main, _REUSE.size + (1 if v >= 16 else 0), op)
    spc, db, rel, block, xid = _REUSE.unpack_from(main)
    if v >= 16 and main[-1] > 1:
        raise RmgrDecodeError(f"Gist PAGE_REUSE isCatalogRel is {main[-1]}, expected 0 or 1")
    return GistPageReuse((spc, db, rel), block, xid, v >= 16 and main[-1] != 0)


def _decode_split(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    _exact(main, _SPLIT.size, op)
    rlink, pad4, nsn, leaf, pad1, npage, follow, pad3 = _SPLIT.unpack(main)
    pages: list[tuple[bytes, ...] | None] = []
    for i in range(1, npage + 1):
        data = blocks.get(i)
        if data is None:
            pages.append(None)
            continue
        if len(data) < 4:
            raise RmgrDecodeError(f"Gist PAGE_SPLIT block {i} has {len(data)} bytes, no tuple count")
        (num,) = struct.unpack_from("<i", data)
        if num < 0:
            raise RmgrDecodeError(f"Gist PAGE_SPLIT block {i} counts {num} tuples")
        pages.append(_tuples(data[4:], num, f"PAGE_SPLIT block {i}"))
    extra = sorted(set(blocks) - set(range(1, npage + 1)))
    if extra:
        raise RmgrDecodeError(f"Gist PAGE_SPLIT of {npage} pages has data on block(s) {extra}")
    return GistPageSplit(rlink, nsn, leaf, npage, follow, tuple(pages), pad4 + pad1 + pad3)


def _decode_page_delete(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    _exact(main, _PAGE_DELETE.size, op)
    return GistPageDelete(*_PAGE_DELETE.unpack(main))


def _decode_assign_lsn(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    _exact(main, 4, op)
    return GistAssignLsn(struct.unpack("<i", main)[0])


_DECODERS: dict[int, Callable[[int, bytes, dict[int, bytes], int], RmgrRecord]] = {
    XLOG_GIST_PAGE_UPDATE: _decode_update,
    XLOG_GIST_DELETE: _decode_delete,
    XLOG_GIST_PAGE_REUSE: _decode_reuse,
    XLOG_GIST_PAGE_SPLIT: _decode_split,
    XLOG_GIST_PAGE_DELETE: _decode_page_delete,
    XLOG_GIST_ASSIGN_LSN: _decode_assign_lsn,
}


def decode_gist(info: int, main: bytes, blocks: dict[int, bytes], pg_version: int,
                flavour: Flavour) -> RmgrRecord:
    """Decode a GiST record's main data and block data."""
    op = info & 0xF0
    decoder = _DECODERS.get(op)
    if decoder is None:  # 0x40, 0x50 (no longer written), 0x80..0xF0: gist_redo PANICs
        raise UnsupportedRecord(f"rmgr Gist info 0x{info:02X} is not a GiST record")
    return decoder(op, main, blocks, pg_version)


RECORDS: tuple[type[RmgrRecord], ...] = (
    GistPageUpdate, GistDelete, GistPageReuse, GistPageSplit, GistPageDelete, GistAssignLsn,
)
"""The typed records of the GiST rmgr (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
