"""seq_mask (``sequence.c``, the same in 14-17): LSN and checksum, and the unused space.
Sequence pages keep their hint bits: the one tuple's infomask is set by the redo routine
exactly as on the primary."""

from __future__ import annotations

from pytest_walredo.pg.mask._bufmask import header_and_free_space_mask

__all__ = ["seq_mask"]


def seq_mask(data: bytes, blkno: int) -> bytes:
    return header_and_free_space_mask(data)
