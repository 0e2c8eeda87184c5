"""The standard PostgreSQL page layout (``bufpage.h``): header, line pointers, items.

A page is ``BLCKSZ`` (8192) bytes::

    +----------------+---------------------------------+
    | PageHeaderData | linp1 linp2 linp3 ...           |
    +-----------+----+---------------------------------+
    | ... linpN |                                      |
    +-----------+--------------------------------------+
    |           ^ pd_lower                             |
    |                                                  |
    |             v pd_upper                           |
    +-------------+------------------------------------+
    |             | tupleN ...                         |
    +-------------+------------------+-----------------+
    |       ... tuple3 tuple2 tuple1 | "special space" |
    +--------------------------------+-----------------+
                                     ^ pd_special

Two views of a page live here:

* :class:`Page`: a mutable page over a ``bytearray`` with PostgreSQL's page operations
  (``PageInit``, ``PageAddItemExtended``, ``PageIndexTupleDelete``, ``PageRepairFragmentation``,
  ``PageTruncateLinePointerArray``, free-space functions, ``PageIsVerified``). The redo model
  works on it. Operations write exactly the bytes PostgreSQL writes and leave every other byte
  alone (stale bytes in free space included), so a page redone here can be compared byte for
  byte with one redone by a real walredo process.
* :class:`PageView`: an immutable structured view of *any* 8192 bytes (even garbage) from
  :func:`parse_page`; :func:`render_page` turns it back into exactly the same bytes. Bytes the
  view does not interpret are kept in ``body``.

Everything is little-endian, as on the x86-64/aarch64 machines PostgreSQL and Neon run on.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_walredo.pg.constants import BLCKSZ, MAXIMUM_ALIGNOF, maxalign

__all__ = [
    "BLCKSZ",
    "ITEM_ID_SIZE",
    "LP_DEAD",
    "LP_NORMAL",
    "LP_REDIRECT",
    "LP_UNUSED",
    "MAXIMUM_ALIGNOF",
    "MAX_HEAP_TUPLES_PER_PAGE",
    "PD_ALL_VISIBLE",
    "PD_HAS_FREE_LINES",
    "PD_PAGE_FULL",
    "PD_VALID_FLAG_BITS",
    "PG_PAGE_LAYOUT_VERSION",
    "SIZE_OF_PAGE_HEADER",
    "ItemId",
    "Page",
    "PageError",
    "PageHeader",
    "PageView",
    "maxalign",
    "page_header_problem",
    "parse_page",
    "render_page",
]

SIZE_OF_PAGE_HEADER = 24  # offsetof(PageHeaderData, pd_linp)
ITEM_ID_SIZE = 4  # sizeof(ItemIdData)
PG_PAGE_LAYOUT_VERSION = 4

# pd_flags bits
PD_HAS_FREE_LINES = 0x0001  # are there any unused line pointers?
PD_PAGE_FULL = 0x0002  # not enough free space for a new tuple?
PD_ALL_VISIBLE = 0x0004  # all tuples on the page are visible to everyone
PD_VALID_FLAG_BITS = 0x0007

# lp_flags values
LP_UNUSED = 0  # unused (lp_len must be 0)
LP_NORMAL = 1  # used (lp_len must be > 0)
LP_REDIRECT = 2  # HOT redirect (lp_off is the target offset, lp_len 0)
LP_DEAD = 3  # dead, may or may not have storage

LP_FLAG_NAMES = {LP_UNUSED: "UNUSED", LP_NORMAL: "NORMAL", LP_REDIRECT: "REDIRECT", LP_DEAD: "DEAD"}

# (BLCKSZ - SizeOfPageHeaderData) / (MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData))
MAX_HEAP_TUPLES_PER_PAGE = (BLCKSZ - SIZE_OF_PAGE_HEADER) // (24 + ITEM_ID_SIZE)  # 291

_HEADER = struct.Struct("<IIHHHHHHI")
_U16 = struct.Struct("<H")
_U16X2 = struct.Struct("<HH")
_U16X3 = struct.Struct("<HHH")
_U32 = struct.Struct("<I")

# byte offsets of the header fields
_OFF_LSN = 0
_OFF_CHECKSUM = 8
_OFF_FLAGS = 10
_OFF_LOWER = 12
_OFF_UPPER = 14
_OFF_SPECIAL = 16
_OFF_PAGESIZE_VERSION = 18
_OFF_PRUNE_XID = 20


class PageError(Exception):
    """A page operation PostgreSQL would refuse (``ERROR``/``PANIC``); str is the one-line message
    PostgreSQL prints, e.g. ``corrupted page pointers: lower = 10, upper = 8160, special = 8192``."""


# --------------------------------------------------------------------------- header / line pointers


@dataclass(frozen=True)
class PageHeader:
    """``PageHeaderData`` (24 bytes). ``lsn`` is the 64-bit value of ``pd_lsn``, which PostgreSQL
    stores as two uint32 halves (``xlogid`` = high, ``xrecoff`` = low)."""

    lsn: int = 0
    checksum: int = 0
    flags: int = 0
    lower: int = SIZE_OF_PAGE_HEADER
    upper: int = BLCKSZ
    special: int = BLCKSZ
    pagesize_version: int = BLCKSZ | PG_PAGE_LAYOUT_VERSION
    prune_xid: int = 0

    @property
    def xlogid(self) -> int:
        return self.lsn >> 32

    @property
    def xrecoff(self) -> int:
        return self.lsn & 0xFFFFFFFF

    @property
    def pagesize(self) -> int:
        """``PageGetPageSize``: the high byte bits of ``pd_pagesize_version``."""
        return self.pagesize_version & 0xFF00

    @property
    def layout_version(self) -> int:
        return self.pagesize_version & 0x00FF

    def pack(self) -> bytes:
        return _HEADER.pack(
            self.xlogid,
            self.xrecoff,
            self.checksum,
            self.flags,
            self.lower,
            self.upper,
            self.special,
            self.pagesize_version,
            self.prune_xid,
        )

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> PageHeader:
        xlogid, xrecoff, checksum, flags, lower, upper, special, psv, prune = _HEADER.unpack_from(
            data, 0
        )
        return cls((xlogid << 32) | xrecoff, checksum, flags, lower, upper, special, psv, prune)


_ItemIdFields = namedtuple("_ItemIdFields", ("off", "flags", "len"))


class ItemId(_ItemIdFields):
    """``ItemIdData``: one line pointer, a 32-bit word of three bitfields.

    With GCC on little-endian machines the first declared bitfield takes the lowest bits, so
    the word is ``lp_off | lp_flags << 15 | lp_len << 17`` (lp_off: 15 bits, lp_flags: 2 bits,
    lp_len: 15 bits). ``tests/test_pg_page.py`` checks this against a real page.

    Immutable (a named tuple: the redo model reads line pointers by the thousand, and a tuple
    is several times cheaper to build than a frozen dataclass). The constructor checks the
    field ranges; :meth:`from_word` skips the check, since masking the word keeps every field
    in range.
    """

    __slots__ = ()

    def __new__(cls, off: int = 0, flags: int = LP_UNUSED, len: int = 0) -> ItemId:
        if not (0 <= off < 1 << 15 and 0 <= flags < 4 and 0 <= len < 1 << 15):
            # not {self}: __str__ looks lp_flags up by name, which fails for the bad flags
            raise ValueError(
                f"line pointer fields out of range: off={off} (< 32768), "
                f"flags={flags} (< 4), len={len} (< 32768)"
            )
        return tuple.__new__(cls, (off, flags, len))

    def __eq__(self, other: object) -> bool:
        return type(other) is ItemId and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    @property
    def word(self) -> int:
        return self[0] | (self[1] << 15) | (self[2] << 17)

    @classmethod
    def from_word(cls, word: int) -> ItemId:
        return _new_tuple(cls, (word & 0x7FFF, (word >> 15) & 0x3, (word >> 17) & 0x7FFF))

    def pack(self) -> bytes:
        return _U32.pack(self.word)

    @property
    def is_used(self) -> bool:
        """``ItemIdIsUsed``: anything but LP_UNUSED."""
        return self[1] != LP_UNUSED

    @property
    def has_storage(self) -> bool:
        """``ItemIdHasStorage``: a non-zero length (NORMAL, or DEAD with storage)."""
        return self[2] != 0

    def __str__(self) -> str:
        return f"({LP_FLAG_NAMES[self.flags]} off={self.off} len={self.len})"


_new_tuple = tuple.__new__


def _moved(word: int, delta: int) -> int:
    """Line pointer ``word`` with ``lp_off`` moved by ``delta``; an offset out of range raises
    what ``ItemId(off + delta, flags, len)`` raises."""
    off = (word & 0x7FFF) + delta
    if not 0 <= off < 1 << 15:
        ItemId(off, (word >> 15) & 0x3, (word >> 17) & 0x7FFF)  # raises ValueError
    return (word & ~0x7FFF) | off


def page_header_problem(data: bytes | bytearray | memoryview) -> str | None:
    """Why the header of ``data`` is not sane, or None if it is.

    Mirrors the checks of ``PageIsVerified`` (the header must have only valid flag bits, and
    ``pd_lower <= pd_upper <= pd_special <= BLCKSZ`` with a MAXALIGNed ``pd_special``), plus
    the check ``PageAddItem`` adds (``pd_lower >= SizeOfPageHeaderData``). An all-zero page
    (``PageIsNew`` and entirely zero) is valid; a page with ``pd_upper == 0`` and some non-zero
    byte is not.
    """
    if len(data) != BLCKSZ:
        return f"page is {len(data)} bytes, expected {BLCKSZ}"
    h = PageHeader.unpack(data)
    if h.upper == 0:
        if any(data):
            return "page has pd_upper 0 (a new page) but is not all zeros"
        return None
    if h.flags & ~PD_VALID_FLAG_BITS:
        return f"pd_flags 0x{h.flags:04X} has bits outside 0x{PD_VALID_FLAG_BITS:04X}"
    if h.lower < SIZE_OF_PAGE_HEADER:
        return f"pd_lower {h.lower} is below the header size {SIZE_OF_PAGE_HEADER}"
    if not h.lower <= h.upper:
        return f"pd_lower {h.lower} is above pd_upper {h.upper}"
    if not h.upper <= h.special:
        return f"pd_upper {h.upper} is above pd_special {h.special}"
    if not h.special <= BLCKSZ:
        return f"pd_special {h.special} is beyond the page size {BLCKSZ}"
    if h.special != maxalign(h.special):
        return f"pd_special {h.special} is not a multiple of {MAXIMUM_ALIGNOF}"
    return None


# --------------------------------------------------------------------------- mutable page


class _HeaderU16:
    """A read/write uint16 field of the page header at a fixed offset (pd_checksum, pd_flags,
    pd_lower, pd_upper, pd_special): one descriptor instead of a property pair per field."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __get__(self, page: Page, owner: type | None = None) -> int:
        return _U16.unpack_from(page.data, self.offset)[0]  # page._u16, one call less

    def __set__(self, page: Page, value: int) -> None:
        _U16.pack_into(page.data, self.offset, value)


class Page:
    """A mutable 8192-byte page with PostgreSQL's page operations.

    Invariant: ``self.data`` is always exactly ``BLCKSZ`` bytes. Offsets (``offnum``) are
    1-based as in PostgreSQL (``FirstOffsetNumber`` = 1, 0 = ``InvalidOffsetNumber``).
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray | memoryview | None = None) -> None:
        if data is None:
            self.data = bytearray(BLCKSZ)
        else:
            if len(data) != BLCKSZ:
                raise ValueError(f"a page is {BLCKSZ} bytes, got {len(data)}")
            self.data = bytearray(data)

    @classmethod
    def initialized(cls, special_size: int = 0) -> Page:
        """A fresh page after ``PageInit(page, BLCKSZ, special_size)``."""
        page = cls()
        page.init(special_size)
        return page

    def to_bytes(self) -> bytes:
        return bytes(self.data)

    # -- header fields ----------------------------------------------------------------------
    def _u16(self, off: int) -> int:
        return _U16.unpack_from(self.data, off)[0]

    def _set_u16(self, off: int, value: int) -> None:
        _U16.pack_into(self.data, off, value)

    @property
    def header(self) -> PageHeader:
        return PageHeader.unpack(self.data)

    @property
    def lsn(self) -> int:
        xlogid, xrecoff = struct.unpack_from("<II", self.data, _OFF_LSN)
        return (xlogid << 32) | xrecoff

    @lsn.setter
    def lsn(self, value: int) -> None:
        struct.pack_into("<II", self.data, _OFF_LSN, value >> 32, value & 0xFFFFFFFF)

    checksum = _HeaderU16(_OFF_CHECKSUM)
    flags = _HeaderU16(_OFF_FLAGS)
    lower = _HeaderU16(_OFF_LOWER)
    upper = _HeaderU16(_OFF_UPPER)
    special = _HeaderU16(_OFF_SPECIAL)

    @property
    def pagesize_version(self) -> int:
        return self._u16(_OFF_PAGESIZE_VERSION)

    @property
    def prune_xid(self) -> int:
        return _U32.unpack_from(self.data, _OFF_PRUNE_XID)[0]

    @prune_xid.setter
    def prune_xid(self, value: int) -> None:
        _U32.pack_into(self.data, _OFF_PRUNE_XID, value)

    def is_new(self) -> bool:
        """``PageIsNew``: ``pd_upper == 0`` (never initialized)."""
        return self.upper == 0

    def is_empty(self) -> bool:
        """``PageIsEmpty``: no line pointers."""
        return self.lower <= SIZE_OF_PAGE_HEADER

    def set_flag(self, bit: int) -> None:
        self.flags = self.flags | bit

    def clear_flag(self, bit: int) -> None:
        self.flags = self.flags & ~bit

    def update_prune_xid(self, xid: int) -> None:
        """``PageSetPrunable``: keep the oldest xid in ``pd_prune_xid`` (``TransactionIdPrecedes``:
        modulo-2^32 for normal xids, plain ``<`` when either is a special xid below 3)."""
        cur = self.prune_xid
        if cur == 0 or _xid_precedes(xid, cur):
            self.prune_xid = xid

    # -- line pointers ----------------------------------------------------------------------
    def max_offset(self) -> int:
        """``PageGetMaxOffsetNumber``: the number of line pointers (0 if pd_lower is below the
        header)."""
        lower = _U16.unpack_from(self.data, _OFF_LOWER)[0]
        return 0 if lower <= SIZE_OF_PAGE_HEADER else (lower - SIZE_OF_PAGE_HEADER) // ITEM_ID_SIZE

    def _lp_pos(self, offnum: int) -> int:
        pos = SIZE_OF_PAGE_HEADER + (offnum - 1) * ITEM_ID_SIZE
        if offnum < 1 or pos + ITEM_ID_SIZE > BLCKSZ:
            raise PageError(f"line pointer {offnum} is outside the page")
        return pos

    def item_id(self, offnum: int) -> ItemId:
        """``PageGetItemId`` (1-based). Does not check ``offnum`` against ``pd_lower``."""
        pos = SIZE_OF_PAGE_HEADER + (offnum - 1) * ITEM_ID_SIZE
        if offnum < 1 or pos + ITEM_ID_SIZE > BLCKSZ:
            raise PageError(f"line pointer {offnum} is outside the page")
        w = _U32.unpack_from(self.data, pos)[0]
        return _new_tuple(ItemId, (w & 0x7FFF, (w >> 15) & 0x3, (w >> 17) & 0x7FFF))

    def set_item_id(self, offnum: int, lp: ItemId) -> None:
        _U32.pack_into(self.data, self._lp_pos(offnum), lp[0] | (lp[1] << 15) | (lp[2] << 17))

    def _lp_words(self, nline: int) -> list[int]:
        """The first ``nline`` line pointers as words (``nline`` <= :meth:`max_offset`), read at
        once: the loops over every line pointer below work on these words, not on
        :class:`ItemId` objects (the same fields, a fraction of the cost)."""
        if SIZE_OF_PAGE_HEADER + nline * ITEM_ID_SIZE > BLCKSZ:  # what item_id() would say
            first_out = (BLCKSZ - SIZE_OF_PAGE_HEADER) // ITEM_ID_SIZE + 1
            raise PageError(f"line pointer {first_out} is outside the page")
        return list(struct.unpack_from(f"<{nline}I", self.data, SIZE_OF_PAGE_HEADER))

    def _set_lp_words(self, words: list[int]) -> None:
        struct.pack_into(f"<{len(words)}I", self.data, SIZE_OF_PAGE_HEADER, *words)

    def item_ids(self) -> Iterator[tuple[int, ItemId]]:
        for offnum in range(1, self.max_offset() + 1):
            yield offnum, self.item_id(offnum)

    def item(self, offnum: int) -> bytes:
        """``PageGetItem``: the ``lp_len`` bytes at ``lp_off`` of line pointer ``offnum``."""
        pos = SIZE_OF_PAGE_HEADER + (offnum - 1) * ITEM_ID_SIZE
        if offnum < 1 or pos + ITEM_ID_SIZE > BLCKSZ:
            raise PageError(f"line pointer {offnum} is outside the page")
        w = _U32.unpack_from(self.data, pos)[0]
        off, length = w & 0x7FFF, (w >> 17) & 0x7FFF
        if off + length > BLCKSZ:
            raise PageError(f"line pointer {offnum} {ItemId.from_word(w)} points beyond the page")
        return bytes(self.data[off : off + length])

    def item_view(self, offnum: int) -> memoryview:
        """Like :meth:`item` but a writable view into the page (for in-place header edits)."""
        lp = self.item_id(offnum)
        if lp.off + lp.len > BLCKSZ:
            raise PageError(f"line pointer {offnum} {lp} points beyond the page")
        return memoryview(self.data)[lp.off : lp.off + lp.len]

    # -- operations -------------------------------------------------------------------------
    def init(self, special_size: int = 0) -> None:
        """``PageInit``: zero the page, then header lower/upper/special and size+version.

        ``special_size`` is MAXALIGNed first. pd_lsn, pd_checksum, pd_flags and pd_prune_xid
        end up 0.
        """
        special = maxalign(special_size)
        if special > BLCKSZ - SIZE_OF_PAGE_HEADER:
            raise ValueError(f"special size {special_size} does not fit in a page")
        self.data[:] = bytes(BLCKSZ)
        self.lower = SIZE_OF_PAGE_HEADER
        self.upper = BLCKSZ - special
        self.special = BLCKSZ - special
        self._set_u16(_OFF_PAGESIZE_VERSION, BLCKSZ | PG_PAGE_LAYOUT_VERSION)

    def _check_pointers(self) -> tuple[int, int, int]:
        lower, upper, special = self.lower, self.upper, self.special
        if lower < SIZE_OF_PAGE_HEADER or lower > upper or upper > special or special > BLCKSZ:
            raise PageError(
                f"corrupted page pointers: lower = {lower}, upper = {upper}, special = {special}"
            )
        return lower, upper, special

    def add_item(
        self, item: bytes, offnum: int = 0, *, overwrite: bool = False, is_heap: bool = False
    ) -> int:
        """``PageAddItemExtended``: put ``item`` on the page; return its offset number, or 0
        (``InvalidOffsetNumber``) when PostgreSQL would refuse with a WARNING.

        * ``offnum`` 0: take the first reusable line pointer when ``PD_HAS_FREE_LINES`` says
          there may be one, else append a new one.
        * ``offnum`` given, ``overwrite``: reuse that line pointer (it must be unused and
          without storage) or append when it is one past the end.
        * ``offnum`` given, not ``overwrite``: insert there, shifting later line pointers up.

        The tuple goes just below ``pd_upper`` at ``pd_upper - MAXALIGN(len(item))``; only
        ``len(item)`` bytes are written (the alignment padding keeps whatever was there).
        """
        data = self.data
        lower, upper, special = _U16X3.unpack_from(data, _OFF_LOWER)  # _check_pointers, inline
        if lower < SIZE_OF_PAGE_HEADER or lower > upper or upper > special or special > BLCKSZ:
            raise PageError(
                f"corrupted page pointers: lower = {lower}, upper = {upper}, special = {special}"
            )
        limit = (lower - SIZE_OF_PAGE_HEADER) // ITEM_ID_SIZE + 1  # max_offset() + 1
        needshuffle = False
        if offnum:
            if overwrite:
                if offnum < limit:
                    lp = self.item_id(offnum)
                    if lp.is_used or lp.has_storage:
                        return 0  # WARNING: will not overwrite a used ItemId
            elif offnum < limit:
                needshuffle = True
        else:
            if self.flags & PD_HAS_FREE_LINES:
                for cand in range(1, limit):
                    lp = self.item_id(cand)
                    if not lp.is_used and not lp.has_storage:
                        offnum = cand
                        break
                else:
                    # the hint was wrong: no free line pointer after all
                    self.clear_flag(PD_HAS_FREE_LINES)
                    offnum = limit
            else:
                offnum = limit
        if offnum > limit:
            return 0  # WARNING: specified item offset is too large
        if is_heap and offnum > MAX_HEAP_TUPLES_PER_PAGE:
            return 0  # WARNING: can't put more than MaxHeapTuplesPerPage items in a heap page
        size = len(item)
        new_lower = lower + ITEM_ID_SIZE if (offnum == limit or needshuffle) else lower
        new_upper = upper - ((size + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1))
        if new_lower > new_upper:
            return 0
        # From here 1 <= offnum <= limit and SIZE_OF_PAGE_HEADER <= new_lower <= new_upper, so
        # the line pointer is on the page and its fields are in range (what set_item_id and
        # ItemId would check).
        start = SIZE_OF_PAGE_HEADER + (offnum - 1) * ITEM_ID_SIZE
        if needshuffle:
            end = SIZE_OF_PAGE_HEADER + (limit - 1) * ITEM_ID_SIZE
            data[start + ITEM_ID_SIZE : end + ITEM_ID_SIZE] = data[start:end]
        _U32.pack_into(data, start, new_upper | (LP_NORMAL << 15) | (size << 17))
        data[new_upper : new_upper + size] = item
        _U16X2.pack_into(data, _OFF_LOWER, new_lower, new_upper)
        return offnum

    def overwrite_item(self, offnum: int, item: bytes) -> None:
        """Replace the bytes of item ``offnum`` in place (``PageIndexTupleOverwrite`` when the
        aligned size is unchanged, or a same-length heap tuple overwrite like heap INPLACE)."""
        lp = self.item_id(offnum)
        if len(item) != lp.len:
            raise PageError(
                f"item {offnum} is {lp.len} bytes; in-place overwrite needs the same length,"
                f" got {len(item)}"
            )
        self.data[lp.off : lp.off + lp.len] = item

    def index_tuple_delete(self, offnum: int) -> None:
        """``PageIndexTupleDelete``: remove item ``offnum`` and close both gaps.

        The line pointer array shifts down by one entry and the tuple space above the deleted
        item shifts up by its MAXALIGNed size; line pointers into the moved range are adjusted.
        The vacated bytes (last line pointer slot, old lowest tuple bytes) keep stale contents.
        """
        lower, upper, special = self._check_index_pointers()
        nline = self.max_offset()
        if offnum <= 0 or offnum > nline:
            raise PageError(f"invalid index offnum: {offnum}")
        lp = self.item_id(offnum)
        size, offset = lp.len, lp.off
        if offset < upper or offset + size > special or offset != maxalign(offset):
            raise PageError(f"corrupted line pointer: offset = {offset}, size = {size}")
        size = maxalign(size)
        pos = self._lp_pos(offnum)
        self.data[pos : lower - ITEM_ID_SIZE] = self.data[pos + ITEM_ID_SIZE : lower]
        if offset > upper:
            self.data[upper + size : offset + size] = self.data[upper:offset]
        self.upper = upper + size
        self.lower = lower - ITEM_ID_SIZE
        if not self.is_empty():
            # like PostgreSQL, every remaining item is assumed to have storage
            # offset + size <= special <= BLCKSZ (checked above): every moved lp_off stays
            # in range, so adding to the word changes lp_off alone.
            words = self._lp_words(nline - 1)
            self._set_lp_words([w + size if w & 0x7FFF <= offset else w for w in words])

    def _check_index_pointers(self) -> tuple[int, int, int]:
        """The page pointer check of PageIndexTupleDelete, PageIndexMultiDelete,
        PageIndexTupleOverwrite and PageRepairFragmentation (pd_special MAXALIGNed too)."""
        lower, upper, special = self.lower, self.upper, self.special
        if (
            lower < SIZE_OF_PAGE_HEADER
            or lower > upper
            or upper > special
            or special > BLCKSZ
            or special != maxalign(special)
        ):
            raise PageError(
                f"corrupted page pointers: lower = {lower}, upper = {upper}, special = {special}"
            )
        return lower, upper, special

    def _compactify(self, moves: list[tuple[int, int, int]], special: int) -> None:
        """``compactify_tuples``: place the items ``moves`` = [(offnum, old offset, aligned
        length)] from ``pd_special`` downwards in that order, each carrying its aligned
        length of bytes from its old place (read before anything moves, as PostgreSQL's
        scratch copy does), and set their ``lp_off`` and ``pd_upper``. Bytes below the new
        ``pd_upper`` keep their old contents."""
        data = self.data
        old = bytes(data)
        top = special
        words = self._lp_words(max(i for i, _, _ in moves))
        for i, off, alen in moves:
            top -= alen
            data[top : top + alen] = old[off : off + alen]
            words[i - 1] = (words[i - 1] & ~0x7FFF) | top  # 0 <= top < special <= BLCKSZ
        self._set_lp_words(words)
        self.upper = top

    def index_multi_delete(self, offnums: list[int] | tuple[int, ...]) -> None:
        """``PageIndexMultiDelete``: remove the items ``offnums`` (ascending, as PostgreSQL
        requires) and compact the rest.

        Two or fewer go one by one through :meth:`index_tuple_delete`, last first. More: the
        surviving line pointers move down to close the gaps (in order), then their tuples are
        compacted towards ``pd_special`` in line pointer order (:meth:`_compactify`). An
        offset that is not on the page, or not in ascending order, is PostgreSQL's
        ``incorrect index offsets supplied``.
        """
        if len(offnums) <= 2:
            for off in reversed(offnums):
                self.index_tuple_delete(off)
            return
        lower, upper, special = self._check_index_pointers()
        nline = self.max_offset()
        moves: list[tuple[int, int, int]] = []
        totallen = 0
        nextitm = 0
        ndel = len(offnums)
        kept_words: list[int] = []
        for offnum, w in enumerate(self._lp_words(nline), start=1):
            off, length = w & 0x7FFF, (w >> 17) & 0x7FFF
            if off < upper or off + length > special or off & (MAXIMUM_ALIGNOF - 1):
                raise PageError(f"corrupted line pointer: offset = {off}, size = {length}")
            if nextitm < ndel and offnum == offnums[nextitm]:
                nextitm += 1
                continue
            kept_words.append(w)
            alen = (length + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1)
            moves.append((len(kept_words), off, alen))
            totallen += alen
        if nextitm != ndel:
            raise PageError("incorrect index offsets supplied")
        if totallen > special - lower:
            raise PageError(
                f"corrupted item lengths: total {totallen}, available space {special - lower}"
            )
        kept = kept_words
        if kept:
            self._set_lp_words(kept)
        self.lower = SIZE_OF_PAGE_HEADER + len(kept) * ITEM_ID_SIZE
        if kept:
            self._compactify(moves, special)
        else:
            self.upper = special

    def index_tuple_overwrite(self, offnum: int, item: bytes) -> bool:
        """``PageIndexTupleOverwrite``: replace item ``offnum`` by ``item``, whose MAXALIGNed
        size may differ from the old one's; the tuples below it shift to make or close room.
        Returns False (PostgreSQL's "no room") when the bigger item does not fit."""
        lower, upper, special = self._check_index_pointers()
        nline = self.max_offset()
        if offnum <= 0 or offnum > nline:
            raise PageError(f"invalid index offnum: {offnum}")
        lp = self.item_id(offnum)
        offset = lp.off
        if offset < upper or offset + lp.len > special or offset != maxalign(offset):
            raise PageError(f"corrupted line pointer: offset = {offset}, size = {lp.len}")
        oldsize = maxalign(lp.len)
        newsize = maxalign(len(item))
        if newsize > oldsize + (upper - lower):
            return False
        diff = oldsize - newsize
        if diff:
            self.data[upper + diff : offset + diff] = self.data[upper:offset]
            self.upper = upper + diff
            # Items with storage at or below the overwritten one move by diff. Growing
            # (diff > 0) keeps lp_off <= offset + oldsize <= BLCKSZ; shrinking could take a
            # corrupt lp_off below 0, which _moved refuses as ItemId does.
            words = self._lp_words(nline)
            if diff > 0:
                words = [w + diff if w >> 17 and w & 0x7FFF <= offset else w for w in words]
            else:
                words = [_moved(w, diff) if w >> 17 and w & 0x7FFF <= offset else w
                         for w in words]
            self._set_lp_words(words)
        lp = self.item_id(offnum)
        self.set_item_id(offnum, ItemId(offset + diff, lp.flags, len(item)))
        self.data[offset + diff : offset + diff + len(item)] = item
        return True

    def temp_copy_special(self) -> Page:
        """``PageGetTempPageCopySpecial``: a fresh page (``PageInit``) with this page's special
        space size and contents; the redo routines that rebuild a page fill it and copy it
        back whole (``PageRestoreTempPage``)."""
        special = self.special
        if not SIZE_OF_PAGE_HEADER <= special <= BLCKSZ:
            raise PageError(f"pd_special {special} is outside the page ({SIZE_OF_PAGE_HEADER}..{BLCKSZ})")
        size = BLCKSZ - special
        temp = Page()
        temp.init(size)
        temp.data[temp.special : temp.special + size] = self.data[special:]
        return temp

    def repair_fragmentation(self) -> None:
        """``PageRepairFragmentation`` (PostgreSQL 14+): compact the storage of all items with
        storage towards ``pd_special``, in line pointer order (item 1 highest), reset unused
        line pointers, drop trailing unused line pointers and set/clear ``PD_HAS_FREE_LINES``.

        Each moved item carries its MAXALIGNed length of bytes from its old place; bytes not
        covered by a moved item keep their old contents.
        """
        lower, upper, special = self._check_index_pointers()
        nline = self.max_offset()
        moves: list[tuple[int, int, int]] = []  # (offnum, old offset, aligned length)
        totallen = 0
        nunused = 0
        finalused = 0
        words = self._lp_words(nline)
        for i, w in enumerate(words, start=1):
            if w & (0x3 << 15):  # used
                length = (w >> 17) & 0x7FFF
                if length:  # has storage
                    off = w & 0x7FFF
                    if off < upper or off >= special:
                        raise PageError(f"corrupted line pointer: {off}")
                    alen = (length + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1)
                    moves.append((i, off, alen))
                    totallen += alen
                finalused = i
            else:
                words[i - 1] = 0
                nunused += 1
        self._set_lp_words(words)
        if not moves:
            self.upper = special
        else:
            if totallen > special - lower:
                raise PageError(
                    f"corrupted item lengths: total {totallen}, available space {special - lower}"
                )
            self._compactify(moves, special)
        if finalused != nline:
            nunused -= nline - finalused
            self.lower = lower - ITEM_ID_SIZE * (nline - finalused)
        if nunused > 0:
            self.set_flag(PD_HAS_FREE_LINES)
        else:
            self.clear_flag(PD_HAS_FREE_LINES)

    def truncate_line_pointer_array(self) -> None:
        """``PageTruncateLinePointerArray`` (PostgreSQL 14+): drop trailing LP_UNUSED line
        pointers, but never all of them (one stays so the page is not ``PageIsEmpty``), and
        set/clear ``PD_HAS_FREE_LINES`` from the unused ones that remain. The dropped slots
        keep their bytes."""
        nline = self.max_offset()
        used = [bool(w & (0x3 << 15)) for w in self._lp_words(nline)]  # ItemId.is_used
        last_used = nline - used[::-1].index(True) if True in used else 0
        nunused_before_end = used[:last_used].count(False)
        keep = last_used
        if keep == 0 and nline > 0:
            keep = 1  # leave a single LP_UNUSED behind rather than an empty array
            nunused_before_end = 1
        if keep < nline:
            self.lower = SIZE_OF_PAGE_HEADER + keep * ITEM_ID_SIZE
        if nunused_before_end > 0:
            self.set_flag(PD_HAS_FREE_LINES)
        else:
            self.clear_flag(PD_HAS_FREE_LINES)

    # -- free space -------------------------------------------------------------------------
    def free_space(self) -> int:
        """``PageGetFreeSpace``: the gap minus room for one more line pointer, never negative."""
        space = self.upper - self.lower
        return 0 if space < ITEM_ID_SIZE else space - ITEM_ID_SIZE

    def exact_free_space(self) -> int:
        """``PageGetExactFreeSpace``: ``pd_upper - pd_lower``, never negative."""
        return max(0, self.upper - self.lower)

    def heap_free_space(self) -> int:
        """``PageGetHeapFreeSpace``: like :meth:`free_space` but 0 when the page already has
        ``MaxHeapTuplesPerPage`` line pointers and none is unused."""
        space = self.free_space()
        if space > 0:
            nline = self.max_offset()
            if nline >= MAX_HEAP_TUPLES_PER_PAGE:
                if self.flags & PD_HAS_FREE_LINES:
                    if not any(not lp.is_used for _, lp in self.item_ids()):
                        space = 0
                else:
                    space = 0
        return space

    # -- checks -----------------------------------------------------------------------------
    def problem(self, blkno: int | None = None) -> str | None:
        """Why this page would fail ``PageIsVerified``, or None.

        The header checks of :func:`page_header_problem`; with ``blkno`` also the data
        checksum (an initialized page's pd_checksum must equal ``pg_checksum_page``, as with
        ``--data-checksums``). Like PostgreSQL, the line pointers are not looked at (index
        metapages keep other data there): see :meth:`line_pointer_problem`.
        """
        reason = page_header_problem(self.data)
        if reason or self.is_new() or blkno is None:
            return reason
        from pytest_walredo.pg.checksum import pg_checksum_page

        want = pg_checksum_page(self.data, blkno)
        if want != self.checksum:
            return (
                f"page verification failed, calculated checksum {want} but expected"
                f" {self.checksum}"
            )
        return None

    def line_pointer_problem(self) -> str | None:
        """For pages whose line pointer array holds line pointers (heap and index pages,
        not metapages): the first line pointer that is inconsistent (unused or redirect
        with a length, normal without one, storage outside ``[pd_upper, pd_special)``)."""
        upper, special = self.upper, self.special
        for offnum, lp in self.item_ids():
            if lp.flags in (LP_UNUSED, LP_REDIRECT) and lp.len != 0:
                return f"line pointer {offnum} {lp} has a length"
            if lp.flags == LP_NORMAL and lp.len == 0:
                return f"line pointer {offnum} is normal but has length 0"
            if lp.has_storage and (lp.off < upper or lp.off + lp.len > special):
                return (
                    f"line pointer {offnum} {lp} lies outside the tuple space"
                    f" [{upper}, {special})"
                )
        return None

    def __repr__(self) -> str:
        h = self.header
        return (
            f"Page(lsn={h.xlogid:X}/{h.xrecoff:X}, lower={h.lower}, upper={h.upper},"
            f" special={h.special}, items={self.max_offset()})"
        )


def _xid_precedes(a: int, b: int) -> bool:
    """``TransactionIdPrecedes``: modulo-2^32 comparison of normal xids, else plain ``<``."""
    if a < 3 or b < 3:
        return a < b
    diff = (a - b) & 0xFFFFFFFF
    return diff >= 0x80000000


# --------------------------------------------------------------------------- immutable view


@dataclass(frozen=True)
class PageView:
    """A structured, loss-free view of any 8192 bytes.

    ``line_pointers`` holds as many entries as ``header.lower`` implies (clamped to the page;
    none when ``pd_lower`` is at or below the header), and ``body`` holds every byte after
    them, uninterpreted. Invariant (checked): ``24 + 4 * len(line_pointers) + len(body) ==
    8192`` and the line pointer count is the one ``header.lower`` implies, so
    ``parse_page(render_page(v)) == v`` and ``render_page(parse_page(b)) == b``.
    """

    header: PageHeader
    line_pointers: tuple[ItemId, ...]
    body: bytes

    def __post_init__(self) -> None:
        n = _lp_count(self.header.lower)
        if len(self.line_pointers) != n:
            raise ValueError(
                f"pd_lower {self.header.lower} implies {n} line pointers,"
                f" the view has {len(self.line_pointers)}"
            )
        want = BLCKSZ - SIZE_OF_PAGE_HEADER - ITEM_ID_SIZE * n
        if len(self.body) != want:
            raise ValueError(f"page body is {len(self.body)} bytes, expected {want}")

    def item(self, offnum: int) -> bytes | None:
        """The bytes of item ``offnum`` (1-based) when its line pointer has storage inside the
        page, else None."""
        if not 1 <= offnum <= len(self.line_pointers):
            return None
        lp = self.line_pointers[offnum - 1]
        if not lp.has_storage or lp.off + lp.len > BLCKSZ:
            return None
        start = lp.off - (SIZE_OF_PAGE_HEADER + ITEM_ID_SIZE * len(self.line_pointers))
        if start < 0:
            return None  # points into the header or line pointer array
        return self.body[start : start + lp.len]


def _lp_count(lower: int) -> int:
    if lower <= SIZE_OF_PAGE_HEADER:
        return 0
    return (min(lower, BLCKSZ) - SIZE_OF_PAGE_HEADER) // ITEM_ID_SIZE


def parse_page(data: bytes | bytearray | memoryview) -> PageView:
    """Parse any ``BLCKSZ`` bytes into a :class:`PageView` (never fails on content)."""
    if len(data) != BLCKSZ:
        raise ValueError(f"a page is {BLCKSZ} bytes, got {len(data)}")
    data = bytes(data)
    header = PageHeader.unpack(data)
    n = _lp_count(header.lower)
    end = SIZE_OF_PAGE_HEADER + ITEM_ID_SIZE * n
    words = struct.unpack_from(f"<{n}I", data, SIZE_OF_PAGE_HEADER)
    return PageView(header, tuple(ItemId.from_word(w) for w in words), data[end:])


def render_page(view: PageView) -> bytes:
    """The exact bytes of ``view``: header, line pointers, body."""
    lps = struct.pack(f"<{len(view.line_pointers)}I", *(lp.word for lp in view.line_pointers))
    return view.header.pack() + lps + view.body
