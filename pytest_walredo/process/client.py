"""The pipelined, concurrent asyncio client of one walredo process.

A port in spirit of the pageserver's ``WalRedoProcess::apply_wal_records`` (see
``shared/seed/process.rs.txt``): many callers share one process; each writes its whole request
under the *stdin lock*, gets a request number, and then reads answers under the *stdout lock*
until its own has arrived. Answers always come back in request order (the process is
sequential), but callers do not necessarily reach the stdout lock in that order, so answers
read on behalf of others are parked in ``_pending`` for their owners.

The I/O goes through a small :class:`Transport` protocol so tests can swap the pipe for an
in-memory stream, and every step a mutant might get wrong is its own small method
(:meth:`WalredoClient._assign_request_number`, :meth:`~WalredoClient._take_response`,
:meth:`~WalredoClient._poison_on_cancellation`, :meth:`~WalredoClient._release_stdin_after_write`
...) so a test-only subclass can override exactly one of them.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..protocol import BLCKSZ, Ping, RedoRequest
from .dump import FailureDumper
from .errors import (
    WalredoError,
    WalredoHang,
    WalredoPoisoned,
    WalredoProcessError,
    WalredoTimeout,
    describe_returncode,
    stderr_summary,
)
from .quiescence import wait_quiescent
from .sandbox import LaunchConfig, WalredoProcess

__all__ = [
    "DEFAULT_TIMEOUT",
    "PipeTransport",
    "Transport",
    "TransportClosed",
    "WalredoClient",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a request may take, from queuing for stdin to receiving its answer."""

READ_CHUNK = 256 * 1024


# ---------------------------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------------------------


class TransportClosed(ConnectionError):
    """The transport was aborted while (or before) an operation waited on it."""


@runtime_checkable
class Transport(Protocol):
    """A byte stream to and from one walredo process.

    ``read_exactly`` raises :class:`asyncio.IncompleteReadError` at end of stream (with the
    partial bytes), ``write_all`` raises :class:`BrokenPipeError` (an ``OSError``) when the
    reader is gone; both raise :class:`TransportClosed` after :meth:`abort`. A cancelled
    ``read_exactly`` must not lose bytes (they stay buffered).
    """

    async def write_all(self, data: bytes) -> None: ...

    async def read_exactly(self, n: int) -> bytes: ...

    def buffered(self) -> int:
        """Bytes received from the process and not yet returned by ``read_exactly``."""
        ...

    def abort(self) -> None:
        """Fail current and future operations with :class:`TransportClosed`."""
        ...


class PipeTransport:
    """:class:`Transport` over a child's stdin/stdout pipe fds, usable from any event loop.

    Written by hand instead of ``loop.connect_read_pipe``/``connect_write_pipe`` because those
    transports belong to one loop and close the fds with it, while these fds must outlive event
    loops (the sync facade and each pytest-asyncio test run different loops). Here an fd is only
    registered with a loop for the duration of one wait (``add_reader`` ... ``remove_reader``), so
    no loop ever owns it. I/O is attempted first and only waits on ``EAGAIN``.

    ``death_fd`` (optional) turns readable, for good, once the process has exited (see
    :attr:`~.sandbox.WalredoProcess.death_fd`). Every wait also watches it, so a dead process
    is noticed at once even while a descendant holds its pipes open: a read that finds the
    pipe empty after the death is end of stream (everything the process wrote is in the pipe
    by then), and a write that finds no room fails like a broken pipe.

    The fds are switched to non-blocking mode and are *not* closed here (the process owns them).
    Callers serialize reads (stdout lock) and writes (stdin lock): at most one waiter per
    direction.
    """

    def __init__(self, write_fd: int, read_fd: int, death_fd: int | None = None) -> None:
        import os

        self._os = os
        self._wfd = write_fd
        self._rfd = read_fd
        self._death_fd = death_fd
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        self._rbuf = bytearray()
        self._aborted = False
        self.write_blocked = False
        """True while a write waits for room in the stdin pipe (the process is not reading)."""
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int, bool]] = set()
        self._death_waiters: set[asyncio.Future[None]] = set()

    def buffered(self) -> int:
        return len(self._rbuf)

    def _dead(self) -> bool:
        if self._death_fd is None:
            return False
        import select

        try:
            return bool(select.select([self._death_fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    async def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            try:
                n = self._os.write(self._wfd, view)
            except BlockingIOError:
                if self._dead():
                    raise BrokenPipeError("the walredo process exited; nobody reads its stdin") from None
                self.write_blocked = True
                try:
                    await self._wait(self._wfd, readable=False)
                finally:
                    self.write_blocked = False
                continue
            except InterruptedError:
                continue
            view = view[n:]

    async def read_exactly(self, n: int) -> bytes:
        # Bytes stay in self._rbuf until n are there, so cancellation loses nothing.
        while len(self._rbuf) < n:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            try:
                chunk = self._os.read(self._rfd, max(READ_CHUNK, n - len(self._rbuf)))
            except BlockingIOError:
                if self._dead():
                    chunk = b""  # everything the process wrote has been read: end of stream
                else:
                    await self._wait(self._rfd, readable=True)
                    continue
            except InterruptedError:
                continue
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(self._rbuf), n)
            self._rbuf += chunk
        out = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return out

    async def _wait(self, fd: int, *, readable: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        entry = (loop, fut, fd, readable)
        with self._lock:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            self._waiters.add(entry)
        (loop.add_reader if readable else loop.add_writer)(fd, wake)
        self._watch_death(loop, fut)
        try:
            await fut
        finally:
            self._unregister(entry)
            self._unwatch_death(loop, fut)

    # A reader and a writer may wait at once, and a loop keeps one callback per fd: one
    # callback on the death fd wakes every waiter, registered while any waits.

    def _watch_death(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
        if self._death_fd is None:
            return
        # Waiters of a closed loop never ran their cleanup: forget them.
        self._death_waiters = {f for f in self._death_waiters if not f.get_loop().is_closed()}
        if not self._death_waiters:
            loop.add_reader(self._death_fd, self._wake_death_waiters)
        self._death_waiters.add(fut)

    def _unwatch_death(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
        if self._death_fd is None:
            return
        self._death_waiters.discard(fut)
        if not self._death_waiters and not loop.is_closed():
            loop.remove_reader(self._death_fd)

    def _wake_death_waiters(self) -> None:
        for waiter in list(self._death_waiters):
            if not waiter.done():
                waiter.set_result(None)

    def _unregister(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int, bool]) -> None:
        loop, _, fd, readable = entry
        with self._lock:
            self._waiters.discard(entry)
        if not loop.is_closed():
            (loop.remove_reader if readable else loop.remove_writer)(fd)

    def abort(self) -> None:
        """Wake every waiter with :class:`TransportClosed`. Call it on the loop thread before the
        fds are closed; from another thread the waiters are woken via ``call_soon_threadsafe``."""
        with self._lock:
            self._aborted = True
            waiters = list(self._waiters)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for entry in waiters:
            loop, fut, _, _ = entry

            def fail(entry=entry, fut=fut) -> None:
                self._unregister(entry)
                if not fut.done():
                    fut.set_exception(TransportClosed("walredo pipe transport was aborted"))

            if loop is running:
                fail()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(fail)

    def end_input(self) -> None:
        """Let the process see end of input on its stdin, as if we closed our end. The fd
        number stays ours (it now refers to /dev/null, and is closed by its owner as before),
        so no other file can take it while a call may still use it."""
        null = self._os.open(self._os.devnull, self._os.O_WRONLY)
        try:
            self._os.dup2(null, self._wfd, inheritable=False)
        finally:
            self._os.close(null)


# ---------------------------------------------------------------------------------------------
# Deadline (asyncio.timeout() is Python 3.11+; the project supports 3.10)
# ---------------------------------------------------------------------------------------------


class _DeadlineExpired(Exception):
    pass


def _convert_own_cancellation(task: asyncio.Task[object] | None, et: type[BaseException] | None,
                              exc: BaseException | None, error: type[Exception]) -> None:
    """We cancelled ``task`` ourselves and it is unwinding with ``CancelledError``: take back
    our cancellation and raise ``error`` instead, unless someone else cancelled it too (then
    the cancellation stays theirs)."""
    if et is None or not issubclass(et, asyncio.CancelledError):
        return
    uncancel = getattr(task, "uncancel", None)
    if uncancel is None or uncancel() == 0:
        raise error() from exc


class _Deadline:
    """Cancel the current task after ``delay`` seconds and turn that cancellation into
    :class:`_DeadlineExpired`; a cancellation from elsewhere stays a ``CancelledError``."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> _Deadline:
        if self.delay is not None:
            self._task = asyncio.current_task()
            self._handle = asyncio.get_running_loop().call_later(self.delay, self._fire)
        return self

    def _fire(self) -> None:
        self.expired = True
        assert self._task is not None
        self._task.cancel()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> bool:
        if self._handle is not None:
            self._handle.cancel()
        if self.expired:
            _convert_own_cancellation(self._task, et, exc, _DeadlineExpired)
        return False


class _HangDetected(Exception):
    pass


class _HangWatch:
    """While a caller reads answers: every ``interval`` seconds without a complete answer, ask
    :func:`~.quiescence.wait_quiescent` whether the process sits idle with every request
    consumed; if so, cancel the reading task and turn that into :class:`_HangDetected`.

    Only the caller holding the stdout lock reads, so at most one watch per client runs. The
    probe runs as its own task between timer ticks; a read that completes meanwhile wins
    (the watch is disarmed on exit before the probe's verdict is acted upon).
    """

    def __init__(self, process: WalredoProcess | None, interval: float | None) -> None:
        self.process = process
        self.interval = interval
        self.hung = False
        self._task: asyncio.Task[object] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._probe: asyncio.Future[bool] | None = None
        self._armed = False

    async def __aenter__(self) -> _HangWatch:
        if self.process is not None and self.interval is not None:
            self._task = asyncio.current_task()
            self._armed = True
            self._schedule()
        return self

    def _schedule(self) -> None:
        assert self.interval is not None
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        p = self.process
        if not self._armed or p is None:
            return
        self._probe = asyncio.ensure_future(
            wait_quiescent(p.pid, p.stdin_fd, p.stdout_fd, stderr_fd=p.stderr_fd))
        self._probe.add_done_callback(self._verdict)

    def _verdict(self, probe: asyncio.Future[bool]) -> None:
        if not self._armed or probe.cancelled():
            return
        # A process that died meanwhile is not hung (the read will see the death), and its
        # pid may have been reused: a verdict counts only while the process is known alive.
        if probe.exception() is None and probe.result() and not (
                self.process is not None and self.process.dead()):
            self.hung = True
            assert self._task is not None
            self._task.cancel()
        else:
            self._schedule()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> bool:
        self._armed = False
        if self._handle is not None:
            self._handle.cancel()
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
        if self.hung:
            _convert_own_cancellation(self._task, et, exc, _HangDetected)
        return False


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Call:
    """One request in flight: its bytes, its request number once assigned, and whether any of
    its bytes may have reached the pipe (``sent``)."""

    data: bytes
    what: str
    dumpable: bool = True
    no: int | None = None
    sent: bool = False
    end_input: bool = False


@dataclass
class _Poison:
    reason: str
    cause: BaseException
    owner: Call | None


class WalredoClient:
    """Send redo requests and pings to one walredo process, from many tasks at once.

    ``target`` is a :class:`WalredoProcess` (talked to over its pipes, and closed by
    :meth:`close`) or any :class:`Transport`. ``timeout`` bounds each call (None: no bound);
    ``dumper`` saves the bytes of every request that was sent and then failed.
    ``hang_check`` (seconds; None: off): while an answer is awaited for that long, check
    whether the process is quiescent (:mod:`~.quiescence`: every request consumed, asleep
    waiting for input); if it is, the answer can never come, and the call fails at once with
    :class:`WalredoHang` instead of waiting for the timeout.

    The client binds to the running event loop on first use and rebinds to another loop when no
    call is in flight (the old loop may be closed by then).
    """

    def __init__(
        self,
        target: WalredoProcess | Transport,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        dumper: FailureDumper | None = None,
        process: WalredoProcess | None = None,
        owns_process: bool = True,
        hang_check: float | None = None,
    ) -> None:
        if isinstance(target, WalredoProcess):
            self.process: WalredoProcess | None = target
            self.transport: Transport = PipeTransport(target.stdin_fd, target.stdout_fd,
                                                      target.death_fd)
        else:
            self.process = process
            self.transport = target
        self.timeout = timeout
        self.hang_check = hang_check
        self.dumper = dumper
        self.owns_process = owns_process
        self.seccomp_mode_after_first_request: int | None = None
        """The ``Seccomp:`` mode of the process read right after the first successful answer."""
        self._first_success_seen = False

        # Ordering state. Invariants:
        #  (O1) request numbers are assigned under the stdin lock in the order the requests'
        #       bytes enter the pipe, so request #k's answer is the k-th answer on stdout.
        #  (O2) answers are read only under the stdout lock; after reading, answer #k sits at
        #       _pending[k - _n_processed] until its owner takes it.
        #  (O3) _n_processed + len(_pending) == number of answers read so far; _pending[0] is
        #       never a hole (taken entries at the front are trimmed at once).
        #  (O4) _n_requests is incremented *before* the write, so the process can never have
        #       sent more than (_n_requests - answers read) * BLCKSZ unread bytes; more means
        #       surplus output (a protocol violation, caught by _check_no_surplus).
        self._n_requests = 0
        self._n_processed = 0
        self._pending: collections.deque[bytes | None] = collections.deque()

        # Poisoning. Invariant (P1): once _poison is set it is never cleared; every later call,
        # and every in-flight caller reaching a lock, fails with WalredoPoisoned naming it.
        # Poisoning happens on: cancellation after our bytes may have entered the pipe (the
        # answer would be orphaned and the stream position is unknown), any I/O error, EOF,
        # surplus output, timeout, close().
        self._poison: _Poison | None = None
        # Cancellation (and timeout, which is a cancellation turned into WalredoTimeout):
        #  (C1) before the request number is assigned (queued for the stdin lock) it is
        #       harmless: nothing was written, nothing is poisoned.
        #  (C2) from the number assignment on (mid-write, between write and read, waiting for
        #       the stdout lock, mid-read) it poisons: a torn write desynchronizes the stream,
        #       and an abandoned answer would never be taken.
        #  (C3) transports keep partially read answers buffered, so even a cancelled read
        #       loses no bytes; poisoning is still required by (C2) because nobody owns them.
        #  (C4) a timeout (or a hang found by ``hang_check``) also SIGKILLs the process: a
        #       hung process must not keep running behind a poisoned client.

        self._loop: asyncio.AbstractEventLoop | None = None
        self._stdin_lock: asyncio.Lock | None = None
        self._stdout_lock: asyncio.Lock | None = None
        self._in_flight = 0

    @classmethod
    def launch(cls, config: LaunchConfig, **kw: Any) -> WalredoClient:
        """Launch a process from ``config`` and wrap it (``kw``: the constructor's options)."""
        return cls(WalredoProcess.launch(config), **kw)

    # -- public API -----------------------------------------------------------------------------

    @property
    def poisoned(self) -> bool:
        return self._poison is not None

    @property
    def poison_reason(self) -> str | None:
        return self._poison.reason if self._poison else None

    @property
    def requests_sent(self) -> int:
        return self._n_requests

    def unclaimed(self) -> list[int]:
        """Numbers of the requests sent whose answers no caller has taken (read or not yet).

        While no call is in flight this is empty for a client that is not poisoned: a caller
        that gives up on its answer after being numbered poisons the client (C2), so an
        answer without an owner never stays buffered in a client that is still used.
        """
        taken = {self._n_processed + i for i, page in enumerate(self._pending) if page is None}
        return [n for n in range(self._n_processed, self._n_requests) if n not in taken]

    async def apply(self, request: RedoRequest, timeout: float | None = None) -> bytes:
        """Send one redo request (``B [P] A* G``) and return the 8192-byte page."""
        __tracebackhide__ = True
        return await self._submit(Call(request.encode(), request.describe()), timeout)

    async def apply_raw(self, data: bytes, timeout: float | None = None,
                        what: str = "raw request", *, end_input: bool = False) -> bytes:
        """Send raw bytes that the process answers with exactly one page (a ``.walredo`` file's
        content) and return that page.

        ``end_input``: once the bytes are written, end the process's input (EOF on its stdin),
        e.g. after a message cut short: a process that waits for the rest of a message then
        sees the end of the stream. Later calls write into nothing and fail when the process
        exits."""
        __tracebackhide__ = True
        return await self._submit(Call(bytes(data), what, end_input=end_input), timeout)

    async def ping(self, timeout: float | None = None) -> bytes:
        """Send ``H`` and return the answer (8192 zero bytes from a real process)."""
        __tracebackhide__ = True
        return await self._submit(Call(Ping().encode(), "ping", dumpable=False), timeout)

    async def apply_many(self, requests: Iterable[RedoRequest],
                         timeout: float | None = None) -> list[bytes]:
        """Apply requests concurrently (pipelined); answers in the same order.

        Waits for every request to finish (none is left running in the background), then
        raises the first failure in request order, if any.
        """
        __tracebackhide__ = True
        results = await asyncio.gather(*(self.apply(r, timeout) for r in requests),
                                       return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                raise res
        return list(results)  # type: ignore[arg-type]

    def close(self) -> None:
        """Poison the client, abort the transport and (if owned) kill and reap the process.

        Idempotent. Prefer :meth:`aclose` from the client's own event loop while calls may be in
        flight: it lets their waits unregister before the fds close.
        """
        self._set_poison("the client was closed", WalredoError("walredo client closed"), None)
        self.transport.abort()
        if self.process is not None and self.owns_process:
            self.process.close()

    async def aclose(self) -> None:
        """:meth:`close` from inside the event loop."""
        self._set_poison("the client was closed", WalredoError("walredo client closed"), None)
        self.transport.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if self.process is not None and self.owns_process:
            self.process.close()

    async def __aenter__(self) -> WalredoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the request path -----------------------------------------------------------------------

    async def _submit(self, call: Call, timeout: float | None) -> bytes:
        __tracebackhide__ = True
        self._raise_if_poisoned(call)
        self._bind_loop()
        limit = self.timeout if timeout is None else timeout
        self._in_flight += 1
        try:
            try:
                async with _Deadline(limit):
                    page = await self._roundtrip(call)
            except _DeadlineExpired:
                raise self._on_timeout(call, limit) from None
            except _HangDetected:
                raise self._on_hang(call) from None
        except WalredoError as err:
            if call.sent and call.dumpable:
                self._dump(call, err)
            # Users see one sentence, not our internals: the message already says what failed
            # (exit status, stderr line, dump file). The low-level cause stays reachable as
            # ``err.internal_cause`` for whoever debugs this client.
            err.internal_cause = err.__cause__  # type: ignore[attr-defined]
            raise err.with_traceback(None) from None
        finally:
            self._in_flight -= 1
        self._after_success()
        return page

    async def _roundtrip(self, call: Call) -> bytes:
        await self._send(call)
        try:
            await self._between_send_and_receive(call)
            return await self._receive(call)
        except asyncio.CancelledError:
            self._poison_on_cancellation(call, "while waiting for its answer")
            raise

    async def _send(self, call: Call) -> None:
        # Cancellation while queuing for the lock is harmless: nothing was written.
        await self._acquire_stdin()
        try:
            self._raise_if_poisoned(call)
            call.no = self._assign_request_number()
            # From here on the pipe may hold (part of) our bytes: cancelling or failing now
            # leaves the stream at an unknown position and the answer without an owner.
            call.sent = True
            await self._write_request(call)
        except asyncio.CancelledError:
            if call.sent:
                self._poison_on_cancellation(call, "while writing its request")
            raise
        except (OSError, TransportClosed) as exc:
            raise await self._io_failure(call, exc, writing=True) from exc
        finally:
            self._release_stdin_after_write()

    async def _receive(self, call: Call) -> bytes:
        assert call.no is not None
        await self._acquire_stdout()
        try:
            self._raise_if_poisoned(call)
            # (O2)/(O3): read answers in order until ours (#call.no) has been read.
            while self._n_processed + len(self._pending) <= call.no:
                async with _HangWatch(self.process, self.hang_check):
                    page = await self._read_response()
                self._pending.append(page)
                self._check_no_surplus(call)
            return self._take_response(call.no)
        except asyncio.CancelledError:
            self._poison_on_cancellation(call, "while reading answers")
            raise
        except (OSError, TransportClosed, asyncio.IncompleteReadError) as exc:
            raise await self._io_failure(call, exc, writing=False) from exc
        finally:
            self._release_stdout()

    # -- small steps (override points for test-only mutants) ------------------------------------

    async def _acquire_stdin(self) -> None:
        assert self._stdin_lock is not None
        await self._stdin_lock.acquire()

    def _assign_request_number(self) -> int:
        """Called with the stdin lock held, before the write (O1, O4)."""
        no = self._n_requests
        self._n_requests += 1
        return no

    async def _write_request(self, call: Call) -> None:
        await self.transport.write_all(call.data)
        if call.end_input:
            end = getattr(self.transport, "end_input", None)
            if end is None:
                raise TransportClosed(f"{type(self.transport).__name__} cannot end the input")
            end()

    def _release_stdin_after_write(self) -> None:
        """Release the stdin lock once the whole request is in the pipe (or failed)."""
        assert self._stdin_lock is not None
        self._stdin_lock.release()

    async def _between_send_and_receive(self, call: Call) -> None:
        """Nothing by default. Tests override it to make callers reach the stdout lock in an
        order other than their request order."""

    async def _acquire_stdout(self) -> None:
        assert self._stdout_lock is not None
        await self._stdout_lock.acquire()

    def _release_stdout(self) -> None:
        assert self._stdout_lock is not None
        self._stdout_lock.release()

    async def _read_response(self) -> bytes:
        return await self.transport.read_exactly(BLCKSZ)

    def _take_response(self, request_no: int) -> bytes:
        """Take answer #request_no out of ``_pending``, leaving a hole, then trim holes from
        the front.

        NOT pop_front: another caller may have read *our* answer along with its own and taken
        its own (later) one first, or we may be the later one while an earlier owner has not
        come for its answer yet. Example: #23 and #24 written; #24's caller gets the stdout lock
        first, reads answers 23 and 24, takes 24 -> [ans23, hole]; then #23's caller finds its
        answer already read, takes it -> [hole, hole] -> trimmed to [], _n_processed += 2.
        """
        idx = request_no - self._n_processed
        page = self._pending[idx] if 0 <= idx < len(self._pending) else None
        if page is None:
            raise RuntimeError(f"answer #{request_no} was already taken or never read (bug)")
        self._pending[idx] = None
        self._trim_front()
        return page

    def _trim_front(self) -> None:
        while self._pending and self._pending[0] is None:
            self._pending.popleft()
            self._n_processed += 1

    def _poison_on_cancellation(self, call: Call, phase: str) -> None:
        """A caller whose bytes may be in the pipe was cancelled: nobody will take its answer,
        and if it was mid-write the stream is torn. Later calls must fail, not get its page."""
        self._set_poison(
            f"request #{call.no} ({call.what}) was cancelled {phase}",
            asyncio.CancelledError(f"request #{call.no} cancelled {phase}"),
            call,
        )

    def _check_no_surplus(self, call: Call) -> None:
        """(O4): the process may not have sent bytes beyond the answers to requests sent."""
        answered = self._n_processed + len(self._pending)
        allowed = (self._n_requests - answered) * BLCKSZ
        extra = self.transport.buffered() - allowed
        if extra > 0:
            err = WalredoProcessError(
                f"walredo process{self._pid_text()} wrote {extra} byte(s) more than the answers to "
                f"the {self._n_requests} request(s) sent (only G and H are answered, "
                f"with {BLCKSZ} bytes each)",
                stderr_tail=self._stderr_tail(), request_no=call.no,
            )
            self._set_poison(f"request #{call.no} failed: {err.message}", err, call)
            raise err

    # -- failures -------------------------------------------------------------------------------

    def _set_poison(self, reason: str, cause: BaseException, owner: Call | None,
                    *, override: bool = False) -> None:
        """First poison wins (P1); ``override`` lets the owner refine its own reason (a timeout
        first shows up as a cancellation)."""
        if self._poison is None or (override and self._poison.owner is owner):
            self._poison = _Poison(reason, cause, owner)

    def _raise_if_poisoned(self, call: Call) -> None:
        p = self._poison
        if p is None:
            return
        cause = p.cause
        err = WalredoPoisoned(
            f"walredo client{self._pid_text()} is unusable because {p.reason}",
            cause=cause,
            stderr_tail=getattr(cause, "stderr_tail", None) or self._stderr_tail(),
            returncode=getattr(cause, "returncode", None),
            request_no=call.no,
        )
        raise err from cause

    async def _io_failure(self, call: Call, exc: BaseException, *, writing: bool) -> WalredoError:
        """Turn an I/O failure into the error to raise, poisoning first so other callers stop.

        If the client was already poisoned by someone else (e.g. a timeout killed the process),
        the caller gets a :class:`WalredoPoisoned` naming that cause instead.
        """
        earlier = self._poison
        if earlier is not None and earlier.owner is not call:
            try:
                self._raise_if_poisoned(call)
            except WalredoPoisoned as poisoned:
                return poisoned
        self._set_poison(f"request #{call.no} ({call.what}) hit {exc!r}", exc, call)
        answering = self._n_processed + len(self._pending)
        returncode = await self._await_exit()
        tail = self._stderr_tail()
        if self.process is not None:
            who = f"walredo process {self.process.pid} {describe_returncode(returncode)}"
            closed_out, closed_in = f"{who} and closed its stdout", f"{who} and closed its stdin"
        else:
            who = closed_out = closed_in = "the walredo stream ended"
        if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
            msg = (f"{who} after sending {len(exc.partial)} of {BLCKSZ} bytes of the answer to "
                   f"request #{answering}")
        elif isinstance(exc, asyncio.IncompleteReadError):
            msg = f"{closed_out} before answering request #{answering}"
        elif isinstance(exc, BrokenPipeError):
            msg = f"{closed_in} while request #{call.no} ({call.what}) was written"
        elif isinstance(exc, TransportClosed):
            msg = f"the walredo transport was closed under request #{call.no} ({call.what})"
        else:
            msg = f"I/O error on the walredo pipes ({who}): {exc}"
        line = stderr_summary(tail)
        if line:
            msg += f" (stderr: {line!r})"
        err = WalredoProcessError(msg, stderr_tail=tail, returncode=returncode, request_no=call.no)
        self._set_poison(f"request #{call.no} failed: {msg}", err, call, override=True)
        return err

    def _on_timeout(self, call: Call, limit: float | None) -> WalredoTimeout:
        where = "its answer" if call.sent else "its turn to write"
        return self._kill_stuck(call, WalredoTimeout, f"waited more than {limit:g}s for {where}",
                                "a request timed out")

    def _on_hang(self, call: Call) -> WalredoTimeout:
        partial = self.transport.buffered()
        got = f"after {partial} of {BLCKSZ} bytes of an answer, " if partial else ""
        return self._kill_stuck(call, WalredoHang, f"will never be answered: {got}the process "
                                "consumed every request and sits idle waiting for input",
                                "a request hung")

    def _kill_stuck(self, call: Call, cls: type[WalredoTimeout], what: str,
                    reason: str) -> WalredoTimeout:
        """(C4) Kill the process behind a request that is stuck, poison, return the error."""
        if self.process is not None:
            self.process.kill()
        no = call.no if call.no is not None else "?"
        err = cls(
            f"walredo request #{no} ({call.what}) {what}"
            + (f"; process {self.process.pid} was killed" if self.process is not None else ""),
            stderr_tail=self._stderr_tail(), request_no=call.no,
        )
        self._set_poison(f"{reason}: {err.message}", err, call, override=True)
        return err

    async def _await_exit(self, timeout: float = 1.0) -> int | None:
        """Give a dying process ``timeout`` seconds to exit and its stderr reader to take in
        what it wrote (its last line says why it died). Stderr counts as taken in at EOF, or
        once the pipe is empty after the exit: a descendant may hold the pipe open, and the
        process itself writes nothing more."""
        proc = self.process
        if proc is None:
            return None
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while proc.poll() is None and loop.time() < end:
            await asyncio.sleep(0.005)
        while (proc.returncode is not None and not proc.wait_stderr(0)
               and not proc.stderr_settled() and loop.time() < end):
            await asyncio.sleep(0.005)
        return proc.returncode

    def _dump(self, call: Call, err: WalredoError) -> None:
        if self.dumper is None:
            return
        tail = err.stderr_tail if err.stderr_tail is not None else self._stderr_tail()
        err.dump_path = self.dumper.dump(call.data, tail or "")

    def _after_success(self) -> None:
        if not self._first_success_seen:
            self._first_success_seen = True
            if self.process is not None:
                self.seccomp_mode_after_first_request = self.process.seccomp_mode()

    # -- helpers --------------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        if self._in_flight:
            raise RuntimeError(
                "WalredoClient is in use on another event loop; one client serves one loop at a time"
            )
        # asyncio.Lock binds to the loop it first waits on, so new loop -> new locks. Safe
        # because no call is in flight: both locks are free and _pending is consistent.
        self._loop = loop
        self._stdin_lock = asyncio.Lock()
        self._stdout_lock = asyncio.Lock()

    def _pid_text(self) -> str:
        return f" {self.process.pid}" if self.process is not None else ""

    def _stderr_tail(self) -> str | None:
        return self.process.stderr_tail() if self.process is not None else None

    def __repr__(self) -> str:
        state = f"poisoned: {self._poison.reason}" if self._poison else "ok"
        return f"<WalredoClient{self._pid_text()} sent={self._n_requests} {state}>"
