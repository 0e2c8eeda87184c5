"""Neon's resource manager (RM_NEON_ID = 134, named "neon"), PG16/17 Neon flavour only: routing.

Neon PostgreSQL 16/17 logs heap INSERT (0x00), DELETE (0x10), UPDATE (0x20), HOT_UPDATE
(0x30), LOCK (0x40) and MULTI_INSERT (0x50), each optionally with INIT_PAGE (0x80), through
this rmgr with cid-carrying structs (``access/neon_xlog.h`` in neondatabase/postgres,
``pgxn/neon_rmgr`` in neondatabase/neon). The typed records are the heap ones
(:mod:`.heap`, :mod:`.heap2`) with ``t_cid`` set, and their opcodes live with them; this
module only routes a rmgr-134 record to the heap or heap2 decoder. XLOG_NEON_FILE (0x60) is
not modelled.
"""

from __future__ import annotations

from pytest_walredo.pg.rmgr._base import RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.heap import decode_heap_op
from pytest_walredo.pg.rmgr.heap2 import decode_multi_insert
from pytest_walredo.pg.rmgr.heapam_xlog import (
    XLOG_HEAP_DELETE,
    XLOG_HEAP_HOT_UPDATE,
    XLOG_HEAP_INSERT,
    XLOG_HEAP_LOCK,
    XLOG_HEAP_UPDATE,
    XLOG_NEON_HEAP_DELETE,
    XLOG_NEON_HEAP_HOT_UPDATE,
    XLOG_NEON_HEAP_INSERT,
    XLOG_NEON_HEAP_LOCK,
    XLOG_NEON_HEAP_MULTI_INSERT,
    XLOG_NEON_HEAP_UPDATE,
    XLOG_NEON_INIT_PAGE,
    XLOG_NEON_OPMASK,
)
from pytest_walredo.pg.version import Flavour

__all__ = ["decode_neon"]

_HEAP_OP = {
    XLOG_NEON_HEAP_INSERT: XLOG_HEAP_INSERT,
    XLOG_NEON_HEAP_DELETE: XLOG_HEAP_DELETE,
    XLOG_NEON_HEAP_UPDATE: XLOG_HEAP_UPDATE,
    XLOG_NEON_HEAP_HOT_UPDATE: XLOG_HEAP_HOT_UPDATE,
    XLOG_NEON_HEAP_LOCK: XLOG_HEAP_LOCK,
}
"""The heap opcode each Neon opcode stands for (MULTI_INSERT goes to heap2)."""


def decode_neon(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a rmgr-134 record into the matching heap/heap2 typed record."""
    if flavour is not Flavour.NEON or pg_version < 16:
        raise UnsupportedRecord(
            f"rmgr neon (134) records exist only in Neon PostgreSQL 16/17, not {flavour.value} {pg_version}"
        )
    op = info & XLOG_NEON_OPMASK
    b0 = blocks.get(0, b"")
    if op == XLOG_NEON_HEAP_MULTI_INSERT:
        init = bool(info & XLOG_NEON_INIT_PAGE)
        return decode_multi_insert(main, b0, init, pg_version, flavour, neon_rmgr=True)
    heap_op = _HEAP_OP.get(op)
    if heap_op is None:
        raise UnsupportedRecord(f"rmgr neon info 0x{info:02X} is not supported by the model")
    return decode_heap_op(heap_op, info, main, b0, True, pg_version)
