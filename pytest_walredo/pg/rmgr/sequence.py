"""Sequence records (RM_SEQ_ID = 15): XLOG_SEQ_LOG (0x00), the only one in PostgreSQL 14-17.

Every change to a sequence (creation, ``nextval`` every ``SEQ_LOG_VALS`` values, ``setval``,
``ALTER SEQUENCE``) logs the whole new state and redo rebuilds the page from it.

Layout (``commands/sequence.h``, the same in 14-17 and both flavours; little-endian):

- main data: ``xl_seq_rec`` = the sequence's relation (spcnode, dbnode, relnode u32: 12 bytes),
  then the one heap tuple of the page as it is to be stored (HeapTupleHeaderData with
  ``t_hoff`` 24, then ``FormData_pg_sequence_data``: last_value i64, log_cnt i64,
  is_called bool: 41 bytes for a real sequence);
- block 0: the sequence's page, registered WILL_INIT (no data).

pg_waldump (``seqdesc.c``): ``LOG``, ``rel SPC/DB/REL`` (the same text in 14-17).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.ids import RM_SEQ_ID
from pytest_walredo.pg.version import Flavour

__all__ = ["RECORDS", "SEQ_DATA", "XLOG_SEQ_LOG", "SeqLog", "decode_sequence"]

XLOG_SEQ_LOG = 0x00

_REL = struct.Struct("<III")
SEQ_DATA = struct.Struct("<qq?")
"""FormData_pg_sequence_data as stored after the tuple header: last_value, log_cnt, is_called."""


@dataclass(frozen=True)
class SeqLog(RmgrRecord):
    """XLOG_SEQ_LOG: the sequence ``rel`` (spcnode, dbnode, relnode) now holds ``tuple`` (the
    whole heap tuple as it goes on the page, header included)."""

    RMGR: ClassVar[str] = "Sequence"
    rel: tuple[int, int, int]
    tuple: bytes

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_SEQ_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_SEQ_LOG

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "LOG"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return _REL.pack(*self.rel) + self.tuple

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return "rel " + "/".join(str(x) for x in self.rel)


def decode_sequence(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    op = info & 0xF0
    if op != XLOG_SEQ_LOG:
        # seq_redo PANICs on any other op code ("seq_redo: unknown op code")
        raise UnsupportedRecord(f"rmgr Sequence info 0x{op:02X} is not a record of PostgreSQL 14-17")
    if len(main) < _REL.size:
        raise RmgrDecodeError(f"Sequence LOG main data is {len(main)} bytes, expected at least {_REL.size}")
    if blocks:
        raise RmgrDecodeError(f"Sequence LOG has block data on block(s) {sorted(blocks)}, expected none")
    return SeqLog(_REL.unpack_from(main), bytes(main[_REL.size :]))


RECORDS: tuple[type[RmgrRecord], ...] = (SeqLog,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
