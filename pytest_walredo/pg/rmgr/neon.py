"""Neon's resource manager (RM_NEON_ID = 134, named "neon"), PG16/17 Neon flavour only: routing.

Neon PostgreSQL 16/17 logs heap INSERT (0x00), DELETE (0x10), UPDATE (0x20), HOT_UPDATE
(0x30), LOCK (0x40) and MULTI_INSERT (0x50), each optionally with INIT_PAGE (0x80), through
this rmgr with cid-carrying structs (``access/neon_xlog.h`` in neondatabase/postgres,
``pgxn/neon_rmgr`` in neondatabase/neon). The typed records are the heap ones
(:mod:`.heap`, :mod:`.heap2`) with ``t_cid`` set, and their opcodes live with them; this
module only routes a rmgr-134 record to the heap or heap2 decoder. XLOG_NEON_FILE (0x60) is
not modelled.

:func:`flavour_dependent_layout` says which records are laid out differently by the two
flavours (a vanilla walredo cannot read the Neon layout, nor the other way round).
"""

from __future__ import annotations

from pytest_walredo.pg.rmgr._base import RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.heap import decode_heap_op
from pytest_walredo.pg.rmgr.heap2 import XLOG_HEAP2_MULTI_INSERT, decode_multi_insert
from pytest_walredo.pg.rmgr.heapam_xlog import (
    XLOG_HEAP_DELETE,
    XLOG_HEAP_HOT_UPDATE,
    XLOG_HEAP_INSERT,
    XLOG_HEAP_LOCK,
    XLOG_HEAP_OPMASK,
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
from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID, RM_HEAP_ID, RM_NEON_ID
from pytest_walredo.pg.version import Flavour

__all__ = ["decode_neon", "flavour_dependent_layout"]

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


_CID_HEAP_OPS = frozenset({XLOG_HEAP_INSERT, XLOG_HEAP_DELETE, XLOG_HEAP_UPDATE, XLOG_HEAP_HOT_UPDATE,
                           XLOG_HEAP_LOCK})
"""Heap opcodes whose structs carry Neon's ``t_cid`` in PG14/15 (xl_heap_header, xl_heap_delete,
xl_heap_update, xl_heap_lock); INPLACE and CONFIRM are laid out as in vanilla PostgreSQL."""


def flavour_dependent_layout(rmid: int, info: int, pg_version: int) -> bool:
    """Whether a record of ``rmid``/``info`` in PostgreSQL ``pg_version`` is laid out differently
    in vanilla and Neon WAL, so that a walredo of the other flavour cannot replay it.

    Facts (Neon's fork, see :class:`~pytest_walredo.pg.version.Flavour`): in PG14/15 Neon adds
    ``t_cid`` to heap INSERT/DELETE/UPDATE/HOT_UPDATE/LOCK and to heap2 MULTI_INSERT's tuples,
    in place (same rmgr ids); in PG16/17 Neon leaves rmgr 10 and 9 as upstream has them and
    logs its cid-carrying records through rmgr 134, which vanilla PostgreSQL does not have.
    Every other record (other rmgrs, heap INPLACE/CONFIRM, the rest of heap2) reads the same
    in both flavours. Where the two flavours' *redo* differs on such records (heap2 VISIBLE's
    pd_lsn, a btree split's cycle id) the masking rules hide it."""
    if rmid == RM_NEON_ID:
        return True
    if pg_version >= 16:
        return False
    if rmid == RM_HEAP_ID:
        return (info & XLOG_HEAP_OPMASK) in _CID_HEAP_OPS
    return rmid == RM_HEAP2_ID and (info & XLOG_HEAP_OPMASK) == XLOG_HEAP2_MULTI_INSERT
