"""``pytest-walredo inspect``: decode a ``.walredo`` stream or summarize a page file.

The views themselves are pure functions over bytes in :mod:`pytest_walredo.render.stream`
(the plugin's failure artifacts use them too); this module reads the files and turns every
problem a user can cause into one :class:`~pytest_walredo.triage.TriageError` sentence.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.version import Flavour
from pytest_walredo.protocol import Message, ProtocolError, RedoRequest, RequestShapeError, decode_stream
from pytest_walredo.render import stream
from pytest_walredo.render.stream import (
    heap_tuple_summary,
    index_tuple_summary,
    page_summary,
    record_summary,
    render_page_summary,
    render_report,
)
from pytest_walredo.triage import TriageError

__all__ = [
    "MAX_INPUT_BYTES",
    "heap_tuple_summary",
    "index_tuple_summary",
    "inspect_bytes",
    "inspect_file",
    "load_page",
    "load_request",
    "load_stream",
    "page_summary",
    "read_input",
    "record_summary",
    "render_page_summary",
    "render_report",
]


MAX_INPUT_BYTES = 256 << 20
"""The largest file the triage tools read: far above any walredo request or session stream a
test writes, far below what would exhaust memory."""

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def read_input(path: str | Path, what: str = "input file", *, exact: int | None = None,
               limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes (exactly ``exact`` when
    given). Anything else (missing, unreadable, a directory, a device, a FIFO, too big) is a
    one-line :class:`TriageError`, found before reading: ``/dev/zero`` or a FIFO would never end.
    """
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (we refuse it right after)
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TriageError(f"{what} {p}: no such file") from None
    except PermissionError:
        raise TriageError(f"{what} {p}: permission denied") from None
    except OSError as exc:
        raise TriageError(f"{what} {p}: cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise TriageError(f"{what} {p}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise TriageError(f"{what} {p}: is {kind}, not a regular file; pytest-walredo reads only regular files")
        if exact is not None and st.st_size != exact:
            raise TriageError(f"{what} {p} is {st.st_size} bytes; a page file is exactly {exact} bytes")
        if st.st_size > limit:
            raise TriageError(f"{what} {p}: is {st.st_size} bytes, more than the {limit >> 20} MiB "
                              "pytest-walredo reads")
        os.set_blocking(fd, True)
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise TriageError(f"{what} {p}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while we read it
        raise TriageError(f"{what} {p}: is more than the {limit >> 20} MiB pytest-walredo reads")
    return data


def load_stream(path: str | Path) -> list[tuple[int, Message]]:
    """Decode ``path`` as a walredo stream; raise :class:`TriageError` if it is not one."""
    data = read_input(path)
    if not data:
        raise TriageError(f"{path} is empty, not a walredo stream")
    try:
        return decode_stream(data)
    except ProtocolError as err:
        raise TriageError(f"{path} is not a valid walredo stream: {err}") from None


def load_request(path: str | Path) -> RedoRequest:
    """Decode ``path`` as exactly one ``B [P] A* G`` redo request (a ``.walredo`` dump)."""
    msgs = load_stream(path)
    try:
        return RedoRequest.from_messages([m for _, m in msgs])
    except RequestShapeError as err:
        raise TriageError(f"{path} is a walredo stream but not a single redo request: {err}") from None


def load_page(path: str | Path, what: str = "page file") -> bytes:
    """The 8192 bytes of a page file; any other size is a :class:`TriageError`."""
    data = read_input(path, what, exact=BLCKSZ)
    if len(data) != BLCKSZ:  # it changed while we read it
        raise TriageError(f"{what} {path} is {len(data)} bytes; a page file is exactly {BLCKSZ} bytes")
    return data


def inspect_bytes(data: bytes, name: str, pg_version: int, flavour: Flavour) -> dict[str, Any]:
    """:func:`pytest_walredo.render.stream.inspect_bytes`, with bytes that are neither a
    stream nor a page reported as a :class:`TriageError`."""
    try:
        return stream.inspect_bytes(data, name, pg_version, flavour)
    except stream.NotAStream as exc:
        raise TriageError(str(exc)) from None


def inspect_file(path: str | Path, pg_version: int, flavour: Flavour) -> dict[str, Any]:
    """:func:`inspect_bytes` of the file at ``path``."""
    return inspect_bytes(read_input(path), str(path), pg_version, flavour)
