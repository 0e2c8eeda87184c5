"""spg_mask (``spgxlog.c``).

LSN and checksum, page hint bits, and the unused space when pd_lower looks set
(``pd_lower >= 24`` in PostgreSQL's current sources; older branches compared with ``>``, which
differs only for a page without line pointers, where then nothing is masked).
"""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import mask_hint_bits, mask_lsn_and_checksum, mask_unused_space
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page

__all__ = ["spg_mask"]


def spg_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_hint_bits(page)
    if page.lower >= SIZE_OF_PAGE_HEADER:
        mask_unused_space(page)
    return page.to_bytes()
