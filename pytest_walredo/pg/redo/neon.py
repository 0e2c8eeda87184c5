"""Where Neon's redo differs from vanilla PostgreSQL's.

Heap and heap2 (Neon's records decode into the heap/heap2 typed records,
:mod:`pytest_walredo.pg.rmgr.neon` routes rmgr 134, so the same routines apply them):

* Neon's heap redo (rmgr 134 in PG16/17, Neon's heapam in PG14/15) writes the logged t_cid
  as is (HEAP_COMBOCID untouched) and restores HEAP_COMBOCID from the infobits; vanilla
  redo goes through HeapTupleHeaderSetCmin/SetCmax, which clear it.
* Neon's rmgr prefixes its own elog(PANIC) messages with ``neon_rm_redo:``.
* heap2 VISIBLE sets the heap page's pd_lsn to the record's end LSN unconditionally; vanilla
  PostgreSQL does so only when ``XLogHintBitIsNeeded()`` (data checksums or wal_log_hints),
  which is never the case in the walredo process. Neon's fork, ``heap_xlog_visible``:
  PG14 neondatabase/postgres#244, PG15 #245 (Nov 2022), carried into the 16/17 branches
  (``if (true || XLogHintBitIsNeeded())`` in the current sources); PG17 checked against a
  real Neon walredo.

Btree (Neon's fork, ``btree_xlog_split``, neondatabase/postgres#538-#541 for PG17/16/15/14):

* after a split, when the original (left) page's block reference carries a full-page image
  (applied or not), the new right page's btpo_cycleid is taken from that image: from its last
  2 bytes as stored when it is not compressed, else from the decompressed page. (When the
  left page is the one requested, the right page is not, so this only shows on the right.)

GIN (Neon's fork, ``ginxlog.c``: neondatabase/postgres#428, May 2024, "Do not produce error if
gin page is not restored in redo", read in the REL_14_STABLE_neon sources; taken into Neon with
neondatabase/neon#7876 for every version; ``shared/walredo-behaviour.md`` lists it for Neon's
PG17):

* SPLIT: upstream fails unless each split page is restored from its image; the fork also
  accepts a page that reads as "already done" (BLK_DONE: in the walredo process every block
  but the requested one, and the requested one when the record's LSN is not past its pd_lsn).
  A requested page that needs redo and has no image is still an error.
* VACUUM_PAGE: upstream fails unless the page is restored; the fork never fails (a page not
  restored is left as it is).
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.rmgr.ids import RM_HEAP2_ID, RM_HEAP_ID, RM_NEON_ID
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import DecodedRecord

__all__ = [
    "gin_accepts_unrestored",
    "gin_vacuum_page_never_fails",
    "panic_message",
    "split_right_cycleid",
    "visible_sets_heap_lsn",
    "writes_logged_cid",
]


def writes_logged_cid(rec: DecodedRecord, pg_version: int, flavour: Flavour) -> bool:
    """Whether redo of ``rec`` stores the logged t_cid as is (Neon) rather than
    FirstCommandId with HEAP_COMBOCID cleared (vanilla)."""
    return rec.rmid == RM_NEON_ID or (
        flavour is Flavour.NEON and pg_version <= 15 and rec.rmid in (RM_HEAP_ID, RM_HEAP2_ID)
    )


def panic_message(rec: DecodedRecord, message: str) -> str:
    """A redo routine's own elog(PANIC) text for ``rec``."""
    return f"neon_rm_redo: {message}" if rec.rmid == RM_NEON_ID else message


def visible_sets_heap_lsn(flavour: Flavour) -> bool:
    """Whether heap2 VISIBLE redo sets the heap page's pd_lsn (Neon: always; vanilla: never
    in a walredo process, which has neither data checksums nor wal_log_hints)."""
    return flavour is Flavour.NEON


def gin_accepts_unrestored(flavour: Flavour) -> bool:
    """Whether GIN SPLIT redo accepts a split page that reads as already done (BLK_DONE)
    instead of restored from its image (Neon: yes; upstream: an error)."""
    return flavour is Flavour.NEON


def gin_vacuum_page_never_fails(flavour: Flavour) -> bool:
    """Whether GIN VACUUM_PAGE redo leaves a page that was not restored from its image alone
    (Neon) rather than failing (upstream)."""
    return flavour is Flavour.NEON


def split_right_cycleid(rec: DecodedRecord, flavour: Flavour) -> int | None:
    """The btpo_cycleid Neon's split redo gives the new right page (block 1), or None to keep
    PostgreSQL's 0: the cycle id in block 0's full-page image, when it has one."""
    if flavour is not Flavour.NEON:
        return None
    b0 = rec.block(0)
    if b0 is None or b0.image is None:
        return None
    image = b0.image
    if not image.is_compressed:
        if len(image.data) < 2:
            return None
        return int(struct.unpack_from("<H", image.data, len(image.data) - 2)[0])
    try:
        page = image.restore_page()
    except ValueError:
        return None  # the fork ignores the failure (the cycle id is then undefined); keep 0
    return int(struct.unpack_from("<H", page, len(page) - 2)[0])
