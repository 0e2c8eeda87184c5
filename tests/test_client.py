"""The pipelined asyncio client and the sync facade of ``pytest_walredo.process``.

Echo semantics are enough to prove routing: ``B, P(X), G`` must return X, so distinct pushed
pages show whether every caller got its own answer. The fake walredo
(``pytest_walredo.testing.fake``) provides the faults; a few tests also run the reference server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.process import (
    Call,
    FailureDumper,
    LaunchConfig,
    MemoryTransport,
    SyncWalredoClient,
    WalredoClient,
    WalredoHang,
    WalredoPoisoned,
    WalredoProcess,
    WalredoProcessError,
    WalredoTimeout,
    refserver_config,
)
from pytest_walredo.process.errors import stderr_summary
from pytest_walredo.process.quiescence import supported as quiescence_supported
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag
from pytest_walredo.testing.fake import fake_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipes and /proc")

ZERO = bytes(BLCKSZ)

MUTATION_TEST_LIMIT = 10.0
"""Seconds a test of the client may take in a mutation run (see mutation_time_limit)."""


class _MutantHangs(BaseException):
    """(Not an Exception: asyncio's callbacks and the client's handlers must not swallow it.)"""


@pytest.fixture(autouse=True)
def mutation_time_limit() -> Iterator[None]:
    """In a mutation run (scripts/mutation.py sets $WALREDO_MUTATION_EXAMPLES), a mutant that
    makes a call hang (no deadline, a reader never woken) fails the test after
    MUTATION_TEST_LIMIT seconds instead of using up mutmut's much longer time-out for the whole
    test list. Not in ordinary runs: there no test of the client is timed."""
    if not os.environ.get("WALREDO_MUTATION_EXAMPLES") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _MutantHangs(f"the test took more than {MUTATION_TEST_LIMIT:g}s under a mutant")

    previous = signal.signal(signal.SIGALRM, expire)
    # (again every second after that: a hang may go on in the clean-up that the first
    # interruption starts, e.g. asyncio.run cancelling tasks that never finish)
    signal.setitimer(signal.ITIMER_REAL, MUTATION_TEST_LIMIT, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def echo_requests(n: int, seed: int = 0) -> list[RedoRequest]:
    """``n`` requests for distinct blocks, each pushing a distinct random page."""
    rng = random.Random(seed)
    return [RedoRequest(RelTag(1663, 5, 16384 + i % 7), i, rng.randbytes(BLCKSZ)) for i in range(n)]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., WalredoProcess]]:
    """Start the fake walredo with the given arguments; all are closed after the test."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    yield from _launcher(lambda *args: fake_config(workdir, *args))


def _launcher(config: Callable[..., LaunchConfig]) -> Iterator[Callable[..., WalredoProcess]]:
    procs: list[WalredoProcess] = []

    def start(*args: str) -> WalredoProcess:
        p = WalredoProcess.launch(config(*args))
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_64_concurrent_callers_each_get_their_own_page(launch: Callable[..., WalredoProcess]) -> None:
    client = WalredoClient(launch(), timeout=60)
    reqs = echo_requests(64)
    pages = await asyncio.gather(*(client.apply(r) for r in reqs))
    assert [p == r.base_image for p, r in zip(pages, reqs, strict=True)] == [True] * 64
    assert await client.ping() == ZERO
    assert client.requests_sent == 65
    assert not client.poisoned
    assert client.seccomp_mode_after_first_request == 0  # the fake has no seccomp
    await client.aclose()


class _Gated(WalredoClient):
    """Holds every caller between its write and its read until the test opens its gate, and
    records the order in which callers reach the stdout lock."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.gates: dict[int, asyncio.Event] = {}
        self.written: list[int] = []
        self.reading_order: list[int] = []

    async def _between_send_and_receive(self, call: Call) -> None:
        assert call.no is not None
        self.written.append(call.no)
        await self.gates.setdefault(call.no, asyncio.Event()).wait()
        self.reading_order.append(call.no)


class _PopFront(_Gated):
    """Mutant: hands out the oldest pending answer instead of the caller's own."""

    def _take_response(self, request_no: int) -> bytes:
        page = self._pending.popleft()
        self._n_processed += 1
        assert page is not None
        return page


async def _run_out_of_order(client: _Gated, reqs: list[RedoRequest]) -> list[bytes]:
    n = len(reqs)
    tasks = [asyncio.ensure_future(client.apply(r)) for r in reqs]
    while len(client.written) < n:
        await asyncio.sleep(0.001)
    # Open the gates in reverse, each after the previous caller finished: the last writer reads
    # every answer, and earlier callers find theirs already parked in _pending.
    for no in reversed(range(n)):
        client.gates.setdefault(no, asyncio.Event()).set()
        await asyncio.wait([tasks[no]])
    return [t.result() for t in tasks]


@pytest.mark.asyncio
async def test_callers_resuming_out_of_order_still_get_their_own_page(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = _Gated(launch(), timeout=60)
    reqs = echo_requests(8, seed=1)
    pages = await _run_out_of_order(client, reqs)
    assert client.reading_order == list(reversed(range(8)))
    assert [p == r.base_image for p, r in zip(pages, reqs, strict=True)] == [True] * 8
    assert len(client._pending) == 0 and client._n_processed == 8  # holes trimmed
    await client.aclose()


@pytest.mark.asyncio
async def test_pop_front_mutant_is_caught_by_the_out_of_order_test(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = _PopFront(launch(), timeout=60)
    reqs = echo_requests(8, seed=1)
    pages = await _run_out_of_order(client, reqs)
    assert [p == r.base_image for p, r in zip(pages, reqs, strict=True)] != [True] * 8
    await client.aclose()


@pytest.mark.asyncio
async def test_interleaved_arrival_orders_are_routed(launch: Callable[..., WalredoProcess]) -> None:
    # Random resumption orders, many rounds, one process.
    client = _Gated(launch(), timeout=60)
    rng = random.Random(7)
    base = 0
    for round_no in range(10):
        reqs = echo_requests(6, seed=100 + round_no)
        tasks = [asyncio.ensure_future(client.apply(r)) for r in reqs]
        while len(client.written) < base + 6:
            await asyncio.sleep(0.001)
        order = list(range(base, base + 6))
        rng.shuffle(order)
        for no in order:
            client.gates.setdefault(no, asyncio.Event()).set()
            await asyncio.sleep(0)
        pages = await asyncio.gather(*tasks)
        assert [p == r.base_image for p, r in zip(pages, reqs, strict=True)] == [True] * 6
        base += 6
    await client.aclose()


# ---------------------------------------------------------------------------------------------
# Cancellation and poisoning
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancel_after_write_poisons(launch: Callable[..., WalredoProcess]) -> None:
    client = _Gated(launch(), timeout=60)
    victim = asyncio.ensure_future(client.apply(echo_requests(1)[0]))
    while not client.written:
        await asyncio.sleep(0.001)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert client.poisoned
    with pytest.raises(WalredoPoisoned, match=r"request #0 .* was cancelled") as e:
        await client.ping()
    assert isinstance(e.value.__cause__, asyncio.CancelledError)
    await client.aclose()


class _SlowWrite(WalredoClient):
    """Blocks inside the write step (after the request number is taken) until released."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.in_write = asyncio.Event()
        self.release = asyncio.Event()
        self.queued = 0

    async def _acquire_stdin(self) -> None:
        self.queued += 1
        await super()._acquire_stdin()

    async def _write_request(self, call: Call) -> None:
        if call.no == 0:
            self.in_write.set()
            await self.release.wait()
        await super()._write_request(call)


@pytest.mark.asyncio
async def test_cancel_while_queued_for_stdin_does_not_poison(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = _SlowWrite(launch(), timeout=60)
    first, second = echo_requests(2)
    t1 = asyncio.ensure_future(client.apply(first))
    await client.in_write.wait()
    t2 = asyncio.ensure_future(client.apply(second))
    while client.queued < 2:  # wait until t2 is queued on the stdin lock (nothing written)
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert client.requests_sent == 1
    t2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t2
    assert not client.poisoned
    client.release.set()
    assert await t1 == first.base_image
    assert await client.apply(second) == second.base_image
    await client.aclose()


@pytest.mark.asyncio
async def test_cancel_during_write_poisons(launch: Callable[..., WalredoProcess]) -> None:
    client = _SlowWrite(launch(), timeout=60)
    t1 = asyncio.ensure_future(client.apply(echo_requests(1)[0]))
    await client.in_write.wait()
    t1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t1
    with pytest.raises(WalredoPoisoned, match="cancelled while writing its request"):
        await client.ping()
    await client.aclose()


# ---------------------------------------------------------------------------------------------
# Timeouts, crashes, short and surplus answers
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_timeout_kills_the_process_and_poisons(
    launch: Callable[..., WalredoProcess], tmp_path: Path
) -> None:
    proc = launch("--hang-at", "1")
    dumper = FailureDumper(tmp_path / "dumps")
    client = WalredoClient(proc, timeout=60, dumper=dumper)
    assert await client.ping() == ZERO
    req = echo_requests(1)[0]
    with pytest.raises(WalredoTimeout, match=r"more than 0.3s .* was killed") as e:
        await client.apply(req, timeout=0.3)
    assert proc.wait(30) == -signal.SIGKILL
    assert e.value.dump_path is not None and e.value.dump_path.read_bytes() == req.encode()
    with pytest.raises(WalredoPoisoned, match="timed out") as p:
        await client.ping()
    assert p.value.cause is e.value
    await client.aclose()


@pytest.mark.asyncio
async def test_timeout_also_applies_to_callers_queued_behind_a_hang(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = WalredoClient(launch("--hang-at", "0"), timeout=0.3)
    results = await asyncio.gather(*(client.apply(r) for r in echo_requests(4)),
                                   return_exceptions=True)
    assert all(isinstance(r, (WalredoTimeout, WalredoPoisoned)) for r in results), results
    assert any(isinstance(r, WalredoTimeout) for r in results)
    await client.aclose()


@pytest.mark.asyncio
async def test_crash_reports_exit_status_and_stderr_tail(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = WalredoClient(launch("--crash-at", "1"), timeout=60)
    first, second = echo_requests(2)
    assert await client.apply(first) == first.base_image
    with pytest.raises(WalredoProcessError) as e:
        await client.apply(second)
    err = e.value
    assert err.returncode == 1
    assert "injected crash at answer 1" in (err.stderr_tail or "")
    assert "exited with status 1" in str(err)
    assert "before answering request #1" in str(err)
    assert "(stderr: 'FATAL:  injected crash at answer 1')" in str(err)
    with pytest.raises(WalredoPoisoned, match="exited with status 1"):
        await client.ping()
    await client.aclose()


def test_stderr_summary_prefers_the_postgres_error_line() -> None:
    tail = "FATAL:  invalid message length\nCONTEXT:  WAL redo at 0/16A9388\nLOG:  bye"
    assert stderr_summary(tail) == "FATAL:  invalid message length"
    assert stderr_summary("first\nsecond\n\n") == "second"
    assert stderr_summary("") is None and stderr_summary(None) is None
    assert stderr_summary("x" * 1000, limit=10) == "x" * 10


@pytest.mark.asyncio
async def test_crash_with_requests_in_flight_gives_nobody_a_wrong_page(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = WalredoClient(launch("--crash-at", "5"), timeout=60)
    reqs = echo_requests(12)
    results = await asyncio.gather(*(client.apply(r) for r in reqs), return_exceptions=True)
    for r, res in zip(reqs, results, strict=True):
        assert isinstance(res, (WalredoProcessError, WalredoPoisoned)) or res == r.base_image
    assert [res == r.base_image for r, res in zip(reqs, results, strict=True)][:5] == [True] * 5
    assert sum(isinstance(res, WalredoProcessError) for res in results) >= 1
    await client.aclose()


@pytest.mark.asyncio
async def test_short_answer(launch: Callable[..., WalredoProcess]) -> None:
    client = WalredoClient(launch("--short-at", "0"), timeout=60)
    with pytest.raises(WalredoProcessError, match=r"after sending 100 of 8192 bytes") as e:
        await client.apply(echo_requests(1)[0])
    assert e.value.returncode == 1
    await client.aclose()


@pytest.mark.asyncio
async def test_surplus_output_is_a_protocol_error(launch: Callable[..., WalredoProcess]) -> None:
    client = WalredoClient(launch("--extra-at", "0"), timeout=60)
    reqs = echo_requests(2)
    outcomes: list[object] = []
    for r in reqs:
        try:
            outcomes.append(await client.apply(r) == r.base_image)
        except (WalredoProcessError, WalredoPoisoned) as exc:
            outcomes.append(exc)
    errors = [o for o in outcomes if isinstance(o, WalredoProcessError)]
    assert len(errors) == 1 and "16 byte(s) more than the answers" in str(errors[0])
    assert False not in outcomes  # nobody received a misaligned page
    await client.aclose()


@pytest.mark.asyncio
async def test_process_killed_while_idle(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch()
    client = WalredoClient(proc, timeout=60)
    assert await client.ping() == ZERO
    proc.kill()
    with pytest.raises(WalredoProcessError, match=r"killed by signal 9 \(SIGKILL\)"):
        await client.ping()
    await client.aclose()


# ---------------------------------------------------------------------------------------------
# Event loops and the sync facade
# ---------------------------------------------------------------------------------------------


def test_client_outlives_event_loops(launch: Callable[..., WalredoProcess]) -> None:
    client = WalredoClient(launch(), timeout=60)
    reqs = echo_requests(3)
    for r in reqs:  # each asyncio.run makes and closes a fresh loop
        assert asyncio.run(client.apply(r)) == r.base_image
    client.close()
    assert client.process is not None and client.process.returncode == -signal.SIGKILL


def test_sync_facade_from_many_threads(launch: Callable[..., WalredoProcess]) -> None:
    proc = launch()
    client = SyncWalredoClient(proc, timeout=60)
    reqs = echo_requests(64, seed=3)
    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(client.apply, reqs))
    assert [p == r.base_image for p, r in zip(pages, reqs, strict=True)] == [True] * 64
    assert client.apply_many(reqs[:5]) == [r.base_image for r in reqs[:5]]
    assert client.ping() == ZERO
    assert client.apply_raw(reqs[0].encode()) == reqs[0].base_image
    client.close()
    client.close()
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(RuntimeError, match="closed"):
        client.ping()


def test_one_client_one_loop_at_a_time(launch: Callable[..., WalredoProcess]) -> None:
    sync = SyncWalredoClient(launch("--hang-at", "0"), timeout=30)
    with ThreadPoolExecutor(1) as pool:
        hung = pool.submit(sync.ping)  # in flight on the facade's loop
        while sync.client.requests_sent == 0:
            threading.Event().wait(0.005)
        with pytest.raises(RuntimeError, match="in use on another event loop"):
            asyncio.run(sync.client.ping())
        sync.close()  # aborts the hung call
        with pytest.raises(WalredoPoisoned, match="client was closed"):
            hung.result()


@pytest.mark.asyncio
async def test_apply_many_waits_for_all_then_raises_the_first_failure(
    launch: Callable[..., WalredoProcess],
) -> None:
    client = WalredoClient(launch("--crash-at", "3"), timeout=60)
    with pytest.raises((WalredoProcessError, WalredoPoisoned)):
        await client.apply_many(echo_requests(8))
    assert client._in_flight == 0  # nothing left running
    await client.aclose()


def test_sync_facade_raises_the_same_errors(launch: Callable[..., WalredoProcess]) -> None:
    with SyncWalredoClient(launch("--crash-at", "0"), timeout=60) as client:
        with pytest.raises(WalredoProcessError, match="exited with status 1"):
            client.ping()
        assert client.poisoned


# ---------------------------------------------------------------------------------------------
# In-memory transport: answers arrive exactly when and in the pieces the test decides
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_memory_transport_answers_released_in_random_pieces() -> None:
    rng = random.Random(11)
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=60)
    reqs = echo_requests(32, seed=2)
    tasks = [asyncio.ensure_future(client.apply(r)) for r in reqs]
    while client.requests_sent < 32 or len(transport.held) < 32 * BLCKSZ:
        await asyncio.sleep(0)
    assert bytes(transport.written) == b"".join(r.encode() for r in reqs)
    while transport.held:
        transport.release(rng.randint(1, 3 * BLCKSZ))
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    pages = await asyncio.gather(*tasks)
    assert [p == r.base_image for p, r in zip(pages, reqs, strict=True)] == [True] * 32
    assert client.seccomp_mode_after_first_request is None  # no process to ask


@pytest.mark.asyncio
async def test_memory_transport_end_of_stream_mid_answer() -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=60)
    task = asyncio.ensure_future(client.ping())
    while not transport.held:
        await asyncio.sleep(0)
    transport.release(100)
    transport.feed_eof()
    with pytest.raises(WalredoProcessError,
                       match=r"stream ended after sending 100 of 8192 bytes .* request #0"):
        await task
    with pytest.raises(WalredoPoisoned):
        await client.ping()


@pytest.mark.asyncio
async def test_memory_transport_cancel_mid_read_poisons_and_keeps_others_safe() -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=60)
    first, second = echo_requests(2)
    t1 = asyncio.ensure_future(client.apply(first))
    t2 = asyncio.ensure_future(client.apply(second))
    while len(transport.held) < 2 * BLCKSZ:
        await asyncio.sleep(0)
    transport.release(BLCKSZ // 2)  # t1 is now inside its read, holding the stdout lock
    await asyncio.sleep(0)
    t1.cancel()
    transport.release()
    results = await asyncio.gather(t1, t2, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    # t2 may not take a page now: the client is poisoned and says why.
    assert isinstance(results[1], WalredoPoisoned)
    assert "cancelled while reading answers" in str(results[1])


@pytest.mark.asyncio
async def test_memory_transport_timeout_without_a_process() -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=0.05)
    with pytest.raises(WalredoTimeout, match=r"request #0 \(ping\) waited more than 0.05s") as e:
        await client.ping()
    assert "killed" not in str(e.value)
    assert client.poisoned


@pytest.mark.asyncio
async def test_memory_transport_surplus_bytes() -> None:
    transport = MemoryTransport()
    client = WalredoClient(transport, timeout=60)
    transport.feed(b"unasked")
    with pytest.raises(WalredoProcessError, match=r"wrote 7 byte\(s\) more than the answers"):
        await client.ping()


class _Recording(WalredoClient):
    """Remembers which requests got a request number (and so may have bytes in the stream)."""

    def __init__(self, *a: Any, delays: list[int], **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.numbered: set[str] = set()
        self.delays = delays

    async def _write_request(self, call: Call) -> None:
        self.numbered.add(call.what)  # same step as the number assignment: no await between
        await super()._write_request(call)

    async def _between_send_and_receive(self, call: Call) -> None:
        # asyncio locks are FIFO, so without this callers would always reach the stdout lock
        # in request order; random delays make them overtake each other.
        assert call.no is not None
        for _ in range(self.delays[call.no % len(self.delays)]):
            await asyncio.sleep(0)


_ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.just(0)),
        st.tuples(st.just("release"), st.integers(1, 3 * BLCKSZ)),
        st.tuples(st.just("step"), st.integers(1, 6)),
        st.tuples(st.just("cancel"), st.integers(0, 9)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 10), actions=_ACTIONS,
       delays=st.lists(st.integers(0, 8), min_size=1, max_size=10))
def test_random_schedules_never_misroute_and_poison_exactly_on_late_cancellation(
    n: int, actions: list[tuple[str, int]], delays: list[int]
) -> None:
    """Any interleaving of caller starts, answer arrival in arbitrary pieces, loop steps and
    cancellations: no caller ever gets another's page; the client is poisoned iff a caller
    was cancelled after getting its request number; nothing wedges."""

    async def scenario() -> None:
        transport = MemoryTransport(auto=False)
        client = _Recording(transport, timeout=None, delays=delays)
        reqs = echo_requests(n, seed=n)
        tasks: list[asyncio.Task[bytes]] = []
        for kind, arg in actions:
            if kind == "start" and len(tasks) < n:
                tasks.append(asyncio.ensure_future(client.apply(reqs[len(tasks)])))
            elif kind == "release":
                transport.release(arg)
            elif kind == "step":
                for _ in range(arg):
                    await asyncio.sleep(0)
            elif kind == "cancel" and arg < len(tasks):
                tasks[arg].cancel()
        while len(tasks) < n:
            tasks.append(asyncio.ensure_future(client.apply(reqs[len(tasks)])))
        for _ in range(10_000):  # drain: everything must finish once all answers arrive
            if all(t.done() for t in tasks):
                break
            transport.release()
            await asyncio.sleep(0)
        assert all(t.done() for t in tasks), "a caller is stuck"
        late_cancel = False
        for req, task in zip(reqs, tasks, strict=True):
            if task.cancelled():
                late_cancel |= req.describe() in client.numbered
            elif task.exception() is not None:
                assert isinstance(task.exception(), WalredoPoisoned), task.exception()
            else:
                assert task.result() == req.base_image, "a caller got someone else's page"
        assert client.poisoned == late_cancel, client.poison_reason

    asyncio.run(scenario())


# ---------------------------------------------------------------------------------------------
# Against the reference server
# ---------------------------------------------------------------------------------------------

needs_refserver = pytest.mark.skipif(
    importlib.util.find_spec("pytest_walredo.refserver.__main__") is None,
    reason="pytest_walredo.refserver is not available",
)


@needs_refserver
def test_reference_server_echo_ping_and_seccomp(tmp_path: Path) -> None:
    client = SyncWalredoClient.launch(refserver_config(tmp_path, pg_version=15), timeout=60)
    try:
        assert client.ping() == ZERO
        reqs = echo_requests(16, seed=5)
        assert client.apply_many(reqs) == [r.base_image for r in reqs]
        mode = client.seccomp_mode_after_first_request
        assert mode in (0, 2)
    finally:
        client.close()


@needs_refserver
def test_reference_server_crash_fault(tmp_path: Path) -> None:
    client = SyncWalredoClient.launch(
        refserver_config(tmp_path, args=("--fault=crash-after:1",)), timeout=60)
    try:
        assert client.ping() == ZERO
        with pytest.raises(WalredoProcessError, match="exited with status 1") as e:
            client.ping()
        assert "crash-after:1" in (e.value.stderr_tail or "")
    finally:
        client.close()


@needs_refserver
def test_reference_server_duplicate_response_is_caught(tmp_path: Path) -> None:
    client = SyncWalredoClient.launch(
        refserver_config(tmp_path, args=("--fault=duplicate-response:1",)), timeout=60)
    try:
        reqs = echo_requests(3, seed=9)
        outcomes: list[object] = []
        for r in reqs:
            try:
                outcomes.append(client.apply(r) == r.base_image)
            except (WalredoProcessError, WalredoPoisoned) as exc:
                outcomes.append(type(exc))
        assert WalredoProcessError in outcomes and False not in outcomes
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Hang check: an answer that cannot come is reported at once, not after the timeout
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def launch_reference(tmp_path: Path) -> Iterator[Callable[..., WalredoProcess]]:
    """Start the reference walredo with the given ``--fault`` specs."""
    yield from _launcher(lambda *faults: refserver_config(tmp_path, args=[f"--fault={f}" for f in faults]))


NEEDS_QUIESCENCE = pytest.mark.skipif(not quiescence_supported(), reason="this system does not report "
                                      "where a process sleeps (/proc/<pid>/wchan): no hang check")


@NEEDS_QUIESCENCE
@pytest.mark.asyncio
async def test_hang_check_reports_a_dropped_answer_as_a_hang(launch_reference, tmp_path: Path) -> None:
    p = launch_reference("drop-response:2")
    client = WalredoClient(p, timeout=120, hang_check=0.05, dumper=FailureDumper(tmp_path / "dumps"))
    first, second = echo_requests(2)
    assert await client.apply(first) == first.base_image
    with pytest.raises(WalredoHang) as info:
        await client.apply(second)
    assert isinstance(info.value, WalredoTimeout)  # callers handling timeouts handle hangs
    assert str(info.value).startswith("walredo request #1 (redo 1663/5/16385 blk 1")
    assert "will never be answered" in str(info.value) and "was killed" in str(info.value)
    assert info.value.dump_path is not None and info.value.dump_path.exists()
    assert client.poisoned and p.wait(10) is not None
    with pytest.raises(WalredoPoisoned):
        await client.ping()


@NEEDS_QUIESCENCE
@pytest.mark.asyncio
async def test_hang_check_names_a_truncated_answer(launch_reference) -> None:
    client = WalredoClient(launch_reference("truncate-page"), timeout=120, hang_check=0.05)
    with pytest.raises(WalredoHang, match=r"after \d+ of 8192 bytes of an answer"):
        await client.ping()


@pytest.mark.asyncio
async def test_hang_check_waits_out_a_process_that_is_busy_or_asleep(
    launch: Callable[..., WalredoProcess], launch_reference
) -> None:
    # Asleep (not waiting for input): it might still answer, so only the timeout ends the wait.
    asleep = WalredoClient(launch("--hang-at", "0"), timeout=1.0, hang_check=0.05)
    with pytest.raises(WalredoTimeout) as info:
        await asleep.ping()
    assert not isinstance(info.value, WalredoHang)
    # A healthy process under load: many callers, many checks, no false hang.
    healthy = WalredoClient(launch_reference(), timeout=120, hang_check=0.001)
    reqs = echo_requests(64, seed=3)
    pages = await asyncio.gather(*(healthy.apply(r) for r in reqs))
    assert pages == [r.base_image for r in reqs]
    assert not healthy.poisoned
    healthy.close()
