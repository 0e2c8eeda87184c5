"""brin_mask (``brin_xlog.c``).

LSN and checksum, page hint bits; the unused space of regular pages, and of the metapage when
its pd_lower is above the page header. The page type and flags are the last two uint16 of
BrinSpecialSpace (8 bytes at pd_special): flags at +4, type at +6 (META 0xF091, REVMAP
0xF092, REGULAR 0xF093).

One addition of ours: the BRIN_EVACUATE_PAGE flag (0x0001) is masked too. The primary sets it
without WAL (brin_start_evacuating_page) and redo never does, so a correct walredo differs from
the primary's page there; PostgreSQL's brin_mask in 14-17 leaves it, which only matters on a
standby that checks consistency, where it would report a false difference.
"""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import (
    get_u16,
    mask_hint_bits,
    mask_lsn_and_checksum,
    mask_unused_space,
    set_u16,
    special_u16,
)
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page

__all__ = ["brin_mask"]

BRIN_PAGETYPE_META = 0xF091
BRIN_PAGETYPE_REGULAR = 0xF093
BRIN_EVACUATE_PAGE = 1 << 0


def brin_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_hint_bits(page)
    flags_at = special_u16(page, 4, 8)
    pagetype = get_u16(page, flags_at + 2)
    if pagetype == BRIN_PAGETYPE_REGULAR or (
        pagetype == BRIN_PAGETYPE_META and page.lower > SIZE_OF_PAGE_HEADER
    ):
        mask_unused_space(page)
    set_u16(page, flags_at, get_u16(page, flags_at) & ~BRIN_EVACUATE_PAGE)
    return page.to_bytes()
