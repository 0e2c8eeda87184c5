"""gin_mask (``ginxlog.c``, the same in 14-17).

LSN and checksum, page hint bits; then, by the flags of GinPageOpaqueData (rightlink u32,
maxoff u16, flags u16 at 6): a GIN_DELETED page has its whole content masked (redo
reinitializes it); any other page has its unused space masked, but only when pd_lower is
above the page header (the metapage of old indexes leaves pd_lower at 24).
"""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import (
    get_u16,
    mask_hint_bits,
    mask_lsn_and_checksum,
    mask_page_content,
    mask_unused_space,
    special_u16,
)
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page

__all__ = ["gin_mask"]

GIN_DELETED = 1 << 2


def gin_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    flags = get_u16(page, special_u16(page, 6, 8))
    mask_hint_bits(page)
    if flags & GIN_DELETED:
        mask_page_content(page)
    elif page.lower > SIZE_OF_PAGE_HEADER:
        mask_unused_space(page)
    return page.to_bytes()
