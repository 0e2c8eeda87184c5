"""Resource manager ids and the names pg_waldump prints for them (``access/rmgrlist.h``,
PostgreSQL 14-17, plus Neon's custom rmgr 134). The one owner of every rmgr id: the
per-rmgr modules (:mod:`.xlog`, :mod:`.heap`, ...) import theirs from here.
"""

from __future__ import annotations

__all__ = [
    "RMGR_NAMES",
    "RM_BRIN_ID",
    "RM_BTREE_ID",
    "RM_CLOG_ID",
    "RM_COMMIT_TS_ID",
    "RM_DBASE_ID",
    "RM_GENERIC_ID",
    "RM_GIN_ID",
    "RM_GIST_ID",
    "RM_HASH_ID",
    "RM_HEAP2_ID",
    "RM_HEAP_ID",
    "RM_LOGICALMSG_ID",
    "RM_MULTIXACT_ID",
    "RM_NEON_ID",
    "RM_RELMAP_ID",
    "RM_REPLORIGIN_ID",
    "RM_SEQ_ID",
    "RM_SMGR_ID",
    "RM_SPGIST_ID",
    "RM_STANDBY_ID",
    "RM_TBLSPC_ID",
    "RM_XACT_ID",
    "RM_XLOG_ID",
    "rmgr_name",
]

RM_XLOG_ID = 0
RM_XACT_ID = 1
RM_SMGR_ID = 2
RM_CLOG_ID = 3
RM_DBASE_ID = 4
RM_TBLSPC_ID = 5
RM_MULTIXACT_ID = 6
RM_RELMAP_ID = 7
RM_STANDBY_ID = 8
RM_HEAP2_ID = 9
RM_HEAP_ID = 10
RM_BTREE_ID = 11
RM_HASH_ID = 12
RM_GIN_ID = 13
RM_GIST_ID = 14
RM_SEQ_ID = 15
RM_SPGIST_ID = 16
RM_BRIN_ID = 17
RM_COMMIT_TS_ID = 18
RM_REPLORIGIN_ID = 19
RM_GENERIC_ID = 20
RM_LOGICALMSG_ID = 21
RM_NEON_ID = 134
"""Neon's custom resource manager ("neon", PG16/17 Neon flavour only)."""

RMGR_NAMES: dict[int, str] = {
    RM_XLOG_ID: "XLOG",
    RM_XACT_ID: "Transaction",
    RM_SMGR_ID: "Storage",
    RM_CLOG_ID: "CLOG",
    RM_DBASE_ID: "Database",
    RM_TBLSPC_ID: "Tablespace",
    RM_MULTIXACT_ID: "MultiXact",
    RM_RELMAP_ID: "RelMap",
    RM_STANDBY_ID: "Standby",
    RM_HEAP2_ID: "Heap2",
    RM_HEAP_ID: "Heap",
    RM_BTREE_ID: "Btree",
    RM_HASH_ID: "Hash",
    RM_GIN_ID: "Gin",
    RM_GIST_ID: "Gist",
    RM_SEQ_ID: "Sequence",
    RM_SPGIST_ID: "SPGist",
    RM_BRIN_ID: "BRIN",
    RM_COMMIT_TS_ID: "CommitTs",
    RM_REPLORIGIN_ID: "ReplicationOrigin",
    RM_GENERIC_ID: "Generic",
    RM_LOGICALMSG_ID: "LogicalMessage",
    RM_NEON_ID: "neon",
}
"""Every rmgr id a walredo process knows, with pg_waldump's name for it."""


def rmgr_name(rmid: int) -> str:
    """pg_waldump's name for ``rmid`` (custom ids print as ``custom<N>``)."""
    return RMGR_NAMES.get(rmid, f"custom{rmid:03d}" if rmid >= 128 else f"rmgr{rmid}")
