"""The masking steps shared by every rule (PostgreSQL's ``bufmask.c``, the same in 14-17).

Each step works in place on a :class:`~pytest_walredo.pg.page.Page` and writes the mask
marker 0 (``MASK_MARKER``) where PostgreSQL does:

- :func:`mask_lsn_and_checksum`: pd_lsn and pd_checksum.
- :func:`mask_hint_bits`: pd_prune_xid, and the PD_PAGE_FULL, PD_HAS_FREE_LINES and
  PD_ALL_VISIBLE flags.
- :func:`mask_unused_space`: the bytes between pd_lower and pd_upper. PostgreSQL raises an
  ERROR for a page whose pointers are not ``24 <= lower <= upper <= special <= 8192``; so do we
  (:class:`MaskError`).
- :func:`mask_lp_flags`: every used line pointer's flags become LP_UNUSED (offset and length
  stay).
- :func:`mask_page_content`: everything after the page header, and pd_lower / pd_upper.

Where PostgreSQL would read outside the page (a special space or item that runs past 8192
bytes on a corrupt page), we raise :class:`MaskError` or leave the item alone instead of
reading past the end; on well-formed pages the result is PostgreSQL's.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import (
    ITEM_ID_SIZE,
    LP_UNUSED,
    PD_ALL_VISIBLE,
    PD_HAS_FREE_LINES,
    PD_PAGE_FULL,
    SIZE_OF_PAGE_HEADER,
    Page,
)

__all__ = [
    "MaskError",
    "header_and_free_space_mask",
    "line_pointers",
    "mask_hint_bits",
    "mask_lp_flags",
    "mask_lsn_and_checksum",
    "mask_page_content",
    "mask_unused_space",
    "max_offset",
    "special_u16",
]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class MaskError(ValueError):
    """A page a masking rule cannot be applied to (PostgreSQL would raise an ERROR, or read
    outside the page). Two pages of which one cannot be masked compare equal only when they
    are byte for byte equal."""


def header_and_free_space_mask(data: bytes) -> bytes:
    """pd_lsn, pd_checksum and the free space: all that seq_mask and generic_mask mask (two
    PostgreSQL functions with one rule)."""
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_unused_space(page)
    return page.to_bytes()


def mask_lsn_and_checksum(page: Page) -> None:
    page.lsn = 0
    page.checksum = 0


def mask_hint_bits(page: Page) -> None:
    page.prune_xid = 0
    page.flags = page.flags & ~(PD_PAGE_FULL | PD_HAS_FREE_LINES | PD_ALL_VISIBLE)


def mask_unused_space(page: Page) -> None:
    lower, upper, special = page.lower, page.upper, page.special
    if lower > upper or special < upper or lower < SIZE_OF_PAGE_HEADER or special > BLCKSZ:
        raise MaskError(f"invalid page pd_lower {lower} pd_upper {upper} pd_special {special}")
    page.data[lower:upper] = bytes(upper - lower)


def max_offset(page: Page) -> int:
    """PageGetMaxOffsetNumber, capped to the line pointers that fit in the page."""
    lower = min(page.lower, BLCKSZ)
    return 0 if lower <= SIZE_OF_PAGE_HEADER else (lower - SIZE_OF_PAGE_HEADER) // ITEM_ID_SIZE


def line_pointers(page: Page) -> list[tuple[int, int, int, int, int]]:
    """(offset number, position of the line pointer, lp_off, lp_flags, lp_len) of each line
    pointer, 1-based like PostgreSQL's OffsetNumber."""
    out = []
    for off in range(1, max_offset(page) + 1):
        pos = SIZE_OF_PAGE_HEADER + (off - 1) * ITEM_ID_SIZE
        (word,) = _U32.unpack_from(page.data, pos)
        out.append((off, pos, word & 0x7FFF, (word >> 15) & 0x3, word >> 17))
    return out


def mask_lp_flags(page: Page) -> None:
    for _off, pos, _lp_off, flags, _lp_len in line_pointers(page):
        if flags != LP_UNUSED:
            (word,) = _U32.unpack_from(page.data, pos)
            _U32.pack_into(page.data, pos, word & ~(0x3 << 15))


def mask_page_content(page: Page) -> None:
    page.data[SIZE_OF_PAGE_HEADER:] = bytes(BLCKSZ - SIZE_OF_PAGE_HEADER)
    page.lower = 0
    page.upper = 0


def special_u16(page: Page, offset: int, size: int) -> int:
    """The position of a uint16 at ``offset`` in a special space of ``size`` bytes starting at
    pd_special; MaskError when that space does not fit in the page."""
    start = page.special
    if start + size > BLCKSZ:
        raise MaskError(f"pd_special {start} leaves no room for a {size}-byte special space")
    return start + offset


def get_u16(page: Page, pos: int) -> int:
    return int(_U16.unpack_from(page.data, pos)[0])


def set_u16(page: Page, pos: int, value: int) -> None:
    _U16.pack_into(page.data, pos, value & 0xFFFF)
