"""PostgreSQL's data page checksum (``pg_checksum_page``, ``storage/checksum_impl.h``).

The algorithm, as PostgreSQL documents it: the 8192-byte page is read as 64 rows of 32
little-endian uint32 words; 32 parallel FNV-1a-like hashes, each started from its own base
offset, take one column each (``h = (h ^ w) * FNV_PRIME ^ ((h ^ w) >> 17)``), then two more
rounds with zero words; the 32 results are XORed together, the block number is XORed in, and
the value is reduced to 16 bits as ``(sum % 65535) + 1`` (so it is never 0). pd_checksum
itself counts as zero while hashing.

Written by hand because no Python package implements this PostgreSQL-specific variant (it
is not plain FNV-1a, and the 32-lane layout and final reduction are fixed by PostgreSQL's
on-disk format). ``tests/test_pg_checksum.py`` checks it against pages written by a real
``initdb --data-checksums`` cluster.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.constants import BLCKSZ

__all__ = ["N_SUMS", "pg_checksum_block", "pg_checksum_page"]

N_SUMS = 32
FNV_PRIME = 16777619
_MASK = 0xFFFFFFFF

# Initial states of the 32 parallel hashes (the values PostgreSQL uses).
CHECKSUM_BASE_OFFSETS = (
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A,
    0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA,
    0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE,
    0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
    0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
)  # fmt: skip

_WORDS = struct.Struct(f"<{BLCKSZ // 4}I")
_ROWS = BLCKSZ // (4 * N_SUMS)  # 64


def pg_checksum_block(page: bytes | bytearray | memoryview) -> int:
    """The 32-bit block hash of ``page`` exactly as given (pd_checksum included as is)."""
    if len(page) != BLCKSZ:
        raise ValueError(f"a page is {BLCKSZ} bytes, got {len(page)}")
    words = _WORDS.unpack(page)
    result = 0
    prime = FNV_PRIME
    for j in range(N_SUMS):
        h = CHECKSUM_BASE_OFFSETS[j]
        # column j: words j, j+32, j+64, ... then two zero words
        for w in words[j::N_SUMS]:
            t = h ^ w
            h = ((t * prime) & _MASK) ^ (t >> 17)
        for _ in range(2):
            h = ((h * prime) & _MASK) ^ (h >> 17)
        result ^= h
    return result


def pg_checksum_page(page: bytes | bytearray | memoryview, blkno: int) -> int:
    """The 16-bit checksum PostgreSQL stores in pd_checksum for block ``blkno``.

    The stored pd_checksum (bytes 8-9) is treated as zero. PostgreSQL only checksums
    initialized pages (pd_upper != 0); this function does not check that.
    """
    if len(page) != BLCKSZ:
        raise ValueError(f"a page is {BLCKSZ} bytes, got {len(page)}")
    if not 0 <= blkno <= _MASK:
        raise ValueError(f"block number {blkno} does not fit in 32 bits")
    buf = bytearray(page)
    buf[8:10] = b"\x00\x00"
    checksum = pg_checksum_block(buf) ^ blkno
    return (checksum % 65535) + 1
