"""Read the records of consecutive WAL segments, records that cross segment boundaries
included (``walsegment.read_segment`` reads one segment and drops such a record).

Same page rules as ``walsegment``: every 8192-byte page starts with a page header (the long
one at the start of each segment) whose magic, page address and contrecord fields are checked;
records start MAXALIGNed; a record split over pages (or segments) continues after the next
page header, which carries XLP_FIRST_IS_CONTRECORD and the number of bytes still to come.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from pytest_walredo.pg.walsegment import (
    SIZE_OF_LONG_PHD,
    SIZE_OF_SHORT_PHD,
    XLOG_BLCKSZ,
    XLOG_PAGE_MAGIC,
    XLP_FIRST_IS_CONTRECORD,
    SegmentReadError,
    WrittenRecord,
    skip_continuation,
)
from pytest_walredo.pg.xlogrecord import SIZE_OF_XLOG_RECORD

__all__ = ["iter_wal"]

_PAGE_HEADER = struct.Struct("<HHIQI")


def _maxalign(n: int) -> int:
    return (n + 7) & ~7


def iter_wal(segments: Iterable[tuple[int, bytes]], *, pg_version: int,
             seg_size: int = 16 * 1024 * 1024) -> Iterator[WrittenRecord]:
    """Yield every complete record of ``segments`` ((segment number, bytes), consecutive, in
    order), starting with the first record that begins in the first segment, until the end of
    WAL (zeroed space) or the end of the last segment. Raises :class:`SegmentReadError` naming
    the LSN of a malformed page or a gap between segments."""
    magic = XLOG_PAGE_MAGIC[pg_version]
    rec = bytearray()  # the record being assembled
    rec_start = 0
    need = 0  # bytes of ``rec`` still to come (0: between records)
    expected_segno: int | None = None
    skipping = True  # the first segment may begin inside a record from an earlier segment
    for segno, data in segments:
        if len(data) != seg_size:
            raise SegmentReadError(f"segment {segno} is {len(data)} bytes, expected {seg_size}")
        if expected_segno is not None and segno != expected_segno:
            raise SegmentReadError(f"segment {segno} follows segment {expected_segno - 1}: WAL is missing")
        expected_segno = segno + 1
        base = segno * seg_size
        pos = 0
        while pos < seg_size:
            if pos % XLOG_BLCKSZ == 0:
                if data[pos:pos + 2] == b"\0\0":
                    if need:
                        raise SegmentReadError(f"the record at {rec_start >> 32:X}/{rec_start & 0xFFFFFFFF:X}"
                                               f" is cut off by the end of WAL")
                    return
                m, info, _tli, addr, rem = _PAGE_HEADER.unpack_from(data, pos)
                where = f"page at {(base + pos) >> 32:X}/{(base + pos) & 0xFFFFFFFF:X}"
                if m != magic:
                    raise SegmentReadError(f"{where} has magic 0x{m:04X}, not PostgreSQL {pg_version}'s "
                                           f"0x{magic:04X}")
                if addr != base + pos:
                    raise SegmentReadError(f"{where} says its address is {addr:X}")
                contrecord = bool(info & XLP_FIRST_IS_CONTRECORD)
                pos += SIZE_OF_LONG_PHD if pos == 0 else SIZE_OF_SHORT_PHD
                if skipping:
                    skipping = False
                    if contrecord:  # skip the tail of a record we never saw the start of
                        pos = _maxalign(skip_continuation(data, pos, rem))
                        continue
                elif contrecord != bool(need) or (need and rem != need):
                    raise SegmentReadError(f"{where}: contrecord flag / xlp_rem_len {rem} do not match "
                                           f"the {need} byte(s) left of the record")
            if need:
                page_end = (pos // XLOG_BLCKSZ + 1) * XLOG_BLCKSZ
                n = min(need, page_end - pos)
                rec += data[pos:pos + n]
                pos += n
                need -= n
                if not need:
                    yield WrittenRecord(rec_start, base + pos, bytes(rec))
                    pos = _maxalign(pos)
                continue
            # between records: a new record starts here (MAXALIGNed, header never split before
            # xl_tot_len since 4 bytes fit before any page boundary)
            (tot_len,) = struct.unpack_from("<I", data, pos)
            if tot_len == 0:
                return
            if tot_len < SIZE_OF_XLOG_RECORD:
                lsn = base + pos
                raise SegmentReadError(f"record at {lsn >> 32:X}/{lsn & 0xFFFFFFFF:X} has xl_tot_len {tot_len}")
            rec = bytearray()
            rec_start = base + pos
            need = tot_len
    if need:
        raise SegmentReadError(f"the record at {rec_start >> 32:X}/{rec_start & 0xFFFFFFFF:X} continues "
                               f"past the last segment")
