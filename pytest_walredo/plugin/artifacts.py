"""The files that explain one failing walredo test: ``.walredo`` inputs, decodes, page diffs, ...

When a walredo test fails, :mod:`pytest_walredo.plugin.reporting` calls :func:`write_failure_artifacts`
with what it knows about the failure and attaches the resulting files to Allure. Everything
lands in the test's dump directory (the one the plugin's failure summary prints), so the same
files exist with or without Allure:

=============================================  ===============================================
file                                           content
=============================================  ===============================================
``walredo-{millis}-{len}-{seq}.walredo``       the exact bytes of one request of the final
                                               failing example (``B [P] A* G``), replayable with
                                               ``pytest-walredo replay FILE``
``walredo-....decode.txt``                     ``pytest-walredo inspect`` of that request (also
                                               written for every dump the client made itself)
``walredo-....diff.txt``                       ``pytest-walredo diff`` of expected and actual page
``walredo-....expected.page`` / ``.actual.page``  the two pages, for ``pytest-walredo diff A B``
``failure-{millis}-{pid}-{seq}.txt``           index: test id, outcome, every file below
``failure-....stderr.txt``                     each process's stderr tail and exit status
``failure-....timeline.txt``                   the interleaving timeline, when one was involved
``failure-....hypothesis.txt``                 seed, ``@reproduce_failure(...)`` line, the
                                               falsifying example
=============================================  ===============================================

Uniqueness (invariant): every name above is derived from a name that was created with
``O_EXCL`` in that directory (the ``.walredo`` dumps by
:class:`~pytest_walredo.process.FailureDumper`, the ``failure-*`` stem by :func:`_reserve_stem`),
so two xdist workers, two processes or a rerun of the same test never overwrite each other's
files, whatever the clock says.

How a recorder hands over the final failing example: fill a :class:`FailureRecord` and call
:func:`record_failure` with the test item (the last call wins, so a recorder simply records every
Hypothesis example and the final, shrunk one is what remains), or expose it from a fixture value
with a ``failure_record()`` method (:class:`FailureRecordSource`). The conformance suite's
``walredo_recorder`` fixture (an ``ExampleRecorder`` whose ``current`` is an ``ExampleRecord``)
is recognised as is and adapted with :func:`record_from_example`.

Invariant: nothing in this module raises out of :func:`write_failure_artifacts` because of the
content it is given (undecodable bytes, wrong page sizes): a broken artifact must never hide the
failure being reported. Such problems are written into the artifact text instead.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest

from ..pg.version import Flavour
from ..process.dump import FailureDumper
from ..protocol import BLCKSZ, RedoRequest

__all__ = [
    "FAILURE_RECORD_KEY",
    "Artifact",
    "FailureArtifacts",
    "FailureRecord",
    "FailureRecordSource",
    "HypothesisInfo",
    "ProcessInfo",
    "RequestRecord",
    "client_dumps",
    "client_processes",
    "decode_text",
    "hypothesis_info",
    "next_steps",
    "page_diff_text",
    "record_failure",
    "record_from_example",
    "write_failure_artifacts",
]

log = logging.getLogger("pytest_walredo.plugin.artifacts")

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"

MAX_DECODED_PROCESS_DUMPS = 20
"""Client-made dumps decoded per failure (the newest); a long Hypothesis run can make hundreds."""
MAX_STDERR_PROCESSES = 10
"""Processes whose stderr tail is written per failure (the newest); pools may start hundreds."""


# ------------------------------------------------------------------------------------------
# What a recorder hands over
# ------------------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One request of the failing example and what came of it.

    ``request`` is the request or its exact encoded bytes (for malformed input that no
    :class:`RedoRequest` can express). ``expected`` is the page the oracle wanted, ``actual`` the
    page the process answered, ``error`` the error raised instead of a page; any may be None.
    """

    request: RedoRequest | bytes
    expected: bytes | None = None
    actual: bytes | None = None
    error: str | None = None
    caller: int | None = None
    """The caller (interleaving participant) that sent it, when several did."""

    def encoded(self) -> bytes:
        """The bytes written to the process's stdin for this request."""
        if isinstance(self.request, RedoRequest):
            return self.request.encode()
        return bytes(self.request)


@dataclass
class FailureRecord:
    """The final failing example of one test, as a recorder saw it."""

    requests: list[RequestRecord] = field(default_factory=list)
    timeline: str | None = None
    """The interleaving timeline (``Timeline`` text, one event per line), if one was drawn."""
    stderr_tail: str = ""
    """The stderr of the process that ran the example, if the recorder captured it."""
    notes: list[str] = field(default_factory=list)
    """Free text lines (the oracle's verdict, the property name...), written to the index."""


@runtime_checkable
class FailureRecordSource(Protocol):
    """A fixture value that knows the failing example of the test it served."""

    def failure_record(self) -> FailureRecord | None: ...


FAILURE_RECORD_KEY = pytest.StashKey[FailureRecord]()


def record_from_example(example: Any) -> FailureRecord:
    """Adapt the conformance suite's ``ExampleRecord`` (duck-typed: ``prop``, ``requests``,
    ``expected``, ``actual``, ``timeline``, ``schedule``, ``notes``) to a :class:`FailureRecord`.

    Duck-typed because the conformance suite sits above the plugin layer, which must not import
    it. ``requests[i]`` is caller i's job; None (a ping) carries no input and is only noted.
    """
    requests: list[RedoRequest | None] = list(getattr(example, "requests", []) or [])
    expected = list(getattr(example, "expected", []) or [])
    actual = list(getattr(example, "actual", []) or [])
    many = len(requests) > 1
    out = FailureRecord(notes=[f"property {getattr(example, 'prop', '?')}"])
    for i, req in enumerate(requests):
        if req is None:
            out.notes.append(f"caller {i}: ping")
            continue
        out.requests.append(RequestRecord(
            req,
            expected=expected[i] if i < len(expected) else None,
            actual=actual[i] if i < len(actual) else None,
            caller=i if many else None,
        ))
    timeline = getattr(example, "timeline", None)
    if timeline is not None:
        schedule = getattr(example, "schedule", None)
        lines = timeline.lines() if hasattr(timeline, "lines") else str(timeline).splitlines()
        head = [f"schedule: {schedule}"] if schedule is not None else []
        out.timeline = "\n".join([*head, *lines])
    out.notes.extend(str(n) for n in getattr(example, "notes", []) or [])
    return out


def record_failure(node: pytest.Item, record: FailureRecord) -> None:
    """Remember ``record`` as the failing example of test ``node`` (replacing an earlier one)."""
    node.stash[FAILURE_RECORD_KEY] = record


# ------------------------------------------------------------------------------------------
# Hypothesis
# ------------------------------------------------------------------------------------------

_REPRODUCE = re.compile(r"@reproduce_failure\((?:[^()]|\([^()]*\))*\)")


@dataclass(frozen=True)
class HypothesisInfo:
    """How to get the failing example of a Hypothesis test back."""

    seed: int | None
    seed_source: str
    """``@seed``, ``--hypothesis-seed``, ``derandomize`` or ``generated`` (drawn for this run)."""
    reproduce_failure: str | None
    """The ``@reproduce_failure('version', b'...')`` decorator, when Hypothesis printed it."""
    falsifying_example: str | None
    print_blob: bool

    def text(self) -> str:
        """The ``.hypothesis.txt`` content: seed, reproduction line, falsifying example."""
        lines = []
        if self.seed is not None:
            lines.append(f"seed: {self.seed} ({self.seed_source})")
            if self.seed_source in ("generated", "--hypothesis-seed"):
                lines.append(f"  rerun with: pytest --hypothesis-seed={self.seed} (or add @seed({self.seed}))")
        else:
            lines.append(f"seed: none ({self.seed_source})")
        if self.reproduce_failure:
            lines.append(f"reproduce with the decorator: {self.reproduce_failure}")
        elif not self.print_blob:
            lines.append("no @reproduce_failure line: the test's Hypothesis settings have print_blob=False")
        else:
            lines.append("no @reproduce_failure line was printed for this failure")
        if self.falsifying_example:
            lines.append("")
            lines.append(self.falsifying_example.strip())
        return "\n".join(lines) + "\n"


def _exception_notes(exc: BaseException | None) -> list[str]:
    """Every ``__notes__`` entry of ``exc``, its causes and (for groups) its sub-exceptions."""
    out: list[str] = []
    seen: set[int] = set()
    todo = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out.extend(str(n) for n in getattr(e, "__notes__", ()) or ())
        todo.extend(getattr(e, "exceptions", ()) or ())
        todo.append(e.__cause__)  # type: ignore[arg-type]
        todo.append(e.__context__)  # type: ignore[arg-type]
    return out


def hypothesis_info(item: pytest.Item, exc: BaseException | None, report_text: str = "") -> HypothesisInfo | None:
    """The seed and reproduction line of a failed Hypothesis test ``item``; None if not one.

    Hypothesis has no public API for the seed a run drew, so this reads the attributes its
    ``@given`` wrapper sets (``_hypothesis_internal_use_seed`` for ``@seed``,
    ``_hypothesis_internal_use_generated_seed`` for a drawn one) and falls back gracefully
    when a Hypothesis version does not have them. The ``@reproduce_failure`` line and the
    falsifying example come from the exception's notes and the report text.
    """
    func = getattr(item, "obj", None)
    if not getattr(func, "is_hypothesis_test", False):
        return None
    settings = getattr(func, "_hypothesis_internal_use_settings", None)
    print_blob = bool(getattr(settings, "print_blob", True))
    seed: int | None = getattr(func, "_hypothesis_internal_use_seed", None)
    source = "@seed"
    if seed is None and settings is not None and getattr(settings, "derandomize", False):
        source = "derandomize"
    elif seed is None:
        try:
            from hypothesis import core
        except ImportError:  # pragma: no cover - hypothesis is a dependency
            core = None  # type: ignore[assignment]
        forced = getattr(core, "global_force_seed", None)
        if forced is not None:
            seed, source = forced, "--hypothesis-seed"
        else:
            seed, source = getattr(func, "_hypothesis_internal_use_generated_seed", None), "generated"
            if seed is None:
                source = "unknown (the database or an explicit example supplied the failure)"
    notes = _exception_notes(exc)
    texts = [*notes, report_text]
    repro = next((m.group(0) for t in texts for m in [_REPRODUCE.search(t)] if m), None)
    # The falsifying example and what follows it (``Draw 1: ...`` lines of st.data()).
    start = next((i for i, n in enumerate(notes) if n.lstrip().startswith("Falsifying")), None)
    falsifying = None
    if start is not None:
        falsifying = "\n".join(n for n in notes[start:] if "@reproduce_failure" not in n)
    if falsifying is None:
        m = re.search(r"^Falsifying example:.*?(?=^\S|\Z)", report_text, re.M | re.S)
        falsifying = m.group(0) if m else None
    return HypothesisInfo(seed, source, repro, falsifying, print_blob)


# ------------------------------------------------------------------------------------------
# Text renderings (via the triage tools, so an attachment reads like the command's output)
# ------------------------------------------------------------------------------------------


def decode_text(data: bytes, name: str, pg_version: int, flavour: Flavour) -> str:
    """``pytest-walredo inspect`` output for ``data``; a one-line reason if it does not decode."""
    from ..triage import TriageError
    from ..triage.inspect import inspect_bytes, render_report

    try:
        return render_report(inspect_bytes(data, name, pg_version, flavour))
    except TriageError as exc:
        return f"{exc}\n"
    except Exception as exc:  # a decoder bug must not hide the test failure
        log.exception("decoding %s for the failure artifacts failed", name)
        return f"{name}: the decoder failed: {type(exc).__name__}: {exc}\n"


def page_diff_text(expected: bytes, actual: bytes) -> str:
    """``pytest-walredo diff`` of the expected and actual page, or why the pages cannot be compared."""
    from ..triage.pagediff import diff_pages, render_diff

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
    """walredo | decode | diff | page | stderr | timeline | hypothesis | index"""
    mime: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def extension(self) -> str:
        """The attachment's file extension as Allure stores it (``walredo``, ``txt``, ``page``)."""
        return self.path.suffix.lstrip(".")


@dataclass(frozen=True)
class ProcessInfo:
    """A walredo process the test used: its pid, exit status (None = running) and stderr tail."""

    pid: int
    returncode: int | None
    stderr_tail: str


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
    *,
    test_id: str,
    outcome: str,
    pg_version: int,
    flavour: Flavour,
    record: FailureRecord | None = None,
    process_dumps: Sequence[Path] = (),
    processes: Iterable[ProcessInfo] = (),
    hypothesis: HypothesisInfo | None = None,
    walredo_bin: Path | None = None,
) -> FailureArtifacts:
    """Write the artifacts of one failed test into ``directory`` and list them.

    ``record`` is the recorder's final failing example (its requests are dumped as new
    ``.walredo`` files); ``process_dumps`` are ``.walredo`` files the client already wrote for
    requests that failed at the process level (decoded here, not copied); ``processes`` gives
    the stderr tails. ``outcome`` is a one-line summary of the failure for the index, which
    also ends with the triage commands to run next (``walredo_bin``: the binary under test,
    None for the embedded reference).
    """
    directory = Path(directory)
    index = _reserve_stem(directory, f"{test_id}\n{outcome}\n")
    stem = index.with_suffix("")
    result = FailureArtifacts(directory, index)
    arts = result.artifacts
    index_lines: list[str] = []
    # The request the "next steps" commands use: (dump, --until, expected page, actual page).
    focus: tuple[Path, str, Path | None, Path | None] | None = None

    if record is not None:
        dumper = FailureDumper(directory)
        for n, req in enumerate(record.requests):
            data = req.encoded()
            path = dumper.dump(data, "")
            who = f" (caller {req.caller})" if req.caller is not None else ""
            if path is None:
                index_lines.append(f"request {n}{who}: could not be saved (see the log)")
                continue
            arts.append(Artifact(path, "walredo", OCTET_STREAM))
            arts.append(Artifact(_write_text(_companion(path, ".decode.txt"),
                                             decode_text(data, path.name, pg_version, flavour)), "decode", TEXT))
            line = f"request {n}{who}: {path.name}"
            if req.error:
                line += f": error: {req.error}"
                if focus is None:
                    focus = (path, _until_for(req.error), None, None)
            if req.expected is not None and req.actual is not None:
                diff = page_diff_text(req.expected, req.actual)
                arts.append(Artifact(_write_text(_companion(path, ".diff.txt"), diff), "diff", TEXT))
                pages = []
                for label, page in (("expected", req.expected), ("actual", req.actual)):
                    p = _companion(path, f".{label}.page")
                    p.write_bytes(page)
                    arts.append(Artifact(p, "page", OCTET_STREAM))
                    pages.append(p)
                line += f": {diff.splitlines()[0]}"
                if focus is None and req.expected != req.actual:
                    focus = (path, "differs", pages[0], pages[1])
            elif req.actual is not None:
                p = _companion(path, ".actual.page")
                p.write_bytes(req.actual)
                arts.append(Artifact(p, "page", OCTET_STREAM))
            index_lines.append(line)
        index_lines.extend(record.notes)

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
        arts.append(Artifact(decode, "decode", TEXT))
        index_lines.append(f"  {dump.name} (decoded in {decode.name})")
    if skipped:
        index_lines.append(f"  ... and {skipped} older dump(s), not decoded")
    if focus is None and dumps:
        focus = (dumps[-1], _until_for(outcome), None, None)
    if focus is None and record is not None and record.requests and arts:
        focus = (arts[0].path, "differs", None, None)

    stderr_parts = []
    procs = list(processes)
    if len(procs) > MAX_STDERR_PROCESSES:
        stderr_parts.append(f"({len(procs) - MAX_STDERR_PROCESSES} older process(es) left out)\n")
    for proc in procs[-MAX_STDERR_PROCESSES:]:
        status = "still running" if proc.returncode is None else f"exit status {proc.returncode}"
        stderr_parts.append(f"--- walredo pid {proc.pid} ({status}) ---\n{proc.stderr_tail.rstrip() or '(no stderr)'}\n")
    if record is not None and record.stderr_tail.strip():
        stderr_parts.append(f"--- recorded by the test ---\n{record.stderr_tail.rstrip()}\n")
    if stderr_parts:
        arts.append(Artifact(_write_text(Path(f"{stem}.stderr.txt"), "".join(stderr_parts)), "stderr", TEXT))
    if record is not None and record.timeline:
        arts.append(Artifact(_write_text(Path(f"{stem}.timeline.txt"), record.timeline.rstrip() + "\n"),
                             "timeline", TEXT))
    if hypothesis is not None:
        arts.append(Artifact(_write_text(Path(f"{stem}.hypothesis.txt"), hypothesis.text()), "hypothesis", TEXT))
        if hypothesis.reproduce_failure:
            index_lines.append(f"reproduce: {hypothesis.reproduce_failure}")
        if hypothesis.seed is not None:
            index_lines.append(f"seed: {hypothesis.seed} ({hypothesis.seed_source})")

    if focus is not None:
        result.next_steps = next_steps(*focus, pg_version=pg_version, flavour=flavour, walredo_bin=walredo_bin)
        index_lines.extend(result.next_steps)
    with index.open("a", encoding="utf-8") as f:
        for line in index_lines:
            f.write(line + "\n")
        f.write("files:\n")
        for a in arts:
            f.write(f"  {a.name}\n")
    arts.append(Artifact(index, "index", TEXT))
    return result


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
) -> list[str]:
    """The triage commands for ``dump``, run from its directory (index file lines)."""
    common = f" --pg-version {pg_version} --flavour {flavour.value}"
    binary = f" --walredo-bin {walredo_bin}" if walredo_bin is not None else ""
    expect = f" --expect {expected.name}" if expected is not None else ""
    lines = ["next steps (from this directory):",
             f"  pytest-walredo inspect {dump.name}{common}",
             f"  pytest-walredo replay {dump.name}{common}{binary}{expect}",
             f"  pytest-walredo shrink {dump.name} --until {until}{common}{binary}"]
    if expected is not None and actual is not None:
        lines.append(f"  pytest-walredo diff {expected.name} {actual.name}")
    return lines


def client_dumps(clients: Iterable[Any]) -> list[Path]:
    """Every dump file the given walredo clients' dumpers wrote (sync or async clients)."""
    out: list[Path] = []
    for c in clients:
        inner = getattr(c, "client", c)
        dumper = getattr(inner, "dumper", None)
        out.extend(getattr(dumper, "written", ()) or ())
    return out


def client_processes(clients: Iterable[Any]) -> list[ProcessInfo]:
    """:class:`ProcessInfo` of every process behind the given clients."""
    out = []
    for c in clients:
        process = getattr(c, "process", None)
        if process is None:
            continue
        try:
            code = process.poll()
            tail = process.stderr_tail()
        except Exception as exc:  # never let a dead process's bookkeeping hide the failure
            code, tail = None, f"(stderr unavailable: {exc})"
        out.append(ProcessInfo(process.pid, code, tail))
    return out
