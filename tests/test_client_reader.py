"""The client over real processes where its reader and hang check meet: the hang check only
counts a reader that waits for bytes the process has not written (an answer already taken in
is not awaited), keeps working when the client moves to another event loop, and says what it
found; ``end_input`` ends the process's input after a message cut short."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_client import mutation_time_limit  # noqa: F401 (autouse: a mutant that hangs fails fast)

from pytest_walredo.process import (
    MemoryTransport,
    WalredoClient,
    WalredoHang,
    WalredoPoisoned,
    WalredoProcess,
    WalredoProcessError,
    WalredoTimeout,
    refserver_config,
)
from pytest_walredo.process.quiescence import supported as quiescence_supported
from pytest_walredo.process.quiescence import wait_quiescent
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag
from pytest_walredo.testing.fake import fake_config

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipes and /proc"),
    pytest.mark.skipif(not quiescence_supported(), reason="this system does not report where a "
                       "process sleeps (/proc/<pid>/wchan): no hang check"),
]

ZERO = bytes(BLCKSZ)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[WalredoProcess]]:
    procs: list[WalredoProcess] = []
    yield procs
    for p in procs:
        p.close()


class _SlowReader(WalredoClient):
    """Holds the stdout lock without reading for a while before each read, when ``slow``."""

    slow = False

    async def _read_response(self) -> bytes:
        if self.slow:
            await asyncio.sleep(0.3)
        return await super()._read_response()


@pytest.mark.asyncio
async def test_an_answer_taken_in_but_not_yet_read_is_not_a_hang(
        tmp_path: Path, processes: list[WalredoProcess], caplog: pytest.LogCaptureFixture) -> None:
    """While the reader dawdles, the answer is already in our buffer and the process sits idle
    with every request consumed: quiescent, yet nothing is owed. No hang may be reported (and
    the check's timer callbacks run cleanly meanwhile)."""
    processes.append(WalredoProcess.launch(fake_config(tmp_path)))
    client = _SlowReader(processes[-1], timeout=30, hang_check=0.02)
    assert await client.ping() == ZERO
    client.slow = True
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        # Sent in the same step as the first answer came: the transport still takes in stdout.
        assert await client.ping() == ZERO
    assert not client.poisoned
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.asyncio
async def test_a_hang_says_what_was_found(tmp_path: Path, processes: list[WalredoProcess]) -> None:
    processes.append(WalredoProcess.launch(
        refserver_config(tmp_path, args=("--fault=drop-response:1",))))
    client = WalredoClient(processes[-1], timeout=60, hang_check=0.02)
    with pytest.raises(WalredoHang) as info:
        await client.ping()
    text = str(info.value)
    assert "will never be answered: the process consumed every request and sits idle waiting " \
           "for input" in text
    assert "bytes of an answer" not in text  # nothing of an answer had arrived
    assert client.poison_reason is not None and client.poison_reason.startswith("a request hung: ")
    with pytest.raises(WalredoPoisoned, match="because a request hung"):
        await client.ping()


def test_the_hang_check_follows_the_client_to_another_event_loop(tmp_path: Path,
                                                                 processes: list[WalredoProcess]) -> None:
    """The first loop ends with the hang check's timer still set on it; a hang on the next
    loop is still found (not left to the 60 s timeout)."""
    processes.append(WalredoProcess.launch(
        refserver_config(tmp_path, args=("--fault=drop-response:2",))))
    client = WalredoClient(processes[-1], timeout=60, hang_check=0.05)
    first, second = (RedoRequest(RelTag(1663, 5, 16384), i, bytes([i + 1]) * BLCKSZ)
                     for i in range(2))
    assert asyncio.run(client.apply(first)) == first.base_image
    with pytest.raises(WalredoHang):
        asyncio.run(asyncio.wait_for(client.apply(second), 20))


@pytest.mark.asyncio
async def test_end_input_after_a_message_cut_short(tmp_path: Path,
                                                   processes: list[WalredoProcess]) -> None:
    """``B`` announcing 32 payload bytes and sending 10: the reference walredo waits for the
    rest until its input ends, then says ``unexpected EOF`` and exits."""
    processes.append(WalredoProcess.launch(refserver_config(tmp_path)))
    client = WalredoClient(processes[-1], timeout=60, hang_check=0.05)
    assert await client.ping() == ZERO
    cut = b"B" + (36).to_bytes(4, "big") + bytes(10)
    with pytest.raises(WalredoProcessError, match="unexpected EOF") as info:
        await client.apply_raw(cut, end_input=True)
    assert info.value.returncode not in (None, 0)


@pytest.mark.asyncio
async def test_a_call_started_after_others_finished_still_times_out(
        caplog: pytest.LogCaptureFixture) -> None:
    """One timer serves every call with the client's timeout: after a call finished before its
    deadline, a later call that never gets its answer still times out at its own deadline
    (and the timer's callbacks log no error)."""
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=0.2)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        first = asyncio.ensure_future(client.ping())
        while not transport.held:
            await asyncio.sleep(0)
        transport.release()
        assert await first == ZERO
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(client.ping())  # armed while the first one's timer is set
        await asyncio.sleep(0.15)  # the timer fires for the first call's deadline: nothing due
        with pytest.raises(WalredoTimeout, match=r"waited more than 0\.2s"):
            await asyncio.wait_for(second, 5)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.asyncio
async def test_a_call_started_after_the_timer_found_nothing_due_still_times_out() -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=0.2)
    first = asyncio.ensure_future(client.ping())
    while not transport.held:
        await asyncio.sleep(0)
    transport.release()
    assert await first == ZERO
    await asyncio.sleep(0.3)  # the timer fired with no call left: it is not set any more
    with pytest.raises(WalredoTimeout):
        await asyncio.wait_for(client.ping(), 5)


@pytest.mark.asyncio
async def test_a_timeout_fails_later_callers_as_poisoned_not_as_timed_out() -> None:
    """Two calls, the second started later: the first one's timeout poisons the client, and
    the second fails at once with WalredoPoisoned naming it, not with a timeout of its own
    before its time."""
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=0.3)
    first = asyncio.ensure_future(client.ping())
    await asyncio.sleep(0.15)
    second = asyncio.ensure_future(client.ping())
    with pytest.raises(WalredoTimeout):
        await first
    with pytest.raises(WalredoPoisoned, match="a request timed out: walredo request #0"):
        await second


@pytest.mark.asyncio
async def test_a_hang_is_found_after_many_quick_answers(
        tmp_path: Path, processes: list[WalredoProcess]) -> None:
    """With a check every millisecond over 200 answers (ticks that see progress, readers
    that come and go), the dropped answer is still found as a hang, not left to the timeout."""
    processes.append(WalredoProcess.launch(
        refserver_config(tmp_path, args=("--fault=drop-response:200",))))
    client = WalredoClient(processes[-1], timeout=10, hang_check=0.001)
    answered = 0
    with pytest.raises(WalredoHang):
        for _ in range(250):
            await client.ping()
            answered += 1
    assert answered == 199


@pytest.mark.asyncio
async def test_a_hang_is_found_after_the_client_sat_idle(
        tmp_path: Path, processes: list[WalredoProcess]) -> None:
    """The check's timer stops once a tick finds nobody reading, and starts again with the
    next reader."""
    processes.append(WalredoProcess.launch(
        refserver_config(tmp_path, args=("--fault=drop-response:2",))))
    client = WalredoClient(processes[-1], timeout=10, hang_check=0.02)
    assert await client.ping() == ZERO
    await asyncio.sleep(0.2)  # ten intervals with nobody reading
    with pytest.raises(WalredoHang):
        await client.ping()


@pytest.mark.asyncio
async def test_a_hang_is_found_on_a_transport_that_cannot_say_whether_it_waits(
        tmp_path: Path, processes: list[WalredoProcess]) -> None:
    """A transport without ``blocked_reading`` (any :class:`Transport`): the process alone
    decides. Here the transport swallows the request and the process sits idle, never
    having seen it."""
    processes.append(WalredoProcess.launch(fake_config(tmp_path)))
    client = WalredoClient(MemoryTransport(auto=False), process=processes[-1], timeout=10,
                           hang_check=0.02)
    with pytest.raises(WalredoHang):
        await client.ping()


@pytest.mark.asyncio
async def test_an_idle_client_on_a_transport_of_its_own_is_left_alone(
        tmp_path: Path, processes: list[WalredoProcess], caplog: pytest.LogCaptureFixture) -> None:
    """Once nobody reads, the check stops: an idle process (which looks hung to a probe) and
    a transport that cannot say whether it waits do not make it cancel anybody."""
    proc = WalredoProcess.launch(fake_config(tmp_path))
    processes.append(proc)
    client = WalredoClient(MemoryTransport(), process=proc, timeout=10, hang_check=0.01)
    assert await client.ping() == ZERO
    while not await wait_quiescent(proc.pid, proc.stdin_fd, proc.stdout_fd):
        await asyncio.sleep(0.01)  # started up, waiting for input
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await client.ping() == ZERO
