"""Neon's resource manager (RM_NEON_ID = 134, named "neon"), PG16/17 Neon flavour only.

Neon PostgreSQL 16/17 logs heap INSERT (0x00), DELETE (0x10), UPDATE (0x20), HOT_UPDATE
(0x30), LOCK (0x40) and MULTI_INSERT (0x50), each optionally with INIT_PAGE (0x80), through
this rmgr with cid-carrying structs (``access/neon_xlog.h`` in neondatabase/postgres,
``pgxn/neon_rmgr`` in neondatabase/neon). The typed records are the heap ones
(:mod:`.heap`, :mod:`.heap2`) with ``t_cid`` set; this module only routes decoding.
XLOG_NEON_FILE (0x60) is not modelled.
"""

from __future__ import annotations

from pytest_walredo.pg.rmgr._base import RmgrRecord
from pytest_walredo.pg.rmgr.heap import RM_NEON_ID, decode_heap
from pytest_walredo.pg.version import Flavour

__all__ = ["RM_NEON_ID", "decode_neon"]


def decode_neon(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a rmgr-134 record into the matching heap/heap2 typed record."""
    return decode_heap(RM_NEON_ID, info, main, blocks, pg_version, flavour)
