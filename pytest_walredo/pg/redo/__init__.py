"""The redo model: apply one WAL record to one block, as Neon's walredo process does.

This is the oracle of the test suite and what the reference walredo server runs. It follows
PostgreSQL's redo routines (``xlog_redo``, every ``heap_xlog_*`` and heap2 routine, every
``btree_xlog_*`` routine, every GIN routine, every ``hash_xlog_*`` routine) for PostgreSQL 14-17 in both the
vanilla and the Neon flavour, and the walredo process's rules (``shared/walredo-behaviour.md``):
only the requested block is touched, through the read-buffer-for-redo prologue and epilogue of
:mod:`.buffer`.

One module per resource manager holds its routines (:mod:`.xlog`, :mod:`.heap`, :mod:`.heap2`,
:mod:`.btree` with :mod:`.btree_delete`, :mod:`.gin`, :mod:`.gist`, :mod:`.spgist`; :mod:`.hash` with :mod:`.hash_vacuum`; Neon's differences in :mod:`.neon`), each with a ``ROUTINES`` table from typed
record class to routine; :data:`ROUTINES` here joins them, and :func:`redo_record` decodes a
record and runs its routine.

Not modelled (the walredo process does them on pages that are not the target, or they do not
show in the target page): free space map updates (``XLogRecordPageWithFreeSpace``), hot
standby conflict resolution, relcache invalidations.

Error messages are PostgreSQL's own (one line); ``RedoError.context`` is the line PostgreSQL
prints as ``CONTEXT:`` (``WAL redo at X/Y for Heap/INSERT: off: 3, flags: 0x00``).
"""

from __future__ import annotations

import struct

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import PageError
from pytest_walredo.pg.redo import (
    brin,
    btree,
    btree_delete,
    generic,
    gin,
    gist,
    hash,
    hash_vacuum,
    heap,
    heap2,
    sequence,
    spgist,
    xlog,
)
from pytest_walredo.pg.redo.buffer import Apply, RedoError, Routine, Target, record_context
from pytest_walredo.pg.version import Flavour, check_version
from pytest_walredo.pg.xlogrecord import (
    SIZE_OF_XLOG_RECORD,
    DecodedRecord,
    RecordDecodeError,
    decode_record,
)

__all__ = ["ROUTINES", "RedoError", "redo_record"]


def _join(*tables: dict[type[rmgr.RmgrRecord], Routine]) -> dict[type[rmgr.RmgrRecord], Routine]:
    out: dict[type[rmgr.RmgrRecord], Routine] = {}
    for table in tables:
        twice = set(out) & set(table)
        if twice:
            raise RuntimeError(f"two redo routines for {sorted(c.__name__ for c in twice)}")
        out.update(table)
    return out


ROUTINES: dict[type[rmgr.RmgrRecord], Routine] = _join(
    xlog.ROUTINES, heap.ROUTINES, heap2.ROUTINES, btree.ROUTINES, btree_delete.ROUTINES,
    sequence.ROUTINES, generic.ROUTINES, brin.ROUTINES,
    gist.ROUTINES, spgist.ROUTINES,
    gin.ROUTINES,
    hash.ROUTINES, hash_vacuum.ROUTINES,
)
"""The redo routine of every typed record class the model can apply."""


def _decode_error_message(exc: RecordDecodeError, pg_version: int, end_lsn: int) -> str:
    """PostgreSQL's ``failed to decode WAL record: ...`` line. The position printed is the
    reader's ReadRecPtr: the end LSN in the PG14 walredo, still 0/0 in PG15+ (set only after
    decoding)."""
    at = format_lsn(end_lsn) if pg_version == 14 else "0/0"
    detail = exc.detail
    if exc.field == "block id" and detail.startswith("invalid block id "):
        detail = "invalid block_id " + detail[len("invalid block id ") :]
    elif exc.field == "block id" and detail.startswith("out-of-order block id "):
        detail = "out-of-order block_id " + detail[len("out-of-order block id ") :].split()[0]
    return f"failed to decode WAL record: {detail} at {at}"


def redo_record(
    page: bytes | None,
    *,
    spcnode: int,
    dbnode: int,
    relnode: int,
    forknum: int,
    blkno: int,
    end_lsn: int,
    record: bytes,
    pg_version: int,
    flavour: Flavour,
) -> bytes | None:
    """Apply one raw XLogRecord (header included) to block (rel, fork, blkno) whose current
    content is ``page`` (None = never initialized). Returns the new page, or ``page`` itself
    when the record does not change the block. Raises :class:`RedoError`.
    """
    check_version(pg_version)
    flavour = Flavour.parse(flavour)
    if page is not None and len(page) != BLCKSZ:
        raise ValueError(f"page is {len(page)} bytes, expected {BLCKSZ}")
    if len(record) < SIZE_OF_XLOG_RECORD:
        raise RedoError("insufficient data left in message")
    (tot_len,) = struct.unpack_from("<I", record, 0)
    if tot_len != len(record):
        signed = tot_len - (1 << 32) if tot_len >= 1 << 31 else tot_len
        raise RedoError(f"mismatch between record ({signed}) and message size ({len(record)})")
    try:
        rec = decode_record(record, pg_version)
    except RecordDecodeError as exc:
        raise RedoError(_decode_error_message(exc, pg_version, end_lsn)) from None
    target = Target(spcnode, dbnode, relnode, forknum, blkno)
    if rec.rmid not in rmgr.RMGR_NAMES:
        raise RedoError(
            f"resource manager with ID {rec.rmid} not registered (the real walredo process"
            f" crashes on this record)",
            f"WAL redo at {format_lsn(end_lsn)} for {rmgr.rmgr_name(rec.rmid)}",
        )
    try:
        body: rmgr.RmgrRecord | None = rmgr.parse(rec, pg_version, flavour)
    except rmgr.UnsupportedRecord as exc:
        return _unsupported(page, target, end_lsn, rec, pg_version, flavour, str(exc))
    except (rmgr.RmgrDecodeError, ValueError) as exc:
        raise RedoError(
            f"{rmgr.rmgr_name(rec.rmid)} record (info 0x{rec.info:02X}) is malformed: {exc}",
            record_context(rec, None, end_lsn, pg_version, flavour),
        ) from None
    assert body is not None
    routine = ROUTINES.get(type(body))
    if routine is None:
        raise RedoError(
            f"{rmgr.rmgr_name(rec.rmid)}/{body.identify(pg_version, flavour)} (info"
            f" 0x{rec.info:02X}) is not supported by the redo model",
            record_context(rec, body, end_lsn, pg_version, flavour),
        )
    a = Apply(page, target, end_lsn, rec, body, pg_version, flavour)
    try:
        routine(a, body)
    except PageError as exc:
        raise a.fail(str(exc)) from None
    return a.result()


def _unsupported(page: bytes | None, target: Target, end_lsn: int, rec: DecodedRecord,
                 pg_version: int, flavour: Flavour, why: str) -> bytes | None:
    """A record of a PostgreSQL resource manager the model does not interpret.

    Its redo routine would read the target block through XLogReadBufferForRedo, so an
    applicable image for the target is restored exactly as for any record. A record none of
    whose blocks is the target cannot change it. Anything else is an error naming the
    rmgr and info.
    """
    a = Apply(page, target, end_lsn, rec, None, pg_version, flavour)
    mine = [b for b in rec.blocks if target.matches(b)]
    if rec.rmid in rmgr.modelled_rmgrs() or (mine and not all(b.apply_image for b in mine)):
        raise RedoError(
            f"{rmgr.rmgr_name(rec.rmid)} record info 0x{rec.info & 0xF0:02X} is not supported by"
            f" the redo model ({why})",
            a.context,
        )
    for b in mine:
        a.read_for_redo(b.block_id, zero=b.will_init)
    return a.result()
