"""Run PostgreSQL's ``pg_waldump`` on a WAL segment and parse what it prints.

Used as an independent judge of our record and segment encoders: the real reader either
accepts a record (and shows its rmgr, lengths, block references and description) or stops
with an error. We run it with ``-b`` (``--bkp-details``) so that each block reference is on
its own line::

    rmgr: Heap        len (rec/tot):     62/    62, tx:        735, lsn: 0/01000028, prev 0/00000000, desc: INSERT off 3 flags 0x00
    \\tblkref #0: rel 1663/5/16384 fork main blk 0
    \\tblkref #1: rel 1663/5/16384 fork fsm blk 2 (FPW); hole: offset: 40, length: 7960, compression saved: 123, method: pglz

``len (rec/tot)`` is (total length minus image bytes) / total length. pg_waldump always ends
with an error where the WAL stops (``invalid record length at X/Y: wanted 24, got 0`` for
zero-filled space; PG16+: ``expected at least 24, got 0``); :meth:`WaldumpResult.stopped_cleanly_at` tells that expected stop apart
from a real rejection.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_walredo.lsn import parse_lsn

__all__ = [
    "DEFAULT_PG_WALDUMP",
    "BlkRefLine",
    "WaldumpError",
    "WaldumpRecord",
    "WaldumpResult",
    "find_pg_waldump",
    "parse_output",
    "run_waldump",
]

DEFAULT_PG_WALDUMP = "/usr/lib/postgresql/15/bin/pg_waldump"
PG_WALDUMP_ENV = "PG_WALDUMP"

_FORKS = {"main": 0, "fsm": 1, "vm": 2, "init": 3}

_RECORD_RE = re.compile(
    r"^rmgr: (?P<rmgr>\S+)\s+len \(rec/tot\):\s*(?P<rec>\d+)/\s*(?P<tot>\d+), "
    r"tx:\s*(?P<tx>\d+), lsn: (?P<lsn>[0-9A-F]+/[0-9A-F]+), prev (?P<prev>[0-9A-F]+/[0-9A-F]+), "
    r"desc: (?P<desc>.*)$"
)
_BLKREF_RE = re.compile(
    r"^\tblkref #(?P<id>\d+): rel (?P<spc>\d+)/(?P<db>\d+)/(?P<rel>\d+) fork (?P<fork>\w+) "
    r"blk (?P<blk>\d+)"
    r"(?: \((?P<fpw>FPW(?P<verify> for WAL verification)?)\); hole: offset: (?P<hoff>\d+), "
    r"length: (?P<hlen>\d+)(?:, compression saved: (?P<saved>\d+), method: (?P<method>\w+))?)?$"
)
# PG14/15 say "wanted 24, got 0", PG16+ "expected at least 24, got 0"
_STOP_RE = re.compile(
    r"invalid record length at (?P<lsn>[0-9A-F]+/[0-9A-F]+): (?:wanted|expected at least) 24, got 0"
)
# PostgreSQL 16+ name the page's LSN too: "... in WAL segment S, LSN 0/100A000, offset 40960"
_MAGIC_STOP_RE = re.compile(
    r"invalid magic number 0000 in (?:log|WAL) segment \S+, (?:LSN (?P<lsn>[0-9A-F]+/[0-9A-F]+), )?"
    r"offset (?P<offset>\d+)"
)


class WaldumpError(RuntimeError):
    """pg_waldump could not be run, or printed a line we cannot parse."""


@dataclass(frozen=True)
class BlkRefLine:
    """One ``blkref`` line. ``fpw`` when an image is attached; ``apply`` False for
    ``FPW for WAL verification``; ``compression`` is the method name or None."""

    block_id: int
    spcnode: int
    dbnode: int
    relnode: int
    forknum: int
    blkno: int
    fpw: bool = False
    apply: bool = False
    hole_offset: int | None = None
    hole_length: int | None = None
    compression_saved: int | None = None
    compression: str | None = None


@dataclass(frozen=True)
class WaldumpRecord:
    """One record as pg_waldump shows it. ``name`` is the record name (``INSERT+INIT``),
    ``desc`` the rest of the ``desc:`` column exactly (trailing spaces kept)."""

    rmgr: str
    rec_len: int
    tot_len: int
    xid: int
    lsn: int
    prev: int
    name: str
    desc: str
    blkrefs: tuple[BlkRefLine, ...] = ()


@dataclass(frozen=True)
class WaldumpResult:
    """Parsed pg_waldump run: records, error lines, and the command (for failure messages)."""

    command: tuple[str, ...]
    returncode: int
    records: tuple[WaldumpRecord, ...]
    errors: tuple[str, ...]
    stdout: str
    stderr: str

    @property
    def command_line(self) -> str:
        return shlex.join(self.command)

    def stopped_cleanly_at(self, end_lsn: int, seg_size: int = 16 * 1024 * 1024) -> bool:
        """True when the only error is pg_waldump's normal stop where the WAL after
        ``end_lsn`` (the end of the last record) is zero-filled: at the next MAXALIGNed
        position ("invalid record length ... wanted 24, got 0"), or, when that position starts
        a new page, at that page ("invalid magic number 0000 ... offset N")."""
        if len(self.errors) != 1:
            return False
        err = self.errors[0]
        aligned = (end_lsn + 7) & ~7
        m = _STOP_RE.search(err)
        if m:
            return parse_lsn(m.group("lsn")) == aligned
        magic = _MAGIC_STOP_RE.search(err)
        if magic is None:
            return False
        if magic.group("lsn") is not None and parse_lsn(magic.group("lsn")) != aligned:
            return False
        return aligned % 8192 == 0 and int(magic.group("offset")) == aligned % seg_size


def find_pg_waldump() -> str | None:
    """``$PG_WALDUMP``, PostgreSQL 15's pg_waldump, or the one on PATH; None if absent."""
    env = os.environ.get(PG_WALDUMP_ENV)
    if env:
        return env if os.access(env, os.X_OK) else None
    if os.access(DEFAULT_PG_WALDUMP, os.X_OK):
        return DEFAULT_PG_WALDUMP
    return shutil.which("pg_waldump")


def parse_output(stdout: str) -> list[WaldumpRecord]:
    """Parse ``pg_waldump -b`` standard output into records; raises :class:`WaldumpError`
    on a line of neither known shape."""
    records: list[WaldumpRecord] = []
    pending: dict[str, object] | None = None
    blks: list[BlkRefLine] = []

    def flush() -> None:
        if pending is not None:
            records.append(WaldumpRecord(**pending, blkrefs=tuple(blks)))  # type: ignore[arg-type]

    for lineno, line in enumerate(stdout.split("\n"), 1):
        if not line:
            continue
        m = _RECORD_RE.match(line)
        if m:
            flush()
            blks = []
            desc = m.group("desc")
            name, _, rest = desc.partition(" ")
            pending = dict(
                rmgr=m.group("rmgr"),
                rec_len=int(m.group("rec")),
                tot_len=int(m.group("tot")),
                xid=int(m.group("tx")),
                lsn=parse_lsn(m.group("lsn")),
                prev=parse_lsn(m.group("prev")),
                name=name,
                desc=rest,
            )
            continue
        b = _BLKREF_RE.match(line)
        if b and pending is not None:
            fpw = b.group("fpw") is not None
            blks.append(
                BlkRefLine(
                    block_id=int(b.group("id")),
                    spcnode=int(b.group("spc")),
                    dbnode=int(b.group("db")),
                    relnode=int(b.group("rel")),
                    forknum=_FORKS.get(b.group("fork"), -1),
                    blkno=int(b.group("blk")),
                    fpw=fpw,
                    apply=fpw and b.group("verify") is None,
                    hole_offset=int(b.group("hoff")) if fpw else None,
                    hole_length=int(b.group("hlen")) if fpw else None,
                    compression_saved=int(b.group("saved")) if b.group("saved") else None,
                    compression=b.group("method"),
                )
            )
            continue
        raise WaldumpError(f"pg_waldump output line {lineno} has an unknown shape: {line!r}")
    flush()
    return records


def run_waldump(
    segment: str | Path,
    *,
    binary: str | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> WaldumpResult:
    """Run ``pg_waldump -b [extra_args] segment`` and parse its output."""
    exe = binary or find_pg_waldump()
    if exe is None:
        raise WaldumpError(
            f"pg_waldump not found (looked at ${PG_WALDUMP_ENV}, {DEFAULT_PG_WALDUMP} and PATH)"
        )
    cmd = (exe, "-b", *extra_args, str(segment))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    errors = tuple(
        line.split("error: ", 1)[-1]
        for line in proc.stderr.splitlines()
        if line.startswith("pg_waldump: ") and ("error" in line or "fatal" in line)
    )
    return WaldumpResult(
        cmd, proc.returncode, tuple(parse_output(proc.stdout)), errors, proc.stdout, proc.stderr
    )
