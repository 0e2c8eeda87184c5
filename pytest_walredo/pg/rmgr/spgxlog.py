"""The shared part of the SP-GiST records (RM_SPGIST_ID = 15, ``access/spgxlog.h``): opcodes,
names, the record base class and the main-data reader. The records are in :mod:`.spgist`
(inserts and splits) and :mod:`.spgist_vacuum` (VACUUM_LEAF, VACUUM_ROOT, VACUUM_REDIRECT);
the layouts are in :mod:`.spgist`'s docstring."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, offsets
from pytest_walredo.pg.rmgr.ids import RM_SPGIST_ID
from pytest_walredo.pg.spgist_page import inner_tuple_size, leaf_tuple_size
from pytest_walredo.pg.version import Flavour

__all__ = [
    "SPGIST_NAMES",
    "XLOG_SPGIST_ADD_LEAF",
    "XLOG_SPGIST_ADD_NODE",
    "XLOG_SPGIST_MOVE_LEAFS",
    "XLOG_SPGIST_PICKSPLIT",
    "XLOG_SPGIST_SPLIT_TUPLE",
    "XLOG_SPGIST_VACUUM_LEAF",
    "XLOG_SPGIST_VACUUM_REDIRECT",
    "XLOG_SPGIST_VACUUM_ROOT",
    "MainReader",
    "SpgRecord",
    "flag_text",
    "pack_offsets",
]

XLOG_SPGIST_ADD_LEAF = 0x10
XLOG_SPGIST_MOVE_LEAFS = 0x20
XLOG_SPGIST_ADD_NODE = 0x30
XLOG_SPGIST_SPLIT_TUPLE = 0x40
XLOG_SPGIST_PICKSPLIT = 0x50
XLOG_SPGIST_VACUUM_LEAF = 0x60
XLOG_SPGIST_VACUUM_ROOT = 0x70
XLOG_SPGIST_VACUUM_REDIRECT = 0x80

SPGIST_NAMES = {
    XLOG_SPGIST_ADD_LEAF: "ADD_LEAF",
    XLOG_SPGIST_MOVE_LEAFS: "MOVE_LEAFS",
    XLOG_SPGIST_ADD_NODE: "ADD_NODE",
    XLOG_SPGIST_SPLIT_TUPLE: "SPLIT_TUPLE",
    XLOG_SPGIST_PICKSPLIT: "PICKSPLIT",
    XLOG_SPGIST_VACUUM_LEAF: "VACUUM_LEAF",
    XLOG_SPGIST_VACUUM_ROOT: "VACUUM_ROOT",
    XLOG_SPGIST_VACUUM_REDIRECT: "VACUUM_REDIRECT",
}
"""pg_waldump's name of every SP-GiST opcode (0x00, CREATE_INDEX, is no longer written)."""


def pack_offsets(items: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(items)}H", *items)


def flag_text(on: bool, text: str) -> str:
    return text if on else ""


class SpgRecord(RmgrRecord):
    """Base of the SP-GiST typed records: rmgr 15 in every version and flavour."""

    RMGR: ClassVar[str] = "SPGist"
    OP: ClassVar[int] = -1

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_SPGIST_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.OP

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return SPGIST_NAMES[self.OP]


class MainReader:
    """Reads a record's main data front to back; every shortfall is an RmgrDecodeError."""

    def __init__(self, what: str, data: bytes, head: struct.Struct) -> None:
        self.what, self.data = what, data
        if len(data) < head.size:
            raise RmgrDecodeError(f"SPGist {what} main data is {len(data)} bytes, expected at least {head.size}")
        self.fields = head.unpack_from(data)
        self.pos = head.size

    def offsets(self, n: int) -> tuple[int, ...]:
        out = offsets(self.data, self.pos, n, f"SPGist {self.what} offsets")
        self.pos += 2 * n
        return out

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise RmgrDecodeError(f"SPGist {self.what} needs {n} bytes at offset {self.pos}, "
                                  f"the data has {len(self.data)}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def tuple(self, size_of: Callable[[bytes, int], int], header: int) -> bytes:
        if self.pos + header > len(self.data):
            raise RmgrDecodeError(f"SPGist {self.what}: no tuple header at offset {self.pos}")
        size = size_of(self.data, self.pos)
        if size < header:
            raise RmgrDecodeError(f"SPGist {self.what}: tuple at offset {self.pos} has size {size}")
        return self.raw(size)

    def leaf(self) -> bytes:
        return self.tuple(leaf_tuple_size, 12)

    def inner(self) -> bytes:
        return self.tuple(inner_tuple_size, 8)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise RmgrDecodeError(f"SPGist {self.what}: {len(self.data) - self.pos} byte(s) after the record's data")
