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

from pytest_walredo.pg.rmgr import (
    brin,
    btree,
    generic,
    gin,
    gist,
    hash,
    heap,
    heap2,
    heap2_prune,
    heap2_prune17,
    heap_inplace,
    heap_logical,
    sequence,
    spgist,
    xlog,
)
from pytest_walredo.pg.rmgr._base import (
    RmgrDecodeError,
    RmgrRecord,
    UnsupportedRecord,
    block_data_of,
    build,
)
from pytest_walredo.pg.rmgr.brin import (
    BrinCreateIndex,
    BrinDesummarize,
    BrinInsert,
    BrinRevmapExtend,
    BrinSamepageUpdate,
    decode_brin,
)
from pytest_walredo.pg.rmgr.btree import (
    BtreeDedup,
    BtreeInsert,
    BtreeMetadata,
    BtreeNewroot,
    BtreeSplit,
    decode_btree,
)
from pytest_walredo.pg.rmgr.btree_pagedel import (
    BtreeMarkPageHalfdead,
    BtreeMetaCleanup,
    BtreeReusePage,
    BtreeUnlinkPage,
)
from pytest_walredo.pg.rmgr.btree_vacuum import BtreeDelete, BtreeUpdate, BtreeVacuum
from pytest_walredo.pg.rmgr.generic import GenericRecord, decode_generic
from pytest_walredo.pg.rmgr.gin import decode_gin
from pytest_walredo.pg.rmgr.ginxlog import note_block_images
from pytest_walredo.pg.rmgr.gist import (
    GistAssignLsn,
    GistDelete,
    GistPageDelete,
    GistPageReuse,
    GistPageSplit,
    GistPageUpdate,
    decode_gist,
)
from pytest_walredo.pg.rmgr.hash import (
    HashAddOvflPage,
    HashInitBitmapPage,
    HashInitMetaPage,
    HashInsert,
    HashSplitAllocatePage,
    HashSplitComplete,
    HashSplitPage,
    decode_hash,
)
from pytest_walredo.pg.rmgr.hash_vacuum import (
    HashDelete,
    HashMovePageContents,
    HashSplitCleanup,
    HashSqueezePage,
    HashUpdateMetaPage,
    HashVacuumOnePage,
)
from pytest_walredo.pg.rmgr.heap import (
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
from pytest_walredo.pg.rmgr.heap_inplace import Heap2LockUpdated
from pytest_walredo.pg.rmgr.heap_logical import Heap2NewCid, Heap2Rewrite, HeapTruncate
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
    RM_SPGIST_ID,
    RM_XLOG_ID,
    RMGR_NAMES,
    rmgr_name,
)
from pytest_walredo.pg.rmgr.neon import decode_neon, flavour_dependent_layout
from pytest_walredo.pg.rmgr.sequence import SeqLog, decode_sequence
from pytest_walredo.pg.rmgr.spgist import (
    SpgAddLeaf,
    SpgAddNode,
    SpgMoveLeafs,
    SpgPickSplit,
    SpgSplitTuple,
    decode_spgist,
)
from pytest_walredo.pg.rmgr.spgist_vacuum import SpgVacuumLeaf, SpgVacuumRedirect, SpgVacuumRoot
from pytest_walredo.pg.rmgr.xlog import XlogFpi, XlogNoPage, decode_xlog
from pytest_walredo.pg.version import Flavour, check_version
from pytest_walredo.pg.xlogrecord import DecodedRecord

__all__ = [
    "RMGR_NAMES",
    "RM_BRIN_ID",
    "RM_BTREE_ID",
    "RM_HEAP2_ID",
    "RM_HEAP_ID",
    "RM_NEON_ID",
    "RM_XLOG_ID",
    "BrinCreateIndex",
    "BrinDesummarize",
    "BrinInsert",
    "BrinRevmapExtend",
    "BrinSamepageUpdate",
    "BtreeDedup",
    "BtreeDelete",
    "BtreeInsert",
    "BtreeMarkPageHalfdead",
    "BtreeMetaCleanup",
    "BtreeMetadata",
    "BtreeNewroot",
    "BtreeReusePage",
    "BtreeSplit",
    "BtreeUnlinkPage",
    "BtreeUpdate",
    "BtreeVacuum",
    "FreezePlan",
    "FreezeTuple",
    "GenericRecord",
    "GistAssignLsn",
    "GistDelete",
    "GistPageDelete",
    "GistPageReuse",
    "GistPageSplit",
    "GistPageUpdate",
    "HashAddOvflPage",
    "HashDelete",
    "HashInitBitmapPage",
    "HashInitMetaPage",
    "HashInsert",
    "HashMovePageContents",
    "HashSplitAllocatePage",
    "HashSplitCleanup",
    "HashSplitComplete",
    "HashSplitPage",
    "HashSqueezePage",
    "HashUpdateMetaPage",
    "HashVacuumOnePage",
    "Heap2FreezePage",
    "Heap2LockUpdated",
    "Heap2MultiInsert",
    "Heap2NewCid",
    "Heap2Prune",
    "Heap2PruneFreeze",
    "Heap2Rewrite",
    "Heap2Vacuum",
    "Heap2Visible",
    "HeapConfirm",
    "HeapDelete",
    "HeapInplace",
    "HeapInsert",
    "HeapLock",
    "HeapTruncate",
    "HeapUpdate",
    "MultiInsertTuple",
    "RecordDescription",
    "RmgrDecodeError",
    "RmgrRecord",
    "SeqLog",
    "SpgAddLeaf",
    "SpgAddNode",
    "SpgMoveLeafs",
    "SpgPickSplit",
    "SpgSplitTuple",
    "SpgVacuumLeaf",
    "SpgVacuumRedirect",
    "SpgVacuumRoot",
    "UnsupportedRecord",
    "XlTuple",
    "XlogFpi",
    "XlogNoPage",
    "build",
    "describe_record",
    "flavour_dependent_layout",
    "modelled_rmgrs",
    "parse",
    "rmgr_name",
    "supported_records",
]

_DECODERS: dict[int, Callable[[int, bytes, dict[int, bytes], int, Flavour], RmgrRecord]] = {
    RM_XLOG_ID: decode_xlog,
    RM_HEAP2_ID: decode_heap2,
    RM_HEAP_ID: decode_heap,
    RM_BTREE_ID: decode_btree,
    RM_HASH_ID: decode_hash,
    RM_NEON_ID: decode_neon,
    RM_SEQ_ID: decode_sequence,
    RM_GENERIC_ID: decode_generic,
    RM_BRIN_ID: decode_brin,
    RM_GIN_ID: decode_gin,
    RM_GIST_ID: decode_gist,
    RM_SPGIST_ID: decode_spgist,
}
"""The decoder of each resource manager the model knows (Neon's 134 routes to heap/heap2)."""

_RECORDS: tuple[type[RmgrRecord], ...] = (
    *xlog.RECORDS, *heap.RECORDS, *heap_inplace.RECORDS, *heap_logical.RECORDS, *heap2.RECORDS,
    *heap2_prune.RECORDS, *heap2_prune17.RECORDS, *btree.RECORDS,
    *sequence.RECORDS, *generic.RECORDS, *brin.RECORDS,
    *gin.RECORDS,
    *gist.RECORDS, *spgist.RECORDS,
    *hash.RECORDS,
)

_IMAGE_NOTES: dict[int, Callable[[RmgrRecord, DecodedRecord], RmgrRecord]] = {
    RM_GIN_ID: note_block_images,
}
"""Rmgrs whose descriptions depend on a block's image: the typed record learns it from the
decoded record (pg_waldump's gin_desc prints "(full page image)" instead of block 0's data)."""


def modelled_rmgrs() -> frozenset[int]:
    """The rmgr ids whose records the model decodes (others are only passed through)."""
    return frozenset(_DECODERS)


def supported_records(
    pg_version: int, flavour: Flavour | str = Flavour.VANILLA
) -> tuple[type[RmgrRecord], ...]:
    """The typed record classes that exist in ``pg_version`` (PG14-16 have Heap2Prune,
    Heap2Vacuum and Heap2FreezePage; PG17 has Heap2PruneFreeze instead: each class's
    ``PG_VERSIONS``). Neon-specific layouts are chosen per record through ``t_cid``, so the
    class list is the same for both flavours."""
    check_version(pg_version)
    Flavour.parse(flavour)
    return tuple(c for c in _RECORDS if pg_version in c.PG_VERSIONS)


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
    body = decoder(decoded.info & 0xF0, decoded.main_data, dict(block_data_of(decoded)), pg_version, fl)
    note = _IMAGE_NOTES.get(decoded.rmid)
    return body if note is None else note(body, decoded)


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
