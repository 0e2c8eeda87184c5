"""Log sequence numbers: 64-bit WAL positions, written ``X/Y`` as PostgreSQL prints them.

A leaf module: the protocol codec, the PostgreSQL model and the tools all use it.
"""

from __future__ import annotations

import re

__all__ = ["MAX_LSN", "format_lsn", "parse_lsn"]

MAX_LSN = (1 << 64) - 1

_LSN_RE = re.compile(r"^\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*$")


def format_lsn(lsn: int) -> str:
    """Render ``lsn`` as PostgreSQL does (``%X/%X``): ``format_lsn(0x16A9388) == '0/16A9388'``."""
    if not 0 <= lsn <= MAX_LSN:
        raise ValueError(f"LSN {lsn} is outside 0..2^64-1")
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """Parse ``'0/16A9388'`` (or a plain decimal/0x integer) into an integer LSN."""
    m = _LSN_RE.match(text)
    if m:
        return (int(m.group(1), 16) << 32) | int(m.group(2), 16)
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not an LSN (expected X/Y in hex, like 0/16A9388)") from None
    if not 0 <= value <= MAX_LSN:
        raise ValueError(f"LSN {text!r} is outside 0..2^64-1")
    return value
