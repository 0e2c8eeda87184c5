"""Full-page-image compression as PostgreSQL stores it in WAL: pglz, lz4, zstd.

pglz is written by hand here because no package on PyPI implements PostgreSQL's pglz format;
the facts come from PostgreSQL's ``src/common/pg_lzcompress.c``. lz4 and zstd use the ``lz4``
and ``zstandard`` packages when importable (PostgreSQL calls ``LZ4_compress_default`` /
``LZ4_decompress_safe`` on a raw lz4 *block*, and ``ZSTD_compress`` / ``ZSTD_decompress`` on a
zstd *frame*); without them :class:`CompressionUnavailable` says which package to install.

pglz stream format (no header): a control byte governs the next 8 items, least significant
bit first; bit 0 = one literal byte, bit 1 = a back-reference tag of 2 or 3 bytes::

    byte0 = (offset >> 8) << 4 | (length - 3)      -- low nibble 0x0F means "extended"
    byte1 = offset & 0xFF
    byte2 = length - 18                            -- only when the low nibble is 0x0F

so 3 <= length <= 273 and 1 <= offset <= 4095. A back-reference copies ``length`` bytes
starting ``offset`` bytes back in the output, byte by byte (it may overlap its own output).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PGLZ_MAX_MATCH",
    "PGLZ_MAX_OFFSET",
    "CompressionError",
    "CompressionUnavailable",
    "compress",
    "decompress",
    "pglz_compress",
    "pglz_decompress",
]

PGLZ_MAX_MATCH = 273
PGLZ_MAX_OFFSET = 0x0FFF

# PGLZ_strategy_default: inputs below 32 bytes are not compressed, the result must save at
# least 25%, and compression gives up if no match was found in the first 1024 output bytes.
_MIN_INPUT_SIZE = 32
_MIN_COMP_RATE = 25
_FIRST_SUCCESS_BY = 1024
_GOOD_MATCH = 128  # stop looking for a longer match once this long
_MAX_CANDIDATES = 16  # how many earlier positions with the same 3-byte prefix to try


class CompressionError(ValueError):
    """Compressed bytes that do not decode to the expected length."""


class CompressionUnavailable(RuntimeError):
    """The Python package for a compression method is not installed."""


def pglz_decompress(src: bytes | bytearray | memoryview, rawsize: int) -> bytes:
    """Decode a pglz stream that must produce exactly ``rawsize`` bytes and use all of ``src``
    (PostgreSQL's ``check_complete`` mode, used for WAL images)."""
    sp = memoryview(bytes(src))
    n = len(sp)
    out = bytearray()
    i = 0
    while i < n and len(out) < rawsize:
        ctrl = sp[i]
        i += 1
        for _ in range(8):
            if i >= n or len(out) >= rawsize:
                break
            if ctrl & 1:
                if i + 1 >= n:
                    raise CompressionError(f"pglz tag at byte {i} is truncated")
                length = (sp[i] & 0x0F) + 3
                offset = ((sp[i] & 0xF0) << 4) | sp[i + 1]
                i += 2
                if length == 18:
                    if i >= n:
                        raise CompressionError(f"pglz extended length at byte {i} is missing")
                    length += sp[i]
                    i += 1
                if offset == 0 or offset > len(out):
                    raise CompressionError(
                        f"pglz back-reference at byte {i} points {offset} byte(s) back, "
                        f"but only {len(out)} byte(s) were produced"
                    )
                length = min(length, rawsize - len(out))
                start = len(out) - offset
                if offset >= length:
                    out += out[start : start + length]
                else:  # overlapping copy repeats the last `offset` bytes
                    for k in range(length):
                        out.append(out[start + k])
            else:
                out.append(sp[i])
                i += 1
            ctrl >>= 1
    if len(out) != rawsize or i != n:
        raise CompressionError(
            f"pglz data ({n} bytes) decodes to {len(out)} bytes using {i} input bytes, "
            f"expected exactly {rawsize} bytes from all of it"
        )
    return bytes(out)


def pglz_compress(data: bytes | bytearray | memoryview) -> bytes | None:
    """Compress ``data`` into a pglz stream, or return None where PostgreSQL's default
    strategy gives up (input under 32 bytes, less than 25% saved, or no match in the first
    1024 output bytes). The stream need not equal PostgreSQL's byte for byte (the match search
    differs) but any pglz decoder restores ``data`` from it.
    """
    src = bytes(data)
    slen = len(src)
    if slen < _MIN_INPUT_SIZE:
        return None
    result_max = (
        (slen // 100) * (100 - _MIN_COMP_RATE)
        if slen > 0x7FFFFFFF // 100
        else (slen * (100 - _MIN_COMP_RATE)) // 100
    )
    out = bytearray()
    ctrl_pos = -1
    ctrl_bit = 8
    found = False
    # Hash chains: every earlier position, keyed by the 3 bytes starting there.
    chains: dict[bytes, list[int]] = {}
    chain_of = chains.setdefault
    i = 0
    while i < slen:
        if len(out) >= result_max:
            return None
        if not found and len(out) >= _FIRST_SUCCESS_BY:
            return None
        if ctrl_bit == 8:
            ctrl_pos = len(out)
            out.append(0)
            ctrl_bit = 0
        best_len, best_off = 0, 0
        if i + 3 <= slen:
            cands = chains.get(src[i : i + 3])
            if cands:
                limit = min(PGLZ_MAX_MATCH, slen - i)
                for pos in reversed(cands[-_MAX_CANDIDATES:]):
                    off = i - pos
                    if off > PGLZ_MAX_OFFSET:
                        break
                    length = 3
                    # Extend in 16-byte slices first (plain Python is slow byte by byte).
                    while (
                        length + 16 <= limit
                        and src[pos + length : pos + length + 16] == src[i + length : i + length + 16]
                    ):
                        length += 16
                    while length < limit and src[pos + length] == src[i + length]:
                        length += 1
                    if length > best_len:
                        best_len, best_off = length, off
                        if length >= _GOOD_MATCH:
                            break
        if best_len >= 3:
            out[ctrl_pos] |= 1 << ctrl_bit
            if best_len > 17:
                out += bytes(((best_off & 0xF00) >> 4 | 0x0F, best_off & 0xFF, best_len - 18))
            else:
                out += bytes(((best_off & 0xF00) >> 4 | (best_len - 3), best_off & 0xFF))
            for k in range(i, min(i + best_len, slen - 2)):
                chain_of(src[k : k + 3], []).append(k)
            i += best_len
            found = True
        else:
            out.append(src[i])
            if i + 3 <= slen:
                chain_of(src[i : i + 3], []).append(i)
            i += 1
        ctrl_bit += 1
    if len(out) >= result_max:
        return None
    return bytes(out)


def _lz4() -> Any:
    try:
        import lz4.block  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - depends on the environment
        raise CompressionUnavailable(
            "lz4-compressed page images need the 'lz4' package (pip install lz4)"
        ) from None
    return lz4.block


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - depends on the environment
        raise CompressionUnavailable(
            "zstd-compressed page images need the 'zstandard' package (pip install zstandard)"
        ) from None
    return zstandard


ZSTD_CLEVEL_DEFAULT = 3  # PostgreSQL compresses WAL images with ZSTD_CLEVEL_DEFAULT


def compress(method: str, data: bytes) -> bytes | None:
    """Compress with ``method`` ('pglz', 'lz4', 'zstd') as PostgreSQL's XLogCompressBackupBlock
    does; None when the method fails (pglz's strategy gives up)."""
    if method == "pglz":
        return pglz_compress(data)
    if method == "lz4":
        return bytes(_lz4().compress(bytes(data), store_size=False))
    if method == "zstd":
        z = _zstd()
        return bytes(z.ZstdCompressor(level=ZSTD_CLEVEL_DEFAULT).compress(bytes(data)))
    raise ValueError(f"unknown compression method {method!r}; expected pglz, lz4 or zstd")


def decompress(method: str, data: bytes, rawsize: int) -> bytes:
    """Decompress ``data`` that must restore exactly ``rawsize`` bytes."""
    if method == "pglz":
        return pglz_decompress(data, rawsize)
    if method == "lz4":
        block = _lz4()
        try:
            out = block.decompress(bytes(data), uncompressed_size=rawsize)
        except Exception as exc:  # lz4.block.LZ4BlockError
            raise CompressionError(f"lz4 image does not decompress to {rawsize} bytes: {exc}") from None
    elif method == "zstd":
        z = _zstd()
        try:
            out = z.ZstdDecompressor().decompress(bytes(data), max_output_size=rawsize)
        except z.ZstdError as exc:
            raise CompressionError(f"zstd image does not decompress to {rawsize} bytes: {exc}") from None
    else:
        raise ValueError(f"unknown compression method {method!r}; expected pglz, lz4 or zstd")
    if len(out) != rawsize:
        raise CompressionError(f"{method} image decompresses to {len(out)} bytes, expected {rawsize}")
    return bytes(out)
