"""XLogRecord codec: real vectors, round trips, CRC, and decode errors with field and offset."""

from __future__ import annotations

import random
import re
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_walredo.pg.compression import CompressionError
from pytest_walredo.pg.version import SUPPORTED_VERSIONS
from pytest_walredo.pg.xlogrecord import (
    BLCKSZ,
    SIZE_OF_PAGE_HEADER,
    SIZE_OF_XLOG_RECORD,
    XLR_BLOCK_ID_DATA_LONG,
    XLR_BLOCK_ID_DATA_SHORT,
    XLR_BLOCK_ID_ORIGIN,
    XLR_BLOCK_ID_TOPLEVEL_XID,
    XLR_MAX_BLOCK_ID,
    BlockRef,
    DecodedRecord,
    ImageRef,
    RecordDecodeError,
    RecordLayout,
    bimg_flags,
    compute_crc,
    decode_record,
    encode_record,
    make_block,
    make_record,
    verify_crc,
)
from pytest_walredo.protocol import RedoRequest


def _records(vectors_dir: Path, name: str) -> list[tuple[int, bytes]]:
    return list(RedoRequest.decode((vectors_dir / name).read_bytes()).records)


@pytest.mark.needs_vectors
@pytest.mark.parametrize(("name", "count"), [("short_v14.walredo", 2), ("bench_medium_v14.walredo", 227)])
def test_vectors_decode_reencode_and_crc(vectors_dir: Path, name: str, count: int) -> None:
    records = _records(vectors_dir, name)
    assert len(records) == count
    for lsn, raw in records:
        rec = decode_record(raw, 14)
        assert rec.tot_len == len(raw)
        assert encode_record(rec) == raw, f"record at {lsn:X} re-encodes differently"
        assert verify_crc(raw), f"record at {lsn:X} has a bad CRC"
        assert rec.crc_ok()


@pytest.mark.needs_vectors
def test_short_v14_first_record_fields(vectors_dir: Path) -> None:
    (_, raw1), (_, raw2) = _records(vectors_dir, "short_v14.walredo")
    rec = decode_record(raw1, 14)
    assert (rec.rmid, rec.info) == (10, 0x00)
    (blk,) = rec.blocks
    assert (blk.spcnode, blk.dbnode, blk.relnode, blk.forknum, blk.blkno) == (1663, 13010, 1259, 0, 0)
    assert blk.image is not None
    assert (blk.image.hole_offset, blk.image.hole_length) == (212, BLCKSZ - len(blk.image.data))
    assert blk.image.has_hole and blk.image.apply and not blk.image.is_compressed
    page = blk.image.restore_page()
    assert len(page) == BLCKSZ
    assert page[212 : 212 + blk.image.hole_length] == bytes(blk.image.hole_length)
    rec2 = decode_record(raw2, 14)
    assert (rec2.rmid, rec2.info) == (10, 0x70)
    assert rec2.blocks[0].has_data and rec2.blocks[0].image is None


# --------------------------------------------------------------------------------------------
# Round trips of the generic format
# --------------------------------------------------------------------------------------------

_RELS = [(1663, 5, 16384), (1663, 5, 16385), (1664, 0, 1262)]


@st.composite
def _page(draw: st.DrawFn) -> bytes:
    lower = draw(st.integers(SIZE_OF_PAGE_HEADER, BLCKSZ))
    upper = draw(st.integers(lower, BLCKSZ))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if draw(st.booleans()):
        body = bytearray(rng.randbytes(BLCKSZ))
    else:
        unit = rng.randbytes(rng.randint(1, 24))
        body = bytearray((unit * (BLCKSZ // len(unit) + 1))[:BLCKSZ])
    struct.pack_into("<HH", body, 12, lower, upper)
    body[lower:upper] = bytes(upper - lower)
    return bytes(body)


@st.composite
def _record(draw: st.DrawFn, pg_version: int) -> DecodedRecord:
    ids = sorted(draw(st.sets(st.integers(0, XLR_MAX_BLOCK_ID), max_size=4)))
    methods = ["none", "pglz"] + (["lz4", "zstd"] if pg_version >= 15 else [])
    blocks = []
    for i in ids:
        image = None
        if draw(st.booleans()):
            image = ImageRef.from_page(
                draw(_page()),
                pg_version,
                apply=draw(st.booleans()),
                compression=draw(st.sampled_from(methods)),
                hole=draw(st.booleans()),
            )
        blocks.append(
            make_block(
                i,
                draw(st.sampled_from(_RELS)),
                draw(st.integers(0, 2**32 - 1)),
                forknum=draw(st.integers(0, 3)),
                data=draw(st.binary(max_size=300)),
                image=image,
                will_init=draw(st.booleans()),
            )
        )
    return make_record(
        rmid=draw(st.integers(0, 255)),
        info=draw(st.integers(0, 255)),
        blocks=blocks,
        main_data=draw(st.binary(max_size=600)),
        xid=draw(st.integers(0, 2**32 - 1)),
        prev=draw(st.integers(0, 2**64 - 1)),
        origin=draw(st.none() | st.integers(0, 2**16 - 1)),
        toplevel_xid=draw(st.none() | st.integers(0, 2**32 - 1)),
    )


_version = st.sampled_from(SUPPORTED_VERSIONS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generic_round_trip(data: st.DataObject) -> None:
    v = data.draw(_version)
    rec = data.draw(_record(v))
    raw = encode_record(rec)
    assert len(raw) == rec.tot_len
    assert verify_crc(raw)
    back = decode_record(raw, v)
    assert back == rec
    assert encode_record(back) == raw
    for blk in back.blocks:
        if blk.image is not None:
            page = blk.image.restore_page()
            assert len(page) == BLCKSZ
            assert page[blk.image.hole_offset : blk.image.hole_offset + blk.image.hole_length] == bytes(
                blk.image.hole_length
            )


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_non_canonical_layouts_re_encode_exactly(data: st.DataObject) -> None:
    """Byte choices PostgreSQL's decoder accepts but XLogRecordAssemble never makes (origin
    before blocks, long main-data header for short data, padding bytes) survive decode+encode."""
    v = data.draw(_version)
    rec = data.draw(_record(v))
    block_ids = [b.block_id for b in rec.blocks]
    extras = [i for i in (XLR_BLOCK_ID_ORIGIN, XLR_BLOCK_ID_TOPLEVEL_XID) if i in _ids(rec)]
    order = list(block_ids)
    for e in extras:
        order.insert(data.draw(st.integers(0, len(order))), e)
    if rec.main_data or data.draw(st.booleans()):
        order.append(
            XLR_BLOCK_ID_DATA_LONG
            if data.draw(st.booleans()) or len(rec.main_data) > 255
            else XLR_BLOCK_ID_DATA_SHORT
        )
    layout = RecordLayout(tuple(order), data.draw(st.integers(0, 0xFFFF)))
    odd = replace(rec, layout=layout).with_crc()
    raw = encode_record(odd)
    back = decode_record(raw, v)
    assert back == odd
    assert back.layout == layout
    assert encode_record(back) == raw
    assert verify_crc(raw)


def _ids(rec: DecodedRecord) -> list[int]:
    out = []
    if rec.origin is not None:
        out.append(XLR_BLOCK_ID_ORIGIN)
    if rec.toplevel_xid is not None:
        out.append(XLR_BLOCK_ID_TOPLEVEL_XID)
    return out


def test_same_rel_is_set_like_xlogrecordassemble() -> None:
    rec = make_record(
        rmid=10,
        info=0,
        blocks=[
            make_block(0, _RELS[0], 1, data=b"a"),
            make_block(1, _RELS[0], 2),
            make_block(2, _RELS[1], 3),
        ],
    )
    assert [b.same_rel for b in rec.blocks] == [False, True, False]
    raw = encode_record(rec)
    # SAME_REL blocks omit the 12-byte RelFileLocator: 3 headers of 4 + 4 (blkno), 2 locators.
    assert len(raw) == SIZE_OF_XLOG_RECORD + 3 * 8 + 2 * 12 + 1


def test_bimg_flag_numbering_per_version() -> None:
    page = bytearray(BLCKSZ)
    struct.pack_into("<HH", page, 12, 100, 8000)
    page[8000:] = b"q" * 192
    im14 = ImageRef.from_page(bytes(page), 14, compression="pglz")
    im15 = ImageRef.from_page(bytes(page), 15, compression="pglz")
    assert im14.bimg_info == 0x01 | 0x02 | 0x04  # HAS_HOLE | IS_COMPRESSED | APPLY
    assert im15.bimg_info == 0x01 | 0x02 | 0x04  # HAS_HOLE | APPLY | COMPRESS_PGLZ
    assert ImageRef.from_page(bytes(page), 15, compression="lz4").bimg_info == 0x01 | 0x02 | 0x08
    assert ImageRef.from_page(bytes(page), 15, compression="zstd").bimg_info == 0x01 | 0x02 | 0x10
    assert ImageRef.from_page(bytes(page), 14, apply=False).bimg_info == 0x01
    assert ImageRef.from_page(bytes(page), 15, apply=False).bimg_info == 0x01
    with pytest.raises(ValueError, match="PostgreSQL 14 WAL cannot hold lz4"):
        ImageRef.from_page(bytes(page), 14, compression="lz4")
    for im in (im14, im15):
        assert im.is_compressed and im.restore_page() == bytes(page)
    # A compressed image with a hole stores hole_length explicitly (2 more header bytes).
    r = make_record(rmid=0, info=0xB0, blocks=[make_block(0, _RELS[0], 0, image=im15)])
    assert struct.unpack_from("<HHBH", encode_record(r), SIZE_OF_XLOG_RECORD + 4) == (
        len(im15.data),
        100,
        im15.bimg_info,
        7900,
    )


def test_incompressible_image_falls_back_to_raw() -> None:
    page = bytearray(random.Random(1).randbytes(BLCKSZ))
    struct.pack_into("<HH", page, 12, 24, 24)
    im = ImageRef.from_page(bytes(page), 15, compression="pglz")
    assert not im.is_compressed and len(im.data) == BLCKSZ
    with pytest.raises(ValueError, match="pglz does not shrink"):
        ImageRef.from_page(bytes(page), 15, compression="pglz", force_compression=True)


# --------------------------------------------------------------------------------------------
# Decode errors name the field and the byte offset
# --------------------------------------------------------------------------------------------


def _raw(blocks: list[BlockRef] | None = None, main: bytes = b"xyz") -> bytes:
    return encode_record(make_record(rmid=10, info=0, blocks=blocks or [], main_data=main))


def _expect(raw: bytes, field: str, offset: int, pattern: str, version: int = 15) -> None:
    with pytest.raises(RecordDecodeError) as info:
        decode_record(raw, version)
    assert (info.value.field, info.value.offset) == (field, offset)
    assert f"{field} at byte offset {offset}" in str(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)


def _patch(raw: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(raw)
    struct.pack_into(fmt, out, offset, *values)
    struct.pack_into("<I", out, 0, len(out))
    return bytes(out)


def test_truncated_header() -> None:
    _expect(_raw()[:10], "header", 0, "10 bytes, shorter than the 24-byte")


def test_tot_len_mismatch() -> None:
    raw = _raw()
    _expect(raw[:-1], "xl_tot_len", 0, f"says {len(raw)} bytes but the record has {len(raw) - 1}")
    _expect(raw + b"\0", "xl_tot_len", 0, f"says {len(raw)} bytes but the record has {len(raw) + 1}")


def test_bad_block_id() -> None:
    raw = _raw([make_block(0, _RELS[0], 7, data=b"d")])
    _expect(_patch(raw, 24, "<B", 40), "block id", 24, "invalid block id 40")


def test_out_of_order_block_id() -> None:
    raw = _raw([make_block(3, _RELS[0], 7, data=b"d"), make_block(5, _RELS[0], 8, data=b"e")])
    second = 24 + 4 + 12 + 4  # first header: id/flags/len, locator, blkno
    _expect(_patch(raw, second, "<B", 2), "block id", second, "out-of-order block id 2 after block id 3")


def test_block_data_length_overflow() -> None:
    raw = _raw([make_block(0, _RELS[0], 7, data=b"abcd")], main=b"")
    bad = _patch(raw, 26, "<H", 500)
    _expect(bad, "xl_tot_len", 24 + 4 + 12 + 4, "headers announce 500 data byte.s. but 4 byte.s. follow")


def test_main_data_length_overflow() -> None:
    raw = _raw(main=b"abc")
    _expect(_patch(raw, 25, "<B", 200), "xl_tot_len", 26, "announce 200 data byte.s. but 3")


def test_has_data_flag_without_data() -> None:
    raw = _raw([make_block(0, _RELS[0], 7, data=b"abcd")], main=b"")
    # Clear data_length but keep HAS_DATA: PostgreSQL's "BKPBLOCK_HAS_DATA set, but no data included".
    bad = bytearray(_patch(raw, 26, "<H", 0))
    del bad[-4:]
    struct.pack_into("<I", bad, 0, len(bad))
    _expect(bytes(bad), "block 0 data_length", 26, "BKPBLOCK_HAS_DATA set, but no data included")


def test_same_rel_without_previous() -> None:
    raw = _raw([make_block(0, _RELS[0], 7)], main=b"")
    # Set SAME_REL on the only block and drop its locator.
    bad = bytearray(raw[:24]) + bytes([0, 0x80, 0, 0]) + raw[24 + 4 + 12 :]
    struct.pack_into("<I", bad, 0, len(bad))
    _expect(bytes(bad), "block 0 fork_flags", 25, "BKPBLOCK_SAME_REL set but no previous relation")


def test_truncated_block_header() -> None:
    raw = _raw([make_block(0, _RELS[0], 7)], main=b"")
    cut = raw[: 24 + 4 + 6]
    cut = struct.pack("<I", len(cut)) + cut[4:]
    _expect(cut, "block 0 relfilelocator", 28, "needs 12 byte.s. but only 6 remain")


def test_inconsistent_image_header() -> None:
    page = bytearray(BLCKSZ)
    struct.pack_into("<HH", page, 12, 100, 8000)
    im = ImageRef.from_page(bytes(page), 15)
    raw = _raw([make_block(0, _RELS[0], 7, image=im)], main=b"")
    # hole_offset 0 with HAS_HOLE set
    _expect(
        _patch(raw, 30, "<H", 0), "block 0 image hole_offset", 30, "BKPIMAGE_HAS_HOLE set, but hole offset 0"
    )
    # unknown bimg bit for PG15
    _expect(_patch(raw, 32, "<B", im.bimg_info | 0x40), "block 0 bimg_info", 32, "unknown bits 0x40 for PG15")


def test_image_longer_than_a_page_is_a_decode_error() -> None:
    """A stored length above BLCKSZ with HAS_HOLE would make the hole negative; it is refused
    when decoding, and redo says so in PostgreSQL's words (not a Python message)."""
    page = bytearray(BLCKSZ)
    struct.pack_into("<HH", page, 12, 100, 8000)
    im = ImageRef.from_page(bytes(page), 15)
    raw = _raw([make_block(0, _RELS[0], 7, image=im)], main=b"")
    # Stored length 9000, and 9000 bytes of image follow: a record consistent in every other way.
    grown = bytearray(_patch(raw, 28, "<H", 9000)) + bytes(9000 - im.length)
    struct.pack_into("<I", grown, 0, len(grown))
    bad = bytes(grown)
    _expect(bad, "block 0 image length", 28, "block image length 9000 exceeds BLCKSZ 8192")
    from pytest_walredo.pg.redo import RedoError, redo_record
    from pytest_walredo.pg.version import Flavour

    with pytest.raises(RedoError) as info:
        redo_record(None, spcnode=_RELS[0][0], dbnode=_RELS[0][1], relnode=_RELS[0][2], forknum=0,
                    blkno=7, end_lsn=0x1000000, record=bad, pg_version=15, flavour=Flavour.NEON)
    assert str(info.value) == ("failed to decode WAL record: block image length 9000 exceeds "
                               "BLCKSZ 8192 at 0/0")


def test_corrupt_compressed_image_fails_on_restore() -> None:
    page = bytearray(BLCKSZ)
    struct.pack_into("<HH", page, 12, 100, 8000)
    page[8000:] = b"ab" * 96
    im = ImageRef.from_page(bytes(page), 15, compression="pglz", force_compression=True)
    broken = replace(im, data=im.data[:-1])
    with pytest.raises(CompressionError, match="pglz"):
        broken.restore_page()


def test_crc_detects_any_flipped_byte() -> None:
    raw = bytearray(_raw([make_block(0, _RELS[0], 7, data=b"abcd")]))
    assert verify_crc(bytes(raw))
    for pos in (0, 8, 16, 19, 24, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        assert not verify_crc(bytes(bad)), pos
    # xl_crc itself sits at 20..23 and is not covered.
    assert compute_crc(bytes(raw)) == struct.unpack_from("<I", raw, 20)[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_records_fail_only_with_decode_errors(data: st.DataObject) -> None:
    """Any byte string gives a DecodedRecord or a RecordDecodeError, never another exception."""
    from pytest_walredo.pg.compression import CompressionError

    v = data.draw(_version)
    raw = bytearray(encode_record(data.draw(_record(v))))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    if data.draw(st.booleans()) and len(raw) >= 4:
        struct.pack_into("<I", raw, 0, len(raw))  # keep xl_tot_len consistent to reach deeper checks
    try:
        rec = decode_record(bytes(raw), v)
    except RecordDecodeError:
        return
    assert encode_record(rec) == bytes(raw)
    for blk in rec.blocks:
        if blk.image is not None:
            try:
                assert len(blk.image.restore_page()) == BLCKSZ
            except CompressionError:
                pass


@pytest.mark.needs_vectors
def test_version_decides_bimg_meaning(vectors_dir: Path) -> None:
    """bimg_info 0x05 is HAS_HOLE|APPLY in PG14 but HAS_HOLE|COMPRESS_PGLZ in PG15: read as
    PG15, the PG14 record claims a compressed image and its header no longer parses."""
    (_, raw1), _ = _records(vectors_dir, "short_v14.walredo")
    assert decode_record(raw1, 14).blocks[0].image.bimg_info == 0x05  # type: ignore[union-attr]
    with pytest.raises(RecordDecodeError):
        decode_record(raw1, 15)


# ---------------------------------------------------------------------------------------------
# Edges of the builders, the layouts and the encoder
# ---------------------------------------------------------------------------------------------


def _pad(raw: bytes) -> int:
    return struct.unpack_from("<H", raw, 18)[0]  # after tot_len, xid, prev, info, rmid


def test_make_block_and_make_record_defaults_and_fields() -> None:
    b = make_block(3, (1, 2, 3), 4)
    assert (b.block_id, b.forknum, b.spcnode, b.dbnode, b.relnode, b.blkno) == (3, 0, 1, 2, 3, 4)
    assert b.rel == (1, 2, 3) and not b.will_init and not b.has_data and not b.has_image
    assert make_block(0, (1, 2, 3), 4, forknum=3, will_init=True).will_init
    with pytest.raises(ValueError) as e:
        make_block(33, (1, 2, 3), 4)
    assert str(e.value) == "block id 33 is outside 0..32"
    with pytest.raises(ValueError) as e:
        make_block(0, (1, 2, 3), 4, forknum=4)
    assert str(e.value) == "fork number 4 is outside 0..3"
    rec = make_record(rmid=10, info=0x10, blocks=[b])
    assert (rec.xid, rec.prev, rec.origin, rec.toplevel_xid) == (0, 0, None, None)
    rec = make_record(rmid=10, info=0x10, origin=5, toplevel_xid=9, xid=7, prev=8)
    assert (rec.xid, rec.prev, rec.origin, rec.toplevel_xid) == (7, 8, 5, 9)
    assert rec.crc_ok() and rec.encode() == encode_record(rec)
    assert decode_record(rec.encode(), 15) == rec


def test_record_block_lookup_by_id() -> None:
    rec = make_record(rmid=10, info=0, blocks=[make_block(2, _RELS[0], 1), make_block(5, _RELS[1], 2)])
    assert rec.block(5) is rec.blocks[1] and rec.block(2) is rec.blocks[0]
    assert rec.block(0) is None and rec.block(3) is None


def test_canonical_records_have_zero_padding_and_the_right_main_data_header() -> None:
    for n, header in ((1, XLR_BLOCK_ID_DATA_SHORT), (255, XLR_BLOCK_ID_DATA_SHORT), (256, XLR_BLOCK_ID_DATA_LONG)):
        raw = make_record(rmid=10, info=0, main_data=b"m" * n).encode()
        assert _pad(raw) == 0
        assert raw[SIZE_OF_XLOG_RECORD] == header, n
        length = raw[SIZE_OF_XLOG_RECORD + 1] if header == XLR_BLOCK_ID_DATA_SHORT else struct.unpack_from(
            "<I", raw, SIZE_OF_XLOG_RECORD + 1)[0]
        assert length == n and len(raw) == SIZE_OF_XLOG_RECORD + (2 if n < 256 else 5) + n


def test_a_remembered_layout_is_used_only_while_it_still_describes_the_record() -> None:
    base = make_record(rmid=10, info=0, blocks=[make_block(0, _RELS[0], 1), make_block(32, _RELS[1], 2)])

    def encode(rec: DecodedRecord, order: tuple[int, ...]) -> bytes:
        return encode_record(replace(rec, layout=RecordLayout(order, 0x1234)).with_crc())

    def canonical(rec: DecodedRecord) -> bytes:
        return encode_record(replace(rec, layout=None).with_crc())

    # layouts that fit: kept, padding and all (block 32 is a block id too)
    assert _pad(encode(base, (0, 32))) == 0x1234
    with_main = replace(base, main_data=b"d" * 255)
    assert _pad(encode(with_main, (0, 32, XLR_BLOCK_ID_DATA_SHORT))) == 0x1234
    assert _pad(encode(base, (0, 32, XLR_BLOCK_ID_DATA_SHORT))) == 0x1234  # an empty main-data header
    # stale layouts: the canonical bytes instead
    extra = replace(base, origin=7, toplevel_xid=9)
    long_main = replace(base, main_data=b"d" * 256)
    for rec, order in [
        (base, (0,)),  # a block more than the layout knows
        (base, (0, 1)),  # another block
        (extra, (0, 32, XLR_BLOCK_ID_TOPLEVEL_XID)),  # no origin in the layout
        (extra, (0, 32, XLR_BLOCK_ID_ORIGIN)),  # no top-level xid in the layout
        (base, (0, 32, XLR_BLOCK_ID_ORIGIN)),  # an origin the record lacks
        (base, (0, 32, XLR_BLOCK_ID_TOPLEVEL_XID)),  # a top-level xid the record lacks
        (with_main, (0, 32)),  # main data the layout has no header for
        (with_main, (XLR_BLOCK_ID_DATA_SHORT, 0, 32)),  # the main-data header is not last
        (with_main, (0, 32, XLR_BLOCK_ID_DATA_LONG, XLR_BLOCK_ID_DATA_SHORT)),  # two of them
        (long_main, (0, 32, XLR_BLOCK_ID_DATA_SHORT)),  # 256 bytes do not fit a short header
    ]:
        raw = encode(rec, order)
        assert raw == canonical(rec), order
        assert decode_record(raw, 15) == rec.with_crc()
    assert _pad(encode(long_main, (0, 32, XLR_BLOCK_ID_DATA_LONG))) == 0x1234


def test_encoder_refuses_records_it_cannot_write_with_one_sentence_each() -> None:
    rel = _RELS[0]

    def fails(rec: DecodedRecord, message: str, **kw: bool) -> None:
        with pytest.raises(ValueError) as e:
            encode_record(rec, **kw)
        assert str(e.value) == message

    rec = make_record(rmid=10, info=0, blocks=[make_block(1, rel, 1)])
    fails(replace(rec, blocks=rec.blocks * 2), "two block references share a block id")
    fails(replace(rec, tot_len=rec.tot_len + 1), f"tot_len is {rec.tot_len + 1} but the record encodes to "
                                                f"{rec.tot_len} bytes")
    assert len(encode_record(replace(rec, tot_len=0), check_len=False)) == rec.tot_len
    two = make_record(rmid=10, info=0, blocks=[make_block(1, rel, 1), make_block(2, rel, 2)])
    fails(replace(two, layout=RecordLayout((1, 2, 100))), "invalid header id 100 in record layout")
    apart = make_record(rmid=10, info=0, blocks=[make_block(1, rel, 1), make_block(2, _RELS[1], 2)])
    swapped = replace(apart, blocks=(apart.blocks[1], apart.blocks[0]), layout=RecordLayout((2, 1)))
    fails(swapped, "block ids must increase: 1 after 2")
    # block 0 first is fine (ids start above -1)
    assert decode_record(make_record(rmid=10, info=0, blocks=[make_block(0, rel, 1)]).encode(), 15).blocks[0].block_id == 0
    b = make_block(0, rel, 1)
    for bad, message in [
        (replace(b, forknum=16), "block 0: fork number 16 does not fit in 4 bits"),
        (replace(b, flags=0x01), "block 0: flags 0x01 must only use the high nibble"),
        (replace(b, flags=0x10), "block 0: BKPBLOCK_HAS_IMAGE flag disagrees with the presence of an image"),
        (replace(b, data=b"x"), "block 0: BKPBLOCK_HAS_DATA flag disagrees with 1 data byte(s)"),
        (make_block(0, rel, 1, data=b"x" * 0x10000), "block 0: 65536 data bytes do not fit the u16 data_length"),
        (replace(b, flags=0x80), "block 0: BKPBLOCK_SAME_REL set but the previous block names another relation"),
    ]:
        fails(replace(rec, blocks=(bad,)), message, check_len=False)
    # the largest values that do fit: fork 15 of the header's nibble, 65535 data bytes
    wide = replace(rec, blocks=(replace(make_block(0, rel, 1, data=b"x" * 0xFFFF), forknum=15),)).with_crc()
    back = decode_record(wide.encode(), 15)
    assert back.blocks[0].forknum == 15 and len(back.blocks[0].data) == 0xFFFF


def test_oids_and_block_numbers_use_all_32_bits() -> None:
    rel = (2**32 - 1, 2**31, 2**31 + 5)
    rec = make_record(rmid=10, info=0, blocks=[make_block(0, rel, 2**32 - 2)], xid=2**32 - 1, prev=2**64 - 1)
    back = decode_record(rec.encode(), 16)
    assert back == rec and back.blocks[0].rel == rel and back.blocks[0].blkno == 2**32 - 2


def test_image_edges_hole_at_the_limits_and_errors() -> None:
    # a fresh page: pd_lower 24, pd_upper 8192, so the hole runs from the header to the end
    page = bytearray(BLCKSZ)
    struct.pack_into("<HH", page, 12, SIZE_OF_PAGE_HEADER, BLCKSZ)
    im = ImageRef.from_page(bytes(page), 15)
    assert (im.hole_offset, im.hole_length, im.length) == (SIZE_OF_PAGE_HEADER, BLCKSZ - SIZE_OF_PAGE_HEADER,
                                                           SIZE_OF_PAGE_HEADER)
    assert im.restore_page() == bytes(page)
    # pd_lower == pd_upper: no hole
    struct.pack_into("<HH", page, 12, 100, 100)
    assert ImageRef.from_page(bytes(page), 15).hole_length == 0
    # a one-byte hole is restored as one zero byte
    page[:] = bytes(range(256)) * 32
    page[100] = 0
    one = ImageRef.from_page(bytes(page), 15, hole=(100, 1))
    assert one.length == BLCKSZ - 1 and one.restore_page() == bytes(page)
    with pytest.raises(ValueError) as e:
        ImageRef.from_page(bytes(100), 15)
    assert str(e.value) == "a full-page image needs a 8192-byte page, got 100 bytes"
    short = ImageRef(b"x" * 10, 0, 0, im.flags.apply, 15)
    with pytest.raises(ValueError) as e:
        short.restore_page()
    assert str(e.value) == "full-page image restores to 10 bytes, expected 8192 (BLCKSZ minus a hole of 0)"


def test_verify_crc_of_a_record_shorter_than_its_header_is_a_decode_error() -> None:
    with pytest.raises(RecordDecodeError, match="shorter than the 24-byte header"):
        verify_crc(b"\0" * 23)


def test_crc_of_a_short_record_names_the_header() -> None:
    with pytest.raises(RecordDecodeError) as e:
        compute_crc(b"\0" * 23)
    assert (e.value.field, e.value.offset, e.value.detail) == (
        "header", 0, "record is 23 bytes, shorter than the 24-byte header")


def test_records_whose_headers_end_exactly_at_tot_len_decode() -> None:
    rec = make_record(rmid=10, info=0, blocks=[make_block(0, _RELS[0], 7)])  # no data at all
    assert decode_record(rec.encode(), 15) == rec
    # a main-data header id as the very last byte: its length byte is missing
    raw = _patch(_raw(main=b"")[:24] + bytes([XLR_BLOCK_ID_DATA_SHORT]), 0, "<I", 25)
    _expect(raw, "main data length (short)", 25, r"needs 1 byte.s. but only 0 remain")


def _image_raw(bimg_len: int, hole_offset: int, bimg_info: int, hole_length: int | None = None) -> bytes:
    """A PG15 record with one block whose image header is as given (and as many image bytes as
    it announces)."""
    head = struct.pack("<BBHHHB", 0, 0x10, 0, bimg_len, hole_offset, bimg_info)
    if hole_length is not None:
        head += struct.pack("<H", hole_length)
    head += struct.pack("<IIII", *_RELS[0], 7)
    body = bytes(SIZE_OF_XLOG_RECORD) + head + bytes(bimg_len)
    return _patch(body, 0, "<I", len(body))


def test_each_inconsistent_image_header_is_named_with_its_offset() -> None:
    f = bimg_flags(15)
    at = SIZE_OF_XLOG_RECORD + 4  # the image header follows the 4-byte block header
    _expect(_image_raw(100, 0, f.apply | f.pglz | f.lz4), "block 0 bimg_info", at + 4,
            "^XLogRecord block 0 bimg_info at byte offset 32: more than one compression method in 0x0E$")
    # compressed with a hole of length 0
    _expect(_image_raw(100, 50, f.apply | f.pglz | f.has_hole, 0), "block 0 image hole_offset", at + 2,
            "BKPIMAGE_HAS_HOLE set, but hole offset 50 length 0 block image length 100$")
    # no hole flag but a hole offset
    _expect(_image_raw(BLCKSZ, 5, f.apply), "block 0 image hole_offset", at + 2,
            ": BKPIMAGE_HAS_HOLE not set, but hole offset 5 length 0$")
    _expect(_image_raw(BLCKSZ, 0, f.apply | f.pglz), "block 0 image length", at,
            ": image is compressed, but block image length is 8192$")
    # uncompressed: the hole is BLCKSZ - length bytes long and must end inside the page
    _expect(_image_raw(292, 293, f.apply | f.has_hole), "block 0 image hole_offset", at + 2,
            ": hole offset 293 plus length 7900 exceeds BLCKSZ 8192$")
    _expect(_image_raw(100, 8000, f.apply | f.pglz | f.has_hole, 300), "block 0 image hole_offset", at + 2,
            ": hole offset 8000 plus length 300 exceeds BLCKSZ 8192$")
    # a hole that ends exactly at the end of the page is fine
    im = decode_record(_image_raw(292, 292, f.apply | f.has_hole), 15).blocks[0].image
    assert im is not None and (im.hole_offset, im.hole_length) == (292, BLCKSZ - 292)
    assert im.restore_page() == bytes(BLCKSZ)


def test_explicit_holes_must_fit_and_be_zero() -> None:
    page = bytearray(BLCKSZ)
    page[200] = 7
    for hole in ((0, 100), (8000, 300)):
        with pytest.raises(ValueError) as e:
            ImageRef.from_page(bytes(page), 15, hole=hole)
        assert str(e.value) == f"hole {hole} does not fit in the page"
    with pytest.raises(ValueError) as e:
        ImageRef.from_page(bytes(page), 15, hole=(150, 100))
    assert str(e.value) == "page bytes 150..250 are not zero, so they cannot be logged as a hole"
    im = ImageRef.from_page(bytes(page), 15, hole=(1, 10))  # a hole may start at byte 1
    assert (im.hole_offset, im.hole_length, im.restore_page()) == (1, 10, bytes(page))


def test_truncated_or_inconsistent_headers_name_the_field_exactly() -> None:
    def exact(raw: bytes, field: str, offset: int, detail: str) -> None:
        with pytest.raises(RecordDecodeError) as e:
            decode_record(raw, 15)
        assert (e.value.field, e.value.offset, e.value.detail) == (field, offset, detail)

    head = bytes(SIZE_OF_XLOG_RECORD)

    def record(body: bytes) -> bytes:
        return _patch(head + body, 0, "<I", SIZE_OF_XLOG_RECORD + len(body))

    exact(record(bytes([XLR_BLOCK_ID_DATA_LONG, 1, 0])), "main data length (long)", 25,
          "needs 4 byte(s) but only 2 remain before xl_tot_len")
    exact(record(bytes([XLR_BLOCK_ID_ORIGIN, 1])), "origin", 25, "needs 2 byte(s) but only 1 remain before xl_tot_len")
    exact(record(bytes([XLR_BLOCK_ID_TOPLEVEL_XID, 1, 2])), "toplevel xid", 25,
          "needs 4 byte(s) but only 2 remain before xl_tot_len")
    exact(record(bytes([0, 0])), "block 0 header", 25, "needs 3 byte(s) but only 1 remain before xl_tot_len")
    exact(record(struct.pack("<BBH", 0, 0x10, 0) + b"\0\0"), "block 0 image header", 28,
          "needs 5 byte(s) but only 2 remain before xl_tot_len")
    exact(record(struct.pack("<BBHHHB", 0, 0x10, 0, 100, 50, 0x07) + b"\0"), "block 0 image hole_length", 33,
          "needs 2 byte(s) but only 1 remain before xl_tot_len")
    exact(record(struct.pack("<BBHIII", 0, 0, 0, *_RELS[0]) + b"\0\0"), "block 0 block number", 40,
          "needs 4 byte(s) but only 2 remain before xl_tot_len")
    exact(record(bytes([XLR_BLOCK_ID_DATA_LONG]) + struct.pack("<I", 2**32 - 1)), "xl_tot_len", 29,
          "headers announce 4294967295 data byte(s) but 0 byte(s) follow them")
    exact(record(struct.pack("<BBH", 0, 0, 5) + bytes(16)), "block 0 data_length", 26,
          "BKPBLOCK_HAS_DATA not set, but data length is 5")
    exact(record(struct.pack("<BBH", 0, 0x20, 0) + bytes(16)), "block 0 data_length", 26,
          "BKPBLOCK_HAS_DATA set, but no data included")
    exact(record(struct.pack("<BBH", 0, 0x80, 0) + bytes(4)), "block 0 fork_flags", 25,
          "BKPBLOCK_SAME_REL set but no previous relation")
    one = struct.pack("<BBHIIII", 3, 0, 0, *_RELS[0], 1)
    exact(record(one + one), "block id", 44, "out-of-order block id 3 after block id 3")
    f = bimg_flags(15)
    exact(_image_raw(40000, 0, f.apply), "block 0 image length", 28, "block image length 40000 exceeds BLCKSZ 8192")
    exact(_image_raw(100, 50, f.apply | f.pglz | f.has_hole, 40000), "block 0 image hole_offset", 30,
          "hole offset 50 plus length 40000 exceeds BLCKSZ 8192")


def test_top_level_xids_use_all_32_bits() -> None:
    rec = make_record(rmid=1, info=0, toplevel_xid=2**32 - 1, origin=2**16 - 1, main_data=b"x" * 300)
    assert decode_record(rec.encode(), 15) == rec
