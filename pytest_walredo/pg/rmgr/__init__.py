"""Resource managers: ids, names, and typed records for the WAL records the model knows.

Entry points:

- :func:`parse` turns a :class:`~pytest_walredo.pg.xlogrecord.DecodedRecord` into a typed
  record (:class:`HeapInsert`, :class:`Heap2Visible`, :class:`BtreeNewroot`...). Records
  the model does not know raise :class:`UnsupportedRecord` naming rmgr and info.
- :func:`describe_record` gives pg_waldump's rmgr name, record name and ``desc:`` text.
- :func:`build` makes a complete record from a typed body plus block targets.

Record bodies depend on the PostgreSQL version and on the flavour (vanilla vs Neon, whose
heap records carry a ``t_cid``); every call takes both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_walredo.pg.rmgr._base import (
    RmgrDecodeError,
    RmgrRecord,
    UnsupportedRecord,
    block_data_of,
    build,
)
from pytest_walredo.pg.rmgr.btree import (
    RM_BTREE_ID,
    BtreeInsert,
    BtreeMetadata,
    BtreeNewroot,
    decode_btree,
)
from pytest_walredo.pg.rmgr.heap import (
    RM_HEAP_ID,
    RM_NEON_ID,
    HeapConfirm,
    HeapDelete,
    HeapInplace,
    HeapInsert,
    HeapLock,
    HeapUpdate,
    XlTuple,
    decode_heap,
)
from pytest_walredo.pg.rmgr.heap2 import (
    RM_HEAP2_ID,
    FreezePlan,
    FreezeTuple,
    Heap2FreezePage,
    Heap2MultiInsert,
    Heap2Prune,
    Heap2PruneFreeze,
    Heap2Vacuum,
    Heap2Visible,
    MultiInsertTuple,
    decode_heap2,
)
from pytest_walredo.pg.rmgr.neon import decode_neon
from pytest_walredo.pg.rmgr.xlog import RM_XLOG_ID, XlogFpi, decode_xlog
from pytest_walredo.pg.version import Flavour, check_version
from pytest_walredo.pg.xlogrecord import DecodedRecord

__all__ = [
    "RMGR_NAMES",
    "RM_BTREE_ID",
    "RM_HEAP2_ID",
    "RM_HEAP_ID",
    "RM_NEON_ID",
    "RM_XLOG_ID",
    "BtreeInsert",
    "BtreeMetadata",
    "BtreeNewroot",
    "FreezePlan",
    "FreezeTuple",
    "Heap2FreezePage",
    "Heap2MultiInsert",
    "Heap2Prune",
    "Heap2PruneFreeze",
    "Heap2Vacuum",
    "Heap2Visible",
    "HeapConfirm",
    "HeapDelete",
    "HeapInplace",
    "HeapInsert",
    "HeapLock",
    "HeapUpdate",
    "MultiInsertTuple",
    "RecordDescription",
    "RmgrDecodeError",
    "RmgrRecord",
    "UnsupportedRecord",
    "XlTuple",
    "XlogFpi",
    "build",
    "describe_record",
    "parse",
    "rmgr_name",
    "supported_records",
]

# Built-in rmgr names as pg_waldump prints them (src/include/access/rmgrlist.h, PG14-17).
RMGR_NAMES: dict[int, str] = {
    0: "XLOG",
    1: "Transaction",
    2: "Storage",
    3: "CLOG",
    4: "Database",
    5: "Tablespace",
    6: "MultiXact",
    7: "RelMap",
    8: "Standby",
    9: "Heap2",
    10: "Heap",
    11: "Btree",
    12: "Hash",
    13: "Gin",
    14: "Gist",
    15: "Sequence",
    16: "SPGist",
    17: "BRIN",
    18: "CommitTs",
    19: "ReplicationOrigin",
    20: "Generic",
    21: "LogicalMessage",
    RM_NEON_ID: "neon",
}

_DECODERS: dict[int, Callable[[int, bytes, dict[int, bytes], int, Flavour], RmgrRecord]] = {
    RM_XLOG_ID: decode_xlog,
    RM_HEAP2_ID: decode_heap2,
    RM_HEAP_ID: lambda info, main, blocks, v, fl: decode_heap(RM_HEAP_ID, info, main, blocks, v, fl),
    RM_BTREE_ID: decode_btree,
    RM_NEON_ID: decode_neon,
}


def supported_records(
    pg_version: int, flavour: Flavour | str = Flavour.VANILLA
) -> tuple[type[RmgrRecord], ...]:
    """The typed record classes that exist in ``pg_version`` (PG14-16 have Heap2Prune,
    Heap2Vacuum and Heap2FreezePage; PG17 has Heap2PruneFreeze instead). Neon-specific
    layouts are chosen per record through ``t_cid``, so the class list is the same for
    both flavours."""
    check_version(pg_version)
    Flavour.parse(flavour)
    common: tuple[type[RmgrRecord], ...] = (
        XlogFpi,
        HeapInsert,
        HeapDelete,
        HeapUpdate,
        HeapLock,
        HeapInplace,
        HeapConfirm,
        Heap2MultiInsert,
        Heap2Visible,
        BtreeInsert,
        BtreeNewroot,
    )
    if pg_version >= 17:
        return (*common, Heap2PruneFreeze)
    return (*common, Heap2Prune, Heap2Vacuum, Heap2FreezePage)


def rmgr_name(rmid: int) -> str:
    """pg_waldump's name for ``rmid`` (custom ids print as ``custom<N>``)."""
    return RMGR_NAMES.get(rmid, f"custom{rmid:03d}" if rmid >= 128 else f"rmgr{rmid}")


def parse(decoded: DecodedRecord, pg_version: int, flavour: Flavour | str = Flavour.VANILLA) -> RmgrRecord:
    """The typed record for ``decoded``. Raises :class:`UnsupportedRecord` (rmgr/info the
    model does not know) or :class:`RmgrDecodeError` (data that does not fit the struct)."""
    check_version(pg_version)
    fl = Flavour.parse(flavour)
    decoder = _DECODERS.get(decoded.rmid)
    if decoder is None:
        raise UnsupportedRecord(
            f"rmgr {rmgr_name(decoded.rmid)} (id {decoded.rmid}) info 0x{decoded.info & 0xF0:02X} "
            f"is not supported by the model"
        )
    return decoder(decoded.info & 0xF0, decoded.main_data, dict(block_data_of(decoded)), pg_version, fl)


@dataclass(frozen=True)
class RecordDescription:
    """What pg_waldump prints for a record: ``rmgr: <rmgr> ... desc: <name> <desc>``."""

    rmgr: str
    name: str
    desc: str

    def __str__(self) -> str:
        return f"{self.rmgr}: {self.name} {self.desc}".rstrip()


def describe_record(
    decoded: DecodedRecord, pg_version: int, flavour: Flavour | str = Flavour.VANILLA
) -> RecordDescription:
    """pg_waldump's rmgr name, record name and description for ``decoded``."""
    fl = Flavour.parse(flavour)
    body = parse(decoded, pg_version, fl)
    return RecordDescription(
        rmgr_name(decoded.rmid), body.identify(pg_version, fl), body.describe(pg_version, fl)
    )
