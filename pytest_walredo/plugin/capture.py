"""What a test sends to its walredo processes, example by example (one :class:`TestCapture`
per test).

Every call the fixtures' clients make (:mod:`.managed`) is recorded as an :class:`Exchange`
of the current *example*: the whole test for a plain test, one execution of the test body for
a Hypothesis test. Each process's :class:`Session` keeps everything it received since it was
launched, in pipe order, so a failure that needs earlier requests can be replayed.

How examples are told apart: Hypothesis runs every execution of a test body inside its own
build context (``hypothesis.control.current_build_context()``); a call seen under a context
other than the current example's starts a new example, and a cleanup task registered on that
context (``hypothesis.control.cleanup``, run when the execution ends, while the test's
exception, if any, is still being handled) learns the outcome. The context's ``is_final``
flag marks the final replay of the minimal failing example, which Hypothesis runs last; when
a Hypothesis version lacks the flag, the last example executed is the final one.

What is kept (invariant): the first failing example (before shrinking) and the final one; a
client-level dump (a ``.walredo`` file written for a request that failed at the process level)
is written at once outside Hypothesis and in those two examples, and never for another
example: shrinking runs hundreds of examples, and their dumps would bury the one that counts
(:class:`CaptureDumper`).

The context is read in the caller's thread (Hypothesis keeps it per thread); the blocking
client observes the example before it hands the call to its event-loop thread, and calls seen
without a context belong to the current example.
"""

from __future__ import annotations

import collections
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..pg.constants import BLCKSZ
from ..process.dump import FailureDumper
from ..process.errors import WalredoPoisoned, WalredoTimeout
from ..protocol import Ping, RedoRequest
from .example import ExampleRequest, FailingExample, SessionRef

__all__ = [
    "MAX_CLIENT_DUMPS",
    "SESSION_LIMIT",
    "CaptureDumper",
    "ExampleLog",
    "Exchange",
    "Session",
    "TestCapture",
    "active_capture",
    "failure_kind",
]

log = logging.getLogger("pytest_walredo.plugin")

KEEP_CALLS = 64
"""Calls of one example kept for the failure artifacts: the newest (a failing test stops at its
failure, so the calls that matter are the last ones)."""
KEEP_FAILURES = 8
"""Calls of one example that failed at the process level, kept even when older than that."""
MAX_CALLS_REPORTED = 16
"""Calls of the failing example written out: the ones where it went wrong, then the newest."""
SESSION_LIMIT = 64 << 20
"""Bytes of one process's session stream kept in memory; a longer session is not saved."""
MAX_CLIENT_DUMPS = 10
"""Client-level dumps written per test at most (the first failure's and the final example's
need a few; more would only repeat them)."""


def failure_kind(err: BaseException) -> str:
    """``timeout`` (incl. a hang), ``poisoned``, or ``crash`` (the process died or broke the
    protocol): how a request failed at the process level."""
    if isinstance(err, WalredoTimeout):
        return "timeout"
    if isinstance(err, WalredoPoisoned):
        return "poisoned"
    return "crash"


class Session:
    """Everything one process received since it was launched, call by call.

    ``calls[no]`` is the bytes of the call with request number ``no`` (requests, pings and raw
    calls are numbered in the order their bytes entered the pipe), so the stream is their
    concatenation in number order. Past :data:`SESSION_LIMIT` bytes the session stops keeping
    bytes (``truncated``) and cannot be saved.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.calls: dict[int, bytes] = {}
        self.size = 0
        self.truncated = False
        self.needs_history: bool | None = None
        """Whether a failure on this process needs the calls before it (None: not checked)."""

    def add(self, no: int, data: bytes) -> None:
        if self.truncated:
            return
        if self.size + len(data) > SESSION_LIMIT:
            self.truncated = True
            self.calls.clear()
            return
        self.calls[no] = data
        self.size += len(data)

    def stream(self, upto: int | None = None) -> tuple[bytes, dict[int, int]]:
        """The stream of calls numbered below ``upto`` (None: all) and each call's offset."""
        out = bytearray()
        offsets = {}
        for no in sorted(self.calls):
            if upto is not None and no >= upto:
                break
            offsets[no] = len(out)
            out += self.calls[no]
        return bytes(out), offsets

    def before(self, no: int) -> list[bytes]:
        """The calls sent before call ``no``, in order (what a fresh process must be fed to be
        where this one was)."""
        return [self.calls[n] for n in sorted(self.calls) if n < no]


_PING = Ping().encode()


@dataclass(eq=False)
class Exchange:
    """One call a fixture's client made: what it sent and what came back."""

    owner: object
    """The client that made it."""
    data: bytes
    session: Session
    no: int | None = None
    """Its request number on the process (None: its bytes never reached the pipe)."""
    answer: bytes | None = None
    error: str | None = None
    failure: str | None = None
    """:func:`failure_kind` of the error"""
    returncode: int | None = None
    expected: bytes | None = None
    dump: Path | None = None
    """The ``.walredo`` file the client wrote for it when it failed, if any."""
    seq: int = 0
    """Its position among the calls of its example."""

    @property
    def request(self) -> RedoRequest | bytes | None:
        """The call as a :class:`RedoRequest`, its raw bytes when they are not one request
        (malformed input), or None for a ping."""
        if self.data == _PING:
            return None
        try:
            return RedoRequest.decode(self.data)
        except ValueError:  # ProtocolError and RequestShapeError are ValueErrors
            return self.data

    def describe(self) -> str:
        req = self.request
        if isinstance(req, RedoRequest):
            return req.describe()
        return "ping" if req is None else f"{len(req)} raw bytes"

    def outcome(self) -> tuple[str, bytes | None]:
        """What the process did with it: (``answered``, page) or (failure kind, None)."""
        if self.failure is not None:
            return self.failure, None
        return "answered", self.answer

    @property
    def wrong(self) -> bool:
        """Whether this call is where the example went wrong (an error, or an answer that
        differs from the expected page)."""
        return self.error is not None or (self.expected is not None and self.answer is not None
                                          and self.expected != self.answer)


@dataclass(eq=False)
class ExampleLog:
    """The calls of one example (the whole test, or one execution of a Hypothesis test).

    Memory stays bounded however many calls a test makes (invariant): ``exchanges`` keeps the
    newest :data:`KEEP_CALLS`, ``failures`` the first :data:`KEEP_FAILURES` that failed at the
    process level; ``calls`` counts them all.
    """

    number: int
    context: object | None = None
    is_final: bool = False
    exchanges: collections.deque[Exchange] = field(default_factory=lambda: collections.deque(maxlen=KEEP_CALLS))
    failures: list[Exchange] = field(default_factory=list)
    calls: int = 0
    failed: bool | None = None
    """Set when a Hypothesis example ends; None for a plain test (the test's outcome says)."""
    pending_dumps: list[tuple[Path, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, e: Exchange) -> None:
        e.seq = self.calls
        self.calls += 1
        self.exchanges.append(e)

    def failed_call(self, e: Exchange) -> None:
        """``e`` failed at the process level: keep it even once newer calls push it out."""
        if len(self.failures) < KEEP_FAILURES:
            self.failures.append(e)

    def kept(self) -> list[Exchange]:
        """Every call kept, in the order they were made."""
        seen = {id(e) for e in self.exchanges}
        return sorted([*self.exchanges, *(e for e in self.failures if id(e) not in seen)], key=lambda e: e.seq)

    def ordered(self) -> list[Exchange]:
        """The kept calls per process, in the order their bytes entered the pipe."""
        kept = self.kept()
        sessions: list[Session] = []
        for e in kept:
            if e.session not in sessions:
                sessions.append(e.session)
        out = []
        for s in sessions:
            mine = [e for e in kept if e.session is s]
            out += sorted(mine, key=lambda e: (e.no is None, e.no if e.no is not None else 0))
        return out


_CONTEXT: list[Any] = []
"""Hypothesis's per-thread build-context variable, looked up once (every call reads it)."""


def _build_context() -> object | None:
    """Hypothesis's build context of the example running in this thread, or None."""
    if not _CONTEXT:
        try:
            from hypothesis.control import _current_build_context
        except ImportError:  # pragma: no cover - hypothesis is a dependency; an old one lacks it
            return None
        _CONTEXT.append(_current_build_context)
    return _CONTEXT[0].value


def _is_failure(exc: BaseException | None) -> bool:
    """Whether an example that ended with ``exc`` failed (Hypothesis's own control flow, such
    as an unsatisfied ``assume``, is not a failure)."""
    if exc is None or not isinstance(exc, Exception):
        return False
    try:
        from hypothesis.errors import UnsatisfiedAssumption
    except ImportError:  # pragma: no cover
        return True
    return not isinstance(exc, UnsatisfiedAssumption)


class CapturingClient(Protocol):
    """What a capture needs of the clients recording into it (:class:`~.managed.ManagedClient`)."""

    def check_alone(self, example: ExampleLog) -> None: ...


_ACTIVE: list[TestCapture] = []


def active_capture() -> TestCapture | None:
    """The capture of the test running now (set while its ``walredo_factory`` is up)."""
    return _ACTIVE[-1] if _ACTIVE else None


class TestCapture:
    """Per-test record of the examples, the first failing one and the final one."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.examples = 0
        self.current: ExampleLog | None = None
        self.first_failure: ExampleLog | None = None
        self.final: ExampleLog | None = None
        self.clients: list[CapturingClient] = []
        self.dumps_left = MAX_CLIENT_DUMPS
        self.dumps_skipped = 0
        self.history_checks: list[Callable[[ExampleLog], None]] = []
        """Called once, with the first failing example of a Hypothesis test."""

    def activate(self) -> None:
        _ACTIVE.append(self)

    def deactivate(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    # -- examples --------------------------------------------------------------------------------

    def example(self) -> ExampleLog:
        """The example running now; a call under a new Hypothesis build context starts one."""
        ctx = _build_context()
        cur = self.current
        if cur is not None and (ctx is None or cur.context is ctx):
            return cur
        self.examples += 1
        new = ExampleLog(self.examples, ctx, bool(getattr(ctx, "is_final", False)))
        self.current = new
        if ctx is not None:
            try:
                from hypothesis.control import cleanup

                cleanup(lambda: self._ended(new))
            except Exception:  # pragma: no cover - an old Hypothesis: the last example is final
                log.debug("cannot register a Hypothesis cleanup", exc_info=True)
        return new

    def _ended(self, ex: ExampleLog) -> None:
        """A Hypothesis example ended (we are inside its build context's exit, so the test's
        exception, if any, is the one being handled). Never raises: Hypothesis would report a
        cleanup error as the test's failure."""
        try:
            ex.failed = _is_failure(sys.exc_info()[1])
            first = ex.failed and self.first_failure is None
            if first:
                self.first_failure = ex
                for check in list(self.history_checks):
                    check(ex)
            if ex.is_final:
                self.final = ex
            if first or ex.is_final:
                for path, data in ex.pending_dumps:
                    _write_dump(path, data)
            ex.pending_dumps.clear()
        except Exception:
            log.exception("recording the end of a Hypothesis example failed")

    def final_example(self) -> ExampleLog | None:
        """The example the test failed with: Hypothesis's final replay, else the last one."""
        return self.final or self.current

    # -- what the test compared ------------------------------------------------------------------

    def compared_pages(self, left: object, right: object) -> Exchange | None:
        """``assert left == right`` failed: when one side is a page a process answered in the
        current example, that answer was wrong and the other side is what the test expected.
        Returns the exchange (now with ``expected`` set), or None."""
        if not (isinstance(left, (bytes, bytearray)) and isinstance(right, (bytes, bytearray))):
            return None
        if len(left) != BLCKSZ or len(right) != BLCKSZ or left == right or self.current is None:
            return None
        for e in reversed(self.current.exchanges):
            if e.answer is None:
                continue
            if e.answer == left:
                e.expected = bytes(right)
                return e
            if e.answer == right:
                e.expected = bytes(left)
                return e
        return None


    def expected_for(self, owner: object, data: bytes, page: bytes, expected: bytes) -> None:
        """The test said (``expect``) that call ``data`` of ``owner``, answered with ``page``,
        should have given ``expected``."""
        if self.current is None:
            return
        for e in reversed(self.current.exchanges):
            if e.owner is owner and e.data == data and e.answer == page:
                e.expected = bytes(expected)
                return


    def failing_example(self) -> FailingExample | None:
        """The final example as a :class:`~.example.FailingExample` (with the first failing
        one as ``first`` when Hypothesis shrank it to another), or None when it made no call."""
        final = self.final_example()
        if final is None or not final.exchanges:
            return None
        out = _to_example(final)
        first = self.first_failure
        if final.context is not None:
            out.examples = self.examples
            out.first_failure_at = first.number if first is not None else None
        if first is not None and first is not final and first.exchanges:
            out.first = _to_example(first)
            out.first.first_failure_at = first.number
        return out


def marked_exchanges(example: ExampleLog) -> dict[Session, Exchange]:
    """Per process: the call where the example went wrong (the first wrong one), else its last
    call. Its session stream is the one worth saving."""
    marked: dict[Session, Exchange] = {}
    for e in example.ordered():
        cur = marked.get(e.session)
        if cur is None or not cur.wrong:
            marked[e.session] = e
    return marked


def _reported(ex_log: ExampleLog, marked: dict[Session, Exchange]) -> list[Exchange]:
    """At most :data:`MAX_CALLS_REPORTED` calls, in pipe order: the marked ones first, then the
    newest."""
    calls = ex_log.ordered()
    if len(calls) <= MAX_CALLS_REPORTED:
        return calls
    chosen = {id(e) for e in marked.values()}
    for e in sorted(calls, key=lambda e: e.seq, reverse=True):
        if len(chosen) >= MAX_CALLS_REPORTED:
            break
        chosen.add(id(e))
    return [e for e in calls if id(e) in chosen]


def _to_example(ex_log: ExampleLog) -> FailingExample:
    marked = marked_exchanges(ex_log)
    requests = []
    crash = None
    reported = _reported(ex_log, marked)
    for e in reported:
        ref = None
        s = e.session
        if marked.get(s) is e and e.no and not s.truncated:
            stream, offsets = s.stream(upto=e.no + 1)
            if e.no in offsets:
                ref = SessionRef(stream, offsets[e.no], e.no, s.pid, s.needs_history)
        if crash is None and e.failure == "crash":
            crash = e.error
        requests.append(ExampleRequest(e.request, e.expected, e.answer, e.error, failure=e.failure,
                                       session=ref, dump=e.dump))
    notes = list(ex_log.notes)
    if crash is not None:
        notes.insert(0, f"crash: {crash}")
    if len(reported) < ex_log.calls:
        notes.append(f"the example made {ex_log.calls} call(s); the {len(reported)} written are where it "
                     "went wrong and the newest (the session streams hold everything each process received)")
    return FailingExample(requests=requests, notes=notes)


def _write_dump(path: Path, data: bytes) -> None:
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        log.error("could not save the failing walredo input %s: %s", path, exc)


class CaptureDumper(FailureDumper):
    """The fixtures' :class:`~pytest_walredo.process.FailureDumper`: writes a failing request at
    once outside Hypothesis and in Hypothesis's final replay; inside another example it keeps
    the bytes under a reserved name and writes them only if that example turns out to be the
    first failing one. At most :data:`MAX_CLIENT_DUMPS` files per test."""

    def __init__(self, directory: Path | str, capture: TestCapture, on_dump: Any = None) -> None:
        super().__init__(directory, on_dump=on_dump)
        self.capture = capture

    def dump(self, data: bytes, stderr_tail: str = "") -> Path | None:
        cap = self.capture
        if cap.dumps_left <= 0:
            cap.dumps_skipped += 1
            if cap.dumps_skipped == 1:
                log.warning("%s: more than %d failing walredo inputs; later ones are not saved",
                            cap.nodeid, MAX_CLIENT_DUMPS)
            return None
        ex = cap.example()
        defer = ex.context is not None and not ex.is_final and cap.first_failure is None
        if ex.context is not None and not ex.is_final and cap.first_failure is not None:
            return None  # a shrinking step: never shown, never kept
        cap.dumps_left -= 1
        if not defer:
            return super().dump(data, stderr_tail)
        path = self._reserve_name(len(data))
        ex.pending_dumps.append((path, bytes(data)))
        with self._lock:
            self.written.append(path)
        return path

    def _reserve_name(self, length: int) -> Path:
        import time

        from ..process.dump import dump_name

        millis = time.time_ns() // 1_000_000
        while True:
            with self._lock:
                seq = next(self._seq)
            path = self.directory / dump_name(millis, length, seq)
            if not path.exists():
                return path

    @property
    def existing(self) -> list[Path]:
        """The dumps written so far that exist on disk (a deferred one is dropped when its
        example passes or is not the first failing one)."""
        return [p for p in self.written if p.exists()]
