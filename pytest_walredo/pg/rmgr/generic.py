"""Generic WAL records (RM_GENERIC_ID = 20): ``generic_xlog.c``'s page deltas, PostgreSQL 14-17.

Extensions without a resource manager of their own (contrib's ``bloom``, for one) log page
changes as generic records: info 0, no main data, up to ``MAX_GENERIC_XLOG_PAGES`` (4) block
references, each either

- a full image (``GENERIC_XLOG_FULL_IMAGE``: the block carries an applied image, no data), or
- a delta (block data): fragments of ``offset u16, length u16, length bytes``, written over the
  page in order. The delta covers the page from 0 to pd_lower and from pd_upper to the end;
  redo zeroes the hole between the new pd_lower and pd_upper.

:func:`page_delta` computes the delta PostgreSQL would log for a change from one page to
another (``computeDelta``): the differing bytes of each region, runs closer than 5 bytes
merged, bytes of the old page outside its own valid regions counted as differing.

pg_waldump (``genericdesc.c``) names every record ``Generic`` and describes the main data's
fragments, which PostgreSQL never writes: the description is empty.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.rmgr._base import RmgrDecodeError, RmgrRecord
from pytest_walredo.pg.rmgr.ids import RM_GENERIC_ID
from pytest_walredo.pg.version import Flavour

__all__ = [
    "MAX_GENERIC_XLOG_PAGES",
    "RECORDS",
    "Fragment",
    "GenericRecord",
    "decode_generic",
    "encode_fragments",
    "page_delta",
]

MAX_GENERIC_XLOG_PAGES = 4
_FRAG = struct.Struct("<HH")
_MATCH_THRESHOLD = 4  # FRAGMENT_HEADER_SIZE: a smaller unchanged gap does not pay for a new header

Fragment = tuple[int, bytes]
"""One delta fragment: (page offset, the bytes written there)."""


def encode_fragments(frags: tuple[Fragment, ...]) -> bytes:
    return b"".join(_FRAG.pack(off, len(data)) + data for off, data in frags)


def _decode_fragments(data: bytes, block_id: int) -> tuple[Fragment, ...]:
    out: list[Fragment] = []
    pos = 0
    while pos < len(data):
        if pos + _FRAG.size > len(data):
            raise RmgrDecodeError(f"Generic delta of block {block_id} ends inside a fragment header at byte {pos}")
        off, length = _FRAG.unpack_from(data, pos)
        pos += _FRAG.size
        if pos + length > len(data):
            raise RmgrDecodeError(
                f"Generic delta of block {block_id}: fragment at page offset {off} claims {length} bytes,"
                f" {len(data) - pos} remain")
        out.append((off, bytes(data[pos : pos + length])))
        pos += length
    return tuple(out)


@dataclass(frozen=True)
class GenericRecord(RmgrRecord):
    """A generic record: ``deltas`` pairs a block id with its fragments, in block id order (a
    block with a full image, or with an empty delta, has no entry). ``op`` is the info nibble as logged
    (PostgreSQL writes 0; redo and pg_waldump ignore it)."""

    RMGR: ClassVar[str] = "Generic"
    deltas: tuple[tuple[int, tuple[Fragment, ...]], ...] = ()
    op: int = 0

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        return RM_GENERIC_ID

    def info(self, pg_version: int, flavour: Flavour) -> int:
        return self.op

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        return "Generic"

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {bid: encode_fragments(frags) for bid, frags in self.deltas if frags}

    def delta(self, block_id: int) -> tuple[Fragment, ...]:
        return dict(self.deltas).get(block_id, ())


def decode_generic(
    info: int, main: bytes, blocks: dict[int, bytes], pg_version: int, flavour: Flavour
) -> RmgrRecord:
    if main:
        raise RmgrDecodeError(f"Generic record has {len(main)} main data byte(s); generic_xlog.c writes none")
    return GenericRecord(tuple((bid, _decode_fragments(d, bid)) for bid, d in sorted(blocks.items())), info & 0xF0)


def _differs(cur: bytes, target: bytes, start: int, end: int, valid_start: int, valid_end: int) -> list[bool]:
    return [not (valid_start <= i < valid_end) or cur[i] != target[i] for i in range(start, end)]


def _region(cur: bytes, target: bytes, start: int, end: int, valid_start: int, valid_end: int) -> list[Fragment]:
    """The fragments turning ``cur`` into ``target`` over [start, end): maximal runs of
    differing bytes, merged across unchanged gaps of at most ``_MATCH_THRESHOLD`` bytes; bytes
    outside [valid_start, valid_end) always count as differing."""
    diff = _differs(cur, target, start, end, valid_start, valid_end)
    runs: list[list[int]] = []
    i = 0
    while i < len(diff):
        if not diff[i]:
            i += 1
            continue
        j = i
        while j < len(diff) and diff[j]:
            j += 1
        if runs and i - runs[-1][1] <= _MATCH_THRESHOLD:
            runs[-1][1] = j
        else:
            runs.append([i, j])
        i = j
    return [(start + a, bytes(target[start + a : start + b])) for a, b in runs]


def page_delta(cur: bytes, target: bytes) -> tuple[Fragment, ...]:
    """The delta ``GenericXLogFinish`` logs for a change of a page from ``cur`` to ``target``
    (both standard pages: pd_lower at byte 12, pd_upper at 14)."""
    if len(cur) != BLCKSZ or len(target) != BLCKSZ:
        raise ValueError(f"pages are {BLCKSZ} bytes")
    cur_lower, cur_upper = struct.unpack_from("<HH", cur, 12)
    t_lower, t_upper = struct.unpack_from("<HH", target, 12)
    return (*_region(cur, target, 0, t_lower, 0, cur_lower),
            *_region(cur, target, t_upper, BLCKSZ, cur_upper, BLCKSZ))


RECORDS: tuple[type[RmgrRecord], ...] = (GenericRecord,)
"""The typed records this module defines (:func:`pytest_walredo.pg.rmgr.supported_records`)."""
