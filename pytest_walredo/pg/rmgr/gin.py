"""GIN records (RM_GIN_ID = 13) of the entry tree and the posting trees: CREATE_PTREE, INSERT,
SPLIT, VACUUM_PAGE, VACUUM_DATA_LEAF_PAGE, DELETE_PAGE; and the rmgr's decoder
(:func:`decode_gin`), which routes the pending-list records to :mod:`.gin_fast`. Opcodes,
struct layouts and the leaf recompression data: :mod:`.ginxlog`.

Block references (``ginxlog.h``):

- CREATE_PTREE: block 0 the new posting tree root (WILL_INIT); the main data carries its
  posting-list segments.
- INSERT: block 0 the page (data: an entry tuple, a data leaf's segment actions or an
  internal data page's new PostingItem); block 1 the left child whose incomplete-split
  flag a non-leaf insert clears.
- SPLIT: blocks 0 and 1 the left and right halves, block 2 the root of a root split, all
  three with full-page images (REGBUF_FORCE_IMAGE); block 3 the child whose incomplete-split
  flag a non-leaf split clears.
- VACUUM_PAGE: block 0, a full-page image of a vacuumed entry leaf.
- VACUUM_DATA_LEAF_PAGE: block 0 (data: the segment actions).
- DELETE_PAGE: block 0 the deleted data page, block 1 its parent, block 2 its left sibling.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_walredo.pg.gin_page import PostingItem
from pytest_walredo.pg.rmgr import gin_fast
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord, unpack
from pytest_walredo.pg.rmgr.ginxlog import (
    GIN_INSERT_ISDATA,
    GIN_INSERT_ISLEAF,
    GIN_SPLIT_ROOT,
    XLOG_GIN_CREATE_PTREE,
    XLOG_GIN_DELETE_PAGE,
    XLOG_GIN_INSERT,
    XLOG_GIN_SPLIT,
    XLOG_GIN_VACUUM_DATA_LEAF_PAGE,
    XLOG_GIN_VACUUM_PAGE,
    GinRecord,
    LeafActions,
    exact,
    fpi_desc,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "EntryInsert",
    "GinCreatePtree",
    "GinDeletePage",
    "GinInsert",
    "GinSplit",
    "GinVacuumDataLeafPage",
    "GinVacuumPage",
    "InternalInsert",
    "decode_gin",
]


def _block_id(blkno: int) -> bytes:
    return struct.pack("<HH", blkno >> 16, blkno & 0xFFFF)


def _tf(flag: bool) -> str:
    return "T" if flag else "F"


@dataclass(frozen=True)
class GinCreatePtree(GinRecord):
    """XLOG_GIN_CREATE_PTREE (0x10): ``segments``, the root leaf's posting-list segments as
    they lie on the page."""

    OP = XLOG_GIN_CREATE_PTREE
    segments: bytes

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<I", len(self.segments)) + self.segments


@dataclass(frozen=True)
class EntryInsert:
    """``ginxlogInsertEntry``: the tuple goes in at ``offset``; ``is_delete``: the tuple at
    ``offset`` is removed first (a leaf tuple replaced by a bigger posting list)."""

    offset: int
    is_delete: bool
    tuple: bytes
    pad: bytes = field(default=b"\0", compare=False, repr=False)

    def encode(self) -> bytes:
        return struct.pack("<H?", self.offset, self.is_delete) + self.pad + self.tuple


@dataclass(frozen=True)
class InternalInsert:
    """``ginxlogInsertDataInternal``: ``item`` goes in at ``offset`` of an internal data page."""

    offset: int
    item: PostingItem

    def encode(self) -> bytes:
        return struct.pack("<H", self.offset) + self.item.pack()


@dataclass(frozen=True)
class GinInsert(GinRecord):
    """XLOG_GIN_INSERT (0x20) into an entry page (``isdata`` False), a data leaf or an
    internal data page. A non-leaf insert logs the children whose split it completes (the
    left one is block 1). ``payload`` is block 0's data: :class:`EntryInsert`,
    :class:`~.ginxlog.LeafActions` or :class:`InternalInsert`, None when a full-page image
    replaced it. ``fpi``: block 0's image as pg_waldump sees it ("", "apply", "check")."""

    OP = XLOG_GIN_INSERT
    isdata: bool
    isleaf: bool
    payload: EntryInsert | LeafActions | InternalInsert | None
    left_child: int = 0
    right_child: int = 0
    flags_extra: int = 0  # flag bits beyond ISDATA/ISLEAF, kept as logged
    fpi: str = field(default="", compare=False)

    def _check(self) -> None:
        want = (InternalInsert if not self.isleaf else LeafActions) if self.isdata else EntryInsert
        if self.payload is not None and not isinstance(self.payload, want):
            raise ValueError(f"gin INSERT isdata={self.isdata} isleaf={self.isleaf} carries a "
                             f"{type(self.payload).__name__}, expected {want.__name__}")

    @property
    def flags(self) -> int:
        return self.flags_extra | (GIN_INSERT_ISDATA if self.isdata else 0) | (GIN_INSERT_ISLEAF if self.isleaf else 0)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        out = struct.pack("<H", self.flags)
        if not self.isleaf:
            out += _block_id(self.left_child) + _block_id(self.right_child)
        return out

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        return {} if self.payload is None else {0: self.payload.encode()}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        out = f"isdata: {_tf(self.isdata)} isleaf: {_tf(self.isleaf)}"
        if not self.isleaf:
            out += f" children: {self.left_child}/{self.right_child}"
        if self.fpi:
            return out + fpi_desc(self.fpi)
        p = self.payload
        if isinstance(p, EntryInsert):
            out += f" isdelete: {_tf(p.is_delete)}"
        elif isinstance(p, LeafActions):
            out += p.describe()
        elif isinstance(p, InternalInsert):
            out += f" pitem: {p.item.child}-{p.item.key_block}/{p.item.key_offset}"
        return out


@dataclass(frozen=True)
class GinSplit(GinRecord):
    """XLOG_GIN_SPLIT (0x30): the split pages travel as full-page images; the main data says
    which tree and level, and for a non-leaf split the children it completes (block 3 is the
    left one). ``rrlink``: the right page's right link, or the root block of a root split."""

    OP = XLOG_GIN_SPLIT
    node: tuple[int, int, int]
    rrlink: int
    left_child: int
    right_child: int
    flags: int
    pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    @property
    def isleaf(self) -> bool:
        return bool(self.flags & GIN_INSERT_ISLEAF)

    @property
    def isroot(self) -> bool:
        return bool(self.flags & GIN_SPLIT_ROOT)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<6IH", *self.node, self.rrlink, self.left_child, self.right_child,
                           self.flags) + self.pad

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"isrootsplit: {_tf(self.isroot)} isdata: {_tf(bool(self.flags & GIN_INSERT_ISDATA))}"
                f" isleaf: {_tf(self.isleaf)}")


@dataclass(frozen=True)
class GinVacuumPage(GinRecord):
    """XLOG_GIN_VACUUM_PAGE (0x40): no data; block 0's full-page image is the whole change."""

    OP = XLOG_GIN_VACUUM_PAGE


@dataclass(frozen=True)
class GinVacuumDataLeafPage(GinRecord):
    """XLOG_GIN_VACUUM_DATA_LEAF_PAGE (0x90): block 0's segment actions (None when a
    full-page image replaced them)."""

    OP = XLOG_GIN_VACUUM_DATA_LEAF_PAGE
    leaf: LeafActions | None
    fpi: str = field(default="", compare=False)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {} if self.leaf is None else {0: self.leaf.encode()}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if self.fpi:
            return fpi_desc(self.fpi)
        return self.leaf.describe() if self.leaf is not None else ""


@dataclass(frozen=True)
class GinDeletePage(GinRecord):
    """XLOG_GIN_DELETE_PAGE (0x50): a posting tree page leaves the tree: its parent loses
    the downlink at ``parent_offset``, its left sibling's right link becomes ``right_link``,
    and the page is marked deleted with ``delete_xid``."""

    OP = XLOG_GIN_DELETE_PAGE
    parent_offset: int
    right_link: int
    delete_xid: int
    pad: bytes = field(default=b"\0\0", compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.parent_offset) + self.pad + struct.pack("<II", self.right_link,
                                                                               self.delete_xid)


def _decode_create_ptree(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    (size,) = unpack("<I", main, 0, "Gin CREATE_PTREE size")
    exact(main, 4 + size, op)
    return GinCreatePtree(main[4:])


def _decode_insert(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    (flags,) = unpack("<H", main, 0, "Gin INSERT flags")
    isleaf = bool(flags & GIN_INSERT_ISLEAF)
    isdata = bool(flags & GIN_INSERT_ISDATA)
    left = right = 0
    if isleaf:
        exact(main, 2, op)
    else:
        exact(main, 10, op)
        lh, ll, rh, rl = struct.unpack_from("<4H", main, 2)
        left, right = (lh << 16) | ll, (rh << 16) | rl
    b0 = blocks.get(0)
    payload: EntryInsert | LeafActions | InternalInsert | None = None
    if b0 is not None:
        if not isdata:
            off, isdel = unpack("<HB", b0, 0, "Gin INSERT entry")
            if len(b0) < 4 + 8:
                raise RmgrDecodeError(f"Gin INSERT entry data is {len(b0)} bytes, too short for a tuple")
            payload = EntryInsert(off, bool(isdel), b0[4:], b0[3:4])
        elif isleaf:
            payload = LeafActions.decode(b0, "Gin INSERT data leaf")
        else:
            exact(b0, 12, op)
            payload = InternalInsert(struct.unpack_from("<H", b0)[0], PostingItem.unpack(b0, 2))
    extra = flags & ~(GIN_INSERT_ISDATA | GIN_INSERT_ISLEAF)
    return GinInsert(isdata, isleaf, payload, left, right, extra)


def _decode_split(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, 28, op)
    spc, db, rel, rrlink, left, right, flags = struct.unpack_from("<6IH", main)
    return GinSplit((spc, db, rel), rrlink, left, right, flags, main[26:28])


def _decode_vacuum_page(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, 0, op)
    return GinVacuumPage()


def _decode_vacuum_leaf(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, 0, op)
    b0 = blocks.get(0)
    return GinVacuumDataLeafPage(None if b0 is None else LeafActions.decode(b0, "Gin VACUUM_DATA_LEAF_PAGE"))


def _decode_delete_page(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, 12, op)
    off, = struct.unpack_from("<H", main)
    right, xid = struct.unpack_from("<II", main, 4)
    return GinDeletePage(off, right, xid, main[2:4])


_Decoder = Callable[[int, bytes, dict[int, bytes]], RmgrRecord]
_DECODERS: dict[int, _Decoder] = {
    XLOG_GIN_CREATE_PTREE: _decode_create_ptree,
    XLOG_GIN_INSERT: _decode_insert,
    XLOG_GIN_SPLIT: _decode_split,
    XLOG_GIN_VACUUM_PAGE: _decode_vacuum_page,
    XLOG_GIN_VACUUM_DATA_LEAF_PAGE: _decode_vacuum_leaf,
    XLOG_GIN_DELETE_PAGE: _decode_delete_page,
    **gin_fast.DECODERS,
}
"""The decoder of each GIN opcode (all nine)."""


def decode_gin(info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour) -> RmgrRecord:
    """Decode a GIN record's main data and block data."""
    op = info & 0xF0
    decoder = _DECODERS.get(op)
    if decoder is None:
        raise UnsupportedRecord(f"rmgr Gin info 0x{info:02X} is not a GIN record (gin_redo: unknown op code {op})")
    return decoder(op, main, blocks)


RECORDS: tuple[type[RmgrRecord], ...] = (
    GinCreatePtree, GinInsert, GinSplit, GinVacuumPage, GinVacuumDataLeafPage, GinDeletePage,
    *gin_fast.RECORDS,
)
"""The typed records of the GIN rmgr (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
