"""heap_mask (``heapam.c``; Heap, Heap2 and Neon's ``neon`` rmgr; the same in 14-17).

After the common steps (LSN and checksum, page hint bits, unused space), for each line pointer:

- LP_NORMAL tuples: the infomask's transaction-status bits (HEAP_XACT_MASK, 0xFFF0) unless
  xmin is frozen (XMIN_COMMITTED|XMIN_INVALID both set), in which case only XMAX_COMMITTED
  and XMAX_INVALID; t_cid (redo writes FirstCommandId, the primary its own command id, or a
  combo cid); and for a speculative insertion (ctid offset SpecTokenOffsetNumber 0xFFFE, where
  the primary keeps its token) t_ctid becomes (blkno, offset), what redo writes.
- every line pointer with storage (lp_len > 0): the padding up to the next MAXALIGN boundary.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.constants import BLCKSZ, maxalign
from pytest_walredo.pg.mask._bufmask import (
    get_u16,
    line_pointers,
    mask_hint_bits,
    mask_lsn_and_checksum,
    mask_unused_space,
    set_u16,
)
from pytest_walredo.pg.page import LP_NORMAL, Page

__all__ = ["heap_mask"]

# tuple header layout (htup_details.h): t_xmin 0, t_xmax 4, t_cid 8, t_ctid 12..18
# (bi_hi, bi_lo, ip_posid), t_infomask2 18, t_infomask 20, t_hoff 22
_T_CID, _T_CTID, _T_INFOMASK = 8, 12, 20
_TUPLE_HEADER_END = 23
HEAP_XMIN_FROZEN = 0x0300  # HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID
HEAP_XACT_MASK = 0xFFF0
HEAP_XMAX_COMMITTED = 0x0400
HEAP_XMAX_INVALID = 0x0800
SPEC_TOKEN_OFFSET_NUMBER = 0xFFFE


def heap_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_hint_bits(page)
    mask_unused_space(page)
    for off, _pos, lp_off, flags, lp_len in line_pointers(page):
        if flags == LP_NORMAL and lp_off + _TUPLE_HEADER_END <= BLCKSZ:
            infomask = get_u16(page, lp_off + _T_INFOMASK)
            if infomask & HEAP_XMIN_FROZEN != HEAP_XMIN_FROZEN:
                infomask &= ~HEAP_XACT_MASK
            else:
                infomask &= ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED)
            set_u16(page, lp_off + _T_INFOMASK, infomask)
            struct.pack_into("<I", page.data, lp_off + _T_CID, 0)
            if get_u16(page, lp_off + _T_CTID + 4) == SPEC_TOKEN_OFFSET_NUMBER:
                struct.pack_into("<HHH", page.data, lp_off + _T_CTID, blkno >> 16, blkno & 0xFFFF, off)
        if lp_len:
            end = min(lp_off + maxalign(lp_len), BLCKSZ)
            if lp_off + lp_len < end:
                page.data[lp_off + lp_len : end] = bytes(end - lp_off - lp_len)
    return page.to_bytes()
