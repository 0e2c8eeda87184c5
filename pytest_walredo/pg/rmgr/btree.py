"""B-tree records (RM_BTREE_ID = 11) that add tuples: INSERT_LEAF / INSERT_UPPER / INSERT_META /
INSERT_POST, SPLIT_L / SPLIT_R, NEWROOT, DEDUP; and the rmgr's decoder (:func:`decode_btree`),
which routes VACUUM and DELETE to :mod:`.btree_vacuum` and the page-deletion family to
:mod:`.btree_pagedel`. Opcodes, struct layouts and ``xl_btree_metadata``: :mod:`.nbtxlog`.

Block references (``nbtxlog.h``):

- INSERT_*: block 0 the page (data: the IndexTuple; INSERT_POST: u16 postingoff, then the
  original new item, before the posting-list split); INSERT_UPPER/META: block 1 the child
  whose incomplete-split flag is cleared; INSERT_META: block 2 the metapage (data:
  xl_btree_metadata).
- SPLIT_L/SPLIT_R: block 0 the original page, which becomes the left half (data: the new item
  when it goes left or a posting-list split happened, MAXALIGNed, then the left page's new
  high key, MAXALIGNed); block 1 the new right page (WILL_INIT; data: its tuples as they lie
  from pd_upper to pd_special); block 2 the old right sibling whose prev link changes, if
  any; block 3 (internal splits) the child whose incomplete-split flag is cleared.
- NEWROOT: block 0 the new root (WILL_INIT; data: its tuples when level > 0), block 1 the left
  child (level > 0), block 2 the metapage.
- DEDUP: block 0 the leaf (data: the BTDedupInterval array).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from pytest_walredo.pg.constants import maxalign
from pytest_walredo.pg.rmgr import btree_pagedel, btree_vacuum
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord, UnsupportedRecord, unpack
from pytest_walredo.pg.rmgr.nbtxlog import (
    BTREE_NAMES,
    XLOG_BTREE_DEDUP,
    XLOG_BTREE_INSERT_LEAF,
    XLOG_BTREE_INSERT_META,
    XLOG_BTREE_INSERT_POST,
    XLOG_BTREE_INSERT_UPPER,
    XLOG_BTREE_NEWROOT,
    XLOG_BTREE_SPLIT_L,
    XLOG_BTREE_SPLIT_R,
    BtreeMetadata,
    BtreeRecord,
    kv,
    new_style,
)
from pytest_walredo.pg.version import Flavour

__all__ = [
    "RECORDS",
    "XLOG_BTREE_INSERT_LEAF",
    "XLOG_BTREE_INSERT_META",
    "XLOG_BTREE_INSERT_POST",
    "XLOG_BTREE_INSERT_UPPER",
    "XLOG_BTREE_NEWROOT",
    "BtreeDedup",
    "BtreeInsert",
    "BtreeMetadata",
    "BtreeNewroot",
    "BtreeSplit",
    "decode_btree",
    "logged_tuple_size",
]

_INSERT_OPS = (XLOG_BTREE_INSERT_LEAF, XLOG_BTREE_INSERT_UPPER, XLOG_BTREE_INSERT_META, XLOG_BTREE_INSERT_POST)


def logged_tuple_size(buf: bytes, pos: int, what: str) -> int:
    """MAXALIGN(IndexTupleSize) of the index tuple logged at ``pos`` of ``buf``: how far
    btree redo steps over it."""
    (t_info,) = unpack("<H", buf, pos + 6, f"{what} index tuple header")
    size = maxalign(t_info & 0x1FFF)
    if size == 0 or pos + size > len(buf):
        raise RmgrDecodeError(
            f"{what} index tuple at byte {pos} claims {size} bytes; the data has {len(buf) - pos}"
        )
    return size


@dataclass(frozen=True)
class BtreeInsert(BtreeRecord):
    """XLOG_BTREE_INSERT_LEAF (0x00), INSERT_UPPER (0x10), INSERT_META (0x20) or INSERT_POST
    (0x50): ``op``.

    ``tuple`` is block 0's IndexTuple (empty when a full-page image replaced it); for
    INSERT_POST it is the original new item and ``postingoff`` the posting-list position
    logged before it (None when block 0 carries no data). ``metadata`` is block 2's data
    (INSERT_META only, None when replaced by an image).
    """

    offnum: int
    tuple: bytes = b""
    op: int = XLOG_BTREE_INSERT_LEAF
    metadata: BtreeMetadata | None = None
    postingoff: int | None = None

    def _check(self) -> None:
        if self.op not in _INSERT_OPS:
            raise ValueError(f"btree insert: op 0x{self.op:02X} is not INSERT_LEAF/UPPER/META/POST")
        if self.metadata is not None and self.op != XLOG_BTREE_INSERT_META:
            raise ValueError("btree insert: metadata only goes with INSERT_META")
        if self.op == XLOG_BTREE_INSERT_POST:
            if (self.postingoff is None) != (not self.tuple):
                raise ValueError("btree INSERT_POST: postingoff is logged exactly when the tuple is")
        elif self.postingoff is not None:
            raise ValueError("btree insert: postingoff only goes with INSERT_POST")

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        return self.op

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return BTREE_NAMES[self.op]

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.offnum)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        out: dict[int, bytes] = {}
        if self.postingoff is not None:
            out[0] = struct.pack("<H", self.postingoff) + self.tuple
        elif self.tuple:
            out[0] = self.tuple
        if self.metadata is not None:
            out[2] = self.metadata.encode()
        return out

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return kv(pg_version, [("off", self.offnum)])


@dataclass(frozen=True)
class BtreeSplit(BtreeRecord):
    """XLOG_BTREE_SPLIT_L (0x30, ``newitem_on_left``) or SPLIT_R (0x40).

    ``newitem``: the new item as logged in block 0 (MAXALIGNed; logged when it goes left or a
    posting-list split happened, ``postingoff`` != 0; then it is the original new item);
    ``left_hikey``: the left page's new high key (MAXALIGNed); both empty when block 0's data
    was replaced by an image. ``right_page``: block 1's data, the new right page's tuples as
    they lie from pd_upper to pd_special.
    """

    level: int
    firstrightoff: int
    newitemoff: int
    postingoff: int = 0
    newitem_on_left: bool = False
    newitem: bytes = b""
    left_hikey: bytes = b""
    right_page: bytes = b""

    def _check(self) -> None:
        if self.newitem and not self.left_hikey:
            raise ValueError("btree split: a logged new item needs the left high key after it")
        if self.newitem and not (self.newitem_on_left or self.postingoff):
            raise ValueError("btree split: the new item is logged only when it goes left or splits a posting list")

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        return XLOG_BTREE_SPLIT_L if self.newitem_on_left else XLOG_BTREE_SPLIT_R

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "SPLIT_L" if self.newitem_on_left else "SPLIT_R"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<IHHH", self.level, self.firstrightoff, self.newitemoff, self.postingoff)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        out: dict[int, bytes] = {}
        if self.left_hikey:
            out[0] = self.newitem + self.left_hikey
        if self.right_page:
            out[1] = self.right_page
        return out

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return kv(
            pg_version,
            [
                ("level", self.level),
                ("firstrightoff", self.firstrightoff),
                ("newitemoff", self.newitemoff),
                ("postingoff", self.postingoff),
            ],
            old_sep=", ",
        )


@dataclass(frozen=True)
class BtreeNewroot(BtreeRecord):
    """XLOG_BTREE_NEWROOT (0xA0). ``tuples``: block 0's data (the root's tuples, level > 0);
    ``metadata``: block 2's data (None when replaced by an image)."""

    rootblk: int
    level: int
    tuples: bytes = b""
    metadata: BtreeMetadata | None = None

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return XLOG_BTREE_NEWROOT

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "NEWROOT"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<II", self.rootblk, self.level)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        out = {0: self.tuples} if self.tuples else {}
        if self.metadata is not None:
            out[2] = self.metadata.encode()
        return out

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return f"level: {self.level}" if new_style(pg_version) else f"lev {self.level}"


@dataclass(frozen=True)
class BtreeDedup(BtreeRecord):
    """XLOG_BTREE_DEDUP (0x60): the posting lists formed, as (base offset, number of items
    merged) intervals; ``intervals`` is None when a full-page image replaced block 0's data."""

    nintervals: int
    intervals: tuple[tuple[int, int], ...] | None = ()

    def _check(self) -> None:
        if self.intervals is not None and len(self.intervals) != self.nintervals:
            raise ValueError(f"btree DEDUP: {len(self.intervals)} intervals for nintervals {self.nintervals}")

    def info(self, pg_version: int, flavour: Flavour) -> int:
        self._check()
        return XLOG_BTREE_DEDUP

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "DEDUP"

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return struct.pack("<H", self.nintervals)

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        self._check()
        if not self.intervals:
            return {}
        return {0: b"".join(struct.pack("<HH", b, n) for b, n in self.intervals)}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        return kv(pg_version, [("nintervals", self.nintervals)])


def _exact(main: bytes, size: int, op: int) -> None:
    if len(main) != size:
        raise RmgrDecodeError(f"btree {BTREE_NAMES[op]} main data is {len(main)} bytes, expected {size}")


def _decode_insert(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    _exact(main, 2, op)
    if op != XLOG_BTREE_INSERT_META and 2 in blocks:
        raise RmgrDecodeError(f"btree {BTREE_NAMES[op]} has data on block 2, which only INSERT_META carries")
    meta = BtreeMetadata.decode(blocks[2], f"btree {BTREE_NAMES[op]}") if 2 in blocks else None
    b0 = blocks.get(0, b"")
    postingoff = None
    if op == XLOG_BTREE_INSERT_POST and b0:
        (postingoff,) = unpack("<H", b0, 0, "btree INSERT_POST postingoff")
        b0 = b0[2:]
        if not b0:
            raise RmgrDecodeError("btree INSERT_POST logs a postingoff but no new item")
    return BtreeInsert(struct.unpack("<H", main)[0], b0, op, meta, postingoff)


def _decode_split(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    _exact(main, 10, op)
    level, firstright, newitemoff, postingoff = struct.unpack("<IHHH", main)
    onleft = op == XLOG_BTREE_SPLIT_L
    b0 = blocks.get(0, b"")
    newitem = hikey = b""
    if b0:
        pos = 0
        if onleft or postingoff:
            pos = logged_tuple_size(b0, 0, "btree split new item")
            newitem = b0[:pos]
        size = logged_tuple_size(b0, pos, "btree split left high key")
        hikey = b0[pos : pos + size]
        if pos + size != len(b0):
            raise RmgrDecodeError(
                f"btree {BTREE_NAMES[op]} block 0 has {len(b0) - pos - size} byte(s) after the left high key"
            )
    return BtreeSplit(level, firstright, newitemoff, postingoff, onleft, newitem, hikey, blocks.get(1, b""))


def _decode_newroot(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    _exact(main, 8, op)
    rootblk, level = struct.unpack("<II", main)
    meta = BtreeMetadata.decode(blocks[2], "btree NEWROOT") if 2 in blocks else None
    return BtreeNewroot(rootblk, level, blocks.get(0, b""), meta)


def _decode_dedup(op: int, main: bytes, blocks: dict[int, bytes], pg_version: int) -> RmgrRecord:
    _exact(main, 2, op)
    (n,) = struct.unpack("<H", main)
    b0 = blocks.get(0)
    if b0 is None:
        return BtreeDedup(n, None if n else ())
    if len(b0) != 4 * n:
        raise RmgrDecodeError(f"btree DEDUP block 0 has {len(b0)} bytes for {n} intervals of 4")
    pairs = struct.unpack(f"<{2 * n}H", b0)
    return BtreeDedup(n, tuple(zip(pairs[0::2], pairs[1::2], strict=True)))


_Decoder = Callable[[int, bytes, dict[int, bytes], int], RmgrRecord]
_DECODERS: dict[int, _Decoder] = {
    **dict.fromkeys(_INSERT_OPS, _decode_insert),
    XLOG_BTREE_SPLIT_L: _decode_split,
    XLOG_BTREE_SPLIT_R: _decode_split,
    XLOG_BTREE_NEWROOT: _decode_newroot,
    XLOG_BTREE_DEDUP: _decode_dedup,
    **btree_vacuum.DECODERS,
    **btree_pagedel.DECODERS,
}
"""The decoder of each btree opcode (all fifteen)."""


def decode_btree(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    """Decode a btree record's main data and block data."""
    op = info & 0xF0
    decoder = _DECODERS.get(op)
    if decoder is None:  # 0xF0: no such record
        raise UnsupportedRecord(f"rmgr Btree info 0x{info:02X} is not a btree record")
    return decoder(op, main, blocks, pg_version)


RECORDS: tuple[type[RmgrRecord], ...] = (
    BtreeInsert, BtreeSplit, BtreeNewroot, BtreeDedup, *btree_vacuum.RECORDS, *btree_pagedel.RECORDS,
)
"""The typed records of the btree rmgr (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
