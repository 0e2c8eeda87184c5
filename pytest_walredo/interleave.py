"""Deterministic concurrent interleavings of many callers sharing one walredo client.

:class:`ScheduledClient` is a :class:`~pytest_walredo.process.WalredoClient` whose small step
methods stop at *checkpoints*: before queuing for the stdin lock, before writing, before
queuing for the stdout lock, before each answer read. A :class:`Scheduler` runs N caller tasks
and, whenever every caller is either parked at a checkpoint or blocked (on a lock held by
another caller, or on an answer that cannot come), lets exactly one parked caller continue,
or cancels it. Which one is decided by a :class:`Schedule`: a list of picks (and which caller to
cancel at which checkpoint) drawn by Hypothesis with :func:`schedules`.

Determinism. Over :class:`~pytest_walredo.sim.SimTransport` there is no real I/O, no thread and
no timer, and asyncio runs ready callbacks in FIFO order, so a run is a pure function of the
jobs and the schedule: the same example gives the same :class:`Timeline`, event for event (a
test replays a recorded failing example and compares). Over a real process pipe only the
caller-side order is controlled: the scheduler waits until every caller has reached a
checkpoint or a lock (answers in flight are waited for), so the order of checkpoints is still
the drawn one, but the process's timing is not.

A timeline prints as short lines ``c<caller> <step> [#request] [CANCEL]``::

    c1 start
    c1 stdin
    c1 write #0
    c0 start
    ...

Invariants kept by the scheduler:

* (S1) at most one caller runs between two decisions; the driver only decides when no
  caller can make progress on its own;
* (S2) a caller that is cancelled is cancelled at a checkpoint (never in the middle of a
  client step), so the cancellation point is exactly the drawn one;
* (S3) decision ``i`` uses ``schedule.picks[i]`` (``schedule.rest`` after the last) modulo the
  number of parked callers, the parked callers ordered by caller number; a caller is
  cancelled exactly when it is picked at a checkpoint ``(caller, step)`` named in
  ``schedule.cancels``;
* (S4) over a real pipe, a reader waiting for an answer the process will never send is found
  by the client's own hang check (``hang_check``, see
  :mod:`~pytest_walredo.process.quiescence`), not by the scheduler: it fails with
  :class:`~pytest_walredo.process.WalredoHang`, which :func:`check_run` reports as ``[hang]``;
* (S5) over a real pipe, a caller whose write waits for room in a full stdin pipe counts as
  blocked, so the driver goes on resuming parked callers (a reader drains the answers that
  made the process stop reading); that writer then finishes by itself, the one exception to
  S1, which only I/O timing can cause.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .process.client import Call, WalredoClient
from .process.errors import WalredoError, WalredoHang, WalredoPoisoned, WalredoTimeout
from .protocol import BLCKSZ, RedoRequest
from .strategies.schedules import STEPS, Schedule, schedules

__all__ = [
    "STEPS",
    "Event",
    "Job",
    "Outcome",
    "RunResult",
    "Schedule",
    "ScheduledClient",
    "Scheduler",
    "Timeline",
    "check_run",
    "run_schedule",
    "schedules",
]

_CALLER: contextvars.ContextVar[int | None] = contextvars.ContextVar("walredo_caller", default=None)
_CALL: contextvars.ContextVar[Call | None] = contextvars.ContextVar("walredo_call", default=None)

MAX_DECISIONS = 10_000
"""A run with more decisions than this is stopped as a livelock."""


# --------------------------------------------------------------------------------------------
# Timelines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One line of a timeline: ``caller`` did ``step`` for request ``no`` (None: not numbered
    yet). ``cancel`` marks a decision that cancelled the caller instead of resuming it."""

    caller: int
    step: str
    no: int | None = None
    cancel: bool = False

    def __str__(self) -> str:
        text = f"c{self.caller} {self.step}"
        if self.no is not None:
            text += f" #{self.no}"
        if self.cancel:
            text += " CANCEL"
        return text


class Timeline(list[Event]):
    """The events of one run, in order; ``str()`` is one event per line."""

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self)

    def lines(self) -> list[str]:
        return [str(e) for e in self]


# --------------------------------------------------------------------------------------------
# Jobs and outcomes
# --------------------------------------------------------------------------------------------

Job = RedoRequest | None
"""What one caller does: apply a redo request, or ping (None)."""


class Status(str, enum.Enum):
    PAGE = "page"
    ERROR = "error"
    CANCELLED = "cancelled"


@dataclass
class Outcome:
    """What one caller got: a page, an error, or its own cancellation."""

    status: Status
    page: bytes | None = None
    error: BaseException | None = None
    cancelled_at: str | None = None
    cancelled_no: int | None = None

    def describe(self) -> str:
        if self.status is Status.PAGE:
            return "page"
        if self.status is Status.CANCELLED:
            no = f" #{self.cancelled_no}" if self.cancelled_no is not None else ""
            return f"cancelled at {self.cancelled_at}{no}"
        return f"{type(self.error).__name__}: {self.error}"


@dataclass
class RunResult:
    """The outcome of every caller, the timeline, and whether the run deadlocked."""

    outcomes: list[Outcome]
    timeline: Timeline
    deadlock: bool = False
    schedule: Schedule = field(default_factory=Schedule)
    unclaimed: tuple[int, ...] = ()  # answers left without an owner in a client not poisoned


# --------------------------------------------------------------------------------------------
# The scheduled client
# --------------------------------------------------------------------------------------------


class _State(enum.Enum):
    RUNNING = "running"
    PARKED = "parked"
    LOCK = "lock"
    READ = "read"
    WRITE = "write"
    DONE = "done"


class ScheduledClient(WalredoClient):
    """A :class:`WalredoClient` that stops at checkpoints while a :class:`Scheduler` is attached
    (``client.scheduler``); with none attached it behaves exactly like its base class.

    Test-only mutants (:mod:`pytest_walredo.testing.mutants`) are mixins placed before this class.
    """

    scheduler: Scheduler | None = None

    async def _submit(self, call: Call, timeout: float | None) -> bytes:
        token = _CALL.set(call)
        try:
            return await super()._submit(call, timeout)
        finally:
            _CALL.reset(token)

    async def _checkpoint(self, step: str) -> None:
        if self.scheduler is not None:
            await self.scheduler.checkpoint(step)

    async def _acquire_stdin(self) -> None:
        await self._checkpoint("stdin")
        if self.scheduler is None:
            return await super()._acquire_stdin()
        assert self._stdin_lock is not None
        with self.scheduler.state(_State.LOCK, self._stdin_lock):
            await super()._acquire_stdin()

    async def _write_request(self, call: Call) -> None:
        await self._checkpoint("write")
        if self.scheduler is None:
            return await super()._write_request(call)
        with self.scheduler.state(_State.WRITE, None):
            await super()._write_request(call)

    async def _between_send_and_receive(self, call: Call) -> None:
        await self._checkpoint("stdout")
        await super()._between_send_and_receive(call)

    async def _acquire_stdout(self, call: Call) -> bool:
        if self.scheduler is None:
            return await super()._acquire_stdout(call)
        with self.scheduler.state(_State.LOCK, self._stdout_lock):
            return await super()._acquire_stdout(call)

    async def _read_response(self) -> bytes:
        await self._checkpoint("read")
        if self.scheduler is None:
            return await super()._read_response()
        with self.scheduler.state(_State.READ, None):
            return await super()._read_response()

    def _take_response(self, request_no: int) -> bytes:
        page = super()._take_response(request_no)
        if self.scheduler is not None:
            self.scheduler.note("take", request_no)
        return page


class _Lockish(Protocol):
    def locked(self) -> bool: ...


class _StateScope:
    def __init__(self, sched: Scheduler, state: _State, lock: _Lockish | None) -> None:
        self.sched, self.st, self.lock = sched, state, lock

    def __enter__(self) -> None:
        caller = _CALLER.get()
        if caller is not None:
            self.sched._states[caller] = (self.st, self.lock)

    def __exit__(self, *exc: object) -> None:
        caller = _CALLER.get()
        if caller is not None:
            self.sched._states[caller] = (_State.RUNNING, None)


class Scheduler:
    """Runs caller coroutines one step at a time in the order a :class:`Schedule` says.

    ``real_io``: answers come from a real process, so a caller reading an answer is making
    progress (waited for) rather than blocked; over a simulated transport (``real_io=False``)
    a read that cannot be satisfied while everyone else is parked or blocked is a deadlock.
    """

    def __init__(self, schedule: Schedule, *, real_io: bool, transport: Any = None) -> None:
        self.schedule = schedule
        self.real_io = real_io
        self.transport = transport
        self.timeline = Timeline()
        self._parked: dict[int, tuple[asyncio.Future[None], str, Call | None]] = {}
        self._states: dict[int, tuple[_State, _Lockish | None]] = {}
        self._cancelled: dict[int, tuple[str, int | None]] = {}

    # -- caller side ----------------------------------------------------------------------------

    def state(self, state: _State, lock: _Lockish | None) -> _StateScope:
        return _StateScope(self, state, lock)

    def note(self, step: str, no: int | None) -> None:
        """Record an event that is not a decision (e.g. ``take``)."""
        caller = _CALLER.get()
        if caller is not None:
            self.timeline.append(Event(caller, step, no))

    async def checkpoint(self, step: str) -> None:
        caller = _CALLER.get()
        if caller is None:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked[caller] = (fut, step, _CALL.get())
        self._states[caller] = (_State.PARKED, None)
        try:
            await fut
        finally:
            self._parked.pop(caller, None)
            self._states[caller] = (_State.RUNNING, None)

    # -- driver side ----------------------------------------------------------------------------

    def _quiet(self, caller: int) -> bool:
        state, lock = self._states.get(caller, (_State.RUNNING, None))
        if state in (_State.PARKED, _State.DONE):
            return True
        if state is _State.LOCK:
            return lock is not None and lock.locked()
        if state is _State.READ and not self.real_io:
            waiting = getattr(self.transport, "waiting_for_answer", None)
            return bool(waiting)
        if state is _State.WRITE:
            # (S5) a write waiting for room in a full pipe is blocked: the process stopped
            # reading because nobody reads its answers (readers are parked here, never in a
            # real client), so the driver must resume someone or the run deadlocks.
            return bool(getattr(self.transport, "write_blocked", False))
        return False

    async def _settle(self, callers: Sequence[int]) -> None:
        spins = 0
        while True:
            # Two quiet checks in a row with a loop pass between them: callbacks scheduled by
            # the last step (a lock hand-off, an answer arriving) have run by then.
            if all(self._quiet(c) for c in callers):
                await asyncio.sleep(0)
                if all(self._quiet(c) for c in callers):
                    return
            spins += 1
            await asyncio.sleep(0 if spins < 200 or not self.real_io else 0.0005)

    async def run(self, jobs: Sequence[Callable[[], Awaitable[bytes]]]) -> RunResult:
        n = len(jobs)
        outcomes: list[Outcome | None] = [None] * n

        async def caller(i: int) -> None:
            _CALLER.set(i)
            self._states[i] = (_State.RUNNING, None)
            try:
                await self.checkpoint("start")
                page = await jobs[i]()
                outcomes[i] = Outcome(Status.PAGE, page=page)
                self.timeline.append(Event(i, "done"))
            except asyncio.CancelledError:
                at, no = self._cancelled.get(i, ("?", None))
                outcomes[i] = Outcome(Status.CANCELLED, cancelled_at=at, cancelled_no=no)
            except Exception as exc:  # the outcome records it; the oracle judges it
                outcomes[i] = Outcome(Status.ERROR, error=exc)
                self.timeline.append(Event(i, f"error {type(exc).__name__}"))
            finally:
                self._states[i] = (_State.DONE, None)

        tasks = [asyncio.ensure_future(caller(i)) for i in range(n)]
        deadlock = False
        decision = 0
        try:
            while True:
                live = [i for i in range(n) if not tasks[i].done()]
                await self._settle(live)
                live = [i for i in range(n) if not tasks[i].done()]
                if not live:
                    break
                parked = sorted(self._parked)
                if not parked:
                    if all(self._quiet(i) for i in live):
                        deadlock = True
                        self.timeline.append(Event(live[0], "DEADLOCK"))
                        break
                    continue
                if decision >= MAX_DECISIONS:
                    deadlock = True
                    self.timeline.append(Event(parked[0], "LIVELOCK"))
                    break
                who = parked[self.schedule.pick(decision) % len(parked)]
                fut, step, call = self._parked[who]
                no = call.no if call is not None else None
                cancel = (who, step) in self.schedule.cancels
                decision += 1
                self.timeline.append(Event(who, step, no, cancel))
                if cancel:
                    self._cancelled[who] = (step, no)
                    tasks[who].cancel()
                else:
                    fut.set_result(None)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        result = [o if o is not None else Outcome(Status.CANCELLED, cancelled_at="deadlock")
                  for o in outcomes]
        return RunResult(result, self.timeline, deadlock, self.schedule)


async def run_schedule(client: ScheduledClient, jobs: Sequence[Job], schedule: Schedule, *,
                       real_io: bool, timeout: float | None = None) -> RunResult:
    """Run ``jobs`` (requests, or None for a ping) as concurrent callers on ``client`` in the
    order ``schedule`` draws. The client is left attached to no scheduler afterwards."""

    def job(j: Job) -> Callable[[], Awaitable[bytes]]:
        if j is None:
            return lambda: client.ping(timeout)
        return lambda: client.apply(j, timeout)

    sched = Scheduler(schedule, real_io=real_io, transport=client.transport)
    client.scheduler = sched
    try:
        result = await sched.run([job(j) for j in jobs])
    finally:
        client.scheduler = None
    if not client.poisoned:
        result.unclaimed = tuple(client.unclaimed())
    return result


# --------------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------------


def check_run(result: RunResult, expected: Sequence[bytes]) -> list[str]:
    """Judge a run against the pages each job gives when run alone; return the problems.

    Each problem starts with a category in brackets: ``[wrong-page]`` (a caller got a page
    that is not its own), ``[hang]`` (a caller waits for an answer that cannot come: the
    simulated run deadlocked, or over a pipe the client's hang check found the process idle
    with every request consumed), ``[error]`` (a caller failed although nothing was cancelled
    after being numbered), ``[timeout]`` (a caller timed out), ``[abandoned]`` (after the run, answers that no caller will take
    are owed to or buffered in a client that is not poisoned). Empty list: the run is correct.

    Rules: a caller that returns a page must get exactly ``expected[i]``. A cancellation
    after the caller's request number was assigned poisons the client, so other callers may
    then fail with :class:`~pytest_walredo.process.WalredoPoisoned` (but must not hang,
    time out or get a wrong page); a cancellation before that is harmless and nobody may fail.
    """
    problems: list[str] = []
    if result.deadlock:
        problems.append("[hang] the callers deadlocked: someone waits for an answer that cannot come")
    if result.unclaimed and not result.deadlock:
        nos = ", ".join(f"#{n}" for n in result.unclaimed)
        problems.append(f"[abandoned] the answer(s) to request {nos} have no owner left, yet the "
                        f"client is not poisoned: it would buffer every later answer behind them")
    poisoning = any(o.status is Status.CANCELLED and o.cancelled_no is not None
                    for o in result.outcomes)
    for i, (o, want) in enumerate(zip(result.outcomes, expected, strict=True)):
        if o.status is Status.PAGE:
            assert o.page is not None
            if o.page != want:
                problems.append(f"[wrong-page] caller c{i} got {_page_hint(o.page, expected)}, "
                                f"not the page of its own request")
        elif o.status is Status.ERROR:
            err = o.error
            if poisoning and isinstance(err, WalredoPoisoned):
                continue
            # A poisoned client must fail fast: a timeout or a hang is still a problem.
            if poisoning and isinstance(err, WalredoError) and "timed out" not in str(err) and \
                    not isinstance(err, WalredoTimeout):
                continue
            tag = ("[hang]" if isinstance(err, WalredoHang) else
                   "[timeout]" if isinstance(err, WalredoTimeout) else "[error]")
            problems.append(f"{tag} caller c{i} failed: {type(err).__name__}: {err}")
    return problems


def _page_hint(page: bytes, expected: Sequence[bytes]) -> str:
    others = [j for j, e in enumerate(expected) if e == page]
    if others:
        return "the page of " + ", ".join(f"c{j}" for j in others)
    if len(page) != BLCKSZ:
        return f"{len(page)} bytes"
    if not any(page):
        return "an all-zero page"
    return "a page nobody asked for"
