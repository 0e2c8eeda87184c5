"""generic_mask (``generic_xlog.c``, the same in 14-17): LSN and checksum, and the unused
space. Generic WAL (used by extensions such as bloom) logs page deltas of whole regions, hint
bits included, so nothing else is masked."""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import header_and_free_space_mask

__all__ = ["generic_mask"]


def generic_mask(data: bytes, blkno: int) -> bytes:
    return header_and_free_space_mask(data)
