"""Write XLogRecords into a WAL segment file that PostgreSQL's tools accept.

A segment is ``seg_size`` bytes of 8192-byte WAL pages. Each page starts with
XLogPageHeaderData (xlp_magic u16, xlp_info u16, xlp_tli u32, xlp_pageaddr u64, xlp_rem_len
u32, padded to 24 bytes); the segment's first page has XLogLongPageHeaderData instead (the
same plus xlp_sysid u64, xlp_seg_size u32, xlp_xlog_blcksz u32 = 40 bytes). Records are a
byte stream across pages: each starts at a MAXALIGN (8) boundary, may be split over pages
(its header too), and a page that begins inside a record has XLP_FIRST_IS_CONTRECORD in
xlp_info and the number of bytes of that record still to come in xlp_rem_len. Every record's
xl_prev is the start LSN of the record before it. Facts from PostgreSQL's
``src/include/access/xlog_internal.h`` and ``xlog.c`` / ``xlogreader.c``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_walredo.pg.constants import maxalign
from pytest_walredo.pg.version import check_version
from pytest_walredo.pg.xlogrecord import SIZE_OF_XLOG_RECORD, compute_crc

__all__ = [
    "DEFAULT_SEG_SIZE",
    "XLOG_BLCKSZ",
    "XLOG_PAGE_MAGIC",
    "XLP_FIRST_IS_CONTRECORD",
    "XLP_LONG_HEADER",
    "SegmentLayout",
    "SegmentReadError",
    "WrittenRecord",
    "read_segment",
    "segment_file_name",
    "set_prev",
    "skip_continuation",
    "write_segment",
]

XLOG_BLCKSZ = 8192
DEFAULT_SEG_SIZE = 16 * 1024 * 1024
SIZE_OF_SHORT_PHD = 24
SIZE_OF_LONG_PHD = 40

XLP_FIRST_IS_CONTRECORD = 0x0001
XLP_LONG_HEADER = 0x0002
XLP_BKP_REMOVABLE = 0x0004

# XLOG_PAGE_MAGIC per major version (xlog_internal.h): bumped whenever the WAL format changes.
XLOG_PAGE_MAGIC = {14: 0xD10D, 15: 0xD110, 16: 0xD113, 17: 0xD116}


def segment_file_name(tli: int, segno: int, seg_size: int = DEFAULT_SEG_SIZE) -> str:
    """The segment's file name: TLI, then segno split in 'log id' and 'segment in log id'."""
    per_id = 0x100000000 // seg_size
    return f"{tli:08X}{segno // per_id:08X}{segno % per_id:08X}"


def set_prev(raw: bytes, prev: int) -> bytes:
    """``raw`` with xl_prev replaced and the CRC recomputed."""
    rec = bytearray(raw)
    struct.pack_into("<Q", rec, 8, prev)
    struct.pack_into("<I", rec, 20, compute_crc(rec))
    return bytes(rec)


@dataclass(frozen=True)
class WrittenRecord:
    """Where a record landed: ``start`` is its LSN (what pg_waldump prints as ``lsn``),
    ``end`` the LSN just after its last byte (what walredo calls the record's end LSN)."""

    start: int
    end: int
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class SegmentLayout:
    """The written segment: its bytes, file name and the records' positions."""

    data: bytes = field(repr=False)
    file_name: str
    records: tuple[WrittenRecord, ...]
    tli: int
    segno: int
    seg_size: int

    @property
    def start_lsn(self) -> int:
        return self.segno * self.seg_size

    def write_to(self, directory: str | Path) -> Path:
        """Write the segment into ``directory`` under its proper name; returns the path."""
        path = Path(directory) / self.file_name
        path.write_bytes(self.data)
        return path


def write_segment(
    records: Sequence[bytes],
    *,
    pg_version: int = 15,
    tli: int = 1,
    segno: int = 1,
    seg_size: int = DEFAULT_SEG_SIZE,
    sysid: int = 0x7000000000000001,
    chain_prev: bool = True,
    first_prev: int = 0,
) -> SegmentLayout:
    """Lay ``records`` (raw XLogRecords) out in one WAL segment, as PostgreSQL's inserter does.

    ``chain_prev`` rewrites each record's xl_prev to the previous record's start LSN (the
    first gets ``first_prev``) and recomputes its CRC; with ``chain_prev=False`` the records
    are written untouched. Raises ValueError when they do not fit in the segment.
    """
    check_version(pg_version)
    if seg_size & (seg_size - 1) or not (1 << 20) <= seg_size <= (1 << 30):
        raise ValueError(f"segment size {seg_size} is not a power of two between 1 MiB and 1 GiB")
    if segno < 1:
        raise ValueError(f"segment number {segno} must be at least 1 (LSN 0 is invalid)")
    magic = XLOG_PAGE_MAGIC[pg_version]
    base = segno * seg_size
    buf = bytearray(seg_size)
    pos = SIZE_OF_LONG_PHD  # offset in the segment where the next byte goes
    pages_done: set[int] = set()

    def page_header(page: int, rem_len: int) -> None:
        off = page * XLOG_BLCKSZ
        info = XLP_FIRST_IS_CONTRECORD if rem_len else 0
        if page == 0:
            info |= XLP_LONG_HEADER
        struct.pack_into("<HHIQI", buf, off, magic, info, tli, base + off, rem_len)
        if page == 0:
            struct.pack_into("<QII", buf, off + 24, sysid, seg_size, XLOG_BLCKSZ)
        pages_done.add(page)

    page_header(0, 0)
    out: list[WrittenRecord] = []
    prev = first_prev
    for i, raw in enumerate(records):
        if len(raw) < SIZE_OF_XLOG_RECORD:
            raise ValueError(f"record {i} is {len(raw)} bytes, shorter than an XLogRecord header")
        rec = set_prev(raw, prev) if chain_prev else bytes(raw)
        pos = maxalign(pos)
        if pos % XLOG_BLCKSZ == 0:
            page = pos // XLOG_BLCKSZ
            if page * XLOG_BLCKSZ >= seg_size:
                raise ValueError(f"record {i} does not fit in a {seg_size}-byte segment")
            page_header(page, 0)
            pos += SIZE_OF_SHORT_PHD
        start = pos
        done = 0
        while done < len(rec):
            page_end = (pos // XLOG_BLCKSZ + 1) * XLOG_BLCKSZ
            n = min(len(rec) - done, page_end - pos)
            if page_end > seg_size:
                raise ValueError(f"record {i} does not fit in a {seg_size}-byte segment")
            buf[pos : pos + n] = rec[done : done + n]
            done += n
            pos += n
            if done < len(rec):
                page = pos // XLOG_BLCKSZ
                if page * XLOG_BLCKSZ >= seg_size:
                    raise ValueError(f"record {i} does not fit in a {seg_size}-byte segment")
                page_header(page, len(rec) - done)
                pos += SIZE_OF_SHORT_PHD
        out.append(WrittenRecord(base + start, base + pos, rec))
        prev = base + start
    # Pages after the last record stay zero: readers stop there ("invalid record length"
    # or "invalid magic number"), as at the end of real, not yet filled WAL.
    return SegmentLayout(
        bytes(buf), segment_file_name(tli, segno, seg_size), tuple(out), tli, segno, seg_size
    )


class SegmentReadError(ValueError):
    """A WAL segment whose page headers or record stream are malformed."""


def read_segment(data: bytes, *, pg_version: int | None = None) -> tuple[list[WrittenRecord], str]:
    """Read the records of one WAL segment, following them across pages like xlogreader.

    Returns the complete records found and why reading stopped (``"end of WAL"`` at zeroed
    space, ``"record continues in the next segment"``, ...). Page headers are checked (magic of
    ``pg_version`` when given, page address, contrecord flag and remaining length); a record
    that begins in the previous segment is skipped. Raises :class:`SegmentReadError`.
    """
    if len(data) < SIZE_OF_LONG_PHD:
        raise SegmentReadError(f"segment is {len(data)} bytes, shorter than its long page header")
    magic, info, _tli, pageaddr, rem_len = struct.unpack_from("<HHIQI", data, 0)
    _sysid, seg_size, blcksz = struct.unpack_from("<QII", data, 24)
    if not info & XLP_LONG_HEADER:
        raise SegmentReadError("first page lacks XLP_LONG_HEADER")
    if blcksz != XLOG_BLCKSZ or seg_size != len(data):
        raise SegmentReadError(
            f"long header says page size {blcksz} and segment size {seg_size}; file is {len(data)} bytes"
        )
    if pg_version is not None and magic != XLOG_PAGE_MAGIC[pg_version]:
        raise SegmentReadError(
            f"page magic 0x{magic:04X} is not PostgreSQL {pg_version}'s 0x{XLOG_PAGE_MAGIC[pg_version]:04X}"
        )
    base = pageaddr
    pos = SIZE_OF_LONG_PHD
    if info & XLP_FIRST_IS_CONTRECORD:
        pos = skip_continuation(data, pos, rem_len)

    def check_page(page_off: int, expect_rem: int) -> None:
        m, inf, _tli, addr, rem = struct.unpack_from("<HHIQI", data, page_off)
        if m != magic:
            raise SegmentReadError(f"page at {base + page_off:X} has magic 0x{m:04X}, expected 0x{magic:04X}")
        if addr != base + page_off:
            raise SegmentReadError(f"page at {base + page_off:X} says its address is {addr:X}")
        if bool(inf & XLP_FIRST_IS_CONTRECORD) != (expect_rem > 0) or (expect_rem and rem != expect_rem):
            raise SegmentReadError(
                f"page at {base + page_off:X}: contrecord flag/xlp_rem_len {rem} do not match the "
                f"{expect_rem} byte(s) left of the record"
            )

    out: list[WrittenRecord] = []
    while True:
        pos = maxalign(pos)
        if pos >= len(data):
            return out, "end of segment"
        if pos % XLOG_BLCKSZ == 0:
            if data[pos : pos + 2] == b"\0\0":
                return out, "end of WAL"
            check_page(pos, 0)
            pos += SIZE_OF_SHORT_PHD
        start = pos
        # Records start MAXALIGNed, so xl_tot_len never straddles a page (the rest may).
        (tot_len,) = struct.unpack_from("<I", data, pos)
        if tot_len == 0:
            return out, "end of WAL"
        if tot_len < SIZE_OF_XLOG_RECORD:
            raise SegmentReadError(f"record at {base + start:X} has xl_tot_len {tot_len}")
        rec = bytearray()
        while len(rec) < tot_len:
            page_end = (pos // XLOG_BLCKSZ + 1) * XLOG_BLCKSZ
            n = min(tot_len - len(rec), page_end - pos)
            rec += data[pos : pos + n]
            pos += n
            if len(rec) < tot_len:
                if pos >= len(data):
                    return out, "record continues in the next segment"
                if data[pos : pos + 2] == b"\0\0":
                    return out, f"record at {base + start:X} is incomplete"
                check_page(pos, tot_len - len(rec))
                pos += SIZE_OF_SHORT_PHD
        out.append(WrittenRecord(base + start, base + pos, bytes(rec)))


def skip_continuation(data: bytes, pos: int, rem_len: int) -> int:
    """The position after the ``rem_len`` bytes of a record that began in an earlier segment,
    which start at ``pos`` (page headers in between skipped)."""
    while rem_len > 0:
        page_end = (pos // XLOG_BLCKSZ + 1) * XLOG_BLCKSZ
        n = min(rem_len, page_end - pos)
        rem_len -= n
        pos += n
        if rem_len:
            pos += SIZE_OF_SHORT_PHD
    return pos
