"""Helpers shared by the conformance tests: page comparison text and FPI records."""

from __future__ import annotations

import struct

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import Compression, ImageRef, make_block
from pytest_walredo.protocol import BLCKSZ, BufferTag


def page_lsn(page: bytes) -> int:
    hi, lo = struct.unpack_from("<II", page, 0)
    return (hi << 32) | lo


def explain(want: bytes, got: bytes) -> str:
    """One line saying how ``got`` differs from ``want`` (first byte, pd_lsn, zeros)."""
    if len(got) != len(want):
        return f"answer is {len(got)} bytes, expected {len(want)}"
    diffs = [i for i in range(len(want)) if want[i] != got[i]]
    if not diffs:
        return "pages are identical"
    text = f"{len(diffs)} byte(s) differ, first at offset {diffs[0]} (want 0x{want[diffs[0]]:02x}, " \
           f"got 0x{got[diffs[0]]:02x})"
    if want[:8] != got[:8]:
        text += f"; pd_lsn want {format_lsn(page_lsn(want))}, got {format_lsn(page_lsn(got))}"
    if not any(got):
        text += "; the answer is all zeros"
    return text


def require_same_page(want: bytes, got: bytes, what: str) -> None:
    """Fail with ``[wrong-page] WHAT: <explain>`` unless ``got == want``.

    Raised by hand rather than with ``assert got == want``: pytest explains a failed ``==`` on
    two 8 KiB byte strings with a difflib diff of their reprs, untruncated when ``CI`` is set,
    which takes seconds per failing example and minutes while Hypothesis shrinks.
    """
    if got != want:
        raise AssertionError(f"[wrong-page] {what}: {explain(want, got)}")


def with_lsn(page: bytes, lsn: int) -> bytes:
    """``page`` with pd_lsn set to ``lsn`` (xlogid, xrecoff)."""
    return struct.pack("<II", lsn >> 32, lsn & 0xFFFFFFFF) + page[8:]


def fpi_record(tag: BufferTag, page: bytes, pg_version: int, flavour: Flavour,
               compression: Compression = Compression.NONE) -> bytes:
    """An XLOG_FPI record whose only block is ``tag`` with image ``page`` (BKPIMAGE_APPLY)."""
    assert len(page) == BLCKSZ
    r = tag.rel
    image = ImageRef.from_page(page, pg_version, compression=compression)
    block = make_block(0, (r.spcnode, r.dbnode, r.relnode), tag.blknum, forknum=r.forknum, image=image)
    return rmgr.build(rmgr.XlogFpi(False), [block], pg_version=pg_version, flavour=flavour).encode()
