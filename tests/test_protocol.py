"""The sans-IO protocol codec: exact encodings, round trips, and precise decoder errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_walredo.lsn import format_lsn, parse_lsn
from pytest_walredo.protocol import (
    BLCKSZ,
    ApplyRecord,
    BeginRedoForBlock,
    BufferTag,
    Decoder,
    ErrorKind,
    GetPage,
    Ping,
    ProtocolError,
    PushPage,
    RedoRequest,
    RelTag,
    RequestShapeError,
    decode_messages,
    decode_requests,
    decode_stream,
    encode_messages,
)

TAG = BufferTag(RelTag(1663, 13010, 1259, 0), 0)


def test_exact_encodings() -> None:
    # tag, u32 length counting itself (4) + payload, big-endian BufferTag: fork, spc, db, rel, blk
    assert BeginRedoForBlock(TAG).encode() == (
        b"B" + struct.pack(">I", 21) + bytes([0]) + struct.pack(">IIII", 1663, 13010, 1259, 0)
    )
    assert GetPage(TAG).encode()[:1] == b"G" and GetPage(TAG).encode()[1:] == BeginRedoForBlock(TAG).encode()[1:]
    assert Ping().encode() == b"H\x00\x00\x00\x04"
    page = bytes(range(256)) * 32
    assert PushPage(TAG, page).encode() == b"P" + struct.pack(">I", 8213) + TAG.encode() + page
    assert ApplyRecord(0x16A9388, b"xyz").encode() == (
        b"A" + struct.pack(">I", 4 + 8 + 3) + struct.pack(">Q", 0x16A9388) + b"xyz"
    )


def test_lsn_format_and_parse() -> None:
    assert format_lsn(0x16A9388) == "0/16A9388"
    assert format_lsn((0xAB << 32) | 0x10) == "AB/10"
    assert parse_lsn("0/16D4080") == 0x16D4080
    assert parse_lsn("1/0") == 1 << 32
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("zz")


def test_short_v14_vector_decodes_and_reencodes(vectors_dir: Path) -> None:
    data = (vectors_dir / "short_v14.walredo").read_bytes()
    assert len(data) == 1132
    msgs = decode_messages(data)
    assert [type(m).__name__ for m in msgs] == ["BeginRedoForBlock", "ApplyRecord", "ApplyRecord", "GetPage"]
    assert [format_lsn(m.lsn) for m in msgs if isinstance(m, ApplyRecord)] == ["0/16A9388", "0/16D4080"]
    assert msgs[0].tag == TAG and str(msgs[0].tag.rel) == "1663/13010/1259"  # type: ignore[union-attr]
    req = RedoRequest.decode(data)
    assert req.rel == RelTag(1663, 13010, 1259, 0) and req.blknum == 0 and req.base_image is None
    assert req.encode() == data
    assert encode_messages(msgs) == data


def test_bench_vector_decodes(vectors_dir: Path) -> None:
    data = (vectors_dir / "bench_medium_v14.walredo").read_bytes()
    req = RedoRequest.decode(data)
    assert len(req.records) == 227
    assert str(req.tag) == "1663/13010/16384 blk 0"
    lsns = [lsn for lsn, _ in req.records]
    assert lsns == sorted(lsns) and len(set(lsns)) == 227
    assert req.encode() == data


# ------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
rel_tags = st.builds(RelTag, u32, u32, u32, st.integers(0, 3))
pages = st.binary(min_size=BLCKSZ, max_size=BLCKSZ) | st.just(bytes(BLCKSZ))
records = st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=300)), max_size=5)
requests = st.builds(
    RedoRequest, rel_tags, u32, st.none() | pages, records.map(tuple)
)
buffer_tags = st.builds(BufferTag, rel_tags, u32)
messages = st.one_of(
    st.builds(BeginRedoForBlock, buffer_tags),
    st.builds(PushPage, buffer_tags, pages),
    st.builds(ApplyRecord, st.integers(0, 2**64 - 1), st.binary(max_size=200)),
    st.builds(GetPage, buffer_tags),
    st.just(Ping()),
)


@given(requests)
def test_request_roundtrip(req: RedoRequest) -> None:
    data = req.encode()
    assert RedoRequest.decode(data) == req
    assert isinstance(req.messages()[0], BeginRedoForBlock)
    assert isinstance(req.messages()[-1], GetPage)


@given(st.lists(messages, max_size=8))
def test_message_stream_roundtrip(msgs: list) -> None:
    data = encode_messages(msgs)
    assert decode_messages(data) == msgs
    offsets = [o for o, _ in decode_stream(data)]
    assert offsets == [sum(len(m.encode()) for m in msgs[:i]) for i in range(len(msgs))]


@given(st.lists(messages, max_size=6), st.data())
def test_decoder_is_chunking_invariant(msgs: list, data: st.DataObject) -> None:
    stream = encode_messages(msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = Decoder()
    out = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        dec.feed(stream[prev:cut])
        prev = cut
        out.extend(dec)
    dec.end_of_input()
    assert out == msgs


@given(st.lists(requests, max_size=4))
def test_decode_requests_splits_a_stream(reqs: list[RedoRequest]) -> None:
    stream = b"".join(r.encode() + Ping().encode() for r in reqs)
    assert decode_requests(stream) == reqs


# ------------------------------------------------------------------------------------------
# Errors: each names what is wrong and where
# ------------------------------------------------------------------------------------------


def _error(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_messages(data)
    return info.value


def test_unknown_tag_reports_offset() -> None:
    err = _error(Ping().encode() + b"Z\x00\x00\x00\x04")
    assert err.kind is ErrorKind.UNKNOWN_TAG and err.offset == 5 and err.tag == ord("Z")
    assert "at byte 5" in str(err) and "0x5A" in str(err)


@pytest.mark.parametrize("length", [0, 3, 2**31, 2**32 - 1])
def test_bad_length(length: int) -> None:
    err = _error(b"A" + struct.pack(">I", length) + bytes(16))
    assert err.kind is ErrorKind.BAD_LENGTH and err.offset == 0 and str(length) in str(err)


@pytest.mark.parametrize(
    ("tag", "payload_len", "kind"),
    [
        (b"B", 16, ErrorKind.SHORT_PAYLOAD),
        (b"B", 18, ErrorKind.LONG_PAYLOAD),
        (b"G", 0, ErrorKind.SHORT_PAYLOAD),
        (b"H", 1, ErrorKind.LONG_PAYLOAD),
        (b"P", 17 + 8191, ErrorKind.SHORT_PAYLOAD),
        (b"P", 17 + 8193, ErrorKind.LONG_PAYLOAD),
        (b"A", 7, ErrorKind.SHORT_PAYLOAD),
    ],
)
def test_wrong_fixed_lengths(tag: bytes, payload_len: int, kind: ErrorKind) -> None:
    prefix = GetPage(TAG).encode()
    err = _error(prefix + tag + struct.pack(">I", payload_len + 4) + bytes(payload_len))
    assert err.kind is kind and err.offset == len(prefix)
    assert f"is {payload_len} bytes" in str(err)


def test_push_page_without_8192_bytes_says_page() -> None:
    err = _error(b"P" + struct.pack(">I", 4 + 17 + 100) + bytes(117))
    assert "page payload is 117 bytes, expected 8209" in str(err)


@pytest.mark.parametrize("cut", [1, 3, 5, 10, 21, 25])
def test_truncated_stream(cut: int) -> None:
    stream = BeginRedoForBlock(TAG).encode() + ApplyRecord(1, b"r" * 20).encode()
    err = _error(stream[: len(stream) - cut])
    assert err.kind is ErrorKind.TRUNCATED
    assert err.offset in (0, 22)
    assert "stream ends inside" in str(err)


def test_whole_messages_mode_judges_a_message_only_once_it_is_complete() -> None:
    """``Decoder(whole_messages=True)`` reads like the real process: only the length bounds are
    checked from the header; tag and fixed sizes once every byte of the message is there."""
    dec = Decoder(whole_messages=True)
    dec.feed(b"Z" + struct.pack(">I", 10) + b"abc")
    assert dec.next() is None
    dec.feed(b"def")
    with pytest.raises(ProtocolError) as info:
        dec.next()
    assert info.value.kind is ErrorKind.UNKNOWN_TAG and info.value.offset == 0

    dec = Decoder(whole_messages=True)
    dec.feed(b"B" + struct.pack(">I", 4 + 30) + bytes(17))
    assert dec.next() is None
    with pytest.raises(ProtocolError) as info:
        dec.end_of_input()
    assert info.value.kind is ErrorKind.TRUNCATED

    dec = Decoder(whole_messages=True)
    dec.feed(b"B" + struct.pack(">I", 4 + 30) + bytes(30))
    with pytest.raises(ProtocolError) as info:
        dec.next()
    assert info.value.kind is ErrorKind.LONG_PAYLOAD

    dec = Decoder(whole_messages=True)
    dec.feed(b"Z" + struct.pack(">I", 2))
    with pytest.raises(ProtocolError) as info:
        dec.next()
    assert info.value.kind is ErrorKind.BAD_LENGTH and "0x5A ('Z') has length 2" in str(info.value)


@given(st.lists(messages, min_size=1, max_size=4), st.data())
def test_any_truncation_or_corruption_is_a_clean_error(msgs: list, data: st.DataObject) -> None:
    stream = bytearray(encode_messages(msgs))
    if data.draw(st.booleans()):
        stream = stream[: data.draw(st.integers(0, len(stream) - 1))]
    else:
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_messages(bytes(stream))
    except ProtocolError as err:
        assert 0 <= err.offset <= len(stream)
        assert str(err).startswith(f"at byte {err.offset}: ")
    else:
        assert encode_messages(decoded) == bytes(stream)


def test_decoder_stays_failed() -> None:
    dec = Decoder()
    dec.feed(b"Q\x00\x00\x00\x04")
    with pytest.raises(ProtocolError):
        dec.next()
    with pytest.raises(ProtocolError):
        dec.next()


def test_request_shape_errors() -> None:
    with pytest.raises(RequestShapeError, match="starts with B"):
        RedoRequest.from_messages([GetPage(TAG)])
    with pytest.raises(RequestShapeError, match="expected G"):
        RedoRequest.from_messages([BeginRedoForBlock(TAG)])
    other = BufferTag(TAG.rel, 1)
    with pytest.raises(RequestShapeError, match="GetPage for"):
        RedoRequest.from_messages([BeginRedoForBlock(TAG), GetPage(other)])
    with pytest.raises(ValueError, match="base image is 10 bytes"):
        RedoRequest(TAG.rel, 0, b"x" * 10, ())
