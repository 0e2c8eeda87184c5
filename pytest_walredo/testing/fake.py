"""A deliberately tiny fake walredo for testing the process layer itself.

``python -m pytest_walredo.testing.fake --wal-redo [--tenant-shard-id ID] [options]`` speaks the
stdin/stdout protocol with echo semantics only: ``G`` answers the page last pushed with ``P``
for that block since ``B`` (zeros otherwise), ``H`` answers zeros. It applies no WAL (that is
the reference server's job); it exists to misbehave on cue, deterministically:

``--hang-at N``       stop answering at the N-th answer (0-based) and sleep forever
``--crash-at N``      at the N-th answer print a FATAL line on stderr and exit 1, answering nothing
``--short-at N``      at the N-th answer write only 100 bytes, then exit 1
``--extra-at N``      write 16 surplus bytes after the N-th answer
``--stderr-line N``   before anything else write one stderr line of N bytes
``--stderr-lines N``  before anything else write N numbered stderr lines
``--stderr-no-newline TEXT``  on exit (EOF or fault) write TEXT without a final newline
``--ready``           write ``fake walredo ready`` on stderr at start-up
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..process.sandbox import LaunchConfig
from ..protocol import BLCKSZ, BeginRedoForBlock, Decoder, GetPage, Ping, ProtocolError, PushPage

ZERO_PAGE = bytes(BLCKSZ)


_PACKAGE_PARENT = Path(__file__).resolve().parents[2]
# The sandbox clears the environment (no PYTHONPATH), so the child puts this copy of the
# package first itself rather than running whatever copy the interpreter finds installed.
_BOOTSTRAP = (f"import sys, runpy; sys.path.insert(0, {str(_PACKAGE_PARENT)!r}); "
              "runpy.run_module('pytest_walredo.testing.fake', run_name='__main__', alter_sys=True)")


def fake_config(workdir: Path | None, *args: str, **kw: object) -> LaunchConfig:
    """A :class:`LaunchConfig` running this fake with ``args`` under the current interpreter
    (``python -c BOOTSTRAP ARGS``: the arguments start at argv[3], as with ``-m``)."""
    return LaunchConfig(
        binary=Path(sys.executable),
        prefix_args=("-c", _BOOTSTRAP),
        args=args,
        workdir=workdir,
        **kw,  # type: ignore[arg-type]
    )


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fake-walredo")
    p.add_argument("--wal-redo", action="store_true", required=True)
    p.add_argument("--tenant-shard-id", default="")
    p.add_argument("--hang-at", type=int, default=-1)
    p.add_argument("--crash-at", type=int, default=-1)
    p.add_argument("--short-at", type=int, default=-1)
    p.add_argument("--extra-at", type=int, default=-1)
    p.add_argument("--stderr-line", type=int, default=0)
    p.add_argument("--stderr-lines", type=int, default=0)
    p.add_argument("--stderr-no-newline", default="")
    p.add_argument("--ready", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = _parse(sys.argv[1:] if argv is None else argv)
    err = 2
    if opts.stderr_line:
        line = b"x" * (opts.stderr_line - 1) + b"!"
        for i in range(0, len(line), 1 << 20):
            _write(err, line[i:i + (1 << 20)])
        _write(err, b"\n")
    for i in range(opts.stderr_lines):
        _write(err, f"fake stderr line {i}\n".encode())
    if opts.ready:
        _write(err, b"fake walredo ready\n")

    def finish(status: int) -> int:
        if opts.stderr_no_newline:
            _write(err, opts.stderr_no_newline.encode())
        return status

    decoder = Decoder()
    pages: dict[object, bytes] = {}
    answers = 0
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            _write(err, b"LOG:  received EOF on stdin, shutting down\n")
            return finish(0)
        decoder.feed(chunk)
        try:
            messages = list(decoder)
        except ProtocolError as exc:
            _write(err, f"FATAL:  {exc.kind.value} ({exc})\n".encode())
            return finish(1)
        for msg in messages:
            if isinstance(msg, BeginRedoForBlock):
                pages.pop(msg.tag, None)
                continue
            if isinstance(msg, PushPage):
                pages[msg.tag] = msg.page
                continue
            if isinstance(msg, GetPage):
                page = pages.get(msg.tag, ZERO_PAGE)
            elif isinstance(msg, Ping):
                page = ZERO_PAGE
            else:
                continue  # ApplyRecord: echo semantics, nothing applied
            n = answers
            answers += 1
            if n == opts.hang_at:
                while True:
                    time.sleep(3600)
            if n == opts.crash_at:
                _write(err, f"FATAL:  injected crash at answer {n}\n".encode())
                return finish(1)
            if n == opts.short_at:
                _write(1, page[:100])
                _write(err, f"FATAL:  injected short answer at answer {n}\n".encode())
                return finish(1)
            _write(1, page)
            if n == opts.extra_at:
                _write(1, b"\xEE" * 16)


if __name__ == "__main__":
    sys.exit(main())
