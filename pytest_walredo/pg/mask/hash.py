"""hash_mask (``hash_xlog.c``, the same in 14-17).

After the common steps (LSN and checksum, page hint bits, unused space), by the page type in
hasho_flag (HashPageOpaqueData: prevblkno, nextblkno, bucket (u32 each), hasho_flag u16 at
12, hasho_page_id u16 at 14): an unused page (type 0) has its whole content masked; bucket
and overflow pages their line pointer flags (items are marked dead without WAL); every page
the LH_PAGE_HAS_DEAD_TUPLES hint.
"""

from __future__ import annotations

from pytest_walredo.pg.hash_page import (
    LH_BUCKET_PAGE,
    LH_OVERFLOW_PAGE,
    LH_PAGE_HAS_DEAD_TUPLES,
    LH_PAGE_TYPE,
    LH_UNUSED_PAGE,
)
from pytest_walredo.pg.mask._bufmask import (
    get_u16,
    mask_hint_bits,
    mask_lp_flags,
    mask_lsn_and_checksum,
    mask_page_content,
    mask_unused_space,
    set_u16,
    special_u16,
)
from pytest_walredo.pg.page import Page

__all__ = ["hash_mask"]


def hash_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_hint_bits(page)
    mask_unused_space(page)
    flag_at = special_u16(page, 12, 16)
    pagetype = get_u16(page, flag_at) & LH_PAGE_TYPE
    if pagetype == LH_UNUSED_PAGE:
        mask_page_content(page)
    elif pagetype in (LH_BUCKET_PAGE, LH_OVERFLOW_PAGE):
        mask_lp_flags(page)
    # read again: masking an unused page's content zeroes hasho_flag too
    set_u16(page, flag_at, get_u16(page, flag_at) & ~LH_PAGE_HAS_DEAD_TUPLES)
    return page.to_bytes()
