"""GIN's compressed posting lists (``ginpostinglist.c``) and the leaf recompression that GIN
INSERT and VACUUM_DATA_LEAF_PAGE records replay (``ginRedoRecompress`` in ``ginxlog.c``); the
same in PostgreSQL 14-17.

A segment (``GinPostingList``) is::

    first item pointer (bi_hi u16, bi_lo u16, posid u16) | nbytes u16 | nbytes of varbyte deltas

padded to an even length (``SizeOfGinPostingList`` = 8 + SHORTALIGN(nbytes); the encoder
zeroes the pad byte). Each item pointer is the integer ``block << 11 | offset``; the items
after the first are stored as the differences from the previous one, 7 bits a byte, least
significant first, the high bit set on every byte but the last (at most 7 bytes, the 7th
taking 8 bits). Items are strictly increasing.

A leaf recompression is a list of segment actions (``ginxlogSegmentAction``), each ``segno``
u8, ``action`` u8 and its data: DELETE (1) removes segment ``segno``, INSERT (2) puts the
logged segment before it, REPLACE (3) replaces it with the logged segment, ADDITEMS (4)
merges the logged item pointers (u16 count, then 6 bytes each) into it and re-encodes it.
Segments are numbered as in the page before the record; the actions come in segment order.

Written by hand: the format is PostgreSQL's own and no library implements it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.gin_page import (
    GIN_COMPRESSED,
    GIN_DATA_OFFSET,
    GinOpaque,
    data_size,
    set_data_size,
)
from pytest_walredo.pg.page import Page, PageError

__all__ = [
    "GIN_SEGMENT_ADDITEMS",
    "GIN_SEGMENT_DELETE",
    "GIN_SEGMENT_INSERT",
    "GIN_SEGMENT_REPLACE",
    "ItemPointer",
    "SegmentAction",
    "compress_posting_list",
    "decode_segment",
    "merge_items",
    "pack_items",
    "recompress",
    "segment_size",
    "split_segments",
    "unpack_items",
]

ItemPointer = tuple[int, int]
"""(block, offset) of a heap tuple."""

GIN_SEGMENT_DELETE = 1
GIN_SEGMENT_INSERT = 2
GIN_SEGMENT_REPLACE = 3
GIN_SEGMENT_ADDITEMS = 4

_OFFSET_BITS = 11  # MaxHeapTuplesPerPageBits
_MAX_BYTES_PER_INTEGER = 7
_HEADER = struct.Struct("<HHHH")  # first item pointer, nbytes
_ITEM = struct.Struct("<HHH")


def _to_int(ip: ItemPointer) -> int:
    return (ip[0] << _OFFSET_BITS) | ip[1]


def _from_int(v: int) -> ItemPointer:
    return (v >> _OFFSET_BITS) & 0xFFFFFFFF, v & ((1 << _OFFSET_BITS) - 1)


def pack_items(items: Sequence[ItemPointer]) -> bytes:
    """Item pointers as ``ItemPointerData`` (6 bytes each)."""
    return b"".join(_ITEM.pack(b >> 16, b & 0xFFFF, o) for b, o in items)


def unpack_items(buf: bytes | bytearray | memoryview, count: int, offset: int = 0) -> list[ItemPointer]:
    if offset + 6 * count > len(buf):
        raise PageError(f"{count} item pointers need {6 * count} bytes, {len(buf) - offset} are left")
    out = []
    for i in range(count):
        hi, lo, off = _ITEM.unpack_from(buf, offset + 6 * i)
        out.append(((hi << 16) | lo, off))
    return out


def _varbyte(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    out.append(v)
    return bytes(out)


def compress_posting_list(items: Sequence[ItemPointer], maxsize: int = BLCKSZ) -> tuple[bytes, int]:
    """``ginCompressPostingList``: a segment holding as many of ``items`` (sorted, unique) as
    fit in ``maxsize`` bytes, and how many that is."""
    if not items:
        raise ValueError("a posting list segment holds at least one item")
    maxbytes = maxsize - _HEADER.size
    body = bytearray()
    prev = _to_int(items[0])
    n = 1
    for ip in items[1:]:
        val = _to_int(ip)
        if val <= prev:
            raise ValueError(f"posting list items must increase: {_from_int(prev)} then {ip}")
        enc = _varbyte(val - prev)
        if len(body) + len(enc) > maxbytes:
            break
        body += enc
        prev = val
        n += 1
    nbytes = len(body)
    if nbytes % 2:
        body.append(0)
    first = items[0]
    return _HEADER.pack(first[0] >> 16, first[0] & 0xFFFF, first[1], nbytes) + bytes(body), n


def segment_size(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """``SizeOfGinPostingList`` of the segment at ``pos``."""
    if pos + _HEADER.size > len(buf):
        raise PageError(f"a posting list segment at byte {pos} runs past the end of its data")
    nbytes = _HEADER.unpack_from(buf, pos)[3]
    size = _HEADER.size + nbytes + (nbytes & 1)
    if pos + size > len(buf):
        raise PageError(f"the posting list segment at byte {pos} claims {nbytes} bytes; it runs past "
                        f"the end of its data")
    return size


def decode_segment(buf: bytes | bytearray | memoryview, pos: int = 0) -> list[ItemPointer]:
    """``ginPostingListDecode``: the item pointers of the segment at ``pos``."""
    size = segment_size(buf, pos)
    hi, lo, off, nbytes = _HEADER.unpack_from(buf, pos)
    val = _to_int(((hi << 16) | lo, off))
    out = [_from_int(val)]
    p = pos + _HEADER.size
    end = p + nbytes
    while p < end:
        delta = 0
        for k in range(_MAX_BYTES_PER_INTEGER):
            if p >= pos + size:
                raise PageError(f"the posting list segment at byte {pos} ends inside an item")
            c = buf[p]
            p += 1
            if k == _MAX_BYTES_PER_INTEGER - 1:  # the last byte has no continuation bit
                delta |= c << (7 * k)
                break
            delta |= (c & 0x7F) << (7 * k)
            if not c & 0x80:
                break
        val += delta
        out.append(_from_int(val))
    return out


def split_segments(buf: bytes | bytearray | memoryview) -> list[bytes]:
    """The segments laid one after another in ``buf`` (a leaf's data area)."""
    out = []
    pos = 0
    while pos < len(buf):
        size = segment_size(buf, pos)
        out.append(bytes(buf[pos : pos + size]))
        pos += size
    return out


def merge_items(a: Sequence[ItemPointer], b: Sequence[ItemPointer]) -> list[ItemPointer]:
    """``ginMergeItemPointers``: two sorted lists merged, an item in both kept once."""
    return sorted(set(a) | set(b))


@dataclass(frozen=True)
class SegmentAction:
    """One ``ginxlogSegmentAction``: ``segment`` is the logged segment (INSERT, REPLACE),
    ``items`` the logged item pointers (ADDITEMS)."""

    segno: int
    action: int
    segment: bytes = b""
    items: tuple[ItemPointer, ...] = ()

    def encode(self) -> bytes:
        head = struct.pack("<BB", self.segno, self.action)
        if self.action in (GIN_SEGMENT_INSERT, GIN_SEGMENT_REPLACE):
            return head + self.segment
        if self.action == GIN_SEGMENT_ADDITEMS:
            return head + struct.pack("<H", len(self.items)) + pack_items(self.items)
        return head


def _convert_uncompressed(page: Page) -> None:
    """A leaf in the pre-9.4 format (ItemPointers, ``maxoff`` of them) becomes one compressed
    segment, as ``ginRedoRecompress`` does first."""
    opaque = GinOpaque.unpack(page.data)
    n = opaque.maxoff
    items = unpack_items(page.data, n, GIN_DATA_OFFSET)
    size = 0
    if n:
        seg, _ = compress_posting_list(items)
        page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + len(seg)] = seg
        size = len(seg)
    set_data_size(page, size)
    opaque.replace(flags=opaque.flags | GIN_COMPRESSED, maxoff=0).write(page)


def recompress(page: Page, actions: Sequence[SegmentAction]) -> None:
    """``ginRedoRecompress``: apply the segment actions to the leaf. The new data area is
    written from the start of the data; bytes past the new pd_lower keep what was there."""
    if not GinOpaque.unpack(page.data).flags & GIN_COMPRESSED:
        _convert_uncompressed(page)
    old = split_segments(page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + data_size(page)])
    out: list[bytes] = []
    segno = 0
    for act in actions:
        if act.segno < segno:
            raise PageError(f"GIN leaf action for segment {act.segno} after segment {segno}")
        if act.segno > len(old):
            raise PageError(f"GIN leaf action for segment {act.segno}; the page has {len(old)}")
        out += old[segno : act.segno]
        segno = act.segno
        if act.action == GIN_SEGMENT_INSERT:
            out.append(act.segment)
            continue
        if segno == len(old) or act.action not in (GIN_SEGMENT_DELETE, GIN_SEGMENT_REPLACE,
                                                   GIN_SEGMENT_ADDITEMS):
            if act.action in (GIN_SEGMENT_DELETE, GIN_SEGMENT_REPLACE, GIN_SEGMENT_ADDITEMS):
                raise PageError(f"GIN leaf action {act.action} for segment {segno}, past the last one")
            raise PageError(f"unexpected GIN leaf action: {act.action}")
        if act.action == GIN_SEGMENT_REPLACE:
            out.append(act.segment)
        elif act.action == GIN_SEGMENT_ADDITEMS:
            merged = merge_items(act.items, decode_segment(old[segno]))
            out.append(compress_posting_list(merged)[0])
        segno += 1
    out += old[segno:]
    new = b"".join(out)
    set_data_size(page, len(new))
    page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + len(new)] = new
