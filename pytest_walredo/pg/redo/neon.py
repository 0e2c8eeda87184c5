"""Where Neon's heap redo differs from vanilla PostgreSQL's, for the heap and heap2 routines.

Neon's records decode into the heap/heap2 typed records (:mod:`pytest_walredo.pg.rmgr.neon`
routes rmgr 134), so the same routines apply them; these two rules are all that differs:

* Neon's heap redo (rmgr 134 in PG16/17, Neon's heapam in PG14/15) writes the logged t_cid
  as is (HEAP_COMBOCID untouched) and restores HEAP_COMBOCID from the infobits; vanilla
  redo goes through HeapTupleHeaderSetCmin/SetCmax, which clear it.
* Neon's rmgr prefixes its own elog(PANIC) messages with ``neon_rm_redo:``.
"""

from __future__ import annotations

from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID, RM_HEAP_ID, RM_NEON_ID
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import DecodedRecord

__all__ = ["panic_message", "writes_logged_cid"]


def writes_logged_cid(rec: DecodedRecord, pg_version: int, flavour: Flavour) -> bool:
    """Whether redo of ``rec`` stores the logged t_cid as is (Neon) rather than
    FirstCommandId with HEAP_COMBOCID cleared (vanilla)."""
    return rec.rmid == RM_NEON_ID or (
        flavour is Flavour.NEON and pg_version <= 15 and rec.rmid in (RM_HEAP_ID, RM_HEAP2_ID)
    )


def panic_message(rec: DecodedRecord, message: str) -> str:
    """A redo routine's own elog(PANIC) text for ``rec``."""
    return f"neon_rm_redo: {message}" if rec.rmid == RM_NEON_ID else message
