"""The files that explain one failing walredo test: ``.walredo`` inputs, decodes, page diffs, ...

When a walredo test fails, :mod:`pytest_walredo.plugin.reporting` completes the test's
:class:`~.example.FailingExample` and calls :func:`write_failure_artifacts` with it; the Allure
attacher (:mod:`.allure`) attaches the files it lists. Everything lands in the test's dump
directory (the one the plugin's failure summary prints), so the same
files exist with or without Allure:

=============================================  ===============================================
file                                           content
=============================================  ===============================================
``walredo-{millis}-{len}-{seq}.walredo``       the exact bytes of one request of the final
                                               failing example (``B [P] A* G``), replayable with
                                               ``pytest-walredo replay FILE``; with ``.json``
                                               and ``.expected.page`` a corpus entry
                                               (:mod:`.entries`, docs/CORPUS.md)
``walredo-....json``                           corpus metadata, and how the request failed
``walredo-....expected.page`` / ``.actual.page``  the two pages, for ``pytest-walredo diff A B``
``walredo-....session.walredo``                everything the process received up to the
                                               request, when earlier calls went to it
``walredo-....decode.txt``                     ``pytest-walredo inspect`` of that request (also
                                               written, and the dump listed, for every dump the
                                               client made itself)
``walredo-....diff.txt``                       ``pytest-walredo diff`` of expected and actual page
``failure-{millis}-{pid}-{seq}.txt``           index: test id, outcome, every file below, next
                                               steps
``failure-....stderr.txt``                     each process's stderr tail and exit status
``failure-....timeline.txt``                   the interleaving timeline, when one was involved
``failure-....hypothesis.txt``                 seed, ``@reproduce_failure(...)`` line, the
                                               falsifying example
=============================================  ===============================================

The requests of the first failing example (before shrinking) follow the final one's, when
Hypothesis found one that differs.

Uniqueness (invariant): every name above is derived from a name that was created with
``O_EXCL`` in that directory (the ``.walredo`` dumps by
:class:`~pytest_walredo.process.FailureDumper`, the ``failure-*`` stem by :func:`_reserve_stem`),
so two xdist workers, two processes or a rerun of the same test never overwrite each other's
files, whatever the clock says.

Invariant: nothing in this module raises out of :func:`write_failure_artifacts` because of the
content it is given (undecodable bytes, wrong page sizes): a broken artifact must never hide the
failure being reported. Such problems are written into the artifact text instead.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..pg.constants import BLCKSZ
from ..pg.version import Flavour
from ..process.dump import FailureDumper
from ..render.pagediff import diff_pages, render_diff
from ..render.stream import NotAStream, inspect_bytes, render_report
from .entries import Focus, write_entry_files
from .example import ExampleRequest, FailingExample, SessionRef

__all__ = [
    "Artifact",
    "FailureArtifacts",
    "decode_text",
    "next_steps",
    "page_diff_text",
    "write_failure_artifacts",
]

log = logging.getLogger("pytest_walredo.plugin.artifacts")

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"
JSON = "application/json"

MAX_REQUESTS_WRITTEN = 16
"""Requests of one example written as entries; the index names the rest."""

MAX_DECODED_PROCESS_DUMPS = 20
"""Client-made dumps decoded per failure (the newest); a long Hypothesis run can make hundreds."""
MAX_STDERR_PROCESSES = 10
"""Processes whose stderr tail is written per failure (the newest); pools may start hundreds."""


# ------------------------------------------------------------------------------------------
# Text renderings (the views ``pytest-walredo inspect`` and ``diff`` print, so an attachment
# reads like the command's output)
# ------------------------------------------------------------------------------------------


def decode_text(data: bytes, name: str, pg_version: int, flavour: Flavour) -> str:
    """``pytest-walredo inspect`` output for ``data``; a one-line reason if it does not decode."""
    try:
        return render_report(inspect_bytes(data, name, pg_version, flavour))
    except NotAStream as exc:
        return f"{exc}\n"
    except Exception as exc:  # a decoder bug must not hide the test failure
        log.exception("decoding %s for the failure artifacts failed", name)
        return f"{name}: the decoder failed: {type(exc).__name__}: {exc}\n"


def page_diff_text(expected: bytes, actual: bytes) -> str:
    """``pytest-walredo diff`` of the expected and actual page, or why the pages cannot be compared."""
    if len(expected) != BLCKSZ or len(actual) != BLCKSZ:
        if expected == actual:
            return "pages are identical\n"
        return (f"pages cannot be compared field by field: expected is {len(expected)} bytes, "
                f"actual is {len(actual)} bytes (a page is {BLCKSZ})\n")
    try:
        return render_diff(diff_pages(expected, actual), "expected", "actual")
    except Exception as exc:  # a diff bug must not hide the test failure
        log.exception("diffing pages for the failure artifacts failed")
        return f"the page diff failed: {type(exc).__name__}: {exc}\n"


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """One written file and how to attach it."""

    path: Path
    kind: str
    """walredo | entry | decode | diff | page | session | stderr | timeline | hypothesis | index"""
    mime: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def extension(self) -> str:
        """The attachment's file extension as Allure stores it (``walredo``, ``txt``, ``page``)."""
        return self.path.suffix.lstrip(".")


@dataclass
class FailureArtifacts:
    """Everything :func:`write_failure_artifacts` wrote, in attachment order."""

    directory: Path
    index: Path
    artifacts: list[Artifact] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    """The triage command lines also written at the end of the index (empty: no request)."""

    def paths(self) -> list[Path]:
        return [a.path for a in self.artifacts]


_stem_seq = itertools.count()
_stem_lock = threading.Lock()


def _reserve_stem(directory: Path, header: str) -> Path:
    """Create ``failure-{millis}-{pid}-{seq}.txt`` exclusively in ``directory``; return its path.

    The index file doubles as the reservation of the ``failure-{millis}-{pid}-{seq}`` stem: the
    companion files share it, so they cannot collide either.
    """
    directory.mkdir(parents=True, exist_ok=True)
    millis = time.time_ns() // 1_000_000
    pid = os.getpid()
    for _ in range(10_000):
        with _stem_lock:
            seq = next(_stem_seq)
        # The pid keeps concurrent workers apart without even one failed O_EXCL.
        path = directory / f"failure-{millis}-{pid}-{seq}.txt"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(header)
        return path
    raise FileExistsError(f"no free failure artifact name in {directory}")


def _companion(base: Path, suffix: str) -> Path:
    """``walredo-1-2-3.walredo`` + ``.decode.txt`` -> ``walredo-1-2-3.decode.txt``."""
    stem = base.name.removesuffix(".walredo").removesuffix(".txt")
    return base.with_name(stem + suffix)


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", errors="replace")
    return path


def write_failure_artifacts(
    directory: Path,
    example: FailingExample,
    *,
    test_id: str,
    outcome: str,
    pg_version: int,
    flavour: Flavour,
    walredo_bin: Path | None = None,
) -> FailureArtifacts:
    """Write the artifacts of one failed test's :class:`~.example.FailingExample` into
    ``directory`` and list them, in attachment order.

    Each recorded request becomes a corpus entry (:mod:`.entries`: ``.walredo``, ``.json``,
    pages, session stream) with its decode and page diff, then the same for ``example.first``
    (the first failing example, before shrinking); at most :data:`MAX_REQUESTS_WRITTEN` per
    example. ``example.process_dumps`` (files the clients already wrote for requests that failed
    at the process level) are decoded where they are, not copied, and listed as artifacts too;
    ``example.processes`` gives the stderr tails and ``example.seed`` the Hypothesis file.
    ``outcome`` is a one-line summary of the failure for the index, which also ends with the
    triage commands to run next (``walredo_bin``: the binary under test, None for the embedded
    reference).
    """
    directory = Path(directory)
    index = _reserve_stem(directory, f"{test_id}\n{outcome}\n")
    stem = index.with_suffix("")
    result = FailureArtifacts(directory, index)
    arts = result.artifacts
    index_lines: list[str] = []

    writer = _RequestWriter(directory, arts, index_lines, pg_version, flavour, test_id)
    focus = writer.write(example, "final" if example.first is not None else None)
    if example.first is not None:
        at = f", example {example.first.first_failure_at}" if example.first.first_failure_at else ""
        index_lines.append(f"first failure (before shrinking{at}):")
        first_focus = writer.write(example.first, "first failure", indent="  ")
        index_lines.extend(f"  {n}" for n in example.first.notes)
        focus = focus or first_focus
    if example.oracle:
        index_lines.append(f"expected pages from the {example.oracle}")
    index_lines.extend(example.notes)
    dumps = _decode_process_dumps([d for d in example.process_dumps if d not in writer.reused], arts,
                                  index_lines, pg_version, flavour)
    if focus is None and dumps:
        focus = Focus(dumps[-1], _until_for(outcome))
    if focus is None and example.request_count and arts:
        focus = Focus(arts[0].path, "differs")

    stderr = _stderr_text(example)
    if stderr:
        arts.append(Artifact(_write_text(Path(f"{stem}.stderr.txt"), stderr), "stderr", TEXT))
    if example.timeline:
        head = [f"schedule: {example.schedule}"] if example.schedule else []
        arts.append(Artifact(_write_text(Path(f"{stem}.timeline.txt"), "\n".join([*head, *example.timeline]) + "\n"),
                             "timeline", TEXT))
    seed = example.seed
    if seed is not None:
        arts.append(Artifact(_write_text(Path(f"{stem}.hypothesis.txt"), seed.text()), "hypothesis", TEXT))
        if seed.reproduce_failure:
            index_lines.append(f"reproduce: {seed.reproduce_failure}")
        if seed.seed is not None:
            index_lines.append(f"seed: {seed.seed} ({seed.seed_source})")

    if focus is not None:
        result.next_steps = next_steps(focus.dump, focus.until, focus.expected, focus.actual,
                                       pg_version=pg_version, flavour=flavour, walredo_bin=walredo_bin,
                                       session=focus.session, needs_history=focus.needs_history)
        index_lines.extend(result.next_steps)
    with index.open("a", encoding="utf-8") as f:
        for line in index_lines:
            f.write(line + "\n")
        f.write("files:\n")
        for a in arts:
            f.write(f"  {a.name}\n")
    arts.append(Artifact(index, "index", TEXT))
    return result


class _RequestWriter:
    """Writes the requests of failing examples as corpus entries (:mod:`.entries`), with
    their decodes and page diffs, and says in the index what each holds."""

    def __init__(self, directory: Path, arts: list[Artifact], index_lines: list[str], pg_version: int,
                 flavour: Flavour, test_id: str) -> None:
        self.directory = directory
        self.arts = arts
        self.index_lines = index_lines
        self.pg_version = pg_version
        self.flavour = flavour
        self.test_id = test_id
        self.dumper = FailureDumper(directory)
        self.reused: set[Path] = set()
        """Client-written dumps that became an entry's ``.walredo`` (not listed twice)."""

    def _walredo(self, req: ExampleRequest, data: bytes) -> Path | None:
        """The entry's ``.walredo``: the client's own dump of this request when it wrote one
        here (the file its error message names), else a new dump."""
        d = req.dump
        if d is not None and d.parent == self.directory and d.name.endswith(".walredo") and d.is_file():
            try:
                if d.read_bytes() == data and d not in self.reused:
                    self.reused.add(d)
                    return d
            except OSError:
                pass
        return self.dumper.dump(data, "")

    def write(self, example: FailingExample, label: str | None, indent: str = "") -> Focus | None:
        focus: Focus | None = None
        written = 0
        for n, req in enumerate(example.requests):
            data = req.encoded()
            if data is None:
                self.index_lines.append(f"{indent}caller {n}: ping")
                continue
            who = f" (caller {req.caller})" if req.caller is not None else ""
            if written >= MAX_REQUESTS_WRITTEN:
                self.index_lines.append(f"{indent}request {n}{who}: not written (more than "
                                        f"{MAX_REQUESTS_WRITTEN} requests in one example)")
                continue
            path = self._walredo(req, data)
            if path is None:
                self.index_lines.append(f"{indent}request {n}{who}: could not be saved (see the log)")
                continue
            written += 1
            extra: dict[str, object] = {"test": self.test_id, "request": n}
            if label is not None:
                extra["example"] = label
            try:
                files = write_entry_files(path, req, pg_version=self.pg_version, flavour=self.flavour,
                                          source=f"pytest-walredo: failing test {self.test_id}", extra=extra)
            except OSError as exc:
                self.index_lines.append(f"{indent}request {n}{who}: {path.name}: companion files not "
                                        f"written: {exc}")
                files = {}
            self.arts.append(Artifact(path, "walredo", OCTET_STREAM))
            if "json" in files:
                self.arts.append(Artifact(files["json"], "entry", JSON))
            self.arts.append(Artifact(_write_text(_companion(path, ".decode.txt"),
                                                  decode_text(data, path.name, self.pg_version, self.flavour)),
                                      "decode", TEXT))
            line = f"{indent}request {n}{who}: {path.name}"
            if req.error:
                line += f": error: {req.error}"
            if req.expected is not None and req.actual is not None:
                diff = page_diff_text(req.expected, req.actual)
                self.arts.append(Artifact(_write_text(_companion(path, ".diff.txt"), diff), "diff", TEXT))
                line += f": {diff.splitlines()[0]}"
            for kind in ("expected", "actual"):
                if kind in files:
                    self.arts.append(Artifact(files[kind], "page", OCTET_STREAM))
            self.index_lines.append(line)
            s = req.session
            if "session" in files and s is not None:
                self.arts.append(Artifact(files["session"], "session", OCTET_STREAM))
                self.index_lines.append(f"{indent}  {_session_line(files['session'], s)}")
            wrong = req.error is not None or (req.expected is not None and req.actual is not None
                                              and req.expected != req.actual)
            if focus is None and wrong:
                until = _until_for(req.error) if req.error else "differs"
                if req.failure in ("crash", "timeout"):
                    until = req.failure
                focus = Focus(path, until, files.get("expected"), files.get("actual"), files.get("session"),
                              s.needs_history if s is not None else None)
        return focus


def _session_line(path: Path, s: SessionRef) -> str:
    """What the index says about a session stream."""
    text = (f"session: {path.name}: the {s.index + 1} call(s) walredo pid {s.pid} received up to this "
            f"request (it is call #{s.index}, at byte {s.offset})")
    if s.needs_history:
        text += ("; this request alone does not fail on a fresh process: the failure needs the calls "
                 "before it, replay the session stream")
    elif s.needs_history is False:
        text += "; the request fails alone too"
    return text


def _decode_process_dumps(process_dumps: Sequence[Path], arts: list[Artifact], index_lines: list[str],
                          pg_version: int, flavour: Flavour) -> list[Path]:
    """The newest dumps the clients wrote, decoded next to them (not copied); returns them all."""
    dumps = sorted(set(process_dumps), key=lambda p: p.name)
    if dumps:
        index_lines.append(f"{len(dumps)} request(s) failed at the process level:")
    skipped = max(0, len(dumps) - MAX_DECODED_PROCESS_DUMPS)
    for dump in dumps[skipped:]:
        decode = _companion(dump, ".decode.txt")
        if not decode.exists():
            try:
                data = dump.read_bytes()
            except OSError as exc:
                index_lines.append(f"  {dump.name}: unreadable: {exc}")
                continue
            _write_text(decode, decode_text(data, dump.name, pg_version, flavour))
        arts.append(Artifact(dump, "walredo", OCTET_STREAM))
        arts.append(Artifact(decode, "decode", TEXT))
        index_lines.append(f"  {dump.name} (decoded in {decode.name})")
    if skipped:
        index_lines.append(f"  ... and {skipped} older dump(s), not decoded")
    return dumps


def _stderr_text(example: FailingExample) -> str:
    """Each process's stderr tail and exit status (the newest), then what the recorder kept."""
    parts = []
    procs = list(example.processes)
    if len(procs) > MAX_STDERR_PROCESSES:
        parts.append(f"({len(procs) - MAX_STDERR_PROCESSES} older process(es) left out)\n")
    for proc in procs[-MAX_STDERR_PROCESSES:]:
        status = "still running" if proc.returncode is None else f"exit status {proc.returncode}"
        ended = f"\nreplaced by a fresh process after: {proc.ended}" if proc.ended else ""
        parts.append(f"--- walredo pid {proc.pid} ({status}) ---\n{proc.stderr_tail.rstrip() or '(no stderr)'}"
                     f"{ended}\n")
    if example.stderr_tail.strip():
        parts.append(f"--- recorded by the test ---\n{example.stderr_tail.rstrip()}\n")
    return "".join(parts)


def _until_for(error: str) -> str:
    """The ``shrink --until`` kind that keeps a failure described by ``error``."""
    low = error.lower()
    return "timeout" if ("timeout" in low or "timed out" in low or "waited more than" in low) else "crash"


def next_steps(
    dump: Path,
    until: str,
    expected: Path | None,
    actual: Path | None,
    *,
    pg_version: int,
    flavour: Flavour,
    walredo_bin: Path | None = None,
    session: Path | None = None,
    needs_history: bool | None = None,
) -> list[str]:
    """The triage commands for ``dump``, run from its directory (index file lines). When the
    failure needs the calls before the request (``needs_history``), replay and shrink aim at
    its ``session`` stream instead."""
    common = f" --pg-version {pg_version} --flavour {flavour.value}"
    binary = f" --walredo-bin {walredo_bin}" if walredo_bin is not None else ""
    expect = f" --expect {expected.name}" if expected is not None else ""
    target = session if session is not None and needs_history else dump
    lines = ["next steps (from this directory):",
             f"  pytest-walredo inspect {target.name}{common}",
             f"  pytest-walredo replay {target.name}{common}{binary}{expect}",
             f"  pytest-walredo shrink {target.name} --until {until}{common}{binary}"]
    if session is not None and target is dump:
        lines.append(f"  pytest-walredo replay {session.name}{common}{binary}{expect}"
                     "   (everything the process received up to the request)")
    if expected is not None and actual is not None:
        lines.append(f"  pytest-walredo diff {expected.name} {actual.name}")
    return lines
