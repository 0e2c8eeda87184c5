"""btree_mask (``nbtxlog.c``, the same in 14-17).

After the common steps (LSN and checksum, page hint bits, unused space): on leaf pages
(BTP_LEAF) the line pointer flags, which the primary changes without WAL when it marks items
dead (_bt_killitems, _bt_check_unique); on every page BTP_HAS_GARBAGE (an unlogged hint),
BTP_SPLIT_END and btpo_cycleid (redo of a split sets neither on the right sibling).
The special space is BTPageOpaqueData: prev, next, level (u32 each), btpo_flags u16 at 12,
btpo_cycleid u16 at 14.
"""

from __future__ import annotations

from pytest_walredo.pg.btree_page import BTP_HAS_GARBAGE, BTP_LEAF, BTP_SPLIT_END
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

__all__ = ["btree_mask"]


def btree_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_hint_bits(page)
    mask_unused_space(page)
    flags_at = special_u16(page, 12, 16)
    flags = get_u16(page, flags_at)
    if flags & BTP_LEAF:
        mask_lp_flags(page)
    set_u16(page, flags_at, flags & ~(BTP_HAS_GARBAGE | BTP_SPLIT_END))
    set_u16(page, flags_at + 2, 0)  # btpo_cycleid
    return page.to_bytes()
