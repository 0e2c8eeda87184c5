"""Saving the exact bytes of failing requests as ``.walredo`` files.

A dump holds exactly what was written to the process's stdin for one request (``B [P] A* G``),
so ``pytest-walredo replay FILE`` reproduces the failure. Names follow the pageserver's
convention, ``walredo-{millis}-{len}-{seq}.walredo``, and are created exclusively (``O_EXCL``):
two processes or xdist workers failing in the same millisecond with inputs of the same length
cannot overwrite each other, the loser bumps ``seq`` and tries again.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["DumpCallback", "FailureDumper", "dump_name"]

log = logging.getLogger("pytest_walredo.process.dump")

DumpCallback = Callable[[Path, bytes, str], None]
"""``on_dump(path, data, stderr_tail)``: called after a dump file is written."""

_MAX_ATTEMPTS = 10_000


def dump_name(millis: int, length: int, seq: int) -> str:
    """The file name of a dump: ``walredo-{millis}-{len}-{seq}.walredo``."""
    return f"walredo-{millis}-{length}-{seq}.walredo"


class FailureDumper:
    """Writes failing requests to ``directory`` (created on first use) and notifies ``on_dump``.

    Thread-safe: the sequence counter is shared by all clients using this dumper and the
    exclusive create makes names unique across processes too.
    """

    def __init__(self, directory: Path | str, on_dump: DumpCallback | None = None) -> None:
        self.directory = Path(directory)
        self.on_dump = on_dump
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.written: list[Path] = []
        """Every dump written by this dumper, oldest first."""

    def dump(self, data: bytes, stderr_tail: str = "") -> Path | None:
        """Write ``data`` to a new dump file and return its path.

        Returns None (after logging why) when the file cannot be written: a failing dump must not
        hide the failure being reported. ``on_dump`` errors are logged and swallowed likewise.
        """
        try:
            path = self._write(bytes(data))
        except OSError as exc:
            log.error("could not save the failing walredo input in %s: %s", self.directory, exc)
            return None
        log.error("failing walredo input (%d bytes) saved to %s", len(data), path)
        with self._lock:
            self.written.append(path)
        if self.on_dump is not None:
            try:
                self.on_dump(path, bytes(data), stderr_tail)
            except Exception:
                log.exception("on_dump callback failed for %s", path)
        return path

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        millis = time.time_ns() // 1_000_000
        with self._lock:
            seq = next(self._seq)
        for _ in range(_MAX_ATTEMPTS):
            path = self.directory / dump_name(millis, len(data), seq)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                with self._lock:
                    seq = next(self._seq)
                continue
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            return path
        raise FileExistsError(f"no free dump name in {self.directory} after {_MAX_ATTEMPTS} tries")
