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


# ------------------------------------------------------------------------------------------
# Boundaries and exact messages (each pins a behaviour a mutation of the codec changed
# without any other test noticing; see docs/MUTATION.md)
# ------------------------------------------------------------------------------------------


def test_reltag_and_buffertag_bounds_name_the_field_and_value() -> None:
    assert RelTag(0, 0, 0, 255).forknum == 255  # any u8 fork number is encodable
    with pytest.raises(ValueError, match=r"^RelTag.forknum = 256 does not fit in a u8$"):
        RelTag(0, 0, 0, 256)
    with pytest.raises(ValueError, match=r"^RelTag.forknum = -1 does not fit in a u8$"):
        RelTag(0, 0, 0, -1)
    assert RelTag(2**32 - 1, 2**32 - 1, 2**32 - 1).relnode == 2**32 - 1
    with pytest.raises(ValueError, match=r"^RelTag.dbnode = 4294967296 does not fit in a u32$"):
        RelTag(1, 2**32, 1)
    with pytest.raises(ValueError, match=r"^block number 4294967296 does not fit in a u32$"):
        BufferTag(TAG.rel, 2**32)
    with pytest.raises(ValueError, match=r"^PushPage page is 8191 bytes, expected 8192$"):
        PushPage(TAG, bytes(8191))
    with pytest.raises(ValueError, match=r"^ApplyRecord LSN 18446744073709551616 does not fit in a u64$"):
        ApplyRecord(2**64, b"")
    top = 2**64 - 1  # the largest LSN is legal everywhere
    assert ApplyRecord(top, b"").lsn == top
    assert RedoRequest(TAG.rel, 0, None, ((top, b""),)).records == ((top, b""),)
    with pytest.raises(ValueError, match=r"^record LSN 18446744073709551616 does not fit in a u64$"):
        RedoRequest(TAG.rel, 0, None, ((2**64, b""),))
    with pytest.raises(ValueError, match=r"^record LSN -1 does not fit in a u64$"):
        RedoRequest(TAG.rel, 0, None, ((-1, b""),))


def test_fork_255_round_trips_on_the_wire() -> None:
    tag = BufferTag(RelTag(1, 2, 3, 255), 7)
    data = GetPage(tag).encode()
    assert data[5] == 255
    assert decode_messages(data) == [GetPage(tag)]


def test_tag_names_and_descriptions() -> None:
    rel = RelTag(1663, 5, 16384)
    assert [str(RelTag(1663, 5, 16384, f)) for f in (0, 1, 2, 3, 7)] == [
        "1663/5/16384", "1663/5/16384_fsm", "1663/5/16384_vm", "1663/5/16384_init", "1663/5/16384_fork7"]
    tag = BufferTag(rel, 3)
    assert BeginRedoForBlock(tag).describe() == "B BeginRedoForBlock 1663/5/16384 blk 3"
    assert PushPage(tag, bytes(BLCKSZ)).describe() == "P PushPage 1663/5/16384 blk 3 (8192 bytes)"
    assert ApplyRecord(0x16A9388, b"xyz").describe() == "A ApplyRecord end LSN 0/16A9388 (3-byte record)"
    assert GetPage(tag).describe() == "G GetPage 1663/5/16384 blk 3"
    assert Ping().describe() == "H Ping"
    assert RedoRequest(rel, 3, bytes(BLCKSZ), ((1, b"r"), (2, b"s"))).describe() == (
        "redo 1663/5/16384 blk 3: base image, 2 record(s)")
    assert RedoRequest(rel, 3).describe() == "redo 1663/5/16384 blk 3: no base image, 0 record(s)"


def test_request_records_are_normalised_to_a_tuple_of_int_and_bytes() -> None:
    req = RedoRequest(TAG.rel, 0, None, [(5, bytearray(b"ab")), (6, memoryview(b"cd"))])  # type: ignore[arg-type]
    assert req.records == ((5, b"ab"), (6, b"cd"))
    assert type(req.records) is tuple and all(type(r) is bytes for _, r in req.records)
    assert hash(req) == hash(RedoRequest(TAG.rel, 0, None, ((5, b"ab"), (6, b"cd"))))


def test_request_messages_carry_the_tag_page_and_records() -> None:
    page = bytes(range(256)) * 32
    req = RedoRequest(TAG.rel, 0, page, ((10, b"r1"), (20, b"r2")))
    assert req.messages() == [BeginRedoForBlock(TAG), PushPage(TAG, page), ApplyRecord(10, b"r1"),
                              ApplyRecord(20, b"r2"), GetPage(TAG)]
    assert RedoRequest(TAG.rel, 0).messages() == [BeginRedoForBlock(TAG), GetPage(TAG)]


def test_back_to_back_requests_without_pings_all_decode() -> None:
    # B..G B..G B..G with nothing between: each G ends one request and the next B starts another
    page = bytes([7]) * BLCKSZ
    reqs = [RedoRequest(TAG.rel, 0, page, ((1, b"a"),)),
            RedoRequest(TAG.rel, 1, None, ()),
            RedoRequest(RelTag(1, 2, 3, 1), 9, None, ((2, b"b"), (3, b"c")))]
    assert decode_requests(b"".join(r.encode() for r in reqs)) == reqs
    with pytest.raises(RequestShapeError, match=r"^expected exactly one redo request, found 3$"):
        RedoRequest.decode(b"".join(r.encode() for r in reqs))
    with pytest.raises(RequestShapeError, match=r"^expected exactly one redo request, found 0$"):
        RedoRequest.decode(Ping().encode())


def test_request_shape_error_messages_name_the_message() -> None:
    with pytest.raises(RequestShapeError, match=r"^message 1 is GetPage; a request starts with B"):
        decode_requests(Ping().encode() + GetPage(TAG).encode())
    with pytest.raises(RequestShapeError, match=r"^message 1 is end of stream; expected G \(GetPage\)"):
        RedoRequest.from_messages([BeginRedoForBlock(TAG)])
    with pytest.raises(RequestShapeError, match=r"^message 2 is Ping; expected G \(GetPage\)"):
        RedoRequest.from_messages([BeginRedoForBlock(TAG), ApplyRecord(1, b""), Ping()])
    other = BufferTag(TAG.rel, 1)
    with pytest.raises(RequestShapeError,
                       match=r"^message 1: PushPage for 1663/13010/1259 blk 1 inside a request for "
                             r"1663/13010/1259 blk 0$"):
        RedoRequest.from_messages([BeginRedoForBlock(TAG), PushPage(other, bytes(BLCKSZ)), GetPage(TAG)])
    with pytest.raises(RequestShapeError, match=r"^message 1: GetPage for .* blk 1 inside a request"):
        RedoRequest.from_messages([BeginRedoForBlock(TAG), GetPage(other)])


def test_length_boundary_two_to_the_31() -> None:
    # 2^31-1 is a legal length (the message is merely incomplete); 2^31 is not
    dec = Decoder()
    dec.feed(b"A" + struct.pack(">I", 2**31 - 1) + bytes(8))
    assert dec.next() is None
    with pytest.raises(ProtocolError) as info:
        dec.end_of_input()
    assert info.value.kind is ErrorKind.TRUNCATED and info.value.tag == ord("A")
    assert info.value.detail == "stream ends inside A (ApplyRecord): 8 of 2147483643 payload bytes present"
    err = _error(b"A" + struct.pack(">I", 2**31) + bytes(8))
    assert err.kind is ErrorKind.BAD_LENGTH and err.tag == ord("A")
    assert err.detail == ("A (ApplyRecord) has length 2147483648; a length counts its own 4 bytes "
                          "and is below 2^31")
    assert str(err) == f"at byte 0: {err.detail}"


def test_payload_errors_give_tag_and_exact_detail() -> None:
    err = _error(b"B" + struct.pack(">I", 20) + bytes(16))
    assert (err.kind, err.tag, err.offset) == (ErrorKind.SHORT_PAYLOAD, ord("B"), 0)
    assert err.detail == "B (BeginRedoForBlock) payload is 16 bytes, expected 17 (length field 20, expected 21)"
    err = _error(Ping().encode() + b"P" + struct.pack(">I", 8214) + bytes(8210))
    assert (err.kind, err.tag, err.offset) == (ErrorKind.LONG_PAYLOAD, ord("P"), 5)
    assert err.detail == ("P (PushPage) page payload is 8210 bytes, expected 8209 "
                          "(length field 8214, expected 8213)")
    err = _error(b"A" + struct.pack(">I", 11) + bytes(7))
    assert (err.kind, err.tag) == (ErrorKind.SHORT_PAYLOAD, ord("A"))
    assert err.detail == "A (ApplyRecord) payload is 7 bytes, too short for its 8-byte LSN"


@pytest.mark.parametrize(("tag", "shown"), [(0x1F, "0x1F"), (0x20, "0x20 (' ')"), (0x21, "0x21 ('!')"),
                                            (0x7E, "0x7E ('~')"), (0x7F, "0x7F"), (0x80, "0x80")])
def test_unknown_tag_is_shown_printable_or_as_hex(tag: int, shown: str) -> None:
    err = _error(bytes([tag]) + struct.pack(">I", 4))
    assert err.detail == f"unknown message tag {shown} (length field 4)"


def test_truncation_details() -> None:
    a = ApplyRecord(1, b"r" * 20).encode()  # length field 32: 28 payload bytes
    for cut, detail in [
        (1, "stream ends inside a message header (1 of 5 bytes)"),
        (4, "stream ends inside a message header (4 of 5 bytes)"),
        (5, "stream ends inside A (ApplyRecord): 0 of 28 payload bytes present"),
        (6, "stream ends inside A (ApplyRecord): 1 of 28 payload bytes present"),
    ]:
        err = _error(Ping().encode() + a[:cut])
        assert (err.kind, err.offset, err.tag, err.detail) == (ErrorKind.TRUNCATED, 5, ord("A"), detail)
    # a decoder fed an unknown tag but never asked for a message reports the raw tag at EOF
    dec = Decoder()
    dec.feed(b"Z\x00\x00\x00\x09abc")
    with pytest.raises(ProtocolError) as info:
        dec.end_of_input()
    assert info.value.detail == "stream ends inside b'Z': 3 of 5 payload bytes present"
