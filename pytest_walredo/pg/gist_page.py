"""GiST pages (``access/gist.h``, ``gist_private.h``, ``gistutil.c``; the same in 14-17).

A GiST page is a standard page with a 16-byte special space, ``GISTPageOpaqueData``, at
pd_special::

    nsn        u64 (as pd_lsn: xlogid, xrecoff)   the page's NSN, set when its split completes
    rightlink  u32                                the right sibling (InvalidBlockNumber: none)
    flags      u16                                F_LEAF, F_DELETED, F_TUPLES_DELETED,
                                                  F_FOLLOW_RIGHT, F_HAS_GARBAGE
    page id    u16                                GIST_PAGE_ID (0xFF81)

Index tuples are ``IndexTupleData`` (heap or child TID, t_info with the size in its low 13
bits). WAL logs them back to back without alignment (``gistfillitupvec``); redo adds each one
with ``PageAddItem`` of exactly ``IndexTupleSize`` bytes. A deleted page (``GistPageSetDeleted``)
keeps its 64-bit deleteXid right after the page header, with pd_lower just past it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page, PageError

__all__ = [
    "F_DELETED",
    "F_FOLLOW_RIGHT",
    "F_HAS_GARBAGE",
    "F_LEAF",
    "F_TUPLES_DELETED",
    "GIST_OPAQUE_SIZE",
    "GIST_PAGE_ID",
    "GIST_ROOT_BLKNO",
    "INVALID_BLOCK",
    "GistOpaque",
    "gist_deleted_xid",
    "gist_init_page",
    "gist_set_deleted",
    "index_tuple_size",
    "split_packed_tuples",
]

F_LEAF = 1 << 0
F_DELETED = 1 << 1
F_TUPLES_DELETED = 1 << 2
F_FOLLOW_RIGHT = 1 << 3
F_HAS_GARBAGE = 1 << 4

GIST_PAGE_ID = 0xFF81
GIST_OPAQUE_SIZE = 16
GIST_ROOT_BLKNO = 0
INVALID_BLOCK = 0xFFFFFFFF

_OPAQUE = struct.Struct("<IIIHH")  # nsn.xlogid, nsn.xrecoff, rightlink, flags, gist_page_id
_DELETED_LOWER = SIZE_OF_PAGE_HEADER + 8  # MAXALIGN(header) + sizeof(GISTDeletedPageContents)


@dataclass(frozen=True)
class GistOpaque:
    """``GISTPageOpaqueData``."""

    nsn: int = 0
    rightlink: int = INVALID_BLOCK
    flags: int = 0
    page_id: int = GIST_PAGE_ID

    @staticmethod
    def _at(page: Page) -> int:
        """``GistPageGetOpaque``: the special space at pd_special; a pd_special that leaves no
        room for it is a PageError (PostgreSQL would read past the page)."""
        start = page.special
        if start < SIZE_OF_PAGE_HEADER or start + GIST_OPAQUE_SIZE > BLCKSZ:
            raise PageError(f"GiST page has pd_special {start}, no room for its special space")
        return start

    @classmethod
    def read(cls, page: Page) -> GistOpaque:
        hi, lo, right, flags, pid = _OPAQUE.unpack_from(page.data, cls._at(page))
        return cls((hi << 32) | lo, right, flags, pid)

    @classmethod
    def of(cls, data: bytes) -> GistOpaque | None:
        """The special space of raw page bytes, or None when the page has no room for one."""
        try:
            return cls.read(Page(data))
        except PageError:
            return None

    def write(self, page: Page) -> None:
        _OPAQUE.pack_into(page.data, self._at(page), self.nsn >> 32, self.nsn & 0xFFFFFFFF,
                          self.rightlink, self.flags, self.page_id)

    @property
    def is_leaf(self) -> bool:
        return bool(self.flags & F_LEAF)

    @property
    def is_deleted(self) -> bool:
        return bool(self.flags & F_DELETED)


def gist_init_page(page: Page, flags: int) -> None:
    """``gistinitpage`` (``GISTInitBuffer``): PageInit with the special space, NSN 0, no right
    sibling, ``flags``."""
    page.init(GIST_OPAQUE_SIZE)
    GistOpaque(0, INVALID_BLOCK, flags).write(page)


def gist_set_deleted(page: Page, delete_xid: int) -> None:
    """``GistPageSetDeleted``: F_DELETED, the 64-bit deleteXid after the header, pd_lower past it.
    (PostgreSQL asserts the page is empty; redo writes regardless.)"""
    op = GistOpaque.read(page)
    GistOpaque(op.nsn, op.rightlink, op.flags | F_DELETED, op.page_id).write(page)
    page.lower = _DELETED_LOWER
    struct.pack_into("<Q", page.data, SIZE_OF_PAGE_HEADER, delete_xid)


def gist_deleted_xid(page: Page) -> int:
    """The deleteXid a deleted GiST page keeps (``GistPageGetDeleteXid``)."""
    return int(struct.unpack_from("<Q", page.data, SIZE_OF_PAGE_HEADER)[0])


def index_tuple_size(buf: bytes, pos: int) -> int:
    """``IndexTupleSize`` of the tuple at ``pos``: t_info's low 13 bits (0 when the header does
    not fit)."""
    if pos + 8 > len(buf):
        return 0
    return int(struct.unpack_from("<H", buf, pos + 6)[0]) & 0x1FFF


def split_packed_tuples(data: bytes, count: int | None = None) -> list[bytes]:
    """Index tuples logged back to back, each ``IndexTupleSize`` bytes, without alignment:
    ``count`` of them (then the data must end there), or as many as the data holds. A size
    below the 8-byte header, or one running past the end, is a ValueError."""
    out: list[bytes] = []
    pos = 0
    while (pos < len(data)) if count is None else (len(out) < count):
        size = index_tuple_size(data, pos)
        if size < 8 or pos + size > len(data):
            raise ValueError(f"index tuple at byte {pos} has size {size}; the data has {len(data) - pos} left")
        out.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} byte(s) after the {len(out)} index tuples")
    return out
