"""SP-GiST records (RM_SPGIST_ID = 15, ``access/spgxlog.h``, PostgreSQL 14-17).

Every record keeps all its data in the main data (no block data). Layouts, little-endian;
``pad`` is C padding, kept so that real records rebuild byte for byte; ``state`` is
``spgxlogState`` (redirectXid u32, isBuild bool, 3 pad):

================  ==========================================================================  ====
record            fixed part, then what follows                                               size
================  ==========================================================================  ====
ADD_LEAF          newPage, storesNulls, offnumLeaf, offnumHeadLeaf, offnumParent, nodeI;       10
                  the leaf tuple (unaligned)
MOVE_LEAFS        nMoves u16, newPage, replaceDead, storesNulls, pad, offnumParent, nodeI,     20
                  pad2, state; nMoves offsets to delete, nInsert offsets to insert at
                  (nMoves + 1, or 1 with replaceDead), nInsert leaf tuples
ADD_NODE          offnum, offnumNew, newPage, parentBlk int8, offnumParent, nodeI, pad2,       20
                  state; the new inner tuple
SPLIT_TUPLE       offnumPrefix, offnumPostfix, newPage, postfixBlkSame; the prefix then the     6
                  postfix inner tuple
PICKSPLIT         isRootSplit, pad, nDelete, nInsert, initSrc, initDest, offnumInner,          28
                  initInner, storesNulls, innerIsParent, pad, offnumParent, nodeI, pad2,
                  state; nDelete offsets, nInsert offsets, nInsert page selectors (bytes),
                  the inner tuple, nInsert leaf tuples
VACUUM_LEAF       nDead, nPlaceholder, nMove, nChain, state; dead, placeholder, move-from,     16
                  move-to, chain-from, chain-to offsets
VACUUM_ROOT       nDelete, pad2, state; the offsets                                            12
VACUUM_REDIRECT   nToPlaceholder, firstPlaceholder, newestRedirectXid (PG16+:                8 / 10
                  snapshotConflictHorizon, isCatalogRel, pad); the offsets
================  ==========================================================================  ====

Block references: ADD_LEAF 0 leaf, 1 parent; MOVE_LEAFS 0 source, 1 destination, 2 parent;
ADD_NODE 0 the old tuple's page, 1 the new one's (absent: updated in place), 2 the parent
(parentBlk 2); SPLIT_TUPLE 0 prefix page, 1 postfix page (unless the same); PICKSPLIT 0
source (not in a root split), 1 destination, 2 inner page, 3 parent (unless the inner page);
VACUUM_* 0 the page.

Descriptions (``spgdesc.c``): the same in 14 and 15 (the strings in their binaries); 16 renamed
the redirect xid and added the ``isCatalogRel`` field, which 17 prints.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.spgist_vacuum import (
    VACUUM_DECODERS,
    SpgVacuumLeaf,
    SpgVacuumRedirect,
    SpgVacuumRoot,
)
from pytest_walredo.pg.rmgr.spgxlog import (
    SPGIST_NAMES,
    XLOG_SPGIST_ADD_LEAF,
    XLOG_SPGIST_ADD_NODE,
    XLOG_SPGIST_MOVE_LEAFS,
    XLOG_SPGIST_PICKSPLIT,
    XLOG_SPGIST_SPLIT_TUPLE,
    MainReader,
    SpgRecord,
    flag_text,
    pack_offsets,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "SpgAddLeaf",
    "SpgAddNode",
    "SpgMoveLeafs",
    "SpgPickSplit",
    "SpgSplitTuple",
    "decode_spgist",
]

_ADD_LEAF = struct.Struct("<??HHHH")
_MOVE_LEAFS = struct.Struct("<H???sHH2sI?3s")
_ADD_NODE = struct.Struct("<HH?bHH2sI?3s")
_SPLIT_TUPLE = struct.Struct("<HH??")
_PICKSPLIT = struct.Struct("<?sHH??H???sHH2sI?3s")


assert (_ADD_LEAF.size, _MOVE_LEAFS.size, _ADD_NODE.size, _SPLIT_TUPLE.size, _PICKSPLIT.size) == (10, 20, 20, 6, 28)


@dataclass(frozen=True)
class SpgAddLeaf(SpgRecord):
    """ADD_LEAF: ``tuple`` goes to ``off_leaf`` of block 0 (a new page when ``new_page``),
    chained after ``off_head``, or replacing a DEAD tuple when both offsets are equal; the
    parent's node ``node_i`` at ``off_parent`` of block 1 then points at it."""

    OP: ClassVar[int] = XLOG_SPGIST_ADD_LEAF

    new_page: bool
    stores_nulls: bool
    off_leaf: int
    off_head: int
    off_parent: int
    node_i: int
    tuple: bytes

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _ADD_LEAF.pack(self.new_page, self.stores_nulls, self.off_leaf, self.off_head, self.off_parent,
                              self.node_i) + self.tuple

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        flags = flag_text(self.new_page, " (newpage)") + flag_text(self.stores_nulls, " (nulls)")
        return (f"off: {self.off_leaf}, headoff: {self.off_head}, parentoff: {self.off_parent}, "
                f"nodeI: {self.node_i}{flags}")


@dataclass(frozen=True)
class SpgMoveLeafs(SpgRecord):
    """MOVE_LEAFS: ``tuples`` go to ``toinsert`` of block 1; ``todelete`` of block 0 become
    a REDIRECT (first) and PLACEHOLDERs pointing at the last inserted one; the parent's
    node points there."""

    OP: ClassVar[int] = XLOG_SPGIST_MOVE_LEAFS

    nmoves: int
    new_page: bool
    replace_dead: bool
    stores_nulls: bool
    off_parent: int
    node_i: int
    redirect_xid: int
    is_build: bool
    todelete: tuple[int, ...]
    toinsert: tuple[int, ...]
    tuples: tuple[bytes, ...]
    pad: bytes = field(default=bytes(6), compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        head = _MOVE_LEAFS.pack(self.nmoves, self.new_page, self.replace_dead, self.stores_nulls, self.pad[:1],
                                self.off_parent, self.node_i, self.pad[1:3], self.redirect_xid, self.is_build,
                                self.pad[3:6])
        return head + pack_offsets(self.todelete) + pack_offsets(self.toinsert) + b"".join(self.tuples)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"nmoves: {self.nmoves}, parentoff: {self.off_parent}, nodeI: {self.node_i}"
                + flag_text(self.new_page, " (newpage)") + flag_text(self.replace_dead, " (replacedead)")
                + flag_text(self.stores_nulls, " (nulls)"))


@dataclass(frozen=True)
class SpgAddNode(SpgRecord):
    """ADD_NODE: the inner tuple at ``offnum`` of block 0 is replaced by ``tuple``, in place
    or, when block 1 is named, moved to ``off_new`` there (the old one becoming a REDIRECT,
    or a PLACEHOLDER during a build) with the parent's link updated on block ``parent_blk``."""

    OP: ClassVar[int] = XLOG_SPGIST_ADD_NODE

    offnum: int
    off_new: int
    new_page: bool
    parent_blk: int
    off_parent: int
    node_i: int
    redirect_xid: int
    is_build: bool
    tuple: bytes
    pad: bytes = field(default=bytes(5), compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _ADD_NODE.pack(self.offnum, self.off_new, self.new_page, self.parent_blk, self.off_parent,
                              self.node_i, self.pad[:2], self.redirect_xid, self.is_build, self.pad[2:5]) + self.tuple

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"off: {self.offnum}, newoff: {self.off_new}, parentBlk: {self.parent_blk}, "
                f"parentoff: {self.off_parent}, nodeI: {self.node_i}" + flag_text(self.new_page, " (newpage)"))


@dataclass(frozen=True)
class SpgSplitTuple(SpgRecord):
    """SPLIT_TUPLE: ``prefix`` replaces the inner tuple at ``off_prefix`` of block 0 and
    ``postfix`` goes to ``off_postfix`` on the same page or block 1."""

    OP: ClassVar[int] = XLOG_SPGIST_SPLIT_TUPLE

    off_prefix: int
    off_postfix: int
    new_page: bool
    postfix_same: bool
    prefix: bytes
    postfix: bytes

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _SPLIT_TUPLE.pack(self.off_prefix, self.off_postfix, self.new_page, self.postfix_same) + \
            self.prefix + self.postfix

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"prefixoff: {self.off_prefix}, postfixoff: {self.off_postfix}"
                + flag_text(self.new_page, " (newpage)") + flag_text(self.postfix_same, " (same)"))


@dataclass(frozen=True)
class SpgPickSplit(SpgRecord):
    """PICKSPLIT: ``todelete`` leave block 0 (as REDIRECT + PLACEHOLDERs to the new inner
    tuple, or PLACEHOLDERs during a build); leaf ``tuples[i]`` go to ``toinsert[i]`` of block
    0 or, when ``select[i]``, block 1; ``inner`` goes to ``off_inner`` of block 2; the parent
    (block 2 itself, or 3) points at it."""

    OP: ClassVar[int] = XLOG_SPGIST_PICKSPLIT

    is_root_split: bool
    ndelete: int
    ninsert: int
    init_src: bool
    init_dest: bool
    off_inner: int
    init_inner: bool
    stores_nulls: bool
    inner_is_parent: bool
    off_parent: int
    node_i: int
    redirect_xid: int
    is_build: bool
    todelete: tuple[int, ...]
    toinsert: tuple[int, ...]
    select: bytes
    inner: bytes
    tuples: tuple[bytes, ...]
    pad: bytes = field(default=bytes(7), compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        p = self.pad
        head = _PICKSPLIT.pack(self.is_root_split, p[:1], self.ndelete, self.ninsert, self.init_src, self.init_dest,
                               self.off_inner, self.init_inner, self.stores_nulls, self.inner_is_parent, p[1:2],
                               self.off_parent, self.node_i, p[2:4], self.redirect_xid, self.is_build, p[4:7])
        return head + pack_offsets(self.todelete) + pack_offsets(self.toinsert) + self.select + self.inner + b"".join(self.tuples)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"ndelete: {self.ndelete}, ninsert: {self.ninsert}, inneroff: {self.off_inner}, "
                f"parentoff: {self.off_parent}, nodeI: {self.node_i}"
                + flag_text(self.inner_is_parent, " (innerIsParent)") + flag_text(self.stores_nulls, " (nulls)")
                + flag_text(self.is_root_split, " (isRootSplit)"))


# -- decoding ----------------------------------------------------------------------------------


def _decode_add_leaf(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("ADD_LEAF", main, _ADD_LEAF)
    new, nulls, leaf, head, parent, node = r.fields
    rec = SpgAddLeaf(new, nulls, leaf, head, parent, node, r.leaf())
    r.end()
    return rec


def _decode_move_leafs(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("MOVE_LEAFS", main, _MOVE_LEAFS)
    nmoves, new, dead, nulls, p1, parent, node, p2, xid, build, p3 = r.fields
    ninsert = 1 if dead else nmoves + 1
    todelete, toinsert = r.offsets(nmoves), r.offsets(ninsert)
    tuples = tuple(r.leaf() for _ in range(ninsert))
    r.end()
    return SpgMoveLeafs(nmoves, new, dead, nulls, parent, node, xid, build, todelete, toinsert, tuples, p1 + p2 + p3)


def _decode_add_node(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("ADD_NODE", main, _ADD_NODE)
    off, new_off, new, parent_blk, parent, node, p1, xid, build, p2 = r.fields
    rec = SpgAddNode(off, new_off, new, parent_blk, parent, node, xid, build, r.inner(), p1 + p2)
    r.end()
    return rec


def _decode_split_tuple(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("SPLIT_TUPLE", main, _SPLIT_TUPLE)
    prefix_off, postfix_off, new, same = r.fields
    prefix = r.inner()
    rec = SpgSplitTuple(prefix_off, postfix_off, new, same, prefix, r.inner())
    r.end()
    return rec


def _decode_picksplit(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("PICKSPLIT", main, _PICKSPLIT)
    (root, p1, ndel, nins, init_src, init_dest, off_inner, init_inner, nulls, inner_is_parent, p2, parent, node,
     p3, xid, build, p4) = r.fields
    todelete, toinsert, select = r.offsets(ndel), r.offsets(nins), r.raw(nins)
    inner = r.inner()
    tuples = tuple(r.leaf() for _ in range(nins))
    r.end()
    return SpgPickSplit(root, ndel, nins, init_src, init_dest, off_inner, init_inner, nulls, inner_is_parent, parent,
                        node, xid, build, todelete, toinsert, select, inner, tuples, p1 + p2 + p3 + p4)


_DECODERS: dict[int, Callable[[bytes, int], RmgrRecord]] = {
    XLOG_SPGIST_ADD_LEAF: _decode_add_leaf,
    XLOG_SPGIST_MOVE_LEAFS: _decode_move_leafs,
    XLOG_SPGIST_ADD_NODE: _decode_add_node,
    XLOG_SPGIST_SPLIT_TUPLE: _decode_split_tuple,
    XLOG_SPGIST_PICKSPLIT: _decode_picksplit,
    **VACUUM_DECODERS,
}


def decode_spgist(info: int, main: bytes, blocks: dict[int, bytes], pg_version: int,
                  flavour: Flavour) -> RmgrRecord:
    """Decode an SP-GiST record's main data (its records carry no block data)."""
    op = info & 0xF0
    decoder = _DECODERS.get(op)
    if decoder is None:  # 0x00 (CREATE_INDEX, gone since 9.5) and 0x90..0xF0: spg_redo PANICs
        raise UnsupportedRecord(f"rmgr SPGist info 0x{info:02X} is not an SP-GiST record")
    if blocks:
        raise RmgrDecodeError(f"SPGist {SPGIST_NAMES[op]} carries block data on block(s) {sorted(blocks)}")
    return decoder(main, pg_version)


RECORDS: tuple[type[RmgrRecord], ...] = (
    SpgAddLeaf, SpgMoveLeafs, SpgAddNode, SpgSplitTuple, SpgPickSplit, SpgVacuumLeaf, SpgVacuumRoot,
    SpgVacuumRedirect,
)
"""The typed records of the SP-GiST rmgr (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
