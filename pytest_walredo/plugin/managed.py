"""The clients the fixtures hand out: they record every call, relaunch after a failure, and
keep a failure that needs earlier requests reproducible.

:class:`ManagedClient` is a :class:`~pytest_walredo.process.WalredoClient` (and
:class:`ManagedSyncClient` a :class:`~pytest_walredo.process.SyncWalredoClient`) with three
additions, all in this layer (the process layer is unchanged):

* **Recording.** Every call becomes an :class:`~.capture.Exchange` of the test's current
  example (:mod:`.capture`), and its bytes join the process's session stream.
* **Relaunch, not poison.** Once a call has failed (the client is poisoned: the process died,
  hung, timed out, broke the protocol, or a caller was cancelled), the next call starts a fresh
  process, logged, instead of failing with ``WalredoPoisoned``. A process that died without a
  call noticing yet is *not* replaced before that: the next call reports the death (exit
  status, signal, last FATAL line), and only the call after it gets a fresh process.
* **History.** When the first failing example of a Hypothesis test does not fail the same way
  alone on a fresh process (:meth:`ManagedClient.check_history`), the failure needs the calls
  the process received before that example; every later example then starts on a fresh process
  fed those calls first, so Hypothesis sees the same failure each time and can shrink it.

Invariant: a relaunch happens only at the start of a call while no other call of this client
is in flight, so no caller ever sees its process change under it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

from ..pg.constants import BLCKSZ
from ..process import SyncWalredoClient, WalredoClient, WalredoError, WalredoProcess
from ..process.client import Call
from ..process.errors import describe_returncode, stderr_summary
from ..protocol import RedoRequest
from .capture import (
    CaptureDumper,
    ExampleLog,
    Exchange,
    Session,
    TestCapture,
    failure_kind,
    marked_exchanges,
)
from .example import ProcessInfo

__all__ = ["ManagedClient", "ManagedSyncClient", "check_expected", "replay_calls"]

log = logging.getLogger("pytest_walredo.plugin")

Launch = Callable[[], WalredoProcess]

_LAUNCHER = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="walredo-spare")
"""Starts spare processes in the background (launching waits for the supervisor's report)."""


def replay_calls(launch: Launch, calls: list[bytes], *, timeout: float | None,
                 hang_check: float | None) -> list[tuple[str, bytes | None]]:
    """Send ``calls`` one by one to a fresh process and return each outcome (``answered`` and
    the page, or the failure kind); stops at the first failure."""
    client = SyncWalredoClient(launch(), timeout=timeout, hang_check=hang_check)
    out: list[tuple[str, bytes | None]] = []
    try:
        for data in calls:
            try:
                out.append(("answered", client.apply_raw(data)))
            except WalredoError as err:
                out.append((failure_kind(err), None))
                break
    finally:
        client.close()
    return out


def check_expected(request: RedoRequest, expected: bytes, page: bytes) -> None:
    """Raise AssertionError (one sentence with the first differences) if ``page`` is not
    ``expected``."""
    __tracebackhide__ = True
    if page == expected:
        return
    if len(expected) != BLCKSZ:
        raise AssertionError(f"walredo answer to {request.describe()}: the expected page is "
                             f"{len(expected)} bytes, not {BLCKSZ}")
    from ..render.pagediff import diff_pages, summarize_diff

    raise AssertionError(f"walredo answer to {request.describe()} differs from the expected page: "
                         f"{summarize_diff(diff_pages(expected, page))}")


class ManagedClient(WalredoClient):
    """An async walredo client of a fixture (see the module docstring). ``launch`` starts a
    process of the fixture's binary; ``label`` names the fixture in logs and artifacts."""

    def __init__(self, launch: Launch, capture: TestCapture, *, label: str, timeout: float | None,
                 dumper: CaptureDumper | None, hang_check: float | None) -> None:
        process = launch()
        super().__init__(process, timeout=timeout, dumper=dumper, hang_check=hang_check)
        self._launch = launch
        self._capture = capture
        self.label = label
        self.session = Session(process.pid)
        self.retired: list[ProcessInfo] = []
        """Processes this client replaced, with their exit status, stderr and why."""
        self.relaunches = 0
        self._example: ExampleLog | None = None
        self._prime: list[bytes] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._spare: concurrent.futures.Future[WalredoProcess] | None = None
        self._closed_by_owner = False
        capture.clients.append(self)
        capture.history_checks.append(self.check_history)

    # -- the request path -------------------------------------------------------------------------

    async def _submit(self, call: Call, timeout: float | None) -> bytes:
        __tracebackhide__ = True
        example = self._capture.example()
        if example is not self._example or self.poisoned or self._ready is not None:
            await self._prepare(example)
        session = self.session
        ex = Exchange(self, call.data, session)
        example.add(ex)
        try:
            page = await super()._submit(call, timeout)
        except WalredoError as err:
            ex.error, ex.failure = str(err), failure_kind(err)
            ex.returncode, ex.dump = err.returncode, err.dump_path
            example.failed_call(ex)
            # Whether a death is seen while writing (a broken pipe) or while reading (EOF) is a
            # race; Hypothesis counts the hidden low-level context as part of a failure's
            # identity, and the same crash must look the same every time it is replayed. The
            # message is unchanged and the cause stays in ``err.internal_cause``.
            err.__context__ = None
            raise
        finally:
            ex.no = call.no
            if call.no is not None:
                session.add(call.no, call.data)
        ex.answer = page
        return page

    async def expect(self, request: RedoRequest, expected: bytes, timeout: float | None = None) -> bytes:
        """Apply ``request``, record ``expected`` as the page it should give, and fail (an
        AssertionError naming the first differences) when the answer is another page. The
        expected and actual pages are saved with the failure."""
        __tracebackhide__ = True
        page = await self.apply(request, timeout)
        self._capture.expected_for(self, request.encode(), page, expected)
        check_expected(request, expected, page)
        return page

    # -- relaunching ------------------------------------------------------------------------------

    async def _prepare(self, example: ExampleLog) -> None:
        """Before a call: relaunch when a new example needs a fresh (fed) process or the client
        is poisoned. ``_ready`` is set while a caller feeds a fresh process; others wait."""
        ready = self._ready
        if ready is not None and not ready.done():
            await asyncio.shield(ready)  # another caller is feeding a fresh process
        new_example, self._example = example is not self._example, example
        if self._closed_by_owner or self._in_flight:
            return
        prime = self._prime if new_example else None
        if prime is not None:
            self._relaunch(f"a new example starts on a fresh process fed the {len(prime)} call(s) "
                           "the first failure needed", example, quiet=True)
            self.session.needs_history = True
            await self._feed(prime)
        elif self.poisoned:
            self._relaunch(f"{self.poison_reason}", example)

    def _relaunch(self, reason: str, example: ExampleLog, *, quiet: bool = False) -> None:
        old = self.process
        assert old is not None
        self.transport.abort()
        old.close()
        if old.leftovers:
            log.warning("%s: descendants of walredo pid %d survived SIGKILL and were left running: %s",
                        self.label, old.pid, old.leftovers)
        self.retired.append(ProcessInfo(old.pid, old.returncode, old.stderr_tail(), ended=reason))
        new = self._take_spare()
        # One failure is seldom the last (Hypothesis shrinks it, replaying it again and again):
        # start the next fresh process now, in the background, so that its start-up overlaps
        # the calls until then. A spare has received nothing: it is as fresh when taken as
        # when started.
        self._spare = _LAUNCHER.submit(self._launch)
        # A fresh client state for the fresh process: no call is in flight (invariant), so
        # nothing refers to the old locks, counters or poison.
        WalredoClient.__init__(self, new, timeout=self.timeout, dumper=self.dumper,
                               hang_check=self.hang_check)
        self.session = Session(new.pid)
        self.relaunches += 1
        text = f"{self.label}: {reason}; walredo pid {new.pid} replaces pid {old.pid}"
        if quiet:
            log.info("%s", text)
        else:
            what = describe_returncode(old.returncode)
            said = stderr_summary(old.stderr_tail())
            log.warning("%s: walredo pid %d %s%s after %s; the next request runs on a fresh process, "
                        "pid %d", self.label, old.pid, what, f" ({said})" if said else "", reason,
                        new.pid)
            example.notes.append(text)

    async def _feed(self, calls: list[bytes]) -> None:
        """Send ``calls`` (answers ignored) before the example's own; a failure is logged and
        left to the example's first call to report."""
        loop = asyncio.get_running_loop()
        self._ready = ready = loop.create_future()
        try:
            for data in calls:
                call = Call(data, "replayed call", dumpable=False)
                try:
                    await WalredoClient._submit(self, call, None)
                except WalredoError as err:
                    log.warning("%s: a replayed call failed: %s", self.label, err)
                    break
                finally:
                    if call.no is not None:
                        self.session.add(call.no, data)
        finally:
            ready.set_result(None)
            self._ready = None

    def check_history(self, example: ExampleLog) -> None:
        """``example`` is the first failing one: does it fail the same way on a fresh process?
        If not, it needs the calls this client's process received before it, and later
        examples get them first. Of an example longer than the capture keeps
        (:data:`~.capture.KEEP_CALLS`), the calls from the oldest kept one on are compared, and
        the ones before it count as history."""
        mine = [e for e in example.ordered() if e.owner is self and e.no is not None]
        if not mine:
            return
        session = mine[0].session
        mine = [e for e in mine if e.session is session]
        first = mine[0].no
        assert first is not None
        if first == 0:
            session.needs_history = False
            return
        upto = next((i for i, e in enumerate(mine) if e.failure is not None), len(mine) - 1)
        compared = mine[:upto + 1]
        if compared[-1].failure == "poisoned":
            compared = compared[:-1]
        try:
            fresh = replay_calls(self._launch, [e.data for e in compared], timeout=self.timeout,
                                 hang_check=self.hang_check)
        except Exception as exc:
            log.warning("%s: could not check whether the failure needs earlier calls: %s", self.label, exc)
            return
        same = fresh == [e.outcome() for e in compared]
        session.needs_history = not same
        if same:
            return
        if session.truncated:
            example.notes.append(f"{self.label}: the failure needs earlier calls, but the session "
                                 "stream was too long to keep; later examples cannot replay it")
            return
        self._prime = session.before(first)
        text = (f"{self.label}: the first failing example fails only after the {len(self._prime)} "
                f"call(s) walredo pid {session.pid} received before it (alone on a fresh process it "
                f"{'answers' if fresh and fresh[-1][0] == 'answered' else 'fails differently'}); "
                "later examples start on a fresh process fed those calls first")
        log.warning("%s", text)
        example.notes.append(text)

    def check_alone(self, example: ExampleLog) -> None:
        """For each process of ``example`` whose history is unknown: does its marked call (where
        the example went wrong) fail the same way alone on a fresh process?"""
        for session, e in marked_exchanges(example).items():
            if e.owner is not self or session.needs_history is not None or not e.no or e.failure == "poisoned":
                continue
            try:
                fresh = replay_calls(self._launch, [e.data], timeout=self.timeout, hang_check=self.hang_check)
            except Exception as exc:
                log.warning("%s: could not replay the failing request alone: %s", self.label, exc)
                continue
            session.needs_history = fresh != [e.outcome()]
            if session.needs_history:
                example.notes.append(f"{self.label}: alone on a fresh process, the failing request "
                                     f"{'is answered' if fresh[-1][0] == 'answered' else 'fails differently'}"
                                     f": the failure needs the {e.no} call(s) before it")

    # -- closing --------------------------------------------------------------------------------

    def _take_spare(self) -> WalredoProcess:
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                return spare.result()
            except Exception as exc:  # launch again here, where its error reaches the caller
                log.debug("%s: the spare process did not start: %s", self.label, exc)
        return self._launch()

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                spare.result().close()
            except Exception:  # it never started: nothing to close
                pass

    def close(self) -> None:
        self._closed_by_owner = True
        self._drop_spare()
        super().close()

    async def aclose(self) -> None:
        self._closed_by_owner = True
        self._drop_spare()
        await super().aclose()

    def process_infos(self) -> list[ProcessInfo]:
        """Every process this client used, the replaced ones first."""
        out = list(self.retired)
        p = self.process
        if p is not None:
            try:
                out.append(ProcessInfo(p.pid, p.poll(), p.stderr_tail()))
            except Exception as exc:  # never let bookkeeping hide the failure
                out.append(ProcessInfo(p.pid, None, f"(stderr unavailable: {exc})"))
        return out


class ManagedSyncClient(SyncWalredoClient):
    """The blocking face of a :class:`ManagedClient` (the ``walredo`` fixture). Each call
    looks up the Hypothesis example in the caller's thread before handing the call over."""

    def __init__(self, managed: ManagedClient) -> None:
        super().__init__(managed.transport, process=managed.process, owns_process=False,
                         timeout=managed.timeout)
        self.client: ManagedClient = managed

    @property
    def label(self) -> str:
        return self.client.label

    @property
    def relaunches(self) -> int:
        return self.client.relaunches

    def _observe(self) -> None:
        self.client._capture.example()

    def apply(self, request: RedoRequest, timeout: float | None = None) -> bytes:
        __tracebackhide__ = True
        self._observe()
        return super().apply(request, timeout)

    def apply_raw(self, data: bytes, timeout: float | None = None) -> bytes:
        __tracebackhide__ = True
        self._observe()
        return super().apply_raw(data, timeout)

    def ping(self, timeout: float | None = None) -> bytes:
        __tracebackhide__ = True
        self._observe()
        return super().ping(timeout)

    def apply_many(self, requests: Any, timeout: float | None = None) -> list[bytes]:
        __tracebackhide__ = True
        self._observe()
        return super().apply_many(requests, timeout)

    def expect(self, request: RedoRequest, expected: bytes, timeout: float | None = None) -> bytes:
        """Apply ``request`` and fail unless the answer is ``expected`` (see
        :meth:`ManagedClient.expect`)."""
        __tracebackhide__ = True
        page = self.apply(request, timeout)
        self.client._capture.expected_for(self.client, request.encode(), page, expected)
        check_expected(request, expected, page)
        return page
