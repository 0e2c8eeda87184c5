"""B-tree tuple formats beyond plain index tuples (``nbtree.h``) and the posting-list
operations of ``nbtdedup.c`` that btree redo repeats: deduplication, posting-list splits
(``_bt_swap_posting``) and posting-list updates by VACUUM (``_bt_update_posting``).

Tuples are raw bytes here (an ``IndexTupleData`` header, then the key). Little-endian.

A tuple whose ``t_info`` has ``INDEX_ALT_TID_MASK`` (the AM-reserved bit 0x2000) uses its
``t_tid`` for metadata:

* **posting list tuple**: the offset number holds ``BT_IS_POSTING | nhtids`` and the block
  number the byte offset of the heap TID array (MAXALIGNed, the key ends there); the array of
  ``nhtids`` 6-byte ItemPointers (block hi u16, block lo u16, offset u16) is sorted ascending
  and the tuple is padded with zeros to a MAXALIGNed size;
* **pivot tuple** (high keys, downlinks): no ``BT_IS_POSTING``; the offset number holds the
  number of key attributes (low 12 bits) plus ``BT_PIVOT_HEAP_TID_ATTR``; the block number is
  the downlink (internal pages) or, on a half-dead leaf's high key, the top parent.

A tuple without the bit is a plain leaf tuple whose ``t_tid`` is its one heap TID.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_walredo.pg.btree_page import INDEX_AM_RESERVED_BIT, INDEX_SIZE_MASK
from pytest_walredo.pg.constants import BLCKSZ, maxalign
from pytest_walredo.pg.page import Page, PageError

__all__ = [
    "BT_IS_POSTING",
    "BT_MAX_ITEM_SIZE",
    "BT_OFFSET_MASK",
    "BT_PIVOT_HEAP_TID_ATTR",
    "BT_STATUS_OFFSET_MASK",
    "INDEX_ALT_TID_MASK",
    "P_FIRSTKEY",
    "P_HIKEY",
    "DedupState",
    "Tid",
    "downlink",
    "form_posting",
    "halfdead_high_key",
    "heap_tids",
    "is_pivot",
    "is_posting",
    "posting_count",
    "posting_offset",
    "set_downlink",
    "swap_posting",
    "tuple_size",
    "update_posting",
]

INDEX_ALT_TID_MASK = INDEX_AM_RESERVED_BIT
BT_OFFSET_MASK = 0x0FFF
BT_STATUS_OFFSET_MASK = 0xF000
BT_PIVOT_HEAP_TID_ATTR = 0x1000
BT_IS_POSTING = 0x2000

P_HIKEY = 1
P_FIRSTKEY = 2

_ITUP = struct.Struct("<HHHH")  # bi_hi, bi_lo, ip_posid, t_info
_TID = struct.Struct("<HHH")
TID_SIZE = _TID.size

# BTMaxItemSize: MAXALIGN_DOWN((BLCKSZ - MAXALIGN(24 + 3 line pointers + 3 ItemPointers)
# - MAXALIGN(sizeof(BTPageOpaqueData))) / 3) = 2704 for 8 KiB pages. Btree redo uses it as
# the posting-list size limit of deduplication ("conservatively larger than the primary's").
BT_MAX_ITEM_SIZE = ((BLCKSZ - maxalign(24 + 3 * 4 + 3 * 6) - maxalign(16)) // 3) // 8 * 8

Tid = tuple[int, int]
"""A heap TID: (block number, offset number)."""


def _header(tup: bytes | bytearray | memoryview, what: str = "index tuple") -> tuple[int, int, int, int]:
    if len(tup) < _ITUP.size:
        raise PageError(f"{what} is {len(tup)} bytes, shorter than its 8-byte header")
    return _ITUP.unpack_from(tup, 0)


def tuple_size(tup: bytes | bytearray | memoryview) -> int:
    """``IndexTupleSize``: the size in t_info."""
    return _header(tup)[3] & INDEX_SIZE_MASK


# The predicates below read the header themselves rather than through _header: deduplication
# and VACUUM call them for every tuple of a page, and the call is a good part of their cost.


def is_pivot(tup: bytes | bytearray | memoryview) -> bool:
    """``BTreeTupleIsPivot``."""
    if len(tup) < _ITUP.size:
        _header(tup)  # raises
    _, _, posid, info = _ITUP.unpack_from(tup, 0)
    return bool(info & INDEX_ALT_TID_MASK) and not posid & BT_IS_POSTING


def is_posting(tup: bytes | bytearray | memoryview) -> bool:
    """``BTreeTupleIsPosting``."""
    if len(tup) < _ITUP.size:
        _header(tup)  # raises
    _, _, posid, info = _ITUP.unpack_from(tup, 0)
    return bool(info & INDEX_ALT_TID_MASK) and bool(posid & BT_IS_POSTING)


def posting_count(tup: bytes | bytearray | memoryview) -> int:
    """``BTreeTupleGetNPosting``."""
    return _header(tup)[2] & BT_OFFSET_MASK


def posting_offset(tup: bytes | bytearray | memoryview) -> int:
    """``BTreeTupleGetPostingOffset``: where the heap TID array starts."""
    hi, lo, _, _ = _header(tup)
    return (hi << 16) | lo


def _tid_at(tup: bytes | bytearray | memoryview, pos: int) -> Tid:
    if pos + TID_SIZE > len(tup):
        raise PageError(f"posting list TID at byte {pos} runs past the {len(tup)}-byte tuple")
    hi, lo, off = _TID.unpack_from(tup, pos)
    return (hi << 16) | lo, off


def heap_tids(tup: bytes | bytearray | memoryview) -> list[Tid]:
    """The heap TIDs a leaf tuple points to: its posting list, or its own ``t_tid``."""
    hi, lo, posid, info = _header(tup)
    if info & INDEX_ALT_TID_MASK and posid & BT_IS_POSTING:
        base = (hi << 16) | lo
        n = posid & BT_OFFSET_MASK
        if base + TID_SIZE * n > len(tup):  # _tid_at names the first TID that runs past
            return [_tid_at(tup, base + TID_SIZE * i) for i in range(n)]
        words = struct.unpack_from(f"<{3 * n}H", tup, base)  # all TIDs at once
        return [((words[i] << 16) | words[i + 1], words[i + 2]) for i in range(0, 3 * n, 3)]
    return [((hi << 16) | lo, posid)]


def downlink(tup: bytes | bytearray | memoryview) -> int:
    """``BTreeTupleGetDownLink`` (also the top-parent link of a half-dead leaf's high key)."""
    hi, lo, _, _ = _header(tup)
    return (hi << 16) | lo


def set_downlink(tup: bytearray | memoryview, blkno: int) -> None:
    """``BTreeTupleSetDownLink``: write the block number of ``t_tid`` in place."""
    _header(tup)
    struct.pack_into("<HH", tup, 0, blkno >> 16, blkno & 0xFFFF)


def halfdead_high_key(topparent: int) -> bytes:
    """The dummy high key of a half-dead leaf: a zeroed 8-byte IndexTupleData with t_info 8,
    then ``BTreeTupleSetTopParent`` (block number = top parent, ``INDEX_ALT_TID_MASK`` set,
    offset number 0 = no key attributes)."""
    return _ITUP.pack(topparent >> 16, topparent & 0xFFFF, 0, _ITUP.size | INDEX_ALT_TID_MASK)


def _with_tids(key: bytes, tids: Sequence[Tid]) -> bytes:
    """Shared tail of ``_bt_form_posting`` and ``_bt_update_posting``: the first
    ``keysize`` bytes of a tuple, resized for ``tids`` (posting list when more than one, else
    a plain tuple whose t_tid is the TID), zero padded."""
    keysize = len(key)
    if keysize != maxalign(keysize):
        raise PageError(f"posting list key size {keysize} is not MAXALIGNed")
    newsize = maxalign(keysize + len(tids) * TID_SIZE) if len(tids) > 1 else keysize
    if newsize > INDEX_SIZE_MASK:
        raise PageError(f"posting list tuple of {newsize} bytes is too large")
    out = bytearray(newsize)
    out[:keysize] = key
    info = _ITUP.unpack_from(out, 0)[3]
    info = (info & ~INDEX_SIZE_MASK) | newsize
    if len(tids) > 1:
        info |= INDEX_ALT_TID_MASK
        _ITUP.pack_into(out, 0, keysize >> 16, keysize & 0xFFFF, len(tids) | BT_IS_POSTING, info)
        flat = [part for blk, off in tids for part in (blk >> 16, blk & 0xFFFF, off)]
        out[keysize : keysize + len(tids) * TID_SIZE] = struct.pack(f"<{len(flat)}H", *flat)
    else:
        blk, off = tids[0]
        _ITUP.pack_into(out, 0, blk >> 16, blk & 0xFFFF, off, info & ~INDEX_ALT_TID_MASK)
    return bytes(out)


def _key(tup: bytes | bytearray | memoryview) -> bytes:
    """The tuple's key part: up to the posting list, or the whole ``IndexTupleSize``."""
    size = posting_offset(tup) if is_posting(tup) else tuple_size(tup)
    if size > len(tup):
        raise PageError(f"index tuple key of {size} bytes runs past the {len(tup)}-byte tuple")
    return bytes(tup[:size])


def form_posting(base: bytes | bytearray | memoryview, tids: Sequence[Tid]) -> bytes:
    """``_bt_form_posting``: ``base``'s key with the heap TIDs ``tids``."""
    if is_pivot(base):
        raise PageError("deduplication met a pivot tuple")
    if not tids:
        raise PageError("a posting list needs at least one heap TID")
    return _with_tids(_key(base), tids)


def update_posting(orig: bytes | bytearray | memoryview, deletetids: Sequence[int]) -> bytes:
    """``_bt_update_posting``: ``orig`` (a posting list tuple) without the TIDs at the
    posting-list positions ``deletetids`` (ascending). What remains keeps the key; one TID
    left makes a plain tuple."""
    if not is_posting(orig):
        raise PageError("VACUUM updates an index tuple that is not a posting list")
    tids = heap_tids(orig)
    drop = set(deletetids)
    if len(drop) != len(deletetids) or any(not 0 <= d < len(tids) for d in drop):
        raise PageError(
            f"posting list of {len(tids)} TIDs cannot lose positions {list(deletetids)}"
        )
    left = [t for i, t in enumerate(tids) if i not in drop]
    if not left:
        raise PageError("VACUUM would update a posting list to no TIDs at all")
    return _with_tids(_key(orig), left)


def swap_posting(newitem: bytes, oposting: bytes | bytearray | memoryview,
                 postingoff: int) -> tuple[bytes, bytes]:
    """``_bt_swap_posting``: a posting-list split on insert. Returns (nposting, newitem'):
    ``oposting`` with ``newitem``'s heap TID put at position ``postingoff`` (the later TIDs
    shift right, the last one falls off) and ``newitem`` carrying that last TID instead."""
    if not is_posting(oposting):
        raise PageError("posting list split on a tuple that is not a posting list")
    n = posting_count(oposting)
    if not 0 < postingoff < n:
        raise PageError(f"posting list tuple with {n} items cannot be split at offset {postingoff}")
    size = tuple_size(oposting)
    if size > len(oposting):
        raise PageError(f"posting list tuple of {size} bytes runs past its {len(oposting)}-byte item")
    nposting = bytearray(oposting[:size])
    base = posting_offset(oposting)
    at = base + TID_SIZE * postingoff
    end = base + TID_SIZE * n
    if end > len(nposting):
        raise PageError(f"posting list of {n} TIDs runs past its {len(nposting)}-byte tuple")
    nposting[at + TID_SIZE : end] = nposting[at : end - TID_SIZE]
    nposting[at : at + TID_SIZE] = newitem[:TID_SIZE]
    final = bytearray(newitem)
    final[:TID_SIZE] = oposting[end - TID_SIZE : end]
    return bytes(nposting), bytes(final)


@dataclass
class DedupState:
    """``BTDedupStateData`` as btree DEDUP redo uses it: the pending posting list being
    merged (its base tuple and heap TIDs) and the intervals formed so far.

    Invariant: ``nitems`` tuples of the page have been merged into ``htids`` (0 = nothing
    pending); ``intervals`` lists (base offset, item count) of the posting lists written.
    """

    maxpostingsize: int = BT_MAX_ITEM_SIZE
    base: bytes = b""
    baseoff: int = 0
    basetupsize: int = 0
    htids: list[Tid] = field(default_factory=list)
    nitems: int = 0
    intervals: list[tuple[int, int]] = field(default_factory=list)

    def start_pending(self, base: bytes, baseoff: int) -> None:
        """``_bt_dedup_start_pending``."""
        if is_pivot(base):
            raise PageError(f"deduplication met a pivot tuple at offset {baseoff}")
        self.htids = heap_tids(base)
        self.basetupsize = posting_offset(base) if is_posting(base) else tuple_size(base)
        self.base = base
        self.baseoff = baseoff
        self.nitems = 1

    def save_htid(self, itup: bytes) -> bool:
        """``_bt_dedup_save_htid``: merge ``itup``'s heap TIDs unless the posting list would
        outgrow ``maxpostingsize``."""
        if is_pivot(itup):
            raise PageError("deduplication met a pivot tuple")
        tids = heap_tids(itup)
        if maxalign(self.basetupsize + (len(self.htids) + len(tids)) * TID_SIZE) > self.maxpostingsize:
            return False
        self.nitems += 1
        self.htids.extend(tids)
        return True

    def finish_pending(self, newpage: Page) -> None:
        """``_bt_dedup_finish_pending``: add the pending tuple (the base as it was, or the
        merged posting list) at the end of ``newpage``."""
        if self.nitems == 1:
            item = self.base[: tuple_size(self.base)]
        else:
            item = form_posting(self.base, self.htids)
            self.intervals.append((self.baseoff, self.nitems))
        if newpage.add_item(item, newpage.max_offset() + 1) == 0:
            raise PageError("deduplication failed to add tuple to page")
        self.htids = []
        self.nitems = 0
