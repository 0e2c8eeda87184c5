"""Hash records (RM_HASH_ID = 12) that build the index and grow it: INIT_META_PAGE,
INIT_BITMAP_PAGE, INSERT, ADD_OVFL_PAGE, SPLIT_ALLOCATE_PAGE, SPLIT_PAGE, SPLIT_COMPLETE; and
the rmgr's decoder (:func:`decode_hash`), which routes the other six to :mod:`.hash_vacuum`.
Opcodes, main data layouts and description rules: :mod:`.hash_xlog`.

Block references (``hash_xlog.h``):

- INIT_META_PAGE: block 0 the metapage (WILL_INIT).
- INIT_BITMAP_PAGE: block 0 the new bitmap page (WILL_INIT), block 1 the metapage.
- INSERT: block 0 the bucket or overflow page (data: the index tuple, IndexTupleSize
  bytes), block 1 the metapage.
- ADD_OVFL_PAGE: block 0 the new overflow page (WILL_INIT; data: its bucket number, u32),
  block 1 the page before it in the bucket chain, block 2 the bitmap page whose bit is set
  (when a free page was found; data: the bit, u32), block 3 a new bitmap page (WILL_INIT,
  when one is added), block 4 the metapage (data: hashm_firstfree, u32).
- SPLIT_ALLOCATE_PAGE: block 0 the old bucket's primary page, block 1 the new bucket's
  (WILL_INIT), block 2 the metapage (data: lowmask and highmask when the masks changed, then
  ovflpoint and its spares entry when the splitpoint changed; u32 each).
- SPLIT_PAGE: block 0 a page of the new bucket, always with a full-page image to apply.
- SPLIT_COMPLETE: block 0 the old bucket's primary page, block 1 the new bucket's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from pytest_walredo.pg.rmgr import hash_vacuum
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord
from pytest_walredo.pg.rmgr.hash_xlog import (
    XLH_SPLIT_META_UPDATE_MASKS,
    XLH_SPLIT_META_UPDATE_SPLITPOINT,
    XLOG_HASH_ADD_OVFL_PAGE,
    XLOG_HASH_INIT_BITMAP_PAGE,
    XLOG_HASH_INIT_META_PAGE,
    XLOG_HASH_INSERT,
    XLOG_HASH_SPLIT_ALLOCATE_PAGE,
    XLOG_HASH_SPLIT_COMPLETE,
    XLOG_HASH_SPLIT_PAGE,
    HashRecord,
    exact,
    flag_char,
    opt_u32,
    read_bool,
    u32_data,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "HashAddOvflPage",
    "HashInitBitmapPage",
    "HashInitMetaPage",
    "HashInsert",
    "HashSplitAllocatePage",
    "HashSplitComplete",
    "HashSplitPage",
    "decode_hash",
]


@dataclass(frozen=True)
class HashInitMetaPage(HashRecord):
    """XLOG_HASH_INIT_META_PAGE (0x00): redo builds the metapage of a new index sized for
    ``num_tuples`` at ``ffactor`` tuples per bucket."""

    OP = XLOG_HASH_INIT_META_PAGE
    num_tuples: float
    procid: int
    ffactor: int

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<dIH", self.num_tuples, self.procid, self.ffactor)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"num_tuples {self.num_tuples:g}, fillfactor {self.ffactor}"


@dataclass(frozen=True)
class HashInitBitmapPage(HashRecord):
    """XLOG_HASH_INIT_BITMAP_PAGE (0x10): a bitmap page of ``bmsize`` bytes, every bit set;
    the metapage lists it."""

    OP = XLOG_HASH_INIT_BITMAP_PAGE
    bmsize: int

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.bmsize)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"bmsize {self.bmsize}"


@dataclass(frozen=True)
class HashInsert(HashRecord):
    """XLOG_HASH_INSERT (0x20): ``tuple`` goes in at ``offnum`` (empty when an image replaced
    block 0's data); the metapage counts one more tuple."""

    OP = XLOG_HASH_INSERT
    offnum: int
    tuple: bytes = b""

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.offnum)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {0: self.tuple} if self.tuple else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"off {self.offnum}"


@dataclass(frozen=True)
class HashAddOvflPage(HashRecord):
    """XLOG_HASH_ADD_OVFL_PAGE (0x30). ``bucket``: block 0's data (the new overflow page's
    bucket); ``bitmap_bit``: block 2's (the bit set for the page reused); ``firstfree``:
    block 4's (the metapage's new hashm_firstfree); None when not logged."""

    OP = XLOG_HASH_ADD_OVFL_PAGE
    bmsize: int
    bmpage_found: bool
    bucket: int | None = None
    bitmap_bit: int | None = None
    firstfree: int | None = None

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H?", self.bmsize, self.bmpage_found)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        out = {0: opt_u32(self.bucket), 2: opt_u32(self.bitmap_bit), 4: opt_u32(self.firstfree)}
        return {k: v for k, v in out.items() if v}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"bmsize {self.bmsize}, bmpage_found {flag_char(self.bmpage_found)}"


@dataclass(frozen=True)
class HashSplitAllocatePage(HashRecord):
    """XLOG_HASH_SPLIT_ALLOCATE_PAGE (0x40): bucket ``new_bucket`` is allocated. ``masks``
    (lowmask, highmask) and ``splitpoint`` (ovflpoint, its spares entry) are block 2's data,
    logged when ``flags`` says they changed (None when not logged)."""

    OP = XLOG_HASH_SPLIT_ALLOCATE_PAGE
    new_bucket: int
    old_bucket_flag: int
    new_bucket_flag: int
    flags: int
    masks: tuple[int, int] | None = None
    splitpoint: tuple[int, int] | None = None

    def _check(self) -> None:
        if self.masks is None and self.splitpoint is None:
            return  # block 2's data left out (or nothing changed)
        if (self.masks is not None) != bool(self.flags & XLH_SPLIT_META_UPDATE_MASKS) or (
            (self.splitpoint is not None) != bool(self.flags & XLH_SPLIT_META_UPDATE_SPLITPOINT)
        ):
            raise ValueError(f"hash SPLIT_ALLOCATE_PAGE: flags 0x{self.flags:02X} disagree with the logged "
                             f"metapage data")

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        self._check()
        return struct.pack("<IHHB", self.new_bucket, self.old_bucket_flag, self.new_bucket_flag, self.flags)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        data = b"".join(struct.pack("<II", *pair) for pair in (self.masks, self.splitpoint) if pair is not None)
        return {2: data} if data else {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return (f"new_bucket {self.new_bucket}, "
                f"meta_page_masks_updated {flag_char(bool(self.flags & XLH_SPLIT_META_UPDATE_MASKS))}, "
                f"issplitpoint_changed {flag_char(bool(self.flags & XLH_SPLIT_META_UPDATE_SPLITPOINT))}")


@dataclass(frozen=True)
class HashSplitPage(HashRecord):
    """XLOG_HASH_SPLIT_PAGE (0x50): no data; block 0's image is the page."""

    OP = XLOG_HASH_SPLIT_PAGE


@dataclass(frozen=True)
class HashSplitComplete(HashRecord):
    """XLOG_HASH_SPLIT_COMPLETE (0x60): the two buckets' primary pages take these flags."""

    OP = XLOG_HASH_SPLIT_COMPLETE
    old_bucket_flag: int
    new_bucket_flag: int

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<HH", self.old_bucket_flag, self.new_bucket_flag)

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"old_bucket_flag {self.old_bucket_flag}, new_bucket_flag {self.new_bucket_flag}"


# -- decoding -------------------------------------------------------------------------------


def _init_meta(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 14, op)
    return HashInitMetaPage(*struct.unpack("<dIH", main))


def _init_bitmap(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 2, op)
    return HashInitBitmapPage(*struct.unpack("<H", main))


def _insert(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 2, op)
    return HashInsert(struct.unpack("<H", main)[0], blocks.get(0, b""))


def _add_ovfl(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 3, op)
    bmsize, found = struct.unpack("<HB", main)
    return HashAddOvflPage(bmsize, read_bool(found, "ADD_OVFL_PAGE bmpage_found"),
                           u32_data(blocks, 0, "ADD_OVFL_PAGE"), u32_data(blocks, 2, "ADD_OVFL_PAGE"),
                           u32_data(blocks, 4, "ADD_OVFL_PAGE"))


def _split_allocate(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 9, op)
    new_bucket, old_flag, new_flag, flags = struct.unpack("<IHHB", main)
    data = blocks.get(2, b"")
    masks = splitpoint = None
    if data:
        parts = [bool(flags & XLH_SPLIT_META_UPDATE_MASKS), bool(flags & XLH_SPLIT_META_UPDATE_SPLITPOINT)]
        if len(data) != 8 * sum(parts):
            raise RmgrDecodeError(f"hash SPLIT_ALLOCATE_PAGE block 2 data is {len(data)} bytes for flags "
                                  f"0x{flags:02X}")
        pairs = [struct.unpack_from("<II", data, 8 * i) for i in range(len(data) // 8)]
        masks = pairs.pop(0) if parts[0] else None
        splitpoint = pairs.pop(0) if parts[1] else None
    return HashSplitAllocatePage(new_bucket, old_flag, new_flag, flags, masks, splitpoint)


def _split_page(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 0, op)
    return HashSplitPage()


def _split_complete(op: int, main: bytes, blocks: dict[int, bytes], v: int) -> RmgrRecord:
    exact(main, 4, op)
    return HashSplitComplete(*struct.unpack("<HH", main))


_Decoder = Callable[[int, bytes, dict[int, bytes], int], RmgrRecord]
_DECODERS: dict[int, _Decoder] = {
    XLOG_HASH_INIT_META_PAGE: _init_meta,
    XLOG_HASH_INIT_BITMAP_PAGE: _init_bitmap,
    XLOG_HASH_INSERT: _insert,
    XLOG_HASH_ADD_OVFL_PAGE: _add_ovfl,
    XLOG_HASH_SPLIT_ALLOCATE_PAGE: _split_allocate,
    XLOG_HASH_SPLIT_PAGE: _split_page,
    XLOG_HASH_SPLIT_COMPLETE: _split_complete,
    **hash_vacuum.DECODERS,
}
"""The decoder of each hash opcode (all thirteen)."""


def decode_hash(info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour) -> RmgrRecord:
    """Decode a hash record's main data and block data."""
    op = info & 0xF0
    decoder = _DECODERS.get(op)
    if decoder is None:  # 0xD0..0xF0: no such record
        raise UnsupportedRecord(f"rmgr Hash info 0x{info:02X} is not a hash record")
    return decoder(op, main, blocks, pg_version)


RECORDS: tuple[type[RmgrRecord], ...] = (
    HashInitMetaPage, HashInitBitmapPage, HashInsert, HashAddOvflPage, HashSplitAllocatePage, HashSplitPage,
    HashSplitComplete, *hash_vacuum.RECORDS,
)
"""The typed records of the hash rmgr (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
