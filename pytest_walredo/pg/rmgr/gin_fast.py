"""GIN records of fast update's pending list (``ginfast.c``): UPDATE_META_PAGE (the metapage,
and the tail list page that takes new tuples or a new right link), INSERT_LISTPAGE (a list
page written whole) and DELETE_LISTPAGE (the metapage, and the list pages dropped from the
head of the list). Routed from :func:`.gin.decode_gin`; layouts in :mod:`.ginxlog`.

Block references: UPDATE_META_PAGE block 0 the metapage (WILL_INIT), block 1 the tail page
(data: ``ntuples`` index tuples, each ``IndexTupleSize`` bytes, when ``ntuples`` > 0; none
when only its right link changes to ``newRightlink``); INSERT_LISTPAGE block 0 the list page
(WILL_INIT, data: its tuples); DELETE_LISTPAGE block 0 the metapage and blocks 1..ndeleted
the deleted pages (all WILL_INIT, no data).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_walredo.pg.gin_page import GIN_META_SIZE, GinMeta
from pytest_walredo.pg.rmgr._base import RmgrRecord
from pytest_walredo.pg.rmgr.ginxlog import (
    XLOG_GIN_DELETE_LISTPAGE,
    XLOG_GIN_INSERT_LISTPAGE,
    XLOG_GIN_UPDATE_META_PAGE,
    GinRecord,
    exact,
)
from pytest_walredo.pg.version import Flavour

__all__ = ["DECODERS", "RECORDS", "GinDeleteListPages", "GinInsertListPage", "GinUpdateMetaPage"]

_META_AT = 16  # ginxlogUpdateMeta: node (12 bytes), 4 bytes of padding, then the metadata
_UPDATE_META_SIZE = 88
_DELETE_LIST_SIZE = 64


@dataclass(frozen=True)
class GinUpdateMetaPage(GinRecord):
    """XLOG_GIN_UPDATE_META_PAGE (0x60): the metapage rewritten with ``meta``; with
    ``ntuples`` > 0 the tail page takes ``tuples`` (block 1's data, None when an image
    replaced it), else, when ``prev_tail`` is a block, the old tail's right link becomes
    ``new_rightlink``."""

    OP = XLOG_GIN_UPDATE_META_PAGE
    node: tuple[int, int, int]
    meta: GinMeta
    prev_tail: int
    new_rightlink: int
    ntuples: int
    tuples: bytes | None = None
    pad: bytes = field(default=b"\0" * 8, compare=False, repr=False)  # after node, after ntuples

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return (struct.pack("<3I", *self.node) + self.pad[:4] + self.meta.pack()
                + struct.pack("<IIi", self.prev_tail, self.new_rightlink, self.ntuples) + self.pad[4:])

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {1: self.tuples} if self.tuples else {}


@dataclass(frozen=True)
class GinInsertListPage(GinRecord):
    """XLOG_GIN_INSERT_LISTPAGE (0x70): a pending-list page rebuilt with ``ntuples`` tuples
    (block 0's data) and ``rightlink`` (InvalidBlockNumber: the tail of a new sublist)."""

    OP = XLOG_GIN_INSERT_LISTPAGE
    rightlink: int
    ntuples: int
    tuples: bytes = b""

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<Ii", self.rightlink, self.ntuples)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.tuples} if self.tuples else {}


@dataclass(frozen=True)
class GinDeleteListPages(GinRecord):
    """XLOG_GIN_DELETE_LISTPAGE (0x80): the metapage rewritten with ``meta``; ``ndeleted``
    list pages (blocks 1..ndeleted) become empty deleted pages."""

    OP = XLOG_GIN_DELETE_LISTPAGE
    meta: GinMeta
    ndeleted: int
    pad: bytes = field(default=b"\0" * 4, compare=False, repr=False)

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return self.meta.pack() + struct.pack("<i", self.ndeleted) + self.pad

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"ndeleted: {self.ndeleted}"


def _decode_update_meta(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, _UPDATE_META_SIZE, op)
    node = struct.unpack_from("<3I", main)
    meta = GinMeta.unpack(main, _META_AT)
    prev, right, n = struct.unpack_from("<IIi", main, _META_AT + GIN_META_SIZE)
    return GinUpdateMetaPage(node, meta, prev, right, n, blocks.get(1), main[12:16] + main[84:88])


def _decode_insert_listpage(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, 8, op)
    right, n = struct.unpack("<Ii", main)
    return GinInsertListPage(right, n, blocks.get(0, b""))


def _decode_delete_list(op: int, main: bytes, blocks: dict[int, bytes]) -> RmgrRecord:
    exact(main, _DELETE_LIST_SIZE, op)
    (n,) = struct.unpack_from("<i", main, GIN_META_SIZE)
    return GinDeleteListPages(GinMeta.unpack(main), n, main[60:64])


DECODERS: dict[int, Callable[[int, bytes, dict[int, bytes]], RmgrRecord]] = {
    XLOG_GIN_UPDATE_META_PAGE: _decode_update_meta,
    XLOG_GIN_INSERT_LISTPAGE: _decode_insert_listpage,
    XLOG_GIN_DELETE_LISTPAGE: _decode_delete_list,
}

RECORDS: tuple[type[RmgrRecord], ...] = (GinUpdateMetaPage, GinInsertListPage, GinDeleteListPages)
