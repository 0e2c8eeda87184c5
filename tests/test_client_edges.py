"""Edges of the pipelined client that mutation testing found untested (docs/MUTATION.md): exactly
one surplus byte, ``apply_many`` passing its timeout on, closing a client that does not own its
process, aborting the transport from another thread, and a caller's own cancellation arriving
together with the deadline."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_client import mutation_time_limit  # noqa: F401 (autouse: a mutant that hangs fails fast)

from pytest_walredo.process import (
    Call,
    LaunchConfig,
    MemoryTransport,
    WalredoClient,
    WalredoHang,
    WalredoPoisoned,
    WalredoProcess,
    WalredoProcessError,
    WalredoTimeout,
)
from pytest_walredo.process.client import PipeTransport, TransportClosed
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag
from pytest_walredo.testing.fake import fake_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipes and /proc")

ZERO = bytes(BLCKSZ)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., WalredoProcess]]:
    """Start the fake walredo with the given arguments; all are closed after the test."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    procs: list[WalredoProcess] = []

    def start(*args: str) -> WalredoProcess:
        p = WalredoProcess.launch(fake_config(workdir, *args))
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()


def _request(blkno: int) -> RedoRequest:
    return RedoRequest(RelTag(1663, 5, 16384), blkno, bytes([blkno]) * BLCKSZ)


@pytest.mark.asyncio
async def test_exactly_one_surplus_byte_is_a_protocol_error() -> None:
    transport = MemoryTransport()
    client = WalredoClient(transport, timeout=60)
    transport.feed(b"x")
    with pytest.raises(WalredoProcessError) as info:
        await client.ping()
    assert str(info.value) == ("walredo process wrote 1 byte(s) more than the answers to the 1 "
                               "request(s) sent (only G and H are answered, with 8192 bytes each)")
    assert client.poisoned and client.poison_reason is not None
    assert client.poison_reason.startswith("request #0 failed: walredo process wrote 1 byte(s)")


@pytest.mark.asyncio
async def test_answers_of_later_requests_already_read_are_not_surplus() -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=60)
    tasks = [asyncio.ensure_future(client.apply(_request(i))) for i in range(3)]
    while len(transport.held) < 3 * BLCKSZ:
        await asyncio.sleep(0)
    transport.release()  # all three answers at once: two of them belong to other callers
    assert await asyncio.gather(*tasks) == [bytes([i]) * BLCKSZ for i in range(3)]
    assert not client.poisoned and client.unclaimed() == []


@pytest.mark.asyncio
async def test_apply_many_passes_its_timeout_on() -> None:
    client = WalredoClient(MemoryTransport(auto=False), timeout=60)
    with pytest.raises(WalredoTimeout, match=r"waited more than 0.05s for its answer"):
        await client.apply_many([_request(0), _request(1)], timeout=0.05)
    assert client.poisoned


@pytest.mark.asyncio
async def test_apply_many_returns_pages_in_request_order() -> None:
    client = WalredoClient(MemoryTransport(), timeout=60)
    assert await client.apply_many([_request(i) for i in (3, 1, 2)]) == [
        bytes([i]) * BLCKSZ for i in (3, 1, 2)]


def test_close_leaves_a_process_it_does_not_own_running(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch()
    borrowed = WalredoClient(proc, owns_process=False, timeout=60)
    assert asyncio.run(borrowed.ping()) == ZERO
    borrowed.close()
    assert borrowed.poisoned and borrowed.poison_reason == "the client was closed"
    assert proc.poll() is None
    asyncio.run(_aclose(WalredoClient(proc, owns_process=False, timeout=60)))
    assert proc.poll() is None
    # the process is still usable through a new client, which owns it and so ends it
    owner = WalredoClient(proc, timeout=60)
    assert asyncio.run(owner.ping()) == ZERO
    owner.close()
    assert proc.poll() is not None


def test_a_transport_client_owns_the_process_it_is_given(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch()
    client = WalredoClient(PipeTransport(proc.stdin_fd, proc.stdout_fd), process=proc, timeout=60)
    assert asyncio.run(client.ping()) == ZERO
    client.close()
    assert proc.poll() is not None


async def _aclose(client: WalredoClient) -> None:
    await client.aclose()


@pytest.mark.asyncio
async def test_transport_aborted_from_another_thread(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch("--hang-at", "0")
    client = WalredoClient(proc, owns_process=False, timeout=60)
    task = asyncio.ensure_future(client.ping())
    while client.requests_sent < 1:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)  # the read now waits on the pipe
    aborter = threading.Thread(target=client.transport.abort)
    aborter.start()
    aborter.join()
    with pytest.raises(WalredoProcessError,
                       match=r"^the walredo transport was closed under request #0 \(ping\)"):
        await asyncio.wait_for(task, 10)
    assert proc.poll() is None  # not ours: aborting the transport does not kill it
    with pytest.raises(WalredoPoisoned, match="transport was closed under request #0"):
        await client.ping()


class _Stalled(WalredoClient):
    """Blocks the event loop between write and read, so that timers due meanwhile fire together."""

    async def _between_send_and_receive(self, call: Call) -> None:
        time.sleep(0.2)
        await asyncio.sleep(10)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel is Python 3.11+")
@pytest.mark.asyncio
async def test_a_callers_cancellation_stays_a_cancellation_when_the_deadline_fires_too() -> None:
    client = _Stalled(MemoryTransport(auto=False), timeout=0.05)
    task = asyncio.ensure_future(client.ping())
    asyncio.get_running_loop().call_later(0.05, task.cancel)  # due together with the deadline
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.poisoned and "cancelled while waiting for its answer" in (client.poison_reason or "")


@pytest.mark.asyncio
async def test_the_deadline_alone_is_a_timeout_naming_the_phase() -> None:
    client = _Stalled(MemoryTransport(auto=False), timeout=0.05)
    with pytest.raises(WalredoTimeout) as info:
        await client.ping()
    assert str(info.value) == "walredo request #0 (ping) waited more than 0.05s for its answer"
    assert client.poison_reason == ("a request timed out: walredo request #0 (ping) waited more "
                                    "than 0.05s for its answer")


# ---------------------------------------------------------------------------------------------
# What failures say (messages, causes, request numbers, stderr) and small accessors
# ---------------------------------------------------------------------------------------------


def test_launch_passes_options_on(tmp_path: Path) -> None:
    from pytest_walredo.testing.fake import fake_config as cfg

    client = WalredoClient.launch(cfg(tmp_path), timeout=7.5, hang_check=2.5)
    try:
        assert client.timeout == 7.5 and client.hang_check == 2.5 and client.process is not None
        assert asyncio.run(client.ping()) == ZERO
    finally:
        client.close()


class _HoldFirst(WalredoClient):
    """Request #0's caller waits for ``gate`` before reading; the others read at once."""

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.gate = asyncio.Event()

    async def _between_send_and_receive(self, call: Call) -> None:
        if call.no == 0:
            await self.gate.wait()


@pytest.mark.asyncio
async def test_unclaimed_lists_answers_nobody_took_yet() -> None:
    transport = MemoryTransport(auto=False)
    client = _HoldFirst(transport, timeout=60)
    tasks = [asyncio.ensure_future(client.apply(_request(i))) for i in range(3)]
    while len(transport.held) < 3 * BLCKSZ:
        await asyncio.sleep(0)
    assert client.unclaimed() == [0, 1, 2]  # nothing read
    transport.release()
    await asyncio.gather(tasks[1], tasks[2])
    assert client.unclaimed() == [0]  # read on #0's behalf, not taken
    client.gate.set()
    assert await tasks[0] == ZERO[:0] + bytes([0]) * BLCKSZ
    assert client.unclaimed() == []


@pytest.mark.asyncio
async def test_apply_raw_names_itself_and_passes_its_timeout() -> None:
    client = WalredoClient(MemoryTransport(auto=False), timeout=60)
    with pytest.raises(WalredoTimeout) as info:
        await client.apply_raw(_request(0).encode(), 0.05)
    assert str(info.value) == "walredo request #0 (raw request) waited more than 0.05s for its answer"
    other = WalredoClient(MemoryTransport(auto=False), timeout=60)
    with pytest.raises(WalredoTimeout, match=r"\(x\.walredo\) waited more than 0.05s"):
        await other.apply_raw(b"x", 0.05, what="x.walredo")


@pytest.mark.asyncio
async def test_poisoned_calls_carry_the_cause() -> None:
    closed = WalredoClient(MemoryTransport(), timeout=60)
    closed.close()
    with pytest.raises(WalredoPoisoned) as info:
        await closed.ping()
    assert str(info.value) == "walredo client is unusable because the client was closed"
    assert str(info.value.cause) == "walredo client closed"
    aclosed = WalredoClient(MemoryTransport(), timeout=60)
    await aclosed.aclose()
    with pytest.raises(WalredoPoisoned) as info:
        await aclosed.ping()
    assert str(info.value.cause) == "walredo client closed"
    assert repr(aclosed) == "<WalredoClient sent=0 poisoned: the client was closed>"

    poisoned = await _poisoned_by_a_cancellation(WalredoClient(MemoryTransport(auto=False), timeout=60))
    assert isinstance(poisoned.cause, asyncio.CancelledError)
    assert str(poisoned.cause) == "request #0 cancelled while reading answers"


async def _poisoned_by_a_cancellation(client: WalredoClient) -> WalredoPoisoned:
    """Cancel a ping while it waits for its answer; return what the next call raises."""
    task = asyncio.ensure_future(client.ping())
    while client.requests_sent < 1:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(WalredoPoisoned) as info:
        await client.ping()
    return info.value


@pytest.mark.asyncio
async def test_repr() -> None:
    client = WalredoClient(MemoryTransport(), timeout=60)
    assert repr(client) == "<WalredoClient sent=0 ok>"
    await client.ping()
    assert repr(client) == "<WalredoClient sent=1 ok>"


def test_repr_and_poison_messages_name_the_pid(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch()
    client = WalredoClient(proc, timeout=60)
    assert repr(client) == f"<WalredoClient {proc.pid} sent=0 ok>"
    client.close()
    with pytest.raises(WalredoPoisoned, match=rf"^walredo client {proc.pid} is unusable because"):
        asyncio.run(client.ping())


@pytest.mark.asyncio
async def test_a_process_that_stops_reading_is_named_with_the_request_written() -> None:
    client = WalredoClient(MemoryTransport(), timeout=60)  # 'Z' is no message tag: it stops reading
    assert await client.ping() == ZERO
    with pytest.raises(WalredoProcessError) as info:
        await client.apply_raw(b"Z\x00\x00\x00\x04")
    assert str(info.value) == "the walredo stream ended while request #1 (raw request) was written"
    assert info.value.request_no == 1
    with pytest.raises(WalredoPoisoned) as poisoned:
        await client.ping()
    assert poisoned.value.cause is not None and "request #1 (raw request) was written" in str(
        poisoned.value.cause)


class _BrokenWrites(MemoryTransport):
    async def write_all(self, data: bytes) -> None:
        raise OSError(5, "Input/output error")


@pytest.mark.asyncio
async def test_other_io_errors_are_named() -> None:
    client = WalredoClient(_BrokenWrites(), timeout=60)
    with pytest.raises(WalredoProcessError) as info:
        await client.ping()
    assert str(info.value) == ("I/O error on the walredo pipes (the walredo stream ended): "
                               "[Errno 5] Input/output error")
    assert info.value.request_no == 0


def test_crash_while_an_earlier_answer_waits_for_its_owner(launch: Callable[..., WalredoProcess]) -> None:
    async def run() -> None:
        client = _HoldFirst(launch("--crash-at", "1", "--ready"), timeout=60)
        first = asyncio.ensure_future(client.apply(_request(0)))
        while client.requests_sent < 1:
            await asyncio.sleep(0.001)
        with pytest.raises(WalredoProcessError, match=r"closed its stdout before answering request #1") as crash:
            await client.apply(_request(1))
        client.gate.set()
        with pytest.raises(WalredoPoisoned) as poisoned:
            await first
        # #0's caller learns what the crash said, and which of its requests went unanswered
        assert poisoned.value.request_no == 0
        assert poisoned.value.returncode == crash.value.returncode is not None
        assert poisoned.value.stderr_tail is not None and "fake walredo ready" in poisoned.value.stderr_tail
        await client.aclose()

    asyncio.run(run())


class _StuckWriter(MemoryTransport):
    """A process that never reads its stdin: a write waits until the transport is aborted."""

    async def write_all(self, data: bytes) -> None:
        while not self._aborted:
            await asyncio.sleep(0.01)
        raise TransportClosed(self.closed_message)


@pytest.mark.asyncio
async def test_timeout_while_queued_for_stdin_says_so() -> None:
    client = WalredoClient(_StuckWriter(), timeout=60)
    first = asyncio.ensure_future(client.ping(timeout=5))
    while client.requests_sent < 1:
        await asyncio.sleep(0)
    with pytest.raises(WalredoTimeout) as info:
        await client.ping(timeout=0.05)
    assert str(info.value) == "walredo request #? (ping) waited more than 0.05s for its turn to write"
    assert info.value.request_no is None
    client.close()
    with pytest.raises((WalredoPoisoned, WalredoTimeout, WalredoProcessError)):
        await first


def test_timeout_and_hang_errors_carry_request_number_and_stderr(
    launch: Callable[..., WalredoProcess], tmp_path: Path,
) -> None:
    seen: list[str] = []
    from pytest_walredo.process import FailureDumper

    async def run() -> None:
        proc = launch("--hang-at", "1", "--ready")
        dumper = FailureDumper(tmp_path / "dumps", on_dump=lambda path, data, tail: seen.append(tail))
        client = WalredoClient(proc, timeout=0.3, dumper=dumper)
        await client.ping(timeout=60)  # the fake's start-up is no part of this test's 0.3 s
        with pytest.raises(WalredoTimeout) as info:
            await client.apply(_request(1))
        err = info.value
        assert str(err).startswith(f"walredo request #1 (redo 1663/5/16384 blk 1: base image, 0 record(s)) "
                                   f"waited more than 0.3s for its answer; process {proc.pid} was killed"
                                   f"; the request bytes were saved to ")
        assert err.request_no == 1
        assert err.stderr_tail is not None and "fake walredo ready" in err.stderr_tail
        assert err.dump_path is not None and err.dump_path.read_bytes() == _request(1).encode()
        assert client.poison_reason == ("a request timed out: walredo request #1 (redo 1663/5/16384 blk 1: "
                                        "base image, 0 record(s)) waited more than 0.3s for its answer; "
                                        f"process {proc.pid} was killed")
        await client.aclose()

    asyncio.run(run())
    assert len(seen) == 1 and "fake walredo ready" in seen[0]


@pytest.mark.asyncio
async def test_dumps_of_a_client_without_a_process_get_an_empty_stderr(tmp_path: Path) -> None:
    from pytest_walredo.process import FailureDumper

    seen: list[object] = []
    dumper = FailureDumper(tmp_path / "dumps", on_dump=lambda path, data, tail: seen.append(tail))
    client = WalredoClient(MemoryTransport(auto=False), timeout=0.05, dumper=dumper)
    with pytest.raises(WalredoTimeout):
        await client.apply(_request(0))
    assert seen == [""]


class _ExitedProcess:
    """Stands in for a walredo process that has exited (at the ``exits_at``-th look) while its
    stderr reader has not yet taken in the last line: the line arrives at the reader's third
    look; stderr then reaches EOF (``eof``) or, held open by a descendant, is found drained.
    Waiting for EOF without a bound would then wait forever, which this stand-in reports
    instead of hanging."""

    pid = 4242

    def __init__(self, *, eof: bool, exits_at: int = 0) -> None:
        self.eof = eof
        self.exits_at = exits_at
        self.polls = 0
        self.looks = 0
        self.returncode: int | None = None
        self.tail = "LOG: redo starts\n"

    def poll(self) -> int | None:
        self.polls += 1
        if self.polls > self.exits_at:
            self.returncode = 1
        return self.returncode

    def wait_stderr(self, timeout: float | None) -> bool:
        if timeout is None and not self.eof:
            raise AssertionError("waits forever: a descendant holds stderr open")
        self.looks += 1
        if self.looks == 3:
            self.tail += "FATAL: invalid record length\n"
        return self.eof and self.looks >= 3

    def stderr_settled(self) -> bool:
        return not self.eof and self.looks >= 3

    def stderr_tail(self) -> str:
        return self.tail

    def close(self) -> None:
        pass


@pytest.mark.asyncio
@pytest.mark.parametrize("eof", [True, False], ids=["stderr-eof", "stderr-held-open"])
@pytest.mark.parametrize("exits_at", [0, 2], ids=["exited", "exiting"])
async def test_the_last_stderr_line_taken_in_after_the_exit_is_in_the_error(eof: bool, exits_at: int) -> None:
    proc = _ExitedProcess(eof=eof, exits_at=exits_at)
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, process=proc, timeout=60)  # type: ignore[arg-type]
    call = asyncio.ensure_future(client.ping())
    while not transport.written:
        await asyncio.sleep(0)
    transport.feed_eof()
    with pytest.raises(WalredoProcessError) as info:
        await call
    assert str(info.value) == ("walredo process 4242 exited with status 1 and closed its stdout "
                               "before answering request #0 (stderr: 'FATAL: invalid record length')")
    assert info.value.returncode == 1
    assert info.value.stderr_tail == "LOG: redo starts\nFATAL: invalid record length\n"


# Closes its stdout, then lives on (until killed) without answering.
_LINGER = "import os, time\nos.close(1)\ntime.sleep(600)\n"


@pytest.mark.asyncio
async def test_callers_arriving_while_a_failure_waits_for_the_exit_see_its_cause(tmp_path: Path) -> None:
    proc = WalredoProcess.launch(LaunchConfig(binary=Path(sys.executable), prefix_args=("-c", _LINGER),
                                              workdir=tmp_path))
    client = WalredoClient(proc, timeout=60)
    try:
        first = asyncio.ensure_future(client.ping())
        # The first caller poisons the client, then gives the process up to 1 s to exit:
        # a caller arriving meanwhile learns what the first one hit.
        while not client.poisoned:
            await asyncio.sleep(0)
        with pytest.raises(WalredoPoisoned) as info:
            await client.ping()
        assert str(info.value) == (f"walredo client {proc.pid} is unusable because request #0 (ping) "
                                   "hit IncompleteReadError('0 bytes read on a total of 8192 "
                                   "expected bytes')")
        assert isinstance(info.value.cause, asyncio.IncompleteReadError)
        with pytest.raises(WalredoProcessError) as first_info:
            await first
        assert str(first_info.value) == (f"walredo process {proc.pid} is still running and closed its "
                                         "stdout before answering request #0")
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_surplus_bytes_from_a_process_name_the_request_and_carry_its_stderr(
        launch: Callable[..., WalredoProcess]) -> None:
    client = WalredoClient(launch("--extra-at", "0", "--ready"), timeout=60)
    try:
        with pytest.raises(WalredoProcessError) as info:
            for _ in range(100):  # the 16 bytes may arrive after the first answer was read
                await client.ping()
        err = info.value
        assert "more than the answers" in str(err)
        assert err.request_no == client.requests_sent - 1
        assert err.stderr_tail is not None and "fake walredo ready" in err.stderr_tail
        with pytest.raises(WalredoPoisoned) as later:
            await client.ping()
        assert later.value.cause is err
    finally:
        await client.aclose()


# ---------------------------------------------------------------------------------------------
# Deadlines: each call's own timeout, across event loops, and only on the calls still running
# (the ``wait_for`` bounds below only keep a broken client from hanging the test)
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_short_timeout_fires_on_time_behind_a_call_with_a_long_one() -> None:
    """Two calls with timeouts other than the client's: the later one's shorter deadline is
    not held up by the earlier one's longer deadline."""
    client = WalredoClient(_StuckWriter(), timeout=60)
    first = asyncio.ensure_future(client.ping(timeout=3600))
    while client.requests_sent < 1:
        await asyncio.sleep(0)
    with pytest.raises(WalredoTimeout, match=r"waited more than 0\.05s for its turn to write"):
        await asyncio.wait_for(client.ping(timeout=0.05), 10)
    assert not first.done()
    client.close()
    with pytest.raises((WalredoPoisoned, WalredoProcessError)):
        await first


def test_the_client_timeout_still_applies_after_moving_to_another_event_loop() -> None:
    """A call on the first loop leaves the client's shared timer pending when that loop
    closes; a call that hangs on the next loop still times out."""
    transport = MemoryTransport()
    client = WalredoClient(transport, timeout=0.3)
    assert asyncio.run(client.ping()) == ZERO  # its timer is still due when the loop closes
    transport.auto = False

    async def hang() -> None:
        with pytest.raises(WalredoTimeout, match=r"#1 \(ping\) waited more than 0.3s for its answer"):
            await asyncio.wait_for(client.ping(), 10)

    asyncio.run(hang())


@pytest.mark.asyncio
async def test_an_expiring_deadline_leaves_the_tasks_of_finished_calls_alone() -> None:
    """#1 finishes while #0 still waits; when #0's deadline expires, the task that made #1
    goes on undisturbed (it is not cancelled for a call it finished)."""
    transport = MemoryTransport()
    client = _HoldFirst(transport, timeout=0.1)
    first = asyncio.ensure_future(client.ping())
    while client.requests_sent < 1:
        await asyncio.sleep(0)

    async def second_then_more() -> str:
        assert await client.ping() == ZERO
        await asyncio.sleep(0.3)  # still running when #0's deadline expires
        return "finished"

    other = asyncio.ensure_future(second_then_more())
    with pytest.raises(WalredoTimeout, match=r"#0 \(ping\) waited more than 0.1s"):
        await asyncio.wait_for(first, 10)
    assert await asyncio.wait_for(other, 10) == "finished"


class _LaggingStderr:
    """A stand-in process whose stderr reader has not yet taken in the line the process wrote
    before it misbehaved: the line shows up once the reader is asked about it again."""

    pid = 4242

    def __init__(self, line: str) -> None:
        self.line = line
        self.tail = ""
        self.looks = 0

    def stderr_settled(self) -> bool:
        self.looks += 1
        if self.looks > 1:
            self.tail = self.line  # the reader caught up
        return self.looks > 1

    def stderr_tail(self) -> str:
        return self.tail


@pytest.mark.asyncio
async def test_an_error_waits_for_the_stderr_line_written_before_it() -> None:
    process = _LaggingStderr("LOG:  about to write garbage\n")
    transport = MemoryTransport()
    client = WalredoClient(transport, timeout=60, process=process, owns_process=False)  # type: ignore[arg-type]
    transport.feed(b"x")
    with pytest.raises(WalredoProcessError) as info:
        await client.ping()
    assert str(info.value).startswith("walredo process 4242 wrote 1 byte(s) more than the answers")
    assert info.value.stderr_tail == "LOG:  about to write garbage\n"


# ---------------------------------------------------------------------------------------------
# The hang check's probe, driven by hand: a stand-in process and a stand-in quiescence probe
# whose verdict the test gives, so that each case happens in a known order
# ---------------------------------------------------------------------------------------------


class _Idle:
    """A stand-in for a live process that the hang check may probe and the client may kill."""

    pid = 4243
    stdin_fd = stdout_fd = stderr_fd = -1

    def __init__(self) -> None:
        self.killed = False
        self.seccomp_modes = [2, 0]  # what /proc would say at the first look, then later

    def dead(self) -> bool:
        return False

    def seccomp_mode(self) -> int:
        return self.seccomp_modes.pop(0) if len(self.seccomp_modes) > 1 else self.seccomp_modes[0]

    def kill(self) -> None:
        self.killed = True

    def stderr_tail(self) -> str:
        return ""


class _Probes:
    """Replaces the quiescence probe: each probe waits until the test answers it."""

    def __init__(self) -> None:
        self.started: list[asyncio.Future[bool]] = []
        self.tasks: list[asyncio.Task[bool]] = []  # the probes themselves
        self.cancelled = 0

    async def __call__(self, *args: object, **kw: object) -> bool:
        verdict: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        self.started.append(verdict)
        try:
            return await verdict
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def next(self, n: int) -> asyncio.Future[bool]:
        while len(self.started) < n:
            await asyncio.sleep(0.001)
        return self.started[n - 1]


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> _Probes:
    from pytest_walredo.process import client as client_module

    fake = _Probes()
    monkeypatch.setattr(client_module, "wait_quiescent", fake)
    return fake


@pytest.mark.asyncio
async def test_a_probe_cut_short_by_an_answer_does_not_stop_later_hang_checks(probes: _Probes) -> None:
    """An answer arrives while the hang check probes the process: the probe is dropped, and a
    later call that really hangs is still found (by a new probe)."""
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=60, hang_check=0.01, process=_Idle(),  # type: ignore[arg-type]
                           owns_process=False)
    first = asyncio.ensure_future(client.ping())
    await asyncio.wait_for(probes.next(1), 10)
    transport.release()  # the answer comes while the probe runs
    assert await first == ZERO
    assert probes.cancelled == 1
    second = asyncio.ensure_future(client.ping())
    verdict = await asyncio.wait_for(probes.next(2), 10)
    verdict.set_result(True)
    with pytest.raises(WalredoHang):
        await asyncio.wait_for(second, 10)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel is Python 3.11+")
@pytest.mark.asyncio
async def test_a_cancellation_from_outside_stays_one_when_the_hang_check_strikes_too(
        probes: _Probes) -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=60, hang_check=0.01, process=_Idle(),  # type: ignore[arg-type]
                           owns_process=False)
    call = asyncio.ensure_future(client.ping())
    verdict = await asyncio.wait_for(probes.next(1), 10)
    # the caller's own cancellation, in the same step as the hang check's (which acts on the
    # probe's verdict first)
    probes.tasks[0].add_done_callback(lambda _: call.cancel())
    verdict.set_result(True)
    with pytest.raises(asyncio.CancelledError):
        await call
    assert client.poisoned and "cancelled while reading answers" in (client.poison_reason or "")


@pytest.mark.asyncio
async def test_the_seccomp_mode_is_the_one_read_after_the_first_answer() -> None:
    client = WalredoClient(MemoryTransport(), timeout=60, process=_Idle(),  # type: ignore[arg-type]
                           owns_process=False)
    for _ in range(3):
        assert await client.ping() == ZERO
    assert client.seccomp_mode_after_first_request == 2


@pytest.mark.asyncio
async def test_a_failed_ping_is_not_dumped(tmp_path: Path) -> None:
    """Only redo requests are worth saving for replay; a ping that fails leaves no file."""
    from pytest_walredo.process import FailureDumper

    seen: list[bytes] = []
    dumper = FailureDumper(tmp_path / "dumps", on_dump=lambda path, data, tail: seen.append(data))
    client = WalredoClient(MemoryTransport(auto=False), timeout=0.05, dumper=dumper)
    with pytest.raises(WalredoTimeout) as info:
        await client.ping()
    assert info.value.dump_path is None and seen == []
    assert not (tmp_path / "dumps").exists()


def test_a_call_right_after_the_client_went_idle_gets_its_answer(
        launch: Callable[..., WalredoProcess]) -> None:
    """The pipes leave the event loop once no call is in flight; a call made in the very next
    loop pass registers them again and must not lose that registration to the leaving."""
    async def run() -> None:
        client = WalredoClient(launch(), timeout=10, owns_process=False)
        for _ in range(3):
            assert await client.ping() == ZERO
            await asyncio.sleep(0)  # the client parks its pipes in this pass
        await client.aclose()

    asyncio.run(run())


class _ReaderStuckInside(WalredoClient):
    """The caller reading answers (holding the stdout lock) is stuck where neither an abort
    nor a poison reaches it, until ``gate`` opens; nothing wakes the event loop meanwhile."""

    gate: asyncio.Event

    async def _read_response(self) -> bytes:
        await self.gate.wait()
        return await super()._read_response()


def test_close_from_another_thread_wakes_a_caller_waiting_for_its_answer() -> None:
    """A caller waits for its answer while another reads; the client is closed from another
    thread: the waiting caller fails as poisoned at once, not when the event loop next wakes
    up for some other reason (here: a watchdog opening the reader's gate after 5 s)."""
    client = _ReaderStuckInside(MemoryTransport(auto=False), timeout=60)
    outcome: list[object] = []
    loop = asyncio.new_event_loop()
    client.gate = asyncio.Event()
    watchdog = threading.Timer(5, loop.call_soon_threadsafe, (client.gate.set,))

    async def run() -> None:
        reading = asyncio.ensure_future(client.ping())  # #0 takes the stdout lock
        while client.requests_sent < 1:
            await asyncio.sleep(0)
        waiting = asyncio.ensure_future(client.ping())  # #1 waits for #0's reader
        while client.requests_sent < 2:
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        watchdog.start()
        # closed while this loop sleeps in select() (the original passes whatever the timing)
        threading.Timer(0.05, client.close).start()
        try:
            await waiting
        except BaseException as exc:  # (the outcome is checked below)
            outcome.append((exc, client.gate.is_set()))
        client.gate.set()
        with pytest.raises((WalredoPoisoned, WalredoProcessError)):
            await reading

    try:
        loop.run_until_complete(run())
    finally:
        watchdog.cancel()
        loop.close()
    assert len(outcome) == 1, outcome
    err, gate_was_open = outcome[0]  # type: ignore[misc]
    assert isinstance(err, WalredoPoisoned) and "the client was closed" in str(err)
    assert not gate_was_open


@pytest.mark.asyncio
async def test_an_answer_read_for_a_late_caller_is_not_held_up_by_the_readers_own() -> None:
    """#1's caller reads answer #0 on #0's behalf and waits on for its own; #0's caller, arriving
    late, takes its answer at once instead of waiting until #1's answer comes."""
    transport = MemoryTransport(auto=False)
    client = _HoldFirst(transport, timeout=60)
    first = asyncio.ensure_future(client.apply(_request(0)))
    second = asyncio.ensure_future(client.apply(_request(1)))
    while len(transport.held) < 2 * BLCKSZ:
        await asyncio.sleep(0)
    transport.release(BLCKSZ)  # answer #0 only
    while transport.buffered():
        await asyncio.sleep(0)  # #1's caller read it
    client.gate.set()
    assert await asyncio.wait_for(first, 10) == bytes([0]) * BLCKSZ
    assert not second.done()
    transport.release()
    assert await second == bytes([1]) * BLCKSZ


# ---------------------------------------------------------------------------------------------
# Writing: what a failed write says, and ending the input behind other calls
# ---------------------------------------------------------------------------------------------


def test_a_request_to_a_process_that_is_gone_names_the_write(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch()
    proc.kill()
    proc.wait(30)
    client = WalredoClient(proc, timeout=60, owns_process=False)
    with pytest.raises(WalredoProcessError) as info:
        asyncio.run(client.ping())
    assert str(info.value).startswith(f"walredo process {proc.pid} ")
    assert "closed its stdin while request #0 (ping) was written" in str(info.value)


def test_input_ended_behind_a_call_still_in_flight_comes_after_its_request(
        launch: Callable[..., WalredoProcess]) -> None:
    """A call with ``end_input`` made while an earlier answer is still owed: its bytes reach the
    process before the end of input does, so both calls are answered."""
    from pytest_walredo.protocol import Ping

    client = WalredoClient(launch(), timeout=60, owns_process=False)

    async def run() -> list[bytes]:
        return await asyncio.gather(client.ping(), client.apply_raw(Ping().encode(), end_input=True))

    assert asyncio.run(run()) == [ZERO, ZERO]


@pytest.mark.asyncio
async def test_ending_the_input_of_a_transport_that_cannot_says_so() -> None:
    client = WalredoClient(MemoryTransport(), timeout=60)
    with pytest.raises(WalredoProcessError) as info:
        await client.apply_raw(_request(0).encode(), end_input=True)
    assert str(info.value) == "the walredo transport was closed under request #0 (raw request)"
    assert str(info.value.internal_cause) == "MemoryTransport cannot end the input"  # type: ignore[attr-defined]


def test_a_client_busy_on_one_event_loop_refuses_calls_from_another() -> None:
    client = WalredoClient(MemoryTransport(auto=False), timeout=60)
    loop_a = asyncio.new_event_loop()
    thread = threading.Thread(target=loop_a.run_forever, daemon=True)
    thread.start()
    try:
        in_flight = asyncio.run_coroutine_threadsafe(client.ping(), loop_a)  # never answered
        while client.requests_sent < 1:
            time.sleep(0.001)
        with pytest.raises(RuntimeError) as info:
            asyncio.run(client.ping())
        assert str(info.value) == ("WalredoClient is in use on another event loop; one client serves "
                                   "one loop at a time")
        loop_a.call_soon_threadsafe(client.close)
        with pytest.raises((WalredoPoisoned, WalredoProcessError)):
            in_flight.result(10)
    finally:
        loop_a.call_soon_threadsafe(loop_a.stop)
        thread.join(10)
        loop_a.close()



@pytest.mark.asyncio
async def test_an_idle_client_leaves_no_fd_with_the_event_loop(launch: Callable[..., WalredoProcess]) -> None:
    """Once no call is in flight the pipes leave the event loop (the process may close them,
    and a closed fd left in the selector would break whatever gets its number next)."""
    proc = launch()
    client = WalredoClient(proc, timeout=60, owns_process=False)
    assert await client.ping() == ZERO
    await asyncio.sleep(0)  # (parked in the loop pass after the last call)
    loop = asyncio.get_running_loop()
    assert not loop.remove_reader(proc.stdout_fd)
    assert not loop.remove_reader(proc.death_fd)
    assert await client.ping() == ZERO  # and the next call registers them again


def test_a_poisoned_call_carries_the_stderr_of_the_failure_not_later_lines(
        launch: Callable[..., WalredoProcess]) -> None:
    """Surplus bytes poison the client while the process lives on; what it writes on stderr
    later (here: on its way out) is not passed off as the failure's stderr."""
    proc = launch("--extra-at", "0", "--ready", "--stderr-no-newline", "goodbye")

    async def run() -> None:
        client = WalredoClient(proc, timeout=60, owns_process=False)
        with pytest.raises(WalredoProcessError) as failure:
            for _ in range(100):  # the 16 bytes may arrive after the first answer was read
                await client.ping()
        assert failure.value.stderr_tail == "fake walredo ready"
        client.transport.end_input()  # type: ignore[attr-defined]
        assert proc.wait(30) is not None and proc.wait_stderr(30)
        assert "goodbye" in proc.stderr_tail()
        with pytest.raises(WalredoPoisoned) as poisoned:
            await client.ping()
        assert poisoned.value.stderr_tail == "fake walredo ready"

    asyncio.run(run())


def test_a_client_poisoned_by_a_cancellation_names_the_processes_stderr(
        launch: Callable[..., WalredoProcess]) -> None:
    proc = launch("--hang-at", "0", "--ready")
    for _ in range(10_000):  # (its start-up line is in before anything goes wrong)
        if "fake walredo ready" in proc.stderr_tail():
            break
        time.sleep(0.001)

    async def run() -> None:
        poisoned = await _poisoned_by_a_cancellation(WalredoClient(proc, timeout=60, owns_process=False))
        assert poisoned.stderr_tail is not None and "fake walredo ready" in poisoned.stderr_tail

    asyncio.run(run())
