"""Hash records that move or remove tuples and pages (VACUUM's bucket cleanup and squeeze,
and the dead-tuple cleanup of inserts): MOVE_PAGE_CONTENTS, SQUEEZE_PAGE, DELETE,
SPLIT_CLEANUP, UPDATE_META_PAGE and VACUUM_ONE_PAGE. Main data layouts: :mod:`.hash_xlog`.

Block references (``hash_xlog.h``):

- MOVE_PAGE_CONTENTS: block 0 the primary bucket page, only when it is not the write page
  (locked, unchanged); block 1 the write page (data: the ntups offsets the tuples go to,
  u16 each, then the tuples, each MAXALIGN(IndexTupleSize) bytes); block 2 the page the
  tuples leave (data: their offsets).
- SQUEEZE_PAGE: block 0 as above; block 1 the write page (data as above when ntups > 0);
  block 2 the freed overflow page; block 3 the page before it, when that is not the write
  page; block 4 the page after it, if any; block 5 the bitmap page (data: the bit cleared,
  u32); block 6 the metapage, when hashm_firstfree moves (data: the new value, u32).
  PostgreSQL 17 leaves block 1 out when nothing is written to it (ntups 0 and the write
  page is neither the primary bucket page nor the freed page's predecessor).
- DELETE: block 0 the primary bucket page, when it is not the page cleaned; block 1 the
  page cleaned (data: the deleted offsets).
- SPLIT_CLEANUP: block 0 the primary bucket page. UPDATE_META_PAGE: block 0 the metapage.
- VACUUM_ONE_PAGE: block 0 the page, block 1 the metapage; the deleted offsets follow the
  main data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, is_catalog_rel_desc, offsets, unpack
from pytest_walredo.pg.rmgr.hash_xlog import (
    XLOG_HASH_DELETE,
    XLOG_HASH_MOVE_PAGE_CONTENTS,
    XLOG_HASH_SPLIT_CLEANUP,
    XLOG_HASH_SQUEEZE_PAGE,
    XLOG_HASH_UPDATE_META_PAGE,
    XLOG_HASH_VACUUM_ONE_PAGE,
    HashRecord,
    exact,
    flag_char,
    join_tuples,
    no_data,
    opt_u32,
    pack_offsets,
    read_bool,
    split_tuples,
    u32_data,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "DECODERS",
    "RECORDS",
    "HashDelete",
    "HashMovePageContents",
    "HashSplitCleanup",
    "HashSqueezePage",
    "HashUpdateMetaPage",
    "HashVacuumOnePage",
]


class _Moved(HashRecord):
    """The write page's payload MOVE_PAGE_CONTENTS and SQUEEZE_PAGE share: where each moved
    tuple goes (``towrite``) and the tuples, both None when block 1 carries no data."""

    ntups: int
    towrite: tuple[int, ...] | None
    tuples: tuple[bytes, ...] | None

    def _check_moved(self) -> None:
        no_data(self, "towrite", "tuples", "deleted")
        if (self.towrite is None) != (self.tuples is None):
            raise ValueError(f"hash {self.identify(15, Flavour.VANILLA)}: offsets and tuples go together")
        if self.towrite is not None and self.tuples is not None and not (
            len(self.towrite) == len(self.tuples) == self.ntups > 0
        ):
            raise ValueError(f"hash {self.identify(15, Flavour.VANILLA)}: {len(self.towrite)} offsets and "
                             f"{len(self.tuples)} tuples for ntups {self.ntups}")


def _decode_moved(data: bytes | None, ntups: int, what: str) -> tuple[tuple[int, ...] | None,
                                                                      tuple[bytes, ...] | None]:
    if not data:
        return None, None
    if ntups == 0:
        raise RmgrDecodeError(f"hash {what} logs write page data for ntups 0")
    towrite = offsets(data, 0, ntups, f"hash {what} offsets")
    return towrite, split_tuples(data[2 * ntups :], ntups, what)


@dataclass(frozen=True)
class HashMovePageContents(_Moved):
    """XLOG_HASH_MOVE_PAGE_CONTENTS (0x70): ``tuples`` go to the write page at ``towrite``;
    ``deleted`` (block 2's data) leave the read page."""

    OP = XLOG_HASH_MOVE_PAGE_CONTENTS
    ntups: int
    is_prim_bucket_same_wrt: bool
    towrite: tuple[int, ...] | None = None
    tuples: tuple[bytes, ...] | None = None
    deleted: tuple[int, ...] | None = None

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H?", self.ntups, self.is_prim_bucket_same_wrt)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check_moved()
        out = {1: join_tuples(self.towrite, self.tuples), 2: pack_offsets(self.deleted)}
        return {k: v for k, v in out.items() if v}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"ntups {self.ntups}, is_primary {flag_char(self.is_prim_bucket_same_wrt)}"


@dataclass(frozen=True)
class HashSqueezePage(_Moved):
    """XLOG_HASH_SQUEEZE_PAGE (0x80): the last tuples of an overflow page move to the write
    page, the overflow page is freed and unlinked from its chain (``prevblkno`` /
    ``nextblkno`` were its neighbours), its bitmap bit (block 5's data) is cleared and the
    metapage's firstfree may move (block 6's data)."""

    OP = XLOG_HASH_SQUEEZE_PAGE
    prevblkno: int
    nextblkno: int
    ntups: int
    is_prim_bucket_same_wrt: bool
    is_prev_bucket_same_wrt: bool
    towrite: tuple[int, ...] | None = None
    tuples: tuple[bytes, ...] | None = None
    bitmap_bit: int | None = None
    firstfree: int | None = None

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<IIH??", self.prevblkno, self.nextblkno, self.ntups, self.is_prim_bucket_same_wrt,
                           self.is_prev_bucket_same_wrt)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check_moved()
        out = {1: join_tuples(self.towrite, self.tuples), 5: opt_u32(self.bitmap_bit), 6: opt_u32(self.firstfree)}
        return {k: v for k, v in out.items() if v}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"prevblkno {self.prevblkno}, nextblkno {self.nextblkno}, ntups {self.ntups}, "
                f"is_primary {flag_char(self.is_prim_bucket_same_wrt)}")


@dataclass(frozen=True)
class HashDelete(HashRecord):
    """XLOG_HASH_DELETE (0x90): ``deleted`` (block 1's data, None when not logged) leave the
    page; ``clear_dead_marking`` clears its LH_PAGE_HAS_DEAD_TUPLES hint."""

    OP = XLOG_HASH_DELETE
    clear_dead_marking: bool
    is_primary_bucket_page: bool
    deleted: tuple[int, ...] | None = None

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<??", self.clear_dead_marking, self.is_primary_bucket_page)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        no_data(self, "deleted")
        return {1: pack_offsets(self.deleted)} if self.deleted else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"clear_dead_marking {flag_char(self.clear_dead_marking)}, "
                f"is_primary {flag_char(self.is_primary_bucket_page)}")


@dataclass(frozen=True)
class HashSplitCleanup(HashRecord):
    """XLOG_HASH_SPLIT_CLEANUP (0xA0): no data; clears LH_BUCKET_NEEDS_SPLIT_CLEANUP."""

    OP = XLOG_HASH_SPLIT_CLEANUP


@dataclass(frozen=True)
class HashUpdateMetaPage(HashRecord):
    """XLOG_HASH_UPDATE_META_PAGE (0xB0): the metapage's tuple count becomes ``ntuples``."""

    OP = XLOG_HASH_UPDATE_META_PAGE
    ntuples: float

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<d", self.ntuples)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"ntuples {self.ntuples:g}"


@dataclass(frozen=True)
class HashVacuumOnePage(HashRecord):
    """XLOG_HASH_VACUUM_ONE_PAGE (0xC0): an insert removed the page's LP_DEAD tuples
    (``deleted``, in the main data) and clears LH_PAGE_HAS_DEAD_TUPLES; the metapage counts
    ``ntuples`` fewer. ``horizon`` is latestRemovedXid (14/15) or snapshotConflictHorizon
    (16+), ``is_catalog_rel`` exists from 16 on."""

    OP = XLOG_HASH_VACUUM_ONE_PAGE
    horizon: int
    ntuples: int
    deleted: tuple[int, ...] = ()
    is_catalog_rel: bool = False
    # PG16+: the byte after isCatalogRel (C padding; kept so real records rebuild exactly)
    pad: bytes = field(default=b"\0", compare=False, repr=False)

    def _check(self, pg_version: int) -> None:
        if len(self.deleted) != self.ntuples:
            raise ValueError(f"hash VACUUM_ONE_PAGE: {len(self.deleted)} offsets for ntuples {self.ntuples}")
        if self.is_catalog_rel and pg_version < 16:
            raise ValueError("hash VACUUM_ONE_PAGE: isCatalogRel exists from PostgreSQL 16 on")

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check(pg_version)
        if pg_version >= 16:
            head = struct.pack("<IH?", self.horizon, self.ntuples, self.is_catalog_rel) + self.pad
        else:
            head = struct.pack("<Ii", self.horizon, self.ntuples)
        return head + pack_offsets(self.deleted)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        if pg_version >= 16:
            return (f"ntuples {self.ntuples}, snapshotConflictHorizon {self.horizon}"
                    + is_catalog_rel_desc(self.is_catalog_rel, pg_version, sep=" "))
        return f"ntuples {self.ntuples}, latestRemovedXid {self.horizon}"


# -- decoding -------------------------------------------------------------------------------


def _move(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 3, op)
    ntups, same = struct.unpack("<HB", main)
    towrite, tuples = _decode_moved(blocks.get(1), ntups, "MOVE_PAGE_CONTENTS")
    return HashMovePageContents(ntups, read_bool(same, "MOVE_PAGE_CONTENTS is_prim_bucket_same_wrt"), towrite,
                                tuples, _offsets(blocks.get(2), "MOVE_PAGE_CONTENTS block 2"))


def _squeeze(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 12, op)
    prev, nxt, ntups, prim, prevsame = struct.unpack("<IIHBB", main)
    towrite, tuples = _decode_moved(blocks.get(1), ntups, "SQUEEZE_PAGE")
    return HashSqueezePage(prev, nxt, ntups, read_bool(prim, "SQUEEZE_PAGE is_prim_bucket_same_wrt"),
                           read_bool(prevsame, "SQUEEZE_PAGE is_prev_bucket_same_wrt"), towrite, tuples,
                           u32_data(blocks, 5, "SQUEEZE_PAGE"), u32_data(blocks, 6, "SQUEEZE_PAGE"))


def _offsets(data: bytes | None, what: str) -> tuple[int, ...] | None:
    if not data:
        return None
    if len(data) % 2:
        raise RmgrDecodeError(f"hash {what} data is {len(data)} bytes, not a whole number of offsets")
    return offsets(data, 0, len(data) // 2, f"hash {what}")


def _delete(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 2, op)
    clear, primary = struct.unpack("<BB", main)
    return HashDelete(read_bool(clear, "DELETE clear_dead_marking"), read_bool(primary, "DELETE is_primary_bucket_page"),
                      _offsets(blocks.get(1), "DELETE block 1"))


def _split_cleanup(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 0, op)
    return HashSplitCleanup()


def _update_meta(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 8, op)
    return HashUpdateMetaPage(struct.unpack("<d", main)[0])


def _vacuum_one_page(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    if v >= 16:
        horizon, ntuples, catalog = unpack("<IHB", main, 0, "hash VACUUM_ONE_PAGE")
        pad = main[7:8]
        is_catalog = read_bool(catalog, "VACUUM_ONE_PAGE isCatalogRel")
    else:
        horizon, ntuples = unpack("<Ii", main, 0, "hash VACUUM_ONE_PAGE")
        pad, is_catalog = b"\0", False
    if ntuples < 0 or len(main) != 8 + 2 * ntuples:
        raise RmgrDecodeError(f"hash VACUUM_ONE_PAGE main data is {len(main)} bytes for ntuples {ntuples}")
    return HashVacuumOnePage(horizon, ntuples, offsets(main, 8, ntuples, "hash VACUUM_ONE_PAGE offsets"),
                             is_catalog, pad)


_Decoder = Callable[[int, bytes, dict[int, bytes], int], RmgrRecord]
DECODERS: dict[int, _Decoder] = {
    XLOG_HASH_MOVE_PAGE_CONTENTS: _move,
    XLOG_HASH_SQUEEZE_PAGE: _squeeze,
    XLOG_HASH_DELETE: _delete,
    XLOG_HASH_SPLIT_CLEANUP: _split_cleanup,
    XLOG_HASH_UPDATE_META_PAGE: _update_meta,
    XLOG_HASH_VACUUM_ONE_PAGE: _vacuum_one_page,
}
"""The decoders of this module's opcodes (joined by :func:`.hash.decode_hash`)."""

RECORDS: tuple[type[RmgrRecord], ...] = (
    HashMovePageContents, HashSqueezePage, HashDelete, HashSplitCleanup, HashUpdateMetaPage, HashVacuumOnePage,
)
