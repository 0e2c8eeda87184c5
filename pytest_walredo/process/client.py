"""The pipelined, concurrent asyncio client of one walredo process.

A port in spirit of the pageserver's ``WalRedoProcess::apply_wal_records`` (see
``shared/seed/process.rs.txt``): many callers share one process; each writes its whole request
under the *stdin lock*, gets a request number, and then reads answers under the *stdout lock*
until its own has arrived. Answers always come back in request order (the process is
sequential), but callers do not necessarily reach the stdout lock in that order, so answers
read on behalf of others are parked in ``_pending`` for their owners.

Two departures from the seed, for speed (``benchmarks/bench_client.py``), neither touching
the ordering: the caller holding the stdout lock hands each answer it reads straight to its
waiting owner (who takes it without the lock: taking is one synchronous step) and reads on
while whole answers are buffered, instead of owners taking turns at the lock; and while
answers are owed, a caller's request bytes are queued in the transport rather than written
at once, so the requests of all callers of one event-loop pass leave in one ``writev``. The
queue is FIFO and filled under the stdin lock, so bytes still reach the pipe in request-number
order (O1).

The I/O goes through a small :class:`Transport` protocol so tests can swap the pipe for an
in-memory stream, and every step a mutant might get wrong is its own small method
(:meth:`WalredoClient._assign_request_number`, :meth:`~WalredoClient._take_response`,
:meth:`~WalredoClient._poison_on_cancellation`, :meth:`~WalredoClient._release_stdin_after_write`
...) so a test-only subclass can override exactly one of them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import os
import select
import threading
import time
from collections.abc import Coroutine, Iterable
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

_PING = Ping().encode()

READ_CHUNK = 256 * 1024
"""Size of the pipe transport's receive buffer (it grows when a read needs more)."""
READ_AHEAD = 1 << 20
"""Bytes the pipe transport takes in ahead of the readers before it stops reading stdout."""
WRITE_BACKLOG = 1 << 20
"""Queued (coalesced) request bytes beyond which a write waits for its bytes to be written."""

# How long an error waits for the stderr reader to take in what the process wrote (_stderr_tail).
_STDERR_SETTLE = 0.1


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

    Optional extras the client uses when a transport has them (:class:`PipeTransport` does):
    ``take(n)`` (``n`` buffered bytes without awaiting), ``coalesces`` with ``queue(data)`` /
    ``wait_written()`` (writes gathered into one system call), ``park()`` (called once no
    call is in flight), and for the hang check ``blocked_reading()`` and ``unflushed()``.
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
    loops (the sync facade and each pytest-asyncio test run different loops).

    Reading. While the client has calls in flight on a loop, the stdout fd stays registered
    with that loop and :meth:`_on_readable` takes in whatever the process wrote as soon as it
    is there (one ``readv`` into a preallocated buffer: no allocation per read), so answers
    never wait in the pipe behind a busy client and a reader wakes once per batch of answers.
    Taking in stops at :data:`READ_AHEAD` bytes not yet returned (a process writing surplus
    bytes cannot make us buffer without bound). :meth:`park` unregisters the fds; the client
    calls it once no call is in flight, so no loop keeps an fd registered that the process
    may close (a closed fd left in a selector breaks the next fd that gets its number).

    Writing. ``write_all(data)`` writes at once and only waits on ``EAGAIN``. With
    ``coalesce=True`` (the client passes it while earlier answers are still owed, so more
    requests are likely to follow in this loop pass) the bytes are queued and written together
    with the others queued in the same pass, in one ``writev`` at the end of the pass: one
    system call and one wake-up of the process for a whole batch of callers. Either way bytes
    enter the pipe in the order of the ``write_all`` calls (a write that finds bytes queued
    queues behind them). A coalesced write returns once its bytes are queued, unless more than
    :data:`WRITE_BACKLOG` bytes are queued: then it waits until its own bytes are in the pipe.

    ``death_fd`` (optional) turns readable, for good, once the process has exited (see
    :attr:`~.sandbox.WalredoProcess.death_fd`). It is watched alongside stdout, so a dead
    process is noticed at once even while a descendant holds its pipes open: a read that finds
    the pipe empty after the death is end of stream (everything the process wrote is in the
    pipe by then), and a write that finds no room fails like a broken pipe.

    The fds are switched to non-blocking mode and are *not* closed here (the process owns them).
    Callers serialize reads (stdout lock) and writes (stdin lock): at most one waiter per
    direction.
    """

    coalesces = True
    """``write_all`` takes ``coalesce=True`` (see the class docstring)."""

    def __init__(self, write_fd: int, read_fd: int, death_fd: int | None = None) -> None:
        self._wfd = write_fd
        self._rfd = read_fd
        self._death_fd = death_fd
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        # Received bytes live in _buf[_rpos:_wpos]; _view is a long-lived view of _buf (a
        # bytearray cannot be resized while a view exists, so growing replaces both).
        self._buf = bytearray(READ_CHUNK)
        self._view = memoryview(self._buf)
        self._rpos = 0
        self._wpos = 0
        self._eof = False
        self._dead = False
        self._aborted = False
        self.write_blocked = False
        """True while a write waits for room in the stdin pipe (the process is not reading)."""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None  # where our fds are registered
        self._reading = False  # stdout registered with self._loop
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        # Queued (coalesced) writes: bytes in _out, written by _flush; _queued/_flushed count
        # bytes ever queued/written from the queue, so a writer waits for _flushed >= its end.
        self._out: list[bytes] = []
        self._out_len = 0
        self._queued = 0
        self._flushed = 0
        self._flush_handle: asyncio.Handle | None = None
        self._writer_registered = False
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._write_error: BaseException | None = None
        self._read_error: OSError | None = None

    # -- reading ----------------------------------------------------------------------------

    def buffered(self) -> int:
        return self._wpos - self._rpos

    def blocked_reading(self) -> bool:
        """A reader waits for bytes the process has not written yet (used by the hang check:
        an answer already taken in is not "awaited")."""
        return self._read_waiter is not None and not self._read_waiter.done()

    def unflushed(self) -> int:
        """Bytes queued by coalesced writes and not yet in the pipe."""
        return self._out_len

    def _fill(self) -> int:
        """One read into the buffer: bytes read, 0 at end of stream, -1 if none yet."""
        if self._wpos == len(self._buf):
            self._make_room()
        try:
            n = os.readv(self._rfd, [self._view[self._wpos:]])
        except (BlockingIOError, InterruptedError):
            return -1
        if n == 0:
            self._eof = True
        self._wpos += n
        return n

    def _make_room(self) -> None:
        unread = self._wpos - self._rpos
        if unread <= len(self._buf) // 2:
            self._buf[:unread] = self._view[self._rpos:self._wpos]
        else:
            self._view.release()
            self._buf = self._buf[self._rpos:self._wpos] + bytearray(len(self._buf))
            self._view = memoryview(self._buf)
        self._rpos, self._wpos = 0, unread

    def _on_readable(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # a stale registration
            loop.remove_reader(self._rfd)
            return
        try:
            got = self._fill()
        except OSError as exc:  # EIO and friends: the reader raises it
            self._read_error = exc
            got = 0
            self._eof = True
        if got == 0 or self._wpos - self._rpos >= READ_AHEAD:
            # End of stream stays readable forever, and past READ_AHEAD we stop taking in
            # bytes: stop watching either way (a read that needs more registers again).
            self._reading = False
            loop.remove_reader(self._rfd)
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_death(self, loop: asyncio.AbstractEventLoop) -> None:
        self._dead = True
        assert self._death_fd is not None  # (only registered when there is one)
        loop.remove_reader(self._death_fd)  # readable for good: one call is enough
        for waiter in (self._read_waiter, self._write_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._writer_registered:
            self._flush()

    def _death_seen(self) -> bool:
        """Whether the process has exited (the death fd is readable)."""
        if self._dead or self._death_fd is None:
            return self._dead
        try:
            self._dead = bool(select.select([self._death_fd], [], [], 0)[0])
        except (OSError, ValueError):
            self._dead = True
        return self._dead

    def take(self, n: int) -> bytes:
        """``n`` bytes already taken in (``buffered() >= n``), without waiting."""
        pos = self._rpos
        if self._wpos - pos < n:
            raise ValueError(f"only {self._wpos - pos} bytes buffered, {n} asked for")
        self._rpos = pos + n
        out = bytes(self._view[pos:pos + n])
        if self._rpos == self._wpos:
            self._rpos = self._wpos = 0
        return out

    async def read_exactly(self, n: int) -> bytes:
        # Bytes stay buffered until n are there, so cancellation loses nothing.
        while self._wpos - self._rpos < n:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            if self._eof:
                if self._read_error is not None:
                    raise self._read_error
                raise asyncio.IncompleteReadError(bytes(self._view[self._rpos:self._wpos]), n)
            if self._reading:
                if self._dead:
                    # Everything the process wrote is in the pipe: drain it, then it is EOF.
                    if self._fill() < 0:
                        self._eof = True
                    continue
            else:
                got = self._fill()
                if got >= 0:
                    continue
                if self._death_seen():
                    self._eof = True
                    continue
            await self._wait_readable()
        return self.take(n)

    async def _wait_readable(self) -> None:
        loop = asyncio.get_running_loop()
        self._register(loop)  # (moves the registration if we were on another loop)
        fut = loop.create_future()
        with self._lock:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            self._read_waiter = fut
        try:
            await fut
        finally:
            self._read_waiter = None

    # -- registration -----------------------------------------------------------------------

    def _register(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            self.park()
            self._loop = loop
            if self._death_fd is not None and not self._dead:
                loop.add_reader(self._death_fd, self._on_death, loop)
        if not self._reading and not self._eof:
            loop.add_reader(self._rfd, self._on_readable, loop)
            self._reading = True

    def park(self) -> None:
        """Unregister the fds from the loop they are registered with (on that loop's thread,
        or while it is not running); bytes already taken in stay buffered."""
        loop, self._loop = self._loop, None
        reading, self._reading = self._reading, False
        writer, self._writer_registered = self._writer_registered, False
        if self._flush_handle is not None:
            # Queued bytes stay queued; the next write or wait on any loop flushes them.
            self._flush_handle.cancel()
            self._flush_handle = None
        if loop is None or loop.is_closed():
            return

        def drop() -> None:
            if loop.is_closed():
                return
            if reading:
                loop.remove_reader(self._rfd)
            if writer:
                loop.remove_writer(self._wfd)
            if self._death_fd is not None:
                loop.remove_reader(self._death_fd)

        if loop.is_running() and _running_loop() is not loop:
            loop.call_soon_threadsafe(drop)
        else:
            drop()

    # -- writing ----------------------------------------------------------------------------

    def queue(self, data: bytes) -> bool:
        """A coalesced write: queue ``data`` behind the bytes queued before, to be written
        at the end of this loop pass. False: more than :data:`WRITE_BACKLOG` bytes are
        queued now, and the caller must ``await wait_written()`` before it goes on."""
        if self._aborted:
            raise TransportClosed("walredo pipe transport was aborted")
        if self._write_error is not None:
            raise BrokenPipeError(str(self._write_error))
        self._queue(data)
        return self._out_len <= WRITE_BACKLOG

    async def wait_written(self) -> None:
        """Wait until every byte queued so far is in the pipe (raises if writing failed)."""
        await self._wait_flushed(self._queued)

    async def write_all(self, data: bytes, coalesce: bool = False) -> None:
        if coalesce or self._out:
            if not self.queue(data) or not coalesce:
                await self.wait_written()
            return
        if self._aborted:
            raise TransportClosed("walredo pipe transport was aborted")
        if self._write_error is not None:
            raise BrokenPipeError(str(self._write_error))
        view = memoryview(data)
        while view:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            try:
                n = os.write(self._wfd, view)
            except BlockingIOError:
                if self._death_seen():
                    raise BrokenPipeError("the walredo process exited; nobody reads its stdin") from None
                self.write_blocked = True
                try:
                    await self._wait_writable()
                finally:
                    self.write_blocked = False
                continue
            except InterruptedError:
                continue
            view = view[n:]

    async def _wait_writable(self) -> None:
        loop = asyncio.get_running_loop()
        self._register(loop)
        fut = loop.create_future()
        with self._lock:
            if self._aborted:
                raise TransportClosed("walredo pipe transport was aborted")
            self._write_waiter = fut

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_writer(self._wfd, wake)
        try:
            await fut
        finally:
            self._write_waiter = None
            if not loop.is_closed():
                loop.remove_writer(self._wfd)

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_len += len(data)
        self._queued += len(data)
        self._kick()

    def _kick(self) -> None:
        """Make sure the queue gets written: a flush at the end of this loop pass, unless one
        is due already (scheduled, or waiting for room) on the running loop."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._register(loop)
        if self._flush_handle is None and not self._writer_registered and self._out:
            self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write the queue (at the end of the loop pass that queued it, or when the pipe has
        room again); wake writers whose bytes are in."""
        self._flush_handle = None
        while self._out and self._write_error is None and not self._aborted:
            try:
                n = os.writev(self._wfd, self._out[:512])  # IOV_MAX is 1024 on Linux
            except BlockingIOError:
                if self._death_seen():
                    self._fail_writes(BrokenPipeError("the walredo process exited; nobody reads its stdin"))
                    break
                self.write_blocked = True
                if not self._writer_registered and self._loop is not None:
                    self._loop.add_writer(self._wfd, self._flush)
                    self._writer_registered = True
                return
            except InterruptedError:
                continue
            except OSError as exc:
                self._fail_writes(exc)
                break
            self._flushed += n
            self._out_len -= n
            while n:
                head = self._out[0]
                if len(head) <= n:
                    n -= len(head)
                    self._out.pop(0)
                else:
                    self._out[0] = head[n:]
                    n = 0
        self.write_blocked = False
        if self._writer_registered:
            self._writer_registered = False
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_writer(self._wfd)
        if self._flush_waiters:
            done = [w for w in self._flush_waiters if w[0] <= self._flushed or self._write_error]
            self._flush_waiters = [w for w in self._flush_waiters if w not in done]
            for _, fut in done:
                if not fut.done():
                    fut.set_result(None)

    def _fail_writes(self, exc: BaseException) -> None:
        self._write_error = exc
        self._out.clear()
        self._out_len = 0

    async def _wait_flushed(self, end: int) -> None:
        if self._flushed >= end:
            return
        self._kick()
        fut = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((end, fut))
        # (abort() fails this future with TransportClosed; _flush sets write_blocked while
        # the queue waits for room in the pipe)
        await fut
        if self._flushed < end:
            err = self._write_error
            if isinstance(err, BrokenPipeError):
                raise BrokenPipeError(*err.args)
            raise BrokenPipeError(f"writing to the walredo process failed: {err}")

    # -- ending -----------------------------------------------------------------------------

    def abort(self) -> None:
        """Wake every waiter with :class:`TransportClosed` and unregister the fds. Call it on the
        loop thread before the fds are closed; from another thread the waiters are woken via
        ``call_soon_threadsafe``."""
        with self._lock:
            self._aborted = True
            waiters = [w for w in (self._read_waiter, self._write_waiter) if w is not None]
            waiters += [f for _, f in self._flush_waiters]
            self._flush_waiters = []
        self._out.clear()
        self._out_len = 0
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        running = _running_loop()
        for fut in waiters:
            loop = fut.get_loop()

            def fail(fut: asyncio.Future[None] = fut) -> None:
                if not fut.done():
                    fut.set_exception(TransportClosed("walredo pipe transport was aborted"))

            if loop is running:
                fail()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(fail)
        self.park()

    def end_input(self) -> None:
        """Let the process see end of input on its stdin, as if we closed our end. The fd
        number stays ours (it now refers to /dev/null, and is closed by its owner as before),
        so no other file can take it while a call may still use it."""
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._wfd, inheritable=False)
        finally:
            os.close(null)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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


class _Deadlines:
    """The timeouts of one client's calls: one timer for all of them, not one per call.

    Calls with the client's own timeout expire in the order they started, so they wait in a
    FIFO (``_fifo``) and one timer, set for the oldest unfinished call, serves them all;
    finished calls leave the front as they finish. A call with another timeout gets a timer
    of its own. An expired call's task is cancelled with ``call.expired`` set, and
    :meth:`WalredoClient._submit` turns that cancellation into :class:`_DeadlineExpired`
    (a cancellation from elsewhere stays a ``CancelledError``).
    """

    def __init__(self, default: float | None) -> None:
        self.default = default
        self._fifo: collections.deque[Call] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, call: Call, limit: float, loop: asyncio.AbstractEventLoop) -> None:
        call.task = asyncio.current_task(loop)
        call.deadline = loop.time() + limit
        if limit != self.default:
            call.timer = loop.call_at(call.deadline, self._expire, call)
            return
        if loop is not self._loop:  # the client moved to this loop (no call in flight)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._fifo.clear()
            self._loop = loop
        self._fifo.append(call)
        if self._timer is None:
            self._timer = loop.call_at(call.deadline, self._fire)

    def done(self, call: Call) -> None:
        call.deadline = None
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        fifo = self._fifo
        while fifo and fifo[0].deadline is None:
            fifo.popleft()

    def _fire(self) -> None:
        self._timer = None
        fifo = self._fifo
        while fifo and fifo[0].deadline is None:
            fifo.popleft()
        if not fifo:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        while fifo and (fifo[0].deadline is None or fifo[0].deadline <= now):
            self._expire(fifo.popleft())
        if fifo:
            self._timer = loop.call_at(fifo[0].deadline, self._fire)  # type: ignore[arg-type]

    @staticmethod
    def _expire(call: Call) -> None:
        call.timer = None
        if call.deadline is not None and call.task is not None and not call.task.done():
            call.expired = True
            call.task.cancel()


class _HangDetected(Exception):
    pass


class _HangCheck:
    """The hang check of one client: is the answer being read one that can never come?

    One timer per client ticks every ``interval`` seconds while some caller reads answers
    (holds the stdout lock); reading an answer costs the check nothing. A tick that finds the
    reader blocked in the transport (waiting for bytes the process has not written: answers
    already taken in do not count) and nothing read since the previous tick asks :func:`~.quiescence.wait_quiescent` whether the process
    sits idle with every request consumed. If it does, and nothing changed meanwhile, the
    reading task is cancelled and the reader turns that cancellation into
    :class:`_HangDetected` (:meth:`WalredoClient._read_answer`). A hang is thus reported
    between one and two intervals after the last byte arrived.
    """

    def __init__(self, client: WalredoClient, process: WalredoProcess, interval: float) -> None:
        self.client = client
        self.process = process
        self.interval = interval
        self.reader: asyncio.Task[Any] | None = None
        self.hung: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probe: asyncio.Future[bool] | None = None
        self._seen: tuple[int, int] | None = None

    def start(self, task: asyncio.Task[Any] | None, loop: asyncio.AbstractEventLoop) -> None:
        """``task`` reads answers from now on, on ``loop``."""
        self.reader = task
        if self._handle is None or self._loop is not loop:
            self._loop = loop
            self._seen = self._progress()
            self._handle = loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """The reader stopped reading (the timer runs on until a tick finds no reader)."""
        self.reader = None
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    def _progress(self) -> tuple[int, int]:
        c = self.client
        return c._n_processed + len(c._pending), c.transport.buffered()

    def _blocked(self) -> bool:
        # (Request bytes still queued on our side need no check here: the queue is written
        # within the loop pass, long before a probe's verdict; one waiting for room means
        # unread input, which quiescence itself rules out.)
        blocked = getattr(self.client.transport, "blocked_reading", None)
        return blocked is None or blocked()

    def _tick(self) -> None:
        self._handle = None
        if self.reader is None:
            return
        now = self._progress()
        if now != self._seen or not self._blocked() or self._probe is not None:
            self._seen = now
            self._rearm()
            return
        p = self.process
        self._probe = asyncio.ensure_future(
            wait_quiescent(p.pid, p.stdin_fd, p.stdout_fd, stderr_fd=p.stderr_fd))
        task = self.reader
        self._probe.add_done_callback(functools.partial(self._verdict, task=task, before=now))

    def _rearm(self) -> None:
        assert self._loop is not None
        if not self._loop.is_closed():
            self._handle = self._loop.call_later(self.interval, self._tick)

    def _verdict(self, probe: asyncio.Future[bool], task: asyncio.Task[Any] | None,
                 before: tuple[int, int]) -> None:
        if probe is self._probe:
            self._probe = None
        if probe.cancelled():
            return
        # A process that died meanwhile is not hung (the read will see the death), and its
        # pid may have been reused: a verdict counts only while the process is known alive.
        if (probe.exception() is None and probe.result() and task is not None
                and task is self.reader and self._progress() == before and self._blocked()
                and not self.process.dead()):
            self.hung = task
            task.cancel()
        elif self._handle is None:
            self._rearm()


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Call:
    """One request in flight: its bytes, its request number once assigned, and whether any of
    its bytes may have reached the pipe (``sent``)."""

    data: bytes
    what: str
    dumpable: bool = True
    no: int | None = None
    sent: bool = False
    end_input: bool = False
    # Timeout bookkeeping (_Deadlines): the calling task, when it expires (None: finished or
    # no timeout), a timer of its own if any, and whether the timeout fired.
    task: asyncio.Task[Any] | None = None
    deadline: float | None = None
    timer: asyncio.TimerHandle | None = None
    expired: bool = False


@dataclass
class _Poison:
    reason: str
    cause: BaseException
    owner: Call | None


class _FifoLock:
    """The stdin lock: ``asyncio.Lock`` semantics (first come, first served; a cancelled
    waiter gives up its place, or passes the lock on if it was handed to it) with a
    synchronous :meth:`try_acquire` for the common uncontended case. :meth:`release` hands
    the lock to the next waiter directly (it stays locked), so nobody can barge in between."""

    __slots__ = ("_handing", "_locked", "_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._locked = False
        self._handing = False  # released to a waiter that has not run yet
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._loop = loop

    def locked(self) -> bool:
        """Held by a caller (a lock on its way to a waiter counts as free, as in asyncio)."""
        return self._locked and not self._handing

    def try_acquire(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        fut = self._loop.create_future()
        self._waiters.append(fut)
        try:
            await fut
            self._handing = False
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._handing = False
                self.release()  # it was handed to us: pass it on
            elif fut in self._waiters:  # (release drops cancelled waiters it meets)
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        if not self._locked:
            raise RuntimeError("the stdin lock is not held")
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._handing = True
                return
        self._locked = False


class _StdoutLock:
    """Who reads answers now: the holding call, or None (see ``WalredoClient._acquire_stdout``)."""

    __slots__ = ("holder",)

    def __init__(self) -> None:
        self.holder: Call | None = None

    def locked(self) -> bool:
        return self.holder is not None


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


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
        #       bytes enter the stream (the pipe, or the transport's FIFO write queue in
        #       front of it), so request #k's answer is the k-th answer on stdout.
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

        # The stdout lock (who reads answers): ``_stdout_lock`` is held by the reading call;
        # callers waiting for it wait in ``_answer_waiters`` (request number -> future, in
        # arrival order) and are woken either when their answer has been read (they take it
        # without the lock: taking is one synchronous step) or when the lock is handed to
        # them. Invariant (R1): while some caller waits for an answer not yet read, the lock
        # is held or being handed to a waiter, so someone reads.
        self._answer_waiters: dict[int, asyncio.Future[None]] = {}

        self._loop: asyncio.AbstractEventLoop | None = None
        self._stdin_lock: _FifoLock | None = None
        self._stdout_lock = _StdoutLock()
        self._in_flight = 0
        self._deadlines = _Deadlines(timeout)
        self._hang: _HangCheck | None = (_HangCheck(self, self.process, hang_check)
                                         if self.process is not None and hang_check is not None
                                         else None)
        self._coalesces = bool(getattr(self.transport, "coalesces", False))
        self._parks = callable(getattr(self.transport, "park", None))
        self._takes = callable(getattr(self.transport, "take", None))
        self._between_overridden = (type(self)._between_send_and_receive
                                    is not WalredoClient._between_send_and_receive)
        # Whole answers already taken in are taken without a coroutine, unless a subclass
        # (a test's) wants every read to go through _read_response.
        self._take_fast = self._takes and (type(self)._read_response
                                           is WalredoClient._read_response)

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

    # apply/apply_raw/ping return the request's coroutine rather than awaiting it in one of
    # their own (one coroutine less per call); ``await client.ping()`` works the same.

    def apply(self, request: RedoRequest, timeout: float | None = None) -> Coroutine[Any, Any, bytes]:
        """Send one redo request (``B [P] A* G``) and return the 8192-byte page."""
        return self._submit(Call(request.encode(), request.describe()), timeout)

    def apply_raw(self, data: bytes, timeout: float | None = None,
                  what: str = "raw request", *, end_input: bool = False) -> Coroutine[Any, Any, bytes]:
        """Send raw bytes that the process answers with exactly one page (a ``.walredo`` file's
        content) and return that page.

        ``end_input``: once the bytes are written, end the process's input (EOF on its stdin),
        e.g. after a message cut short: a process that waits for the rest of a message then
        sees the end of the stream. Later calls write into nothing and fail when the process
        exits."""
        return self._submit(Call(bytes(data), what, end_input=end_input), timeout)

    def ping(self, timeout: float | None = None) -> Coroutine[Any, Any, bytes]:
        """Send ``H`` and return the answer (8192 zero bytes from a real process)."""
        return self._submit(Call(_PING, "ping", dumpable=False), timeout)

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
        loop = self._bind_loop()
        limit = self.timeout if timeout is None else timeout
        self._in_flight += 1
        if limit is not None:
            self._deadlines.add(call, limit, loop)
        try:
            try:
                try:
                    await self._send(call)
                    try:
                        if self._between_overridden:
                            await self._between_send_and_receive(call)
                        page = await self._receive(call)
                    except asyncio.CancelledError:
                        self._poison_on_cancellation(call, "while waiting for its answer")
                        raise
                except asyncio.CancelledError as exc:
                    if call.expired:
                        _convert_own_cancellation(call.task, asyncio.CancelledError, exc,
                                                  _DeadlineExpired)
                    raise
                finally:
                    if limit is not None:
                        self._deadlines.done(call)
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
            if not self._in_flight and self._parks:
                loop.call_soon(self._park_if_idle)
        if not self._first_success_seen:
            self._after_success()
        return page

    def _park_if_idle(self) -> None:
        # After the last call in flight (and not at once: a caller often sends its next
        # request in the same step), the pipe fds leave the loop (PipeTransport.park).
        if not self._in_flight:
            self.transport.park()  # type: ignore[attr-defined]

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
        reading = await self._acquire_stdout(call)
        try:
            self._raise_if_poisoned(call)
            if reading:
                # (O2)/(O3): read answers in order until ours (#call.no) has been read,
                # handing each to its waiting owner as it comes.
                hang = self._hang
                if hang is not None:
                    assert self._loop is not None
                    hang.start(asyncio.current_task(self._loop), self._loop)
                try:
                    # Then go on while whole answers are already taken in: their owners get
                    # them now, not from the next reader in a later loop pass.
                    while (self._n_processed + len(self._pending) <= call.no
                           or (self.transport.buffered() >= BLCKSZ
                               and self._n_processed + len(self._pending) < self._n_requests)):
                        try:
                            if self._take_fast and self.transport.buffered() >= BLCKSZ:
                                page = self.transport.take(BLCKSZ)  # type: ignore[attr-defined]
                            else:
                                page = await self._read_response()
                        except asyncio.CancelledError as exc:
                            self._hang_to_error(exc)
                            raise
                        self._pending.append(page)
                        self._check_no_surplus(call)
                        self._answer_read(self._n_processed + len(self._pending) - 1)
                finally:
                    if hang is not None:
                        hang.stop()
            return self._take_response(call.no)
        except asyncio.CancelledError:
            self._poison_on_cancellation(call, "while reading answers")
            raise
        except (OSError, TransportClosed, asyncio.IncompleteReadError) as exc:
            raise await self._io_failure(call, exc, writing=False) from exc
        finally:
            if reading:
                self._release_stdout()

    def _hang_to_error(self, exc: asyncio.CancelledError) -> None:
        """The reader was cancelled: if by the hang check, raise :class:`_HangDetected`."""
        hang = self._hang
        if hang is not None and hang.hung is not None and hang.hung is asyncio.current_task():
            hang.hung = None
            _convert_own_cancellation(hang.reader, asyncio.CancelledError, exc, _HangDetected)

    def _answer_read(self, no: int) -> None:
        """Answer #no has been read: wake its owner if it waits."""
        waiter = self._answer_waiters.pop(no, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- small steps (override points for test-only mutants) ------------------------------------

    async def _acquire_stdin(self) -> None:
        lock = self._stdin_lock
        assert lock is not None
        if not lock.try_acquire():
            await lock.acquire()

    def _assign_request_number(self) -> int:
        """Called with the stdin lock held, before the write (O1, O4)."""
        no = self._n_requests
        self._n_requests += 1
        return no

    async def _write_request(self, call: Call) -> None:
        # (O1) is enforced here and in _send: this runs under the stdin lock, right after the
        # number was assigned, and hands the bytes to the stream before the lock is released.
        # While earlier answers are owed, more requests usually follow in this loop pass:
        # let the transport write them together (same order, one system call).
        if (self._coalesces and not call.end_input and call.no is not None
                and (self._in_flight > 1 or call.no > self._n_processed + len(self._pending))):
            if not self.transport.queue(call.data):  # type: ignore[attr-defined]
                await self.transport.wait_written()  # type: ignore[attr-defined]
        else:
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

    async def _acquire_stdout(self, call: Call) -> bool:
        """Wait until answer #call.no has been read (False) or this caller holds the stdout
        lock and reads (True). A poisoned client wakes its waiters (False)."""
        assert call.no is not None
        lock = self._stdout_lock
        while True:
            if self._n_processed + len(self._pending) > call.no or self._poison is not None:
                return False
            if lock.holder is None:
                lock.holder = call
                return True
            assert self._loop is not None
            waiter = self._loop.create_future()
            self._answer_waiters[call.no] = waiter
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and lock.holder is None:
                    self._hand_over_stdout()  # (R1) the turn we were given goes on
                raise
            finally:
                if self._answer_waiters.get(call.no) is waiter:
                    del self._answer_waiters[call.no]

    def _release_stdout(self) -> None:
        self._stdout_lock.holder = None
        self._hand_over_stdout()

    def _hand_over_stdout(self) -> None:
        """(R1) Wake the first waiter (it takes the lock, or finds its answer read)."""
        for waiter in self._answer_waiters.values():
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _read_response(self) -> bytes:
        if self._takes and self.transport.buffered() >= BLCKSZ:
            return self.transport.take(BLCKSZ)  # type: ignore[attr-defined]
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
        # Callers waiting for answers fail now rather than when the stdout lock reaches them.
        for waiter in list(self._answer_waiters.values()):
            if not waiter.done() and not waiter.get_loop().is_closed():
                if waiter.get_loop() is _running_loop():
                    waiter.set_result(None)
                else:
                    waiter.get_loop().call_soon_threadsafe(_wake, waiter)

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

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        if self._in_flight:
            raise RuntimeError(
                "WalredoClient is in use on another event loop; one client serves one loop at a time"
            )
        # asyncio.Lock binds to the loop it first waits on, so new loop -> new locks. Safe
        # because no call is in flight: both locks are free and _pending is consistent.
        self._loop = loop
        self._stdin_lock = _FifoLock(loop)
        self._stdout_lock = _StdoutLock()
        self._answer_waiters.clear()
        if self._parks:
            self.transport.park()  # type: ignore[attr-defined]
        return loop

    def _pid_text(self) -> str:
        return f" {self.process.pid}" if self.process is not None else ""

    def _stderr_tail(self) -> str | None:
        """The process's stderr tail, for an error being raised. A walredo writes its LOG or
        FATAL line before it misbehaves on stdout, but our stderr reader (a thread) may not
        have taken that line in yet: wait for it, at most ``_STDERR_SETTLE`` seconds (errors
        only; a process that keeps writing never settles)."""
        if self.process is None:
            return None
        settled = getattr(self.process, "stderr_settled", None)
        if settled is not None:
            deadline = time.monotonic() + _STDERR_SETTLE
            while not settled() and time.monotonic() < deadline:
                time.sleep(0.002)
        return self.process.stderr_tail()

    def __repr__(self) -> str:
        state = f"poisoned: {self._poison.reason}" if self._poison else "ok"
        return f"<WalredoClient{self._pid_text()} sent={self._n_requests} {state}>"
