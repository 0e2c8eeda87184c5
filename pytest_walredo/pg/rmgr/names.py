"""Record names as pg_waldump prints them (``rmgr/NAME``), for every rmgr whose records touch
pages, PostgreSQL 14-17: each rmgr's ``rm_identify`` applied to the high nibble of xl_info.

The typed records of the model know their own names; this table also names the records the
model does not parse (hash, GIN, GiST, SP-GiST, BRIN, sequence, generic, and the btree and heap
records it does not model), which corpora need for their per-kind accounting. An info value
an rmgr does not name prints as ``UNKNOWN (hex)``, as pg_waldump does. Checked against the real
pg_waldump on real WAL by tests/test_corpus_build.py.
"""

from __future__ import annotations

from pytest_walredo.pg.rmgr.heapam_xlog import XLOG_HEAP_INIT_PAGE
from pytest_walredo.pg.rmgr.ids import (
    RM_BRIN_ID,
    RM_BTREE_ID,
    RM_GENERIC_ID,
    RM_GIN_ID,
    RM_GIST_ID,
    RM_HASH_ID,
    RM_HEAP2_ID,
    RM_HEAP_ID,
    RM_NEON_ID,
    RM_SEQ_ID,
    RM_SMGR_ID,
    RM_SPGIST_ID,
)
from pytest_walredo.pg.version import check_version
from pytest_walredo.pg.xlogrecord import XLR_RMGR_INFO_MASK

__all__ = ["record_name"]

_INIT = XLOG_HEAP_INIT_PAGE  # heap, heap2, neon and BRIN all use 0x80 for "+INIT"

_HEAP = {0x00: "INSERT", 0x10: "DELETE", 0x20: "UPDATE", 0x30: "TRUNCATE", 0x40: "HOT_UPDATE",
         0x50: "HEAP_CONFIRM", 0x60: "LOCK", 0x70: "INPLACE"}
_HEAP_INIT = (0x00, 0x20, 0x40)  # ops that can carry INIT_PAGE
_HEAP2_14 = {0x00: "REWRITE", 0x10: "PRUNE", 0x20: "VACUUM", 0x30: "FREEZE_PAGE", 0x40: "VISIBLE",
             0x50: "MULTI_INSERT", 0x60: "LOCK_UPDATED", 0x70: "NEW_CID"}
_HEAP2_17 = {**_HEAP2_14, 0x10: "PRUNE_ON_ACCESS", 0x20: "PRUNE_VACUUM_SCAN",
             0x30: "PRUNE_VACUUM_CLEANUP"}
_NEON = {0x00: "INSERT", 0x10: "DELETE", 0x20: "UPDATE", 0x30: "HOT_UPDATE", 0x40: "LOCK",
         0x50: "MULTI_INSERT"}
_NEON_INIT = (0x00, 0x20, 0x30, 0x50)
_BTREE = {0x00: "INSERT_LEAF", 0x10: "INSERT_UPPER", 0x20: "INSERT_META", 0x30: "SPLIT_L",
          0x40: "SPLIT_R", 0x50: "INSERT_POST", 0x60: "DEDUP", 0x70: "DELETE", 0x80: "UNLINK_PAGE",
          0x90: "UNLINK_PAGE_META", 0xA0: "NEWROOT", 0xB0: "MARK_PAGE_HALFDEAD", 0xC0: "VACUUM",
          0xD0: "REUSE_PAGE", 0xE0: "META_CLEANUP"}
_HASH = {0x00: "INIT_META_PAGE", 0x10: "INIT_BITMAP_PAGE", 0x20: "INSERT", 0x30: "ADD_OVFL_PAGE",
         0x40: "SPLIT_ALLOCATE_PAGE", 0x50: "SPLIT_PAGE", 0x60: "SPLIT_COMPLETE",
         0x70: "MOVE_PAGE_CONTENTS", 0x80: "SQUEEZE_PAGE", 0x90: "DELETE", 0xA0: "SPLIT_CLEANUP",
         0xB0: "UPDATE_META_PAGE", 0xC0: "VACUUM_ONE_PAGE"}
_GIN = {0x10: "CREATE_PTREE", 0x20: "INSERT", 0x30: "SPLIT", 0x40: "VACUUM_PAGE",
        0x50: "DELETE_PAGE", 0x60: "UPDATE_META_PAGE", 0x70: "INSERT_LISTPAGE",
        0x80: "DELETE_LISTPAGE", 0x90: "VACUUM_DATA_LEAF_PAGE"}
_GIST = {0x00: "PAGE_UPDATE", 0x10: "DELETE", 0x20: "PAGE_REUSE", 0x30: "PAGE_SPLIT",
         0x60: "PAGE_DELETE", 0x70: "ASSIGN_LSN"}
_SPGIST = {0x10: "ADD_LEAF", 0x20: "MOVE_LEAFS", 0x30: "ADD_NODE", 0x40: "SPLIT_TUPLE",
           0x50: "PICKSPLIT", 0x60: "VACUUM_LEAF", 0x70: "VACUUM_ROOT", 0x80: "VACUUM_REDIRECT"}
_BRIN = {0x00: "CREATE_INDEX", 0x10: "INSERT", 0x20: "UPDATE", 0x30: "SAMEPAGE_UPDATE",
         0x40: "REVMAP_EXTEND", 0x50: "DESUMMARIZE"}
_BRIN_INIT = (0x10, 0x20)
_SEQ = {0x00: "LOG"}
_SMGR = {0x10: "CREATE", 0x20: "TRUNCATE"}


def _with_init(table: dict[int, str], can_init: tuple[int, ...], info: int) -> str | None:
    op, init = info & 0x70, info & _INIT
    if init and op not in can_init:
        return None
    name = table.get(op)
    return None if name is None else name + ("+INIT" if init else "")


def record_name(rmid: int, info: int, pg_version: int) -> str | None:
    """pg_waldump's record name for ``rmid`` and ``info`` (low nibble ignored), or None when the
    rmgr is not one this table covers (XLOG, Transaction, Standby, ... touch no pages)."""
    check_version(pg_version)
    info &= XLR_RMGR_INFO_MASK
    name: str | None
    if rmid == RM_HEAP_ID:
        name = _with_init(_HEAP, _HEAP_INIT, info)
    elif rmid == RM_HEAP2_ID:
        name = _with_init(_HEAP2_17 if pg_version >= 17 else _HEAP2_14, (0x50,), info)
    elif rmid == RM_NEON_ID:
        name = _with_init(_NEON, _NEON_INIT, info)
    elif rmid == RM_BRIN_ID:
        name = _with_init(_BRIN, _BRIN_INIT, info)
    else:
        table = {RM_BTREE_ID: _BTREE, RM_HASH_ID: _HASH, RM_GIN_ID: _GIN, RM_GIST_ID: _GIST,
                 RM_SPGIST_ID: _SPGIST, RM_SEQ_ID: _SEQ, RM_SMGR_ID: _SMGR}.get(rmid)
        if table is None:
            return "Generic" if rmid == RM_GENERIC_ID else None
        name = table.get(info)
    return name if name is not None else f"UNKNOWN ({info:x})"
