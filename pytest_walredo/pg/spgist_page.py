"""SP-GiST pages and tuples (``access/spgist_private.h``, ``spgutils.c``, ``spgdoinsert.c``;
the same in PostgreSQL 14-17).

An SP-GiST page is a standard page with an 8-byte special space, ``SpGistPageOpaqueData``::

    flags          u16   SPGIST_META, SPGIST_DELETED, SPGIST_LEAF, SPGIST_NULLS
    nRedirection   u16   REDIRECT tuples on the page
    nPlaceholder   u16   PLACEHOLDER tuples on the page
    page id        u16   SPGIST_PAGE_ID (0xFF82)

Every tuple starts with a u32 whose two low bits are its state (LIVE, REDIRECT, DEAD,
PLACEHOLDER). A leaf tuple keeps its size in the other 30 bits, then ``t_info`` (nextOffset in
its low 14 bits), then the heap TID. An inner tuple keeps allTheSame (bit 2), nNodes (bits
3-15) and prefixSize (bits 16-31) there, then its u16 size; its nodes, IndexTuples, start
after the 8-byte header and the prefix. A dead tuple (REDIRECT / DEAD / PLACEHOLDER) is 16
bytes: the state and size, t_info 0, a TID (the redirect target, else invalid) and an xid
(the redirecting transaction, else 0).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page, PageError

__all__ = [
    "SGDTSIZE",
    "SPGIST_DEAD",
    "SPGIST_DELETED",
    "SPGIST_LEAF",
    "SPGIST_LIVE",
    "SPGIST_META",
    "SPGIST_NULLS",
    "SPGIST_PAGE_ID",
    "SPGIST_PLACEHOLDER",
    "SPGIST_REDIRECT",
    "SpgError",
    "SpgOpaque",
    "add_or_replace",
    "dead_tuple",
    "inner_tuple_size",
    "leaf_tuple_size",
    "multi_delete",
    "set_next_offset",
    "spg_init_page",
    "tuple_state",
    "update_node_link",
]

SPGIST_META = 1 << 0
SPGIST_DELETED = 1 << 1
SPGIST_LEAF = 1 << 2
SPGIST_NULLS = 1 << 3
SPGIST_PAGE_ID = 0xFF82

SPGIST_LIVE = 0
SPGIST_REDIRECT = 1
SPGIST_DEAD = 2
SPGIST_PLACEHOLDER = 3

SGDTSIZE = 16  # MAXALIGN(sizeof(SpGistDeadTupleData))
_OPAQUE = struct.Struct("<HHHH")
_DEAD = struct.Struct("<IHHHHI")  # state|size<<2, t_info, TID (bi_hi, bi_lo, posid), xid
_INVALID_BLOCK = 0xFFFFFFFF


class SpgError(Exception):
    """What SP-GiST redo reports with ``elog(ERROR)``; the redo routine turns it into a FATAL."""


@dataclass(frozen=True)
class SpgOpaque:
    """``SpGistPageOpaqueData``."""

    flags: int = 0
    n_redirection: int = 0
    n_placeholder: int = 0
    page_id: int = SPGIST_PAGE_ID

    @staticmethod
    def _at(page: Page) -> int:
        start = page.special
        if start < SIZE_OF_PAGE_HEADER or start + _OPAQUE.size > BLCKSZ:
            raise PageError(f"SP-GiST page has pd_special {start}, no room for its special space")
        return start

    @classmethod
    def read(cls, page: Page) -> SpgOpaque:
        return cls(*_OPAQUE.unpack_from(page.data, cls._at(page)))

    def write(self, page: Page) -> None:
        # the counters are uint16 in C: like PostgreSQL without assertions, they wrap
        _OPAQUE.pack_into(page.data, self._at(page), self.flags, self.n_redirection & 0xFFFF,
                          self.n_placeholder & 0xFFFF, self.page_id)

    def counted(self, redirections: int = 0, placeholders: int = 0) -> SpgOpaque:
        return SpgOpaque(self.flags, self.n_redirection + redirections, self.n_placeholder + placeholders,
                         self.page_id)


def spg_init_page(page: Page, flags: int) -> None:
    """``SpGistInitPage``: PageInit with the 8-byte special space, ``flags``, no counters."""
    page.init(_OPAQUE.size)
    SpgOpaque(flags).write(page)


def tuple_state(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    return int(struct.unpack_from("<I", buf, pos)[0]) & 3


def leaf_tuple_size(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """A leaf (or dead) tuple's size: the high 30 bits of its first word."""
    return int(struct.unpack_from("<I", buf, pos)[0]) >> 2


def inner_tuple_size(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """An inner tuple's size: the u16 after its first word."""
    return int(struct.unpack_from("<H", buf, pos + 4)[0])


def dead_tuple(state: int, blkno: int = _INVALID_BLOCK, offnum: int = 0, xid: int = 0) -> bytes:
    """``spgFormDeadTuple``: a REDIRECT keeps its target and xid; other states an invalid
    TID and xid 0."""
    if state != SPGIST_REDIRECT:
        blkno, offnum, xid = _INVALID_BLOCK, 0, 0
    return _DEAD.pack(state | (SGDTSIZE << 2), 0, blkno >> 16, blkno & 0xFFFF, offnum, xid)


def _item_pos(page: Page, offnum: int, need: int) -> int:
    """Where item ``offnum`` starts; PageError when it is not there or shorter than ``need``."""
    if not 1 <= offnum <= page.max_offset():
        raise PageError(f"SP-GiST item {offnum} is not on the page (max {page.max_offset()})")
    lp = page.item_id(offnum)
    if lp.off + max(lp.len, need) > BLCKSZ or lp.len < need:
        raise PageError(f"SP-GiST item {offnum} has offset {lp.off}, length {lp.len}")
    return lp.off


def set_next_offset(page: Page, offnum: int, nxt: int) -> None:
    """``SGLT_SET_NEXTOFFSET`` on the leaf tuple at ``offnum`` (the two flag bits kept)."""
    pos = _item_pos(page, offnum, 6) + 4
    t_info = int(struct.unpack_from("<H", page.data, pos)[0])
    struct.pack_into("<H", page.data, pos, (t_info & 0xC000) | (nxt & 0x3FFF))


def set_tuple_state(page: Page, offnum: int, state: int) -> int:
    """Change the state bits of the tuple at ``offnum``; return the old state."""
    pos = _item_pos(page, offnum, 4)
    word = int(struct.unpack_from("<I", page.data, pos)[0])
    struct.pack_into("<I", page.data, pos, (word & ~3) | state)
    return word & 3


def clear_pointer(page: Page, offnum: int) -> None:
    """``ItemPointerSetInvalid`` on a dead tuple's pointer."""
    struct.pack_into("<HHH", page.data, _item_pos(page, offnum, 12) + 6, 0xFFFF, 0xFFFF, 0)


def update_node_link(page: Page, offnum: int, node: int, blkno: int, target: int) -> None:
    """``spgUpdateNodeLink``: node ``node`` of the inner tuple at ``offnum`` points at
    (``blkno``, ``target``)."""
    start = _item_pos(page, offnum, 8)
    word = int(struct.unpack_from("<I", page.data, start)[0])
    nnodes, prefix = (word >> 3) & 0x1FFF, word >> 16
    pos = start + 8 + prefix
    for i in range(nnodes):
        if pos + 8 > BLCKSZ:
            raise PageError(f"SP-GiST inner tuple at item {offnum} runs past the page")
        if i == node:
            struct.pack_into("<HHH", page.data, pos, blkno >> 16, blkno & 0xFFFF, target)
            return
        size = int(struct.unpack_from("<H", page.data, pos + 6)[0]) & 0x1FFF
        if size == 0:
            raise PageError(f"SP-GiST inner tuple at item {offnum} has a node of size 0")
        pos += size
    raise SpgError(f"failed to find requested node {node} in SPGiST inner tuple")


def add_item(page: Page, item: bytes, offnum: int) -> None:
    """``PageAddItem`` at ``offnum`` (later items shift up) that redo insists on."""
    if page.add_item(item, offnum) != offnum:
        raise SpgError(f"failed to add item of size {len(item)} to SPGiST index page")


def add_or_replace(page: Page, item: bytes, offnum: int) -> None:
    """spgxlog.c's ``addOrReplaceTuple``: an offset within the page must hold a PLACEHOLDER,
    which goes (nPlaceholder - 1); then the item is added there."""
    if offnum <= page.max_offset():
        if tuple_state(page.data, _item_pos(page, offnum, 4)) != SPGIST_PLACEHOLDER:
            raise SpgError("SPGiST tuple to be replaced is not a placeholder")
        op = SpgOpaque.read(page)
        op.counted(placeholders=-1).write(page)
        page.index_tuple_delete(offnum)
    add_item(page, item, offnum)


def multi_delete(page: Page, offnums: Sequence[int], first_state: int, rest_state: int,
                 blkno: int = _INVALID_BLOCK, target: int = 0, xid: int = 0) -> None:
    """``spgPageIndexMultiDelete``: the items go (``PageIndexMultiDelete``, in sorted order)
    and a dead tuple takes each one's place: ``first_state`` for the item listed first,
    ``rest_state`` for the others; REDIRECTs point at (``blkno``, ``target``). The page's
    counters count the REDIRECTs and PLACEHOLDERs added."""
    if not offnums:
        return
    ordered = sorted(offnums)
    page.index_multi_delete(ordered)
    redirects = placeholders = 0
    for off in ordered:
        state = first_state if off == offnums[0] else rest_state
        add_item(page, dead_tuple(state, blkno, target, xid), off)
        redirects += state == SPGIST_REDIRECT
        placeholders += state == SPGIST_PLACEHOLDER
    SpgOpaque.read(page).counted(redirects, placeholders).write(page)
