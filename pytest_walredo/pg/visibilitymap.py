"""The visibility map's geometry and bits (``access/visibilitymapdefs.h``, ``visibilitymap.c``).

A visibility-map page (fork :data:`~pytest_walredo.pg.constants.VISIBILITYMAP_FORKNUM`) is a
standard page whose contents after the MAXALIGNed 24-byte header are a bitmap with two bits
per heap block: ALL_VISIBLE and ALL_FROZEN. Heap block ``n`` lives in map block
``n // HEAPBLOCKS_PER_PAGE``, in the byte and bit pair :func:`map_position` gives.
"""

from __future__ import annotations

from pytest_walredo.pg.constants import BLCKSZ, maxalign
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER

__all__ = [
    "BITS_PER_HEAPBLOCK",
    "HEAPBLOCKS_PER_BYTE",
    "HEAPBLOCKS_PER_PAGE",
    "MAPSIZE",
    "VISIBILITYMAP_ALL_FROZEN",
    "VISIBILITYMAP_ALL_VISIBLE",
    "VISIBILITYMAP_VALID_BITS",
    "VISIBILITYMAP_XLOG_CATALOG_REL",
    "map_block",
    "map_position",
]

VISIBILITYMAP_ALL_VISIBLE = 0x01
VISIBILITYMAP_ALL_FROZEN = 0x02
VISIBILITYMAP_VALID_BITS = 0x03
VISIBILITYMAP_XLOG_CATALOG_REL = 0x04
"""PG16+: set in xl_heap_visible.flags (never in the map) when the relation is a catalog."""

BITS_PER_HEAPBLOCK = 2
HEAPBLOCKS_PER_BYTE = 8 // BITS_PER_HEAPBLOCK
_MAP_START = maxalign(SIZE_OF_PAGE_HEADER)
MAPSIZE = BLCKSZ - _MAP_START
HEAPBLOCKS_PER_PAGE = MAPSIZE * HEAPBLOCKS_PER_BYTE


def map_block(heap_blkno: int) -> int:
    """The visibility-map block that holds heap block ``heap_blkno``'s bits."""
    return heap_blkno // HEAPBLOCKS_PER_PAGE


def map_position(heap_blkno: int) -> tuple[int, int]:
    """(byte offset in the map page, bit shift) of heap block ``heap_blkno``'s bit pair."""
    in_page = heap_blkno % HEAPBLOCKS_PER_PAGE
    return (_MAP_START + in_page // HEAPBLOCKS_PER_BYTE,
            (heap_blkno % HEAPBLOCKS_PER_BYTE) * BITS_PER_HEAPBLOCK)
