"""gist_mask (``gistxlog.c``, the same in 14-17).

After the common steps (LSN and checksum, page hint bits, unused space), in
GISTPageOpaqueData (nsn u64, rightlink u32, flags u16 at 12, gist_page_id u16 at 14): the NSN
(a special-purpose LSN); F_FOLLOW_RIGHT is *set* (the primary changes it on the left child
after writing the WAL record); on leaf pages (F_LEAF) the line pointer flags (gistkillitems
marks items dead without WAL); F_HAS_GARBAGE is cleared (redo never sets it).

One addition of ours: F_TUPLES_DELETED is cleared too. Redo of XLOG_GIST_DELETE sets it
(``gistRedoDeleteRecord``), but the primary's ``gistprunepage`` does not, so a page redone by
any walredo differs there from the page the primary logged; PostgreSQL 14-17's ``gist_mask``
leaves it, which would be a false difference. Nothing in 14-17 reads the flag.
"""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import (
    get_u16,
    mask_hint_bits,
    mask_lp_flags,
    mask_lsn_and_checksum,
    mask_unused_space,
    set_u16,
    special_u16,
)
from pytest_walredo.pg.page import Page

__all__ = ["gist_mask"]

F_LEAF = 1 << 0
F_TUPLES_DELETED = 1 << 2
F_FOLLOW_RIGHT = 1 << 3
F_HAS_GARBAGE = 1 << 4


def gist_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_hint_bits(page)
    mask_unused_space(page)
    start = special_u16(page, 0, 16)
    page.data[start : start + 8] = bytes(8)  # NSN
    flags_at = start + 12
    flags = get_u16(page, flags_at) | F_FOLLOW_RIGHT
    if flags & F_LEAF:
        mask_lp_flags(page)
    set_u16(page, flags_at, flags & ~(F_HAS_GARBAGE | F_TUPLES_DELETED))
    return page.to_bytes()
