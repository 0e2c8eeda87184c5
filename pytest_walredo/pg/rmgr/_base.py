"""Shared machinery for typed resource-manager records.

A typed record (subclass of :class:`RmgrRecord`) owns the rmgr-specific bytes of one WAL
record: its main data and the data attached to each block reference. Where the record goes
(relation, block number, full-page image) stays in the generic
:class:`~pytest_walredo.pg.xlogrecord.BlockRef` s; :func:`build` joins the two.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.xlogrecord import (
    BKPBLOCK_HAS_DATA,
    BlockRef,
    DecodedRecord,
    make_record,
)

__all__ = [
    "RmgrDecodeError",
    "RmgrRecord",
    "UnsupportedRecord",
    "build",
    "fmt_infobits_15",
    "fmt_infobits_16",
    "is_catalog_rel_desc",
    "offsets_desc",
]


class UnsupportedRecord(ValueError):
    """A (rmgr, info) pair the model has no typed record for."""


class RmgrDecodeError(ValueError):
    """Main data or block data too short or inconsistent for the record type."""


@dataclass(frozen=True)
class RmgrRecord:
    """Base of every typed record. Subclasses set RMGR (name) and implement the methods."""

    RMGR: ClassVar[str] = "?"
    PG_VERSIONS: ClassVar[tuple[int, ...]] = SUPPORTED_VERSIONS
    """The PostgreSQL major versions in which the record exists."""

    def rmid(self, pg_version: int, flavour: Flavour) -> int:
        raise NotImplementedError

    def info(self, pg_version: int, flavour: Flavour) -> int:
        """The rmgr-owned high nibble of xl_info (flags like INIT_PAGE included)."""
        raise NotImplementedError

    def identify(self, pg_version: int, flavour: Flavour) -> str:
        """pg_waldump's record name, e.g. ``INSERT+INIT``."""
        raise NotImplementedError

    def main_data(self, pg_version: int, flavour: Flavour) -> bytes:
        return b""

    def block_data(self, pg_version: int, flavour: Flavour) -> dict[int, bytes]:
        return {}

    def describe(self, pg_version: int, flavour: Flavour) -> str:
        """pg_waldump's ``desc:`` text after the record name (verified for PG15)."""
        return ""


def build(
    body: RmgrRecord,
    blocks: Sequence[BlockRef],
    *,
    pg_version: int,
    flavour: Flavour = Flavour.VANILLA,
    xid: int = 0,
    prev: int = 0,
    origin: int | None = None,
    toplevel_xid: int | None = None,
    xl_info_low: int = 0,
) -> DecodedRecord:
    """A complete record (tot_len and CRC computed) from a typed body and block targets.

    Each block's ``data`` is replaced by what ``body`` puts in that block (and HAS_DATA set
    accordingly); a block id the body puts data in but ``blocks`` lacks is an error.
    ``xl_info_low`` sets the low nibble of xl_info (XLR_SPECIAL_REL_UPDATE 0x01,
    XLR_CHECK_CONSISTENCY 0x02).
    """
    data = body.block_data(pg_version, flavour)
    ids = {b.block_id for b in blocks}
    missing = sorted(set(data) - ids)
    if missing:
        raise ValueError(
            f"{type(body).__name__} puts data in block id(s) {missing} but no such block was given"
        )
    fixed = []
    for b in blocks:
        d = data.get(b.block_id, b"")
        flags = (b.flags & ~BKPBLOCK_HAS_DATA) | (BKPBLOCK_HAS_DATA if d else 0)
        fixed.append(replace(b, data=d, flags=flags))
    return make_record(
        rmid=body.rmid(pg_version, flavour),
        info=body.info(pg_version, flavour) | (xl_info_low & 0x0F),
        blocks=fixed,
        main_data=body.main_data(pg_version, flavour),
        xid=xid,
        prev=prev,
        origin=origin,
        toplevel_xid=toplevel_xid,
    )


def block_data_of(rec: DecodedRecord) -> Mapping[int, bytes]:
    return {b.block_id: b.data for b in rec.blocks if b.data}


def need(buf: bytes, size: int, what: str) -> None:
    if len(buf) < size:
        raise RmgrDecodeError(f"{what} needs {size} bytes, the record has {len(buf)}")


def unpack(fmt: str, buf: bytes, offset: int, what: str) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    if offset + size > len(buf):
        raise RmgrDecodeError(f"{what} needs {size} bytes at offset {offset}, the data has {len(buf)}")
    return struct.unpack_from(fmt, buf, offset)


def offsets(buf: bytes, offset: int, count: int, what: str) -> tuple[int, ...]:
    return tuple(unpack(f"<{count}H", buf, offset, what)) if count else ()


# pg_waldump's infobits text ------------------------------------------------------------------

_INFOBITS = (
    (0x01, "IS_MULTI"),
    (0x02, "LOCK_ONLY"),
    (0x04, "EXCL_LOCK"),
    (0x08, "KEYSHR_LOCK"),
    (0x10, "KEYS_UPDATED"),
)


def fmt_infobits_15(infobits: int) -> str:
    """PG14/15 style: each set bit's name followed by a space."""
    return "".join(f"{name} " for bit, name in _INFOBITS if infobits & bit)


def fmt_infobits_16(infobits: int, key: str) -> str:
    """PG16+ style: ``key: [A, B]``."""
    return f"{key}: [" + ", ".join(name for bit, name in _INFOBITS if infobits & bit) + "]"


def is_catalog_rel_desc(flag: bool, pg_version: int, sep: str = ": ") -> str:
    """``, isCatalogRel<sep>T`` (or ``F``) as 17's descriptions append it (``sep`` is ``" "``
    in gistdesc and hashdesc); nothing before 17. PostgreSQL 16 logs the field but prints it
    nowhere: its server has no such format string (tests/test_describe_server_strings.py)."""
    return f", isCatalogRel{sep}{'T' if flag else 'F'}" if pg_version >= 17 else ""


def offsets_desc(items: Sequence[int]) -> str:
    """PG16+ array_desc of offset numbers: `` [1, 2, 3]``."""
    return " [" + ", ".join(str(i) for i in items) + "]"
