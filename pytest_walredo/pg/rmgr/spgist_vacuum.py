"""SP-GiST VACUUM_LEAF, VACUUM_ROOT and VACUUM_REDIRECT records (layouts in :mod:`.spgist`)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, is_catalog_rel_desc
from pytest_walredo.pg.rmgr.spgxlog import (
    XLOG_SPGIST_VACUUM_LEAF,
    XLOG_SPGIST_VACUUM_REDIRECT,
    XLOG_SPGIST_VACUUM_ROOT,
    MainReader,
    SpgRecord,
    pack_offsets,
)
from pytest_walredo.pg.version import Flavour

__all__ = ["VACUUM_DECODERS", "SpgVacuumLeaf", "SpgVacuumRedirect", "SpgVacuumRoot"]

_VACUUM_LEAF = struct.Struct("<HHHHI?3s")
_VACUUM_ROOT = struct.Struct("<H2sI?3s")
assert (_VACUUM_LEAF.size, _VACUUM_ROOT.size) == (16, 12)


@dataclass(frozen=True)
class SpgVacuumLeaf(SpgRecord):
    """VACUUM_LEAF: items become DEAD or PLACEHOLDER, live ones move (line pointers swapped,
    the source then a PLACEHOLDER), chains are relinked."""

    OP: ClassVar[int] = XLOG_SPGIST_VACUUM_LEAF

    redirect_xid: int
    is_build: bool
    dead: tuple[int, ...]
    placeholder: tuple[int, ...]
    move_src: tuple[int, ...]
    move_dest: tuple[int, ...]
    chain_src: tuple[int, ...]
    chain_dest: tuple[int, ...]
    pad: bytes = field(default=bytes(3), compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        head = _VACUUM_LEAF.pack(len(self.dead), len(self.placeholder), len(self.move_src), len(self.chain_src),
                                 self.redirect_xid, self.is_build, self.pad)
        return head + b"".join(pack_offsets(x) for x in (self.dead, self.placeholder, self.move_src, self.move_dest,
                                                   self.chain_src, self.chain_dest))

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"ndead: {len(self.dead)}, nplaceholder: {len(self.placeholder)}, nmove: {len(self.move_src)}, "
                f"nchain: {len(self.chain_src)}")


@dataclass(frozen=True)
class SpgVacuumRoot(SpgRecord):
    """VACUUM_ROOT: the items go from a root page that is a leaf (``PageIndexMultiDelete``)."""

    OP: ClassVar[int] = XLOG_SPGIST_VACUUM_ROOT

    redirect_xid: int
    is_build: bool
    todelete: tuple[int, ...]
    pad: bytes = field(default=bytes(5), compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _VACUUM_ROOT.pack(len(self.todelete), self.pad[:2], self.redirect_xid, self.is_build,
                                 self.pad[2:5]) + pack_offsets(self.todelete)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"ndelete: {len(self.todelete)}"


@dataclass(frozen=True)
class SpgVacuumRedirect(SpgRecord):
    """VACUUM_REDIRECT: the REDIRECTs at ``offsets`` become PLACEHOLDERs, and from
    ``first_placeholder`` (when not 0) every item to the end of the page goes."""

    OP: ClassVar[int] = XLOG_SPGIST_VACUUM_REDIRECT

    first_placeholder: int
    conflict_xid: int
    offsets: tuple[int, ...]
    is_catalog_rel: bool = False
    pad: bytes = field(default=b"\0", compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        head = struct.pack("<HHI", len(self.offsets), self.first_placeholder, self.conflict_xid)
        if pg_version >= 16:
            head += bytes([self.is_catalog_rel]) + self.pad
        return head + pack_offsets(self.offsets)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        n, first = len(self.offsets), self.first_placeholder
        if pg_version <= 15:
            return f"ntoplaceholder: {n}, firstplaceholder: {first}, newestredirectxid: {self.conflict_xid}"
        s = f"ntoplaceholder: {n}, firstplaceholder: {first}, snapshotConflictHorizon: {self.conflict_xid}"
        return s + is_catalog_rel_desc(self.is_catalog_rel, pg_version)


def _decode_vacuum_leaf(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("VACUUM_LEAF", main, _VACUUM_LEAF)
    ndead, nplace, nmove, nchain, xid, build, pad = r.fields
    dead, place, msrc, mdest, csrc, cdest = (r.offsets(n) for n in (ndead, nplace, nmove, nmove, nchain, nchain))
    r.end()
    return SpgVacuumLeaf(xid, build, dead, place, msrc, mdest, csrc, cdest, pad)


def _decode_vacuum_root(main: bytes, v: int) -> RmgrRecord:
    r = MainReader("VACUUM_ROOT", main, _VACUUM_ROOT)
    n, p1, xid, build, p2 = r.fields
    offs = r.offsets(n)
    r.end()
    return SpgVacuumRoot(xid, build, offs, p1 + p2)


def _decode_vacuum_redirect(main: bytes, v: int) -> RmgrRecord:
    head = struct.Struct("<HHI?s" if v >= 16 else "<HHI")
    r = MainReader("VACUUM_REDIRECT", main, head)
    n, first, xid = r.fields[:3]
    catalog, pad = (r.fields[3], r.fields[4]) if v >= 16 else (False, b"\0")
    if v >= 16 and main[8] > 1:
        raise RmgrDecodeError(f"SPGist VACUUM_REDIRECT isCatalogRel is {main[8]}, expected 0 or 1")
    offs = r.offsets(n)
    r.end()
    return SpgVacuumRedirect(first, xid, offs, catalog, pad)


VACUUM_DECODERS: dict[int, Callable[[bytes, int], RmgrRecord]] = {
    XLOG_SPGIST_VACUUM_LEAF: _decode_vacuum_leaf,
    XLOG_SPGIST_VACUUM_ROOT: _decode_vacuum_root,
    XLOG_SPGIST_VACUUM_REDIRECT: _decode_vacuum_redirect,
}
