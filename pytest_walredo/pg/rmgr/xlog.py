"""XLOG records (RM_XLOG_ID = 0) the model supports: full-page images.

XLOG_FPI (0xB0) carries one or more block references with images and no main data
(log_newpage); XLOG_FPI_FOR_HINT (0xA0) the same, logged when a hint-bit change must be
WAL-protected (checksums or wal_log_hints). Facts from PostgreSQL's
``src/include/catalog/pg_control.h`` and ``xlogdesc.c`` (whose description for both is
empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.ids import RM_XLOG_ID
from pytest_walredo.pg.version import Flavour

__all__ = ["RECORDS", "XLOG_FPI", "XLOG_FPI_FOR_HINT", "XlogFpi", "decode_xlog"]

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
}


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
    raise UnsupportedRecord(
        f"rmgr XLOG info {_NAMES.get(op, 'UNKNOWN')} (0x{info:02X}) is not supported by the model"
    )


RECORDS: tuple[type[RmgrRecord], ...] = (XlogFpi,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
