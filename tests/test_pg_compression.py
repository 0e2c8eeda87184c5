"""pglz (hand-written), lz4 and zstd as PostgreSQL uses them for full-page images."""

from __future__ import annotations

import builtins
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.pg.compression import (
    CompressionError,
    CompressionUnavailable,
    compress,
    decompress,
    pglz_compress,
    pglz_decompress,
)

# Hand-assembled pglz streams (format facts from src/common/pg_lzcompress.c).
HAND_VECTORS = [
    # 8 literals under one control byte 0x00
    (bytes([0x00]) + b"ABCDEFGH", b"ABCDEFGH"),
    # 'a','b','c' then tag (offset 3, length 9): control 0b1000, tag 0x06 0x03; overlapping copy
    (bytes([0x08]) + b"abc" + bytes([0x06, 0x03]), b"abc" * 4),
    # 'x' then extended tag: length 18 + 2 = 20 at offset 1 -> 21 x's
    (bytes([0x02]) + b"x" + bytes([0x0F, 0x01, 0x02]), b"x" * 21),
]


@pytest.mark.parametrize(("stream", "expected"), HAND_VECTORS)
def test_pglz_hand_vectors(stream: bytes, expected: bytes) -> None:
    assert pglz_decompress(stream, len(expected)) == expected


def test_pglz_offset_high_nibble() -> None:
    prefix = bytes(range(256)) + b"\x01\x02"  # 258 distinct-ish bytes
    # 258 literals need ceil(258/8) control bytes; build the stream item by item.
    items: list[tuple[bool, bytes]] = [(False, bytes([b])) for b in prefix]
    items.append((True, bytes([0x10 | (5 - 3), 0x02])))  # offset 0x102 = 258, length 5
    stream = bytearray()
    for i in range(0, len(items), 8):
        group = items[i : i + 8]
        stream.append(sum(1 << k for k, (tag, _) in enumerate(group) if tag))
        for _, payload in group:
            stream += payload
    assert pglz_decompress(bytes(stream), 263) == prefix + prefix[:5]


@pytest.mark.parametrize(
    ("stream", "size", "pattern"),
    [
        (bytes([0x01, 0x00, 0x05]), 3, "points 5 byte.s. back, but only 0"),  # reference before start
        (bytes([0x02]) + b"a" + bytes([0x00, 0x00]), 4, "points 0 byte.s. back"),  # offset 0
        (bytes([0x02]) + b"a" + bytes([0x0F]), 30, "tag at byte 2 is truncated"),
        (bytes([0x00]) + b"abc", 5, "decodes to 3 bytes"),  # too short
        (bytes([0x00]) + b"abcdef", 3, "using 4 input bytes"),  # trailing input
    ],
)
def test_pglz_corrupt_streams(stream: bytes, size: int, pattern: str) -> None:
    with pytest.raises(CompressionError, match=pattern):
        pglz_decompress(stream, size)


_data = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=30), st.integers(1, 400)),
    st.builds(
        lambda seed, n: bytes(random.Random(seed).choice(b"ab\0") for _ in range(n)),
        st.integers(0, 2**32),
        st.integers(0, 8192),
    ),
)


@settings(max_examples=200, deadline=None)
@given(_data)
def test_pglz_round_trip(data: bytes) -> None:
    packed = pglz_compress(data)
    if packed is None:
        # PostgreSQL's default strategy gives up on small or poorly compressible input.
        return
    assert len(packed) < len(data)
    assert pglz_decompress(packed, len(data)) == data


def test_pglz_strategy_limits() -> None:
    assert pglz_compress(b"a" * 31) is None  # below min_input_size 32
    assert pglz_compress(random.Random(0).randbytes(4000)) is None  # saves < 25%
    packed = pglz_compress(b"a" * 8192)
    assert packed is not None and len(packed) < 200


@pytest.mark.parametrize("method", ["pglz", "lz4", "zstd"])
def test_methods_round_trip_a_page(method: str) -> None:
    page = (b"tuple data " * 800)[:8000]
    packed = compress(method, page)
    assert packed is not None and len(packed) < len(page)
    assert decompress(method, packed, len(page)) == page
    with pytest.raises(CompressionError):
        decompress(method, packed, len(page) + 1)


def test_zstd_frame_and_lz4_block_format() -> None:
    # PostgreSQL uses ZSTD_compress (a frame, magic 28 B5 2F FD) and raw lz4 blocks (no frame).
    assert compress("zstd", b"x" * 100)[:4] == bytes.fromhex("28b52ffd")  # type: ignore[index]
    assert compress("lz4", b"x" * 100)[:4] != bytes.fromhex("04224d18")  # type: ignore[index]


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown compression method 'snappy'"):
        compress("snappy", b"")
    with pytest.raises(ValueError, match="unknown compression method 'snappy'"):
        decompress("snappy", b"", 0)


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("lz4") or name.startswith("zstandard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(CompressionUnavailable, match=r"^lz4-compressed page images need the .lz4. package \(pip install lz4\)$"):
        compress("lz4", b"abc")
    with pytest.raises(CompressionUnavailable, match=r"^zstd-compressed page images need the .zstandard. package \(pip install zstandard\)$"):
        decompress("zstd", b"abc", 3)


# --------------------------------------------------------------------------- edges (docs/MUTATION.md)


def test_pglz_extended_length_byte_missing_at_the_end() -> None:
    with pytest.raises(CompressionError, match=r"^pglz extended length at byte 4 is missing$"):
        pglz_decompress(bytes([0x02]) + b"x" + bytes([0x0F, 0x01]), 30)


def test_pglz_match_longer_than_the_rest_is_cut_at_rawsize() -> None:
    # like PostgreSQL: the copy stops at the end of the output; the input is still all used
    assert pglz_decompress(bytes([0x02]) + b"x" + bytes([0x0F, 0x01, 0x02]), 10) == b"x" * 10


def test_pglz_strategy_boundaries() -> None:
    assert pglz_compress(b"a" * 32) is not None  # 32 bytes is the smallest input compressed
    short = b"abcd" * 10  # one earlier candidate for each 3-byte prefix is enough
    assert pglz_decompress(pglz_compress(short) or b"", 40) == short
    # no match in the first 1024 output bytes: PostgreSQL's strategy gives up, however well the
    # rest would compress
    noise = random.Random(1).randbytes(1100)
    assert pglz_compress(noise + bytes(7000)) is None
    assert pglz_compress(bytes(100) + noise + bytes(7000)) is not None


def _text_page() -> bytes:
    rows = b"".join(b"row %05d | name-%d | %s;" % (i, i * 7919 % 1000, b"x" * (i % 23))
                    for i in range(400))
    return rows[:8192]


def _far_repeats() -> bytes:
    block = random.Random(2).randbytes(1500)
    return bytes(40) + block + bytes(2000) + block  # the second copy is 3500 bytes back


def _match_beyond_reach() -> bytes:
    return bytes(100) + b"xyz" + bytes(5000) + b"xyz" + bytes(50)  # "xyz" again 5003 back


@pytest.mark.parametrize("data", [
    _text_page(),  # partial matches everywhere: prefixes agree, then differ
    random.Random(3).randbytes(300) * 20,  # offsets above 255 use the tag's high nibble
    _far_repeats(),
    _match_beyond_reach(),
    b"ab" * 9 + b"c" + b"ab" * 30,  # match lengths around the 17/18 short/extended switch
    bytes(range(256)) * 2 + b"\x00" * 300,
], ids=["text-page", "offset-300", "offset-3500", "offset-5003", "lengths-17-18", "ramp"])
def test_pglz_round_trips_structured_inputs(data: bytes) -> None:
    packed = pglz_compress(data)
    assert packed is not None and len(packed) < len(data) * 3 // 4
    assert pglz_decompress(packed, len(data)) == data


def test_pglz_uses_matches_up_to_4095_bytes_back() -> None:
    block = random.Random(4).randbytes(600)
    data = bytes(40) + block + bytes(4095 - 600) + block
    packed = pglz_compress(data)
    assert packed is not None and pglz_decompress(packed, len(data)) == data
    # the second copy of the block (exactly 4095 bytes back) costs a few tags, not 600 literals;
    # one byte further back it is out of reach
    far = bytes(40) + block + bytes(4096 - 600) + block
    packed_far = pglz_compress(far)
    assert packed_far is not None and pglz_decompress(packed_far, len(far)) == far
    assert len(packed) < 800 and len(packed_far) > len(packed) + 600


def test_zstd_frame_without_content_size_decodes() -> None:
    import zstandard

    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"abc" * 100)
    assert decompress("zstd", frame, 300) == b"abc" * 100


@pytest.mark.parametrize(("method", "pattern"), [
    ("pglz", r"^pglz data \(7 bytes\) decodes to 6 bytes using 7 input bytes, expected exactly 10 bytes "
             r"from all of it$"),
    ("lz4", r"^lz4 image (does not decompress to 10 bytes: .+|decompresses to \d+ bytes, expected 10)$"),
    ("zstd", r"^zstd image does not decompress to 10 bytes: .+$"),
])
def test_corrupt_images_name_the_method_and_size(method: str, pattern: str) -> None:
    with pytest.raises(CompressionError, match=pattern):
        decompress(method, b"\x00garbag", 10)


def test_wrong_size_after_decompression_is_named() -> None:
    packed = compress("lz4", b"y" * 50)
    assert packed is not None
    with pytest.raises(CompressionError, match=r"^lz4 image (does not decompress to 40 bytes|"
                                               r"decompresses to 50 bytes, expected 40)"):
        decompress("lz4", packed, 40)
    zpacked = compress("zstd", b"y" * 50)
    assert zpacked is not None
    with pytest.raises(CompressionError, match=r"^zstd image decompresses to 50 bytes, expected 40$"):
        decompress("zstd", zpacked, 40)


def _items(stream: bytes) -> list[tuple[str, int, int]]:
    """The items of a pglz stream: ("lit", byte, 1) or ("ref", offset, length)."""
    out: list[tuple[str, int, int]] = []
    i = 0
    while i < len(stream):
        ctrl = stream[i]
        i += 1
        for bit in range(8):
            if i >= len(stream):
                break
            if ctrl >> bit & 1:
                length = (stream[i] & 0x0F) + 3
                offset = (stream[i] & 0xF0) << 4 | stream[i + 1]
                i += 2
                if length == 18:
                    length += stream[i]
                    i += 1
                out.append(("ref", offset, length))
            else:
                out.append(("lit", stream[i], 1))
                i += 1
    return out


def test_pglz_encodes_a_3_byte_repeat_at_the_very_end_as_a_reference() -> None:
    data = b"xyz" + bytes(60) + b"Q" + b"xyz"
    packed = pglz_compress(data)
    assert packed is not None and pglz_decompress(packed, len(data)) == data
    assert _items(packed)[-2:] == [("lit", ord("Q"), 1), ("ref", 64, 3)]
