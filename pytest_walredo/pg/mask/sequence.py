"""seq_mask (``sequence.c``, the same in 14-17): LSN and checksum, and the unused space.
Sequence pages keep their hint bits: the one tuple's infomask is set by the redo routine
exactly as on the primary."""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import mask_lsn_and_checksum, mask_unused_space
from pytest_walredo.pg.page import Page

__all__ = ["seq_mask"]


def seq_mask(data: bytes, blkno: int) -> bytes:
    page = Page(data)
    mask_lsn_and_checksum(page)
    mask_unused_space(page)
    return page.to_bytes()
