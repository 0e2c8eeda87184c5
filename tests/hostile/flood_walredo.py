"""A correct walredo that floods its stderr: the reference walredo, writing ``FLOOD`` bytes of
stderr before every batch of answers, as ``LINES`` 100-byte lines or as one endless line.

Not run directly: tests/test_hostile.py writes an executable launcher that sets ``FLOOD``,
``LINES`` and ``sys.path`` and then appends this file. Single-threaded on purpose: when the
harness reads stderr more slowly than this writes it, the process sleeps in a pipe *write*
while a caller waits for its answer, the state the hang check must not call a hang.
"""

import os
import sys

from pytest_walredo.refserver import server
from pytest_walredo.refserver.__main__ import main

FLOOD: int = globals().get("FLOOD", 1 << 20)
LINES: bool = globals().get("LINES", True)
_CHUNK = ((b"LOG:  flooding stderr " + b"x" * 77 + b"\n") if LINES else b"x" * 100) * 655


def _flood(n: int) -> None:
    while n > 0:
        piece = memoryview(_CHUNK)[:n]
        while piece:
            piece = piece[os.write(2, piece):]
        n -= len(_CHUNK)


def _flush(self: server.RefServer) -> None:
    data = self.machine.take()
    if not data:
        return
    _flood(FLOOD * (len(data) // 8192 or 1))
    try:
        self._write(self.wfd, data)
    except OSError as exc:
        raise server.Fatal(f"could not write to stdout: {os.strerror(exc.errno or 0)}") from exc


server.RefServer._flush = _flush  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
