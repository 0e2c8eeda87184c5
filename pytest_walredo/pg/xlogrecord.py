"""The generic XLogRecord format of PostgreSQL 14-17: header, block references, images, CRC.

A WAL record is laid out as (all little-endian, nothing aligned after the header)::

    XLogRecord header (24 bytes)
        xl_tot_len u32 | xl_xid u32 | xl_prev u64 | xl_info u8 | xl_rmid u8 | 2 pad | xl_crc u32
    block headers, in increasing block id order (id 0..32):
        id u8 | fork_flags u8 | data_length u16
        [image header: length u16 | hole_offset u16 | bimg_info u8
                       [hole_length u16  -- only when compressed AND has a hole]]
        [RelFileLocator: spcOid u32 | dbOid u32 | relNumber u32  -- unless SAME_REL]
        block number u32
    [253 ORIGIN: RepOriginId u16]
    [252 TOPLEVEL_XID: TransactionId u32]
    [255 DATA_SHORT: length u8  |  254 DATA_LONG: length u32]   -- main data header, always last
    for each block in order: [stored image bytes] [block data]
    main data

``xl_crc`` is CRC-32C over the bytes after the header, continued over the header bytes before
``xl_crc`` (offsets 0..19, padding included). Facts from PostgreSQL's
``src/include/access/xlogrecord.h``, ``xloginsert.c`` (XLogRecordAssemble) and ``xlogreader.c``
(DecodeXLogRecord) for versions 14-17.

The decoded form is :class:`DecodedRecord` (frozen). ``decode_record(encode_record(r)) == r``
for every record, and ``encode_record(decode_record(b)) == b`` for every record the decoder
accepts: whatever PostgreSQL leaves free (header order, short/long main-data header, padding
bytes, the stored CRC) is kept in :class:`RecordLayout` / the ``crc`` field. To build a new
record from typed fields use :func:`make_record` (computes ``xl_tot_len`` and the CRC) and
:func:`make_block` / :meth:`ImageRef.from_page` (removes the hole, compresses).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import crc32c as _crc32c

from pytest_walredo.pg.constants import BLCKSZ, MAX_FORKNUM
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER
from pytest_walredo.pg.version import check_version

__all__ = [
    "BKPBLOCK_FORK_MASK",
    "BKPBLOCK_HAS_DATA",
    "BKPBLOCK_HAS_IMAGE",
    "BKPBLOCK_SAME_REL",
    "BKPBLOCK_WILL_INIT",
    "BLCKSZ",
    "SIZE_OF_XLOG_RECORD",
    "XLR_BLOCK_ID_DATA_LONG",
    "XLR_BLOCK_ID_DATA_SHORT",
    "XLR_BLOCK_ID_ORIGIN",
    "XLR_BLOCK_ID_TOPLEVEL_XID",
    "XLR_INFO_MASK",
    "XLR_MAX_BLOCK_ID",
    "XLR_RMGR_INFO_MASK",
    "BimgFlags",
    "BlockRef",
    "Compression",
    "DecodedRecord",
    "ImageRef",
    "RecordDecodeError",
    "RecordLayout",
    "bimg_flags",
    "compute_crc",
    "decode_header",
    "decode_record",
    "encode_record",
    "make_block",
    "make_record",
    "verify_crc",
]

SIZE_OF_XLOG_RECORD = 24

_HEADER = struct.Struct("<IIQBBHI")  # tot_len, xid, prev, info, rmid, pad, crc
_CRC_OFFSET = 20

XLR_INFO_MASK = 0x0F
XLR_RMGR_INFO_MASK = 0xF0

XLR_MAX_BLOCK_ID = 32
XLR_BLOCK_ID_DATA_SHORT = 255
XLR_BLOCK_ID_DATA_LONG = 254
XLR_BLOCK_ID_ORIGIN = 253
XLR_BLOCK_ID_TOPLEVEL_XID = 252

BKPBLOCK_FORK_MASK = 0x0F
BKPBLOCK_FLAG_MASK = 0xF0
BKPBLOCK_HAS_IMAGE = 0x10
BKPBLOCK_HAS_DATA = 0x20
BKPBLOCK_WILL_INIT = 0x40
BKPBLOCK_SAME_REL = 0x80


class RecordDecodeError(ValueError):
    """A byte string that is not a well-formed XLogRecord.

    ``field`` names the field at fault (``xl_tot_len``, ``block 2 data_length``...), ``offset``
    the byte offset of that field inside the record.
    """

    def __init__(self, field_name: str, offset: int, detail: str):
        self.field = field_name
        self.offset = offset
        self.detail = detail
        super().__init__(f"XLogRecord {field_name} at byte offset {offset}: {detail}")


@dataclass(frozen=True)
class BimgFlags:
    """The bimg_info bit values of one PostgreSQL version (they were renumbered in PG15)."""

    has_hole: int
    apply: int
    pglz: int
    lz4: int
    zstd: int

    @property
    def compressed_mask(self) -> int:
        return self.pglz | self.lz4 | self.zstd

    @property
    def known_mask(self) -> int:
        return self.has_hole | self.apply | self.compressed_mask


# PG14: HAS_HOLE 0x01, IS_COMPRESSED 0x02 (always pglz), APPLY 0x04.
_BIMG_14 = BimgFlags(has_hole=0x01, apply=0x04, pglz=0x02, lz4=0, zstd=0)
# PG15+: HAS_HOLE 0x01, APPLY 0x02, COMPRESS_PGLZ 0x04, COMPRESS_LZ4 0x08, COMPRESS_ZSTD 0x10.
_BIMG_15 = BimgFlags(has_hole=0x01, apply=0x02, pglz=0x04, lz4=0x08, zstd=0x10)


def bimg_flags(pg_version: int) -> BimgFlags:
    """The bimg_info bit values PostgreSQL ``pg_version`` uses."""
    check_version(pg_version)
    return _BIMG_14 if pg_version == 14 else _BIMG_15


class Compression(str, enum.Enum):
    """How a full-page image is stored."""

    NONE = "none"
    PGLZ = "pglz"
    LZ4 = "lz4"
    ZSTD = "zstd"


def _compression_of(bimg_info: int, flags: BimgFlags) -> Compression:
    if bimg_info & flags.pglz:
        return Compression.PGLZ
    if flags.lz4 and bimg_info & flags.lz4:
        return Compression.LZ4
    if flags.zstd and bimg_info & flags.zstd:
        return Compression.ZSTD
    return Compression.NONE


def _compression_bit(method: Compression, flags: BimgFlags, pg_version: int) -> int:
    bit = {
        Compression.NONE: 0,
        Compression.PGLZ: flags.pglz,
        Compression.LZ4: flags.lz4,
        Compression.ZSTD: flags.zstd,
    }[method]
    if method is not Compression.NONE and not bit:
        raise ValueError(f"PostgreSQL {pg_version} WAL cannot hold {method.value}-compressed images")
    return bit


@dataclass(frozen=True)
class ImageRef:
    """A full-page image attached to a block reference, as stored in the record.

    ``data`` is the stored bytes (hole removed, maybe compressed); ``hole_offset`` /
    ``hole_length`` locate the removed all-zero hole (``hole_length`` is the effective one:
    for uncompressed images PostgreSQL does not store it but derives ``BLCKSZ - len(data)``);
    ``bimg_info`` is the raw flag byte, read with ``pg_version``'s numbering.

    Invariant (checked by the decoder exactly as PostgreSQL does): HAS_HOLE iff hole_length >
    0, with 0 < hole_offset and hole_offset + hole_length <= BLCKSZ; uncompressed images hold
    exactly ``BLCKSZ - hole_length`` bytes; compressed images hold fewer than BLCKSZ bytes.
    """

    data: bytes = field(repr=False)
    hole_offset: int
    hole_length: int
    bimg_info: int
    pg_version: int

    @property
    def length(self) -> int:
        """The stored length (the image header's ``length`` field)."""
        return len(self.data)

    @property
    def flags(self) -> BimgFlags:
        return bimg_flags(self.pg_version)

    @property
    def has_hole(self) -> bool:
        return bool(self.bimg_info & self.flags.has_hole)

    @property
    def apply(self) -> bool:
        """BKPIMAGE_APPLY: redo restores this image (unset for wal_consistency_checking images)."""
        return bool(self.bimg_info & self.flags.apply)

    @property
    def compression(self) -> Compression:
        return _compression_of(self.bimg_info, self.flags)

    @property
    def is_compressed(self) -> bool:
        return self.compression is not Compression.NONE

    def restore_page(self) -> bytes:
        """The full 8192-byte page: decompressed, with the hole filled with zeros."""
        method = self.compression
        if method is Compression.NONE:
            raw = self.data
        else:
            from pytest_walredo.pg import compression as _comp

            raw = _comp.decompress(method.value, self.data, BLCKSZ - self.hole_length)
        expected = BLCKSZ - self.hole_length
        if len(raw) != expected:
            raise ValueError(
                f"full-page image restores to {len(raw)} bytes, expected {expected} "
                f"(BLCKSZ minus a hole of {self.hole_length})"
            )
        if self.hole_length == 0:
            return bytes(raw)
        return bytes(raw[: self.hole_offset]) + bytes(self.hole_length) + bytes(raw[self.hole_offset :])

    @classmethod
    def from_page(
        cls,
        page: bytes,
        pg_version: int,
        *,
        apply: bool = True,
        compression: Compression | str = Compression.NONE,
        hole: tuple[int, int] | bool | None = True,
        force_compression: bool = False,
    ) -> ImageRef:
        """Build the image PostgreSQL would log for ``page``.

        ``hole=True`` finds the hole like XLogRecordAssemble does for a standard page: from
        pd_lower to pd_upper when ``SizeOfPageHeaderData <= pd_lower < pd_upper <= BLCKSZ``
        (the hole bytes must then be zero, as they are not logged). ``hole=False`` or
        ``None`` keeps the whole page; ``(offset, length)`` gives it explicitly.
        ``compression`` compresses the hole-less bytes; like PostgreSQL, the image falls
        back to uncompressed storage when compression does not save more than the
        extra hole-length field, unless ``force_compression`` (then it raises instead).
        """
        check_version(pg_version)
        if len(page) != BLCKSZ:
            raise ValueError(f"a full-page image needs a {BLCKSZ}-byte page, got {len(page)} bytes")
        flags = bimg_flags(pg_version)
        method = Compression(compression)
        if hole is True:
            lower, upper = struct.unpack_from("<HH", page, 12)
            if SIZE_OF_PAGE_HEADER <= lower < upper <= BLCKSZ:
                hole_offset, hole_length = lower, upper - lower
            else:
                hole_offset, hole_length = 0, 0
        elif hole is False or hole is None:
            hole_offset, hole_length = 0, 0
        else:
            hole_offset, hole_length = hole
        if hole_length:
            if not (0 < hole_offset and hole_offset + hole_length <= BLCKSZ and hole_length < BLCKSZ):
                raise ValueError(f"hole ({hole_offset}, {hole_length}) does not fit in the page")
            if any(page[hole_offset : hole_offset + hole_length]):
                raise ValueError(
                    f"page bytes {hole_offset}..{hole_offset + hole_length} are not zero, so they "
                    f"cannot be logged as a hole"
                )
        else:
            hole_offset = 0
        stored = page[:hole_offset] + page[hole_offset + hole_length :]
        info = flags.apply if apply else 0
        if hole_length:
            info |= flags.has_hole
        if method is not Compression.NONE:
            bit = _compression_bit(method, flags, pg_version)
            from pytest_walredo.pg import compression as _comp

            packed = _comp.compress(method.value, stored)
            extra = 2 if hole_length else 0
            if packed is not None and len(packed) + extra < len(stored):
                return cls(packed, hole_offset, hole_length, info | bit, pg_version)
            if force_compression:
                raise ValueError(
                    f"{method.value} does not shrink this page image ({len(stored)} bytes), so "
                    f"PostgreSQL would store it uncompressed"
                )
        return cls(bytes(stored), hole_offset, hole_length, info, pg_version)


@dataclass(frozen=True)
class BlockRef:
    """One block reference: which block, its flags, its rmgr data and optional image.

    ``flags`` is the high nibble of ``fork_flags`` as stored (HAS_IMAGE 0x10, HAS_DATA 0x20,
    WILL_INIT 0x40, SAME_REL 0x80). Invariants (checked by the encoder and decoder): HAS_IMAGE
    iff ``image`` is set; HAS_DATA iff ``data`` is non-empty; SAME_REL only when the previous
    block reference of the record names the same relation. The relation fields are always
    filled in, even when SAME_REL omitted them from the bytes.
    """

    block_id: int
    forknum: int
    flags: int
    spcnode: int
    dbnode: int
    relnode: int
    blkno: int
    data: bytes = field(default=b"", repr=False)
    image: ImageRef | None = None

    @property
    def has_image(self) -> bool:
        return bool(self.flags & BKPBLOCK_HAS_IMAGE)

    @property
    def has_data(self) -> bool:
        return bool(self.flags & BKPBLOCK_HAS_DATA)

    @property
    def will_init(self) -> bool:
        return bool(self.flags & BKPBLOCK_WILL_INIT)

    @property
    def same_rel(self) -> bool:
        return bool(self.flags & BKPBLOCK_SAME_REL)

    @property
    def rel(self) -> tuple[int, int, int]:
        """``(spcnode, dbnode, relnode)``."""
        return (self.spcnode, self.dbnode, self.relnode)

    @property
    def apply_image(self) -> bool:
        """True when redo restores this block from its image (HAS_IMAGE and BKPIMAGE_APPLY)."""
        return self.image is not None and self.image.apply


@dataclass(frozen=True)
class RecordLayout:
    """The byte-level choices PostgreSQL's decoder accepts but our canonical encoder would
    make differently; kept so that re-encoding a decoded record gives the same bytes.

    ``order``: the header ids in stored order (block ids, 253, 252, 255/254).
    ``pad``: the two padding bytes after xl_rmid (zero when PostgreSQL writes them).
    """

    order: tuple[int, ...]
    pad: int = 0


@dataclass(frozen=True)
class DecodedRecord:
    """One XLogRecord, decoded. Field names follow PostgreSQL (xl_tot_len -> ``tot_len``...).

    ``crc`` is the stored xl_crc (see :meth:`crc_ok`). ``layout`` remembers non-canonical byte
    choices and takes no part in equality.
    """

    tot_len: int
    xid: int
    prev: int
    info: int
    rmid: int
    crc: int
    blocks: tuple[BlockRef, ...] = ()
    main_data: bytes = field(default=b"", repr=False)
    origin: int | None = None
    toplevel_xid: int | None = None
    layout: RecordLayout | None = field(default=None, compare=False, repr=False)

    @property
    def rmgr_info(self) -> int:
        """The rmgr-owned high nibble of xl_info (``info & 0xF0``)."""
        return self.info & XLR_RMGR_INFO_MASK

    def block(self, block_id: int) -> BlockRef | None:
        """The block reference with ``block_id``, or None."""
        for b in self.blocks:
            if b.block_id == block_id:
                return b
        return None

    def encode(self) -> bytes:
        return encode_record(self)

    def crc_ok(self) -> bool:
        """Whether the stored xl_crc matches the record's bytes."""
        return verify_crc(encode_record(self))

    def with_crc(self) -> DecodedRecord:
        """This record with tot_len and crc recomputed (layout kept)."""
        raw = encode_record(replace(self, tot_len=0, crc=0), check_len=False)
        return replace(self, tot_len=len(raw), crc=compute_crc(raw))


# --------------------------------------------------------------------------------------------
# CRC
# --------------------------------------------------------------------------------------------


def compute_crc(raw: bytes | bytearray | memoryview) -> int:
    """The CRC-32C PostgreSQL stores in xl_crc: over ``raw[24:]`` then ``raw[0:20]``."""
    if len(raw) < SIZE_OF_XLOG_RECORD:
        raise RecordDecodeError(
            "header", 0, f"record is {len(raw)} bytes, shorter than the {SIZE_OF_XLOG_RECORD}-byte header"
        )
    mv = memoryview(raw)
    crc = _crc32c.crc32c(mv[SIZE_OF_XLOG_RECORD:])
    return int(_crc32c.crc32c(mv[:_CRC_OFFSET], crc))


def verify_crc(raw: bytes | bytearray | memoryview) -> bool:
    """True when the stored xl_crc of ``raw`` matches its contents."""
    stored = struct.unpack_from("<I", raw, _CRC_OFFSET)[0] if len(raw) >= SIZE_OF_XLOG_RECORD else None
    return stored == compute_crc(raw)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def decode_header(raw: bytes | bytearray | memoryview) -> tuple[int, int, int, int, int, int, int]:
    """``(tot_len, xid, prev, info, rmid, pad, crc)`` of the 24-byte header."""
    if len(raw) < SIZE_OF_XLOG_RECORD:
        raise RecordDecodeError(
            "header",
            0,
            f"record is {len(raw)} bytes, shorter than the {SIZE_OF_XLOG_RECORD}-byte XLogRecord header",
        )
    tot_len, xid, prev, info, rmid, pad, crc = _HEADER.unpack_from(raw, 0)
    return tot_len, xid, prev, info, rmid, pad, crc


class _Reader:
    def __init__(self, raw: memoryview, pos: int, end: int):
        self.raw, self.pos, self.end = raw, pos, end

    def take(self, fmt: str, size: int, what: str, block_id: int | None = None) -> tuple[int, ...]:
        """The next ``size`` bytes unpacked; ``what`` names them in the error (``block N
        what`` with ``block_id``: the name is only formatted when there is an error)."""
        if self.pos + size > self.end:
            raise RecordDecodeError(
                what if block_id is None else f"block {block_id} {what}",
                self.pos,
                f"needs {size} byte(s) but only {self.end - self.pos} remain before xl_tot_len",
            )
        vals = struct.unpack_from(fmt, self.raw, self.pos)
        self.pos += size
        return vals


def decode_record(raw: bytes | bytearray | memoryview, pg_version: int) -> DecodedRecord:
    """Decode one raw XLogRecord (header included) written by PostgreSQL ``pg_version``.

    Applies the checks of PostgreSQL's DecodeXLogRecord (block id order, HAS_DATA/length
    agreement, image hole and compression consistency, total length). The CRC is not
    checked here (see :func:`verify_crc`). Raises :class:`RecordDecodeError`.
    """
    check_version(pg_version)
    mv = memoryview(bytes(raw))
    tot_len, xid, prev, info, rmid, pad, crc = decode_header(mv)
    if tot_len != len(mv):
        raise RecordDecodeError("xl_tot_len", 0, f"says {tot_len} bytes but the record has {len(mv)} bytes")
    flags = bimg_flags(pg_version)
    rd = _Reader(mv, SIZE_OF_XLOG_RECORD, tot_len)
    order: list[int] = []
    # (block_id, fork_flags, data_len, image header or None, rel, blkno, header offset)
    heads: list[tuple[int, int, int, tuple[int, int, int, int] | None, tuple[int, int, int], int]] = []
    origin: int | None = None
    toplevel: int | None = None
    main_len = 0
    datatotal = 0
    max_block_id = -1
    last_rel: tuple[int, int, int] | None = None
    while rd.end - rd.pos > datatotal:
        at = rd.pos
        (block_id,) = rd.take("<B", 1, "block id")
        order.append(block_id)
        if block_id == XLR_BLOCK_ID_DATA_SHORT:
            (main_len,) = rd.take("<B", 1, "main data length (short)")
            datatotal += main_len
            break
        if block_id == XLR_BLOCK_ID_DATA_LONG:
            (main_len,) = rd.take("<I", 4, "main data length (long)")
            datatotal += main_len
            break
        if block_id == XLR_BLOCK_ID_ORIGIN:
            (origin,) = rd.take("<H", 2, "origin")
            continue
        if block_id == XLR_BLOCK_ID_TOPLEVEL_XID:
            (toplevel,) = rd.take("<I", 4, "toplevel xid")
            continue
        if block_id > XLR_MAX_BLOCK_ID:
            raise RecordDecodeError("block id", at, f"invalid block id {block_id}")
        if block_id <= max_block_id:
            raise RecordDecodeError(
                "block id", at, f"out-of-order block id {block_id} after block id {max_block_id}"
            )
        max_block_id = block_id
        fork_flags, data_len = rd.take("<BH", 3, "header", block_id)
        has_data = bool(fork_flags & BKPBLOCK_HAS_DATA)
        if has_data and data_len == 0:
            raise RecordDecodeError(
                f"block {block_id} data_length", at + 2, "BKPBLOCK_HAS_DATA set, but no data included"
            )
        if not has_data and data_len != 0:
            raise RecordDecodeError(
                f"block {block_id} data_length", at + 2,
                f"BKPBLOCK_HAS_DATA not set, but data length is {data_len}"
            )
        datatotal += data_len
        img: tuple[int, int, int, int] | None = None
        if fork_flags & BKPBLOCK_HAS_IMAGE:
            img_at = rd.pos
            bimg_len, hole_offset, bimg_info = rd.take("<HHB", 5, "image header", block_id)
            compressed = bool(bimg_info & flags.compressed_mask)
            has_hole = bool(bimg_info & flags.has_hole)
            if compressed:
                if has_hole:
                    (hole_length,) = rd.take("<H", 2, "image hole_length", block_id)
                else:
                    hole_length = 0
            else:
                hole_length = BLCKSZ - bimg_len
            datatotal += bimg_len
            _check_image(f"block {block_id}", img_at, bimg_len, hole_offset, hole_length, bimg_info, flags, pg_version)
            img = (bimg_len, hole_offset, hole_length, bimg_info)
        if not fork_flags & BKPBLOCK_SAME_REL:
            rel = rd.take("<III", 12, "relfilelocator", block_id)
            last_rel = (rel[0], rel[1], rel[2])
        elif last_rel is None:
            raise RecordDecodeError(
                f"block {block_id} fork_flags", at + 1,
                "BKPBLOCK_SAME_REL set but no previous relation"
            )
        (blkno,) = rd.take("<I", 4, "block number", block_id)
        heads.append((block_id, fork_flags, data_len, img, last_rel, blkno))
    remaining = rd.end - rd.pos
    if remaining != datatotal:
        raise RecordDecodeError(
            "xl_tot_len",
            rd.pos,
            f"headers announce {datatotal} data byte(s) but {remaining} byte(s) follow them",
        )
    blocks: list[BlockRef] = []
    pos = rd.pos
    for block_id, fork_flags, data_len, img, rel, blkno in heads:
        image = None
        if img is not None:
            bimg_len, hole_offset, hole_length, bimg_info = img
            image = ImageRef(bytes(mv[pos : pos + bimg_len]), hole_offset, hole_length, bimg_info, pg_version)
            pos += bimg_len
        data = bytes(mv[pos : pos + data_len])
        pos += data_len
        blocks.append(
            BlockRef(
                block_id=block_id,
                forknum=fork_flags & BKPBLOCK_FORK_MASK,
                flags=fork_flags & BKPBLOCK_FLAG_MASK,
                spcnode=rel[0],
                dbnode=rel[1],
                relnode=rel[2],
                blkno=blkno,
                data=data,
                image=image,
            )
        )
    main_data = bytes(mv[pos : pos + main_len])
    return DecodedRecord(
        tot_len=tot_len,
        xid=xid,
        prev=prev,
        info=info,
        rmid=rmid,
        crc=crc,
        blocks=tuple(blocks),
        main_data=main_data,
        origin=origin,
        toplevel_xid=toplevel,
        layout=RecordLayout(tuple(order), pad),
    )


def _check_image(
    name: str,
    at: int,
    bimg_len: int,
    hole_offset: int,
    hole_length: int,
    bimg_info: int,
    flags: BimgFlags,
    pg_version: int,
) -> None:
    """PostgreSQL's consistency checks on an image header (DecodeXLogRecord)."""
    has_hole = bool(bimg_info & flags.has_hole)
    compressed = bool(bimg_info & flags.compressed_mask)
    if bimg_info & ~flags.known_mask & 0xFF:
        # PostgreSQL ignores unknown bits; we reject them so encode/decode stay exact and
        # a typo in a generator does not silently pass as a flag of the other version.
        raise RecordDecodeError(
            f"{name} bimg_info",
            at + 4,
            f"unknown bits 0x{bimg_info & ~flags.known_mask:02X} for PG{pg_version}",
        )
    if bin(bimg_info & flags.compressed_mask).count("1") > 1:
        raise RecordDecodeError(
            f"{name} bimg_info", at + 4, f"more than one compression method in 0x{bimg_info:02X}"
        )
    if bimg_len > BLCKSZ:
        # PostgreSQL keeps hole_length in a uint16, so BLCKSZ - bimg_len wraps around and
        # passes its checks; restoring such an image writes past the page. We refuse it.
        raise RecordDecodeError(
            f"{name} image length", at, f"block image length {bimg_len} exceeds BLCKSZ {BLCKSZ}"
        )
    if has_hole and (hole_offset == 0 or hole_length == 0 or bimg_len == BLCKSZ):
        raise RecordDecodeError(
            f"{name} image hole_offset",
            at + 2,
            f"BKPIMAGE_HAS_HOLE set, but hole offset {hole_offset} length {hole_length} "
            f"block image length {bimg_len}",
        )
    if not has_hole and (hole_offset != 0 or hole_length != 0):
        raise RecordDecodeError(
            f"{name} image hole_offset",
            at + 2,
            f"BKPIMAGE_HAS_HOLE not set, but hole offset {hole_offset} length {hole_length}",
        )
    if compressed and bimg_len == BLCKSZ:
        raise RecordDecodeError(
            f"{name} image length", at, f"image is compressed, but block image length is {bimg_len}"
        )
    if not has_hole and not compressed and bimg_len != BLCKSZ:
        raise RecordDecodeError(
            f"{name} image length",
            at,
            f"neither BKPIMAGE_HAS_HOLE nor compression set, but block image length is {bimg_len}",
        )
    if hole_offset + hole_length > BLCKSZ:
        # PostgreSQL only finds this when restoring the page; we refuse it at decode time.
        raise RecordDecodeError(
            f"{name} image hole_offset",
            at + 2,
            f"hole offset {hole_offset} plus length {hole_length} exceeds BLCKSZ {BLCKSZ}",
        )


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _canonical_order(rec: DecodedRecord) -> tuple[int, ...]:
    order = [b.block_id for b in rec.blocks]
    if rec.origin is not None:
        order.append(XLR_BLOCK_ID_ORIGIN)
    if rec.toplevel_xid is not None:
        order.append(XLR_BLOCK_ID_TOPLEVEL_XID)
    if rec.main_data:
        order.append(XLR_BLOCK_ID_DATA_LONG if len(rec.main_data) > 255 else XLR_BLOCK_ID_DATA_SHORT)
    return tuple(order)


def _layout_fits(rec: DecodedRecord, layout: RecordLayout) -> bool:
    """Whether a remembered layout still describes ``rec`` (else fall back to canonical)."""
    ids = [i for i in layout.order if i <= XLR_MAX_BLOCK_ID]
    if ids != [b.block_id for b in rec.blocks]:
        return False
    if (XLR_BLOCK_ID_ORIGIN in layout.order) != (rec.origin is not None):
        return False
    if (XLR_BLOCK_ID_TOPLEVEL_XID in layout.order) != (rec.toplevel_xid is not None):
        return False
    main = [i for i in layout.order if i in (XLR_BLOCK_ID_DATA_SHORT, XLR_BLOCK_ID_DATA_LONG)]
    if not main:
        return not rec.main_data
    return (
        layout.order[-1] == main[0]
        and len(main) == 1
        and not (main[0] == XLR_BLOCK_ID_DATA_SHORT and len(rec.main_data) > 255)
    )


def encode_record(rec: DecodedRecord, *, check_len: bool = True) -> bytes:
    """The bytes of ``rec``. ``crc`` is written as given (use :meth:`DecodedRecord.with_crc`
    or :func:`make_record` for a correct one); ``tot_len`` must equal the encoded length
    unless ``check_len`` is False (then the true length is written).
    """
    layout = rec.layout if rec.layout is not None and _layout_fits(rec, rec.layout) else None
    order = layout.order if layout is not None else _canonical_order(rec)
    pad = layout.pad if layout is not None else 0
    by_id = {b.block_id: b for b in rec.blocks}
    if len(by_id) != len(rec.blocks):
        raise ValueError("two block references share a block id")
    heads = bytearray()
    payload = bytearray()
    last_rel: tuple[int, int, int] | None = None
    prev_id = -1
    for ident in order:
        if ident <= XLR_MAX_BLOCK_ID:
            b = by_id[ident]
            if ident <= prev_id:
                raise ValueError(f"block ids must increase: {ident} after {prev_id}")
            prev_id = ident
            heads += _encode_block_header(b, last_rel)
            last_rel = b.rel
            if b.image is not None:
                payload += b.image.data
            payload += b.data
        elif ident == XLR_BLOCK_ID_ORIGIN:
            assert rec.origin is not None
            heads += struct.pack("<BH", ident, rec.origin)
        elif ident == XLR_BLOCK_ID_TOPLEVEL_XID:
            assert rec.toplevel_xid is not None
            heads += struct.pack("<BI", ident, rec.toplevel_xid)
        elif ident == XLR_BLOCK_ID_DATA_SHORT:
            heads += struct.pack("<BB", ident, len(rec.main_data))
        elif ident == XLR_BLOCK_ID_DATA_LONG:
            heads += struct.pack("<BI", ident, len(rec.main_data))
        else:
            raise ValueError(f"invalid header id {ident} in record layout")
    payload += rec.main_data
    tot_len = SIZE_OF_XLOG_RECORD + len(heads) + len(payload)
    if check_len and rec.tot_len != tot_len:
        raise ValueError(f"tot_len is {rec.tot_len} but the record encodes to {tot_len} bytes")
    header = _HEADER.pack(tot_len, rec.xid, rec.prev, rec.info, rec.rmid, pad, rec.crc)
    return header + bytes(heads) + bytes(payload)


def _encode_block_header(b: BlockRef, last_rel: tuple[int, int, int] | None) -> bytes:
    name = f"block {b.block_id}"
    if not 0 <= b.forknum <= BKPBLOCK_FORK_MASK:
        raise ValueError(f"{name}: fork number {b.forknum} does not fit in 4 bits")
    if b.flags & ~BKPBLOCK_FLAG_MASK:
        raise ValueError(f"{name}: flags 0x{b.flags:02X} must only use the high nibble")
    if b.has_image != (b.image is not None):
        raise ValueError(f"{name}: BKPBLOCK_HAS_IMAGE flag disagrees with the presence of an image")
    if b.has_data != bool(b.data):
        raise ValueError(f"{name}: BKPBLOCK_HAS_DATA flag disagrees with {len(b.data)} data byte(s)")
    if len(b.data) > 0xFFFF:
        raise ValueError(f"{name}: {len(b.data)} data bytes do not fit the u16 data_length")
    if b.same_rel and last_rel != b.rel:
        raise ValueError(f"{name}: BKPBLOCK_SAME_REL set but the previous block names another relation")
    out = bytearray(struct.pack("<BBH", b.block_id, b.forknum | b.flags, len(b.data)))
    if b.image is not None:
        im = b.image
        fl = im.flags
        out += struct.pack("<HHB", im.length, im.hole_offset, im.bimg_info)
        if im.bimg_info & fl.compressed_mask and im.bimg_info & fl.has_hole:
            out += struct.pack("<H", im.hole_length)
    if not b.same_rel:
        out += struct.pack("<III", b.spcnode, b.dbnode, b.relnode)
    out += struct.pack("<I", b.blkno)
    return bytes(out)


def make_block(
    block_id: int,
    rel: tuple[int, int, int],
    blkno: int,
    *,
    forknum: int = 0,
    data: bytes = b"",
    image: ImageRef | None = None,
    will_init: bool = False,
) -> BlockRef:
    """A block reference with flags derived from its contents (SAME_REL is set by
    :func:`make_record`, as XLogRecordAssemble does)."""
    if not 0 <= block_id <= XLR_MAX_BLOCK_ID:
        raise ValueError(f"block id {block_id} is outside 0..{XLR_MAX_BLOCK_ID}")
    if not 0 <= forknum <= MAX_FORKNUM:
        raise ValueError(f"fork number {forknum} is outside 0..{MAX_FORKNUM}")
    flags = (BKPBLOCK_HAS_IMAGE if image is not None else 0) | (BKPBLOCK_HAS_DATA if data else 0)
    if will_init:
        flags |= BKPBLOCK_WILL_INIT
    return BlockRef(block_id, forknum, flags, rel[0], rel[1], rel[2], blkno, bytes(data), image)


def make_record(
    *,
    rmid: int,
    info: int,
    blocks: Sequence[BlockRef] = (),
    main_data: bytes = b"",
    xid: int = 0,
    prev: int = 0,
    origin: int | None = None,
    toplevel_xid: int | None = None,
) -> DecodedRecord:
    """A record as PostgreSQL's XLogRecordAssemble would lay it out, with tot_len and CRC.

    Blocks are sorted by block id; SAME_REL is set on a block whose relation equals the
    previous block's (and cleared otherwise).
    """
    fixed: list[BlockRef] = []
    last: tuple[int, int, int] | None = None
    for b in sorted(blocks, key=lambda x: x.block_id):
        flags = b.flags & ~BKPBLOCK_SAME_REL
        if last == b.rel:
            flags |= BKPBLOCK_SAME_REL
        fixed.append(replace(b, flags=flags))
        last = b.rel
    rec = DecodedRecord(
        tot_len=0,
        xid=xid,
        prev=prev,
        info=info,
        rmid=rmid,
        crc=0,
        blocks=tuple(fixed),
        main_data=bytes(main_data),
        origin=origin,
        toplevel_xid=toplevel_xid,
    )
    return rec.with_crc()
