"""XLOG records (RM_XLOG_ID = 0): full-page images, and every other XLOG record of 14-17.

XLOG_FPI (0xB0) carries one or more block references with images and no main data
(log_newpage); XLOG_FPI_FOR_HINT (0xA0) the same, logged when a hint-bit change must be
WAL-protected (checksums or wal_log_hints). Facts from PostgreSQL's
``src/include/catalog/pg_control.h`` and ``xlogdesc.c`` (whose description for both is
empty).

No other XLOG record of PostgreSQL 14-17 names a block: checkpoints, NOOP, NEXTOID, SWITCH,
BACKUP_END, PARAMETER_CHANGE, RESTORE_POINT, FPW_CHANGE, END_OF_RECOVERY,
OVERWRITE_CONTRECORD and (17) CHECKPOINT_REDO update shared state of the server, never a
page. They decode into :class:`XlogNoPage` (main data kept as logged) so that redo can leave
the requested block alone. Main data layouts (little-endian, x86-64 alignment):

- CheckPoint (88 bytes): redo u64, ThisTimeLineID u32, PrevTimeLineID u32, fullPageWrites
  bool (+3; PG17 puts wal_level i32 at byte 20), nextXid u64 (epoch << 32 | xid) at 24,
  nextOid, nextMulti, nextMultiOffset, oldestXid, oldestXidDB, oldestMulti, oldestMultiDB
  (u32 each, 32..59), time i64 at 64, oldestCommitTsXid, newestCommitTsXid, oldestActiveXid
  (u32 each, 72..83);
- NEXTOID: Oid u32; BACKUP_END: startpoint u64; FPW_CHANGE: bool; CHECKPOINT_REDO: wal_level
  i32; RESTORE_POINT: rp_time i64, rp_name char[64];
- xl_parameter_change: MaxConnections, max_worker_processes, max_wal_senders,
  max_prepared_xacts, max_locks_per_xact, wal_level (i32 each), wal_log_hints,
  track_commit_timestamp (bool each);
- xl_end_of_recovery: end_time i64, ThisTimeLineID u32, PrevTimeLineID u32 (PG17 adds
  wal_level i32); xl_overwrite_contrecord: overwritten_lsn u64, overwrite_time i64.

Descriptions are pg_waldump's; END_OF_RECOVERY and OVERWRITE_CONTRECORD print a timestamp
as pg_waldump does in the UTC time zone.
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from typing import ClassVar

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord, unpack
from pytest_walredo.pg.rmgr.ids import RM_XLOG_ID
from pytest_walredo.pg.version import Flavour

__all__ = ["RECORDS", "XLOG_FPI", "XLOG_FPI_FOR_HINT", "XlogFpi", "XlogNoPage", "decode_xlog"]

XLOG_CHECKPOINT_SHUTDOWN = 0x00
XLOG_CHECKPOINT_ONLINE = 0x10
XLOG_NOOP = 0x20
XLOG_NEXTOID = 0x30
XLOG_SWITCH = 0x40
XLOG_BACKUP_END = 0x50
XLOG_PARAMETER_CHANGE = 0x60
XLOG_RESTORE_POINT = 0x70
XLOG_FPW_CHANGE = 0x80
XLOG_END_OF_RECOVERY = 0x90
XLOG_FPI_FOR_HINT = 0xA0
XLOG_FPI = 0xB0
XLOG_OVERWRITE_CONTRECORD = 0xD0
XLOG_CHECKPOINT_REDO = 0xE0  # PostgreSQL 17

_NAMES = {
    XLOG_CHECKPOINT_SHUTDOWN: "CHECKPOINT_SHUTDOWN",
    XLOG_CHECKPOINT_ONLINE: "CHECKPOINT_ONLINE",
    XLOG_NOOP: "NOOP",
    XLOG_NEXTOID: "NEXTOID",
    XLOG_SWITCH: "SWITCH",
    XLOG_BACKUP_END: "BACKUP_END",
    XLOG_PARAMETER_CHANGE: "PARAMETER_CHANGE",
    XLOG_RESTORE_POINT: "RESTORE_POINT",
    XLOG_FPW_CHANGE: "FPW_CHANGE",
    XLOG_END_OF_RECOVERY: "END_OF_RECOVERY",
    XLOG_FPI_FOR_HINT: "FPI_FOR_HINT",
    XLOG_FPI: "FPI",
    XLOG_OVERWRITE_CONTRECORD: "OVERWRITE_CONTRECORD",
    XLOG_CHECKPOINT_REDO: "CHECKPOINT_REDO",
}


def xlog_record_name(info: int) -> str | None:
    """pg_waldump's name of the XLOG record with ``info`` (low nibble ignored), or None."""
    return _NAMES.get(info & 0xF0)


@dataclass(frozen=True)
class XlogFpi(RmgrRecord):
    """XLOG_FPI (0xB0) or, with ``for_hint``, XLOG_FPI_FOR_HINT (0xA0). All content is in
    the block references' images; there is no main data."""

    RMGR: ClassVar[str] = "XLOG"
    for_hint: bool = False

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_XLOG_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_FPI_FOR_HINT if self.for_hint else XLOG_FPI

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "FPI_FOR_HINT" if self.for_hint else "FPI"


_WAL_LEVELS = {0: "minimal", 1: "replica", 2: "logical"}
_CHECKPOINT = struct.Struct("<QII?3xiQIIIIIII4xqIII4x")
_PARAMETER_CHANGE = struct.Struct("<iiiiii??")
_MAIN_SIZE = {XLOG_CHECKPOINT_SHUTDOWN: _CHECKPOINT.size, XLOG_CHECKPOINT_ONLINE: _CHECKPOINT.size,
              XLOG_NEXTOID: 4, XLOG_BACKUP_END: 8, XLOG_PARAMETER_CHANGE: _PARAMETER_CHANGE.size,
              XLOG_FPW_CHANGE: 1, XLOG_END_OF_RECOVERY: 16, XLOG_OVERWRITE_CONTRECORD: 16,
              XLOG_CHECKPOINT_REDO: 4}
"""The main data each record's description reads (END_OF_RECOVERY: 4 more in PG17)."""
_PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def _on(flag: bool, yes: str = "true", no: str = "false") -> str:
    return yes if flag else no


def _timestamptz(usecs: int) -> str:
    """``timestamptz_to_str`` in the UTC time zone: ``2026-11-27 14:58:00.123+00``."""
    t = _PG_EPOCH + datetime.timedelta(microseconds=usecs)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + "+00"


@dataclass(frozen=True)
class XlogNoPage(RmgrRecord):
    """An XLOG record that names no page (every XLOG op but FPI / FPI_FOR_HINT): ``op`` and
    its main data as logged (CHECKPOINT_REDO exists in PostgreSQL 17 only). Redo leaves every
    page alone."""

    RMGR: ClassVar[str] = "XLOG"
    op: int
    main: bytes = b""

    def __post_init__(self) -> None:
        if self.op not in _NAMES or self.op in (XLOG_FPI, XLOG_FPI_FOR_HINT):
            raise ValueError(f"XLOG op 0x{self.op:02X} is not a record that names no page")

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_XLOG_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.op

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return _NAMES[self.op]

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return self.main

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        op, m = self.op, self.main
        if op in (XLOG_CHECKPOINT_SHUTDOWN, XLOG_CHECKPOINT_ONLINE):
            (redo, tli, prev, fpw, wal_level, next_xid, oid, multi, moff, oxid, oxid_db, omulti,
             omulti_db, _time, ots, nts, oact) = unpack(_CHECKPOINT.format, m, 0, "XLOG checkpoint")
            level = f"wal_level {_WAL_LEVELS.get(wal_level, '?')}; " if pg_version >= 17 else ""
            return (f"redo {format_lsn(redo)}; tli {tli}; prev tli {prev}; fpw {_on(fpw)}; {level}"
                    f"xid {next_xid >> 32}:{next_xid & 0xFFFFFFFF}; oid {oid}; multi {multi}; offset {moff}; "
                    f"oldest xid {oxid} in DB {oxid_db}; oldest multi {omulti} in DB {omulti_db}; "
                    f"oldest/newest commit timestamp xid: {ots}/{nts}; oldest running xid {oact}; "
                    + ("shutdown" if op == XLOG_CHECKPOINT_SHUTDOWN else "online"))
        if op == XLOG_NEXTOID:
            return str(unpack("<I", m, 0, "XLOG NEXTOID")[0])
        if op == XLOG_RESTORE_POINT:
            return bytes(m[8:72]).split(b"\0", 1)[0].decode("utf-8", "replace")
        if op == XLOG_BACKUP_END:
            return format_lsn(unpack("<Q", m, 0, "XLOG BACKUP_END")[0])
        if op == XLOG_PARAMETER_CHANGE:
            conns, workers, senders, prepared, locks, wal_level, hints, ts = unpack(
                _PARAMETER_CHANGE.format, m, 0, "XLOG PARAMETER_CHANGE")
            return (f"max_connections={conns} max_worker_processes={workers} max_wal_senders={senders} "
                    f"max_prepared_xacts={prepared} max_locks_per_xact={locks} "
                    f"wal_level={_WAL_LEVELS.get(wal_level, '?')} wal_log_hints={_on(hints, 'on', 'off')} "
                    f"track_commit_timestamp={_on(ts, 'on', 'off')}")
        if op == XLOG_FPW_CHANGE:
            return _on(bool(unpack("<B", m, 0, "XLOG FPW_CHANGE")[0]))
        if op == XLOG_END_OF_RECOVERY:
            end, tli, prev = unpack("<qII", m, 0, "XLOG END_OF_RECOVERY")
            level = ""
            if pg_version >= 17:
                level = f"; wal_level {_WAL_LEVELS.get(unpack('<i', m, 16, 'XLOG END_OF_RECOVERY')[0], '?')}"
            return f"tli {tli}; prev tli {prev}; time {_timestamptz(end)}{level}"
        if op == XLOG_OVERWRITE_CONTRECORD:
            lsn, when = unpack("<Qq", m, 0, "XLOG OVERWRITE_CONTRECORD")
            return f"lsn {format_lsn(lsn)}; time {_timestamptz(when)}"
        if op == XLOG_CHECKPOINT_REDO:
            return f"wal_level {_WAL_LEVELS.get(unpack('<i', m, 0, 'XLOG CHECKPOINT_REDO')[0], '?')}"
        return ""  # NOOP, SWITCH


def decode_xlog(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    op = info & 0xF0
    if op in (XLOG_FPI, XLOG_FPI_FOR_HINT):
        if main:
            raise RmgrDecodeError(f"XLOG {_NAMES[op]} has {len(main)} main data byte(s), expected none")
        if blocks:
            raise RmgrDecodeError(
                f"XLOG {_NAMES[op]} has block data on block(s) {sorted(blocks)}, expected only images"
            )
        return XlogFpi(op == XLOG_FPI_FOR_HINT)
    if op in _NAMES and (op != XLOG_CHECKPOINT_REDO or pg_version >= 17):
        if blocks:
            raise RmgrDecodeError(f"XLOG {_NAMES[op]} has block data on block(s) {sorted(blocks)}, expected none")
        need = _MAIN_SIZE.get(op, 0) + (4 if op == XLOG_END_OF_RECOVERY and pg_version >= 17 else 0)
        if len(main) < need:
            raise RmgrDecodeError(f"XLOG {_NAMES[op]} main data is {len(main)} bytes, expected at least {need}")
        return XlogNoPage(op, bytes(main))
    raise UnsupportedRecord(
        f"rmgr XLOG info {_NAMES.get(op, 'UNKNOWN')} (0x{info:02X}) is not supported by the model"
    )


RECORDS: tuple[type[RmgrRecord], ...] = (XlogFpi, XlogNoPage)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
