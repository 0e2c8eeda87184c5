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

from pytest_walredo.process import (
    Call,
    MemoryTransport,
    WalredoClient,
    WalredoPoisoned,
    WalredoProcess,
    WalredoProcessError,
    WalredoTimeout,
)
from pytest_walredo.process.client import PipeTransport
from pytest_walredo.process.fake import fake_config
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag

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
