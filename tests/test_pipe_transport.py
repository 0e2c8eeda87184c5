"""The pipe transport on bare pipes (no process): reads of any size in any pieces, coalesced
writes in order with a bounded backlog, the death pipe ending blocked reads and writes, abort,
moving between event loops, and the stdin lock's hand-over when a caller is cancelled."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import select
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from pytest_walredo.process import MemoryTransport, WalredoClient
from pytest_walredo.process.client import (
    READ_AHEAD,
    READ_CHUNK,
    WRITE_BACKLOG,
    PipeTransport,
    TransportClosed,
)
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipes")


class Pipes:
    """Our ends (``transport``) and the far ends: ``feed`` writes what we read, ``drain`` reads
    what we wrote, ``die()`` makes the death pipe readable."""

    def __init__(self, death: bool = True) -> None:
        self.to_us_r, self.to_us_w = os.pipe()
        self.from_us_r, self.from_us_w = os.pipe()
        self.death_r, self.death_w = os.pipe() if death else (None, None)
        self.transport = PipeTransport(self.from_us_w, self.to_us_r, self.death_r)

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.to_us_w, view):]

    def die(self) -> None:
        if self.death_w is not None:
            os.close(self.death_w)
            self.death_w = None

    def close(self) -> None:
        for fd in (self.to_us_r, self.to_us_w, self.from_us_r, self.from_us_w, self.death_r,
                   self.death_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    p = Pipes()
    yield p
    p.transport.abort()
    p.close()


def _feeder(p: Pipes, data: bytes, seed: int) -> threading.Thread:
    rng = random.Random(seed)

    def run() -> None:
        pos = 0
        while pos < len(data):
            n = rng.choice((1, 100, BLCKSZ, 70_000, 300_000))
            p.feed(data[pos:pos + n])
            pos += n
            if rng.random() < 0.2:
                time.sleep(0.001)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_reads_of_any_size_return_the_stream_in_order(pipes: Pipes) -> None:
    data = random.Random(1).randbytes(3 * READ_AHEAD)
    sizes = [BLCKSZ, 1, 2 * READ_CHUNK + 5, 7, READ_CHUNK, BLCKSZ * 3]

    async def main() -> bytes:
        out = bytearray()
        i = 0
        while len(out) < len(data):
            n = min(sizes[i % len(sizes)], len(data) - len(out))
            out += await pipes.transport.read_exactly(n)
            assert pipes.transport.buffered() <= READ_AHEAD + 2 * READ_CHUNK + 5
            i += 1
        return bytes(out)

    feeder = _feeder(pipes, data, 2)
    assert asyncio.run(main()) == data
    feeder.join()
    assert pipes.transport.buffered() == 0


def test_taking_in_stops_ahead_of_the_readers_and_resumes(pipes: Pipes) -> None:
    """Nobody reads for a while: the transport takes in at most READ_AHEAD bytes (a process
    writing without end cannot make us buffer without end), and reading on resumes it."""
    data = random.Random(4).randbytes(3 * READ_AHEAD)

    async def main() -> bytes:
        t = pipes.transport
        first = await t.read_exactly(1)  # registers the pipe with this loop
        await asyncio.sleep(0.3)  # the feeder fills the pipe; we take in what we may
        assert READ_AHEAD <= t.buffered() <= READ_AHEAD + READ_CHUNK
        rest = await asyncio.wait_for(t.read_exactly(len(data) - 1), 30)
        return first + rest

    feeders: list[threading.Thread] = []
    # The feeder starts once the first read waits (and so has registered the pipe).
    threading.Timer(0.05, lambda: feeders.append(_feeder(pipes, data, 5))).start()
    assert asyncio.run(main()) == data
    feeders[0].join()


def test_take_returns_buffered_bytes_only(pipes: Pipes) -> None:
    pipes.feed(b"abcdef")

    async def main() -> None:
        assert await pipes.transport.read_exactly(2) == b"ab"
        assert pipes.transport.buffered() == 4
        assert pipes.transport.take(3) == b"cde"
        with pytest.raises(ValueError, match="only 1 bytes buffered, 2 asked for"):
            pipes.transport.take(2)
        assert pipes.transport.take(1) == b"f"

    asyncio.run(main())


def test_coalesced_writes_go_out_in_order_and_a_backlog_waits(pipes: Pipes) -> None:
    chunks = [bytes([i % 251]) * (WRITE_BACKLOG // 3) for i in range(8)]
    got = bytearray()

    want = b"".join(chunks) + b"!"

    def drain() -> None:
        while len(got) < len(want):
            got.extend(os.read(pipes.from_us_r, 1 << 16))
            time.sleep(0.0005)  # a slow reader: the queue must wait, not grow without end

    async def main() -> list[bool]:
        t = pipes.transport
        await t.wait_written()  # nothing queued yet: at once
        assert not t.write_blocked
        waited: list[bool] = []
        blocked: list[bool] = []
        for chunk in chunks:
            waited.append(not t.queue(chunk))
            if waited[-1]:
                waiter = asyncio.ensure_future(t.wait_written())
                await asyncio.sleep(0)
                blocked.append(t.write_blocked)  # (the interleaving scheduler reads this)
                await waiter
            assert t.unflushed() <= WRITE_BACKLOG + len(chunk)
        await t.write_all(b"!")  # a direct write goes behind everything queued
        assert t.unflushed() == 0 and not t.write_blocked
        assert blocked and all(blocked)
        return waited

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    waited = asyncio.run(main())
    reader.join(30)
    assert bytes(got) == want
    assert any(waited) and not all(waited)


def test_a_death_ends_a_write_waiting_for_room(pipes: Pipes) -> None:
    # Nobody reads what we write: the pipe fills, the coalesced write waits for room; the death
    # pipe then ends it like a broken pipe (a descendant may hold the real pipe open forever).
    async def main() -> None:
        t = pipes.transport
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, pipes.die)
        assert not t.queue(bytes(WRITE_BACKLOG + 1))
        with pytest.raises(BrokenPipeError, match="nobody reads its stdin"):
            await t.wait_written()
        assert t.unflushed() == 0  # the queue was dropped: nobody will read it
        with pytest.raises(BrokenPipeError):
            await t.write_all(b"more")

    asyncio.run(main())


def test_abort_ends_a_write_waiting_for_its_bytes_to_go_out(pipes: Pipes) -> None:
    async def main() -> None:
        t = pipes.transport
        asyncio.get_running_loop().call_later(0.02, t.abort)
        assert not t.queue(bytes(WRITE_BACKLOG + 1))  # nobody reads: it cannot all go out
        with pytest.raises(TransportClosed) as info:
            await t.wait_written()
        assert str(info.value) == "walredo pipe transport was aborted"
        assert t.unflushed() == 0  # the queue was dropped

    asyncio.run(main())


def test_after_a_death_an_empty_pipe_is_the_end_of_the_stream(pipes: Pipes) -> None:
    pipes.feed(b"x" * 100)  # what the process wrote before it died; the write end stays open

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.05, pipes.die)
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await pipes.transport.read_exactly(BLCKSZ)
        assert info.value.partial == b"x" * 100

    asyncio.run(main())


def test_abort_wakes_a_waiting_reader_and_later_calls_fail(pipes: Pipes) -> None:
    async def main() -> None:
        t = pipes.transport
        asyncio.get_running_loop().call_later(0.02, t.abort)
        with pytest.raises(TransportClosed):
            await t.read_exactly(1)
        with pytest.raises(TransportClosed) as info:
            await t.read_exactly(1)
        assert str(info.value) == "walredo pipe transport was aborted"
        with pytest.raises(TransportClosed):
            await t.write_all(b"x")
        with pytest.raises(TransportClosed):
            t.queue(b"x")

    asyncio.run(main())


def test_the_transport_moves_between_event_loops(pipes: Pipes) -> None:
    async def read_one() -> bytes:
        return await pipes.transport.read_exactly(4)

    for n in range(3):
        threading.Timer(0.02, pipes.feed, (bytes([n]) * 4,)).start()
        assert asyncio.run(read_one()) == bytes([n]) * 4  # each run: a new loop
        pipes.transport.park()
    # A loop that stays open and is not told (its registration stays): the next loop's wait
    # still works, and the first loop does not steal the bytes when it runs again.
    loop = asyncio.new_event_loop()
    try:
        threading.Timer(0.02, pipes.feed, (b"abcd",)).start()
        assert loop.run_until_complete(read_one()) == b"abcd"
        threading.Timer(0.02, pipes.feed, (b"efgh",)).start()
        assert asyncio.run(read_one()) == b"efgh"
        pipes.feed(b"ijkl")
        loop.run_until_complete(asyncio.sleep(0.01))
        assert asyncio.run(read_one()) == b"ijkl"
    finally:
        loop.close()


def test_queued_bytes_survive_a_parked_transport(pipes: Pipes) -> None:
    """Bytes queued on one loop and not yet written when the transport is parked (its loop
    ended) are written by the next write on another loop, in order."""

    async def queue_only() -> None:
        assert pipes.transport.queue(b"first ")
        pipes.transport.park()  # before the flush due at the end of this pass could run
        await asyncio.sleep(0.01)
        assert pipes.transport.unflushed() == len(b"first ")

    asyncio.run(queue_only())

    async def write() -> None:
        await pipes.transport.write_all(b"second")

    asyncio.run(write())
    assert os.read(pipes.from_us_r, 100) == b"first second"


@pytest.mark.asyncio
async def test_a_caller_cancelled_after_being_handed_the_stdin_lock_passes_it_on() -> None:
    """Three callers queue for stdin; the first releases it to the second, which is cancelled
    before it runs: the third must still get the lock (nothing was written for the second,
    so nobody is poisoned)."""
    transport = MemoryTransport()
    client = WalredoClient(transport, timeout=10)
    await client.ping()  # binds the client to this loop
    lock = client._stdin_lock
    assert lock is not None
    await lock.acquire()
    reqs = [RedoRequest(RelTag(1663, 5, 16384), i, bytes([i]) * BLCKSZ) for i in range(2)]
    second = asyncio.ensure_future(client.apply(reqs[0]))
    third = asyncio.ensure_future(client.apply(reqs[1]))
    for _ in range(5):
        await asyncio.sleep(0)
    lock.release()  # handed to the second caller, which has not run yet
    second.cancel()
    assert await asyncio.wait_for(third, 5) == reqs[1].base_image
    assert second.cancelled() and not client.poisoned


def test_a_direct_write_larger_than_the_pipe_waits_for_room(pipes: Pipes) -> None:
    data = random.Random(3).randbytes(4 * WRITE_BACKLOG)
    got = bytearray()

    def drain() -> None:
        while len(got) < len(data):
            got.extend(os.read(pipes.from_us_r, 1 << 16))

    async def main() -> None:
        blocked: list[bool] = []

        async def watch() -> None:
            while len(got) < len(data):
                blocked.append(pipes.transport.write_blocked)
                await asyncio.sleep(0.0005)

        watcher = asyncio.ensure_future(watch())
        await pipes.transport.write_all(data)
        await watcher
        assert True in blocked and not pipes.transport.write_blocked

    reader = threading.Thread(target=drain, daemon=True)
    threading.Timer(0.02, reader.start).start()  # the pipe is full before anyone reads
    asyncio.run(main())
    reader.join(30)
    assert bytes(got) == data


def test_end_input_gives_the_process_end_of_file(pipes: Pipes) -> None:
    """After ``end_input`` the process reads what was written, then end of file (our fd
    number now names /dev/null, so it stays ours and takes later writes harmlessly)."""

    async def main() -> None:
        await pipes.transport.write_all(b"last words")
        pipes.transport.end_input()

    asyncio.run(main())
    assert os.read(pipes.from_us_r, 100) == b"last words"
    assert os.read(pipes.from_us_r, 100) == b""
    assert os.write(pipes.from_us_w, b"ignored") == len(b"ignored")
    assert not os.get_inheritable(pipes.from_us_w)  # no child may inherit it


@pytest.mark.asyncio
async def test_the_locks_say_whether_a_caller_holds_them() -> None:
    transport = MemoryTransport(auto=False)
    client = WalredoClient(transport, timeout=10)
    task = asyncio.ensure_future(client.ping())
    while not transport.written:
        await asyncio.sleep(0)
    assert client._stdin_lock is not None and not client._stdin_lock.locked()
    assert client._stdout_lock.locked()  # the caller reads, waiting for its answer
    transport.release()
    assert await task == bytes(BLCKSZ)
    assert not client._stdout_lock.locked()
    lock = client._stdin_lock
    await lock.acquire()
    assert lock.locked()
    waiter = asyncio.ensure_future(lock.acquire())  # queues behind the holder
    await asyncio.sleep(0)
    lock.release()  # handed to the waiter: on its way, it counts as free (as in asyncio)
    assert not lock.locked()
    await waiter
    assert lock.locked()  # the waiter holds it now
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match=r"^the stdin lock is not held$"):
        lock.release()


@pytest.mark.parametrize("end", ["death", "abort"])
def test_a_death_or_an_abort_ends_a_direct_write_waiting_for_room(pipes: Pipes, end: str) -> None:
    async def main() -> None:
        t = pipes.transport
        asyncio.get_running_loop().call_later(0.05, pipes.die if end == "death" else t.abort)
        if end == "death":
            with pytest.raises(BrokenPipeError) as broken:
                await t.write_all(bytes(4 * WRITE_BACKLOG))
            assert str(broken.value) == "the walredo process exited; nobody reads its stdin"
        else:
            with pytest.raises(TransportClosed) as info:
                await t.write_all(bytes(4 * WRITE_BACKLOG))
            assert str(info.value) == "walredo pipe transport was aborted"

    asyncio.run(main())


def test_a_failed_write_says_what_failed(pipes: Pipes) -> None:
    async def main() -> None:
        t = pipes.transport
        assert t.queue(b"x")
        os.close(pipes.from_us_w)  # the fd goes away under the queue: EBADF, not EPIPE
        with pytest.raises(BrokenPipeError) as info:
            await t.wait_written()
        assert str(info.value).startswith("writing to the walredo process failed: [Errno 9]")

    asyncio.run(main())
    pipes.from_us_w = os.open(os.devnull, os.O_WRONLY)  # (for the fixture to close)


@pytest.mark.asyncio
async def test_a_lock_passed_on_by_a_cancelled_caller_is_free_then_held_by_the_next() -> None:
    client = WalredoClient(MemoryTransport(), timeout=10)
    await client.ping()  # binds the client to this loop
    lock = client._stdin_lock
    assert lock is not None
    await lock.acquire()
    waiter = asyncio.ensure_future(lock.acquire())
    await asyncio.sleep(0)
    lock.release()  # handed to the waiter, which is cancelled before it runs
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not lock.locked()  # passed on to nobody: free
    await lock.acquire()
    assert lock.locked()
    lock.release()


@pytest.mark.asyncio
async def test_a_waiter_cancelled_and_dropped_by_a_release_stays_cancelled() -> None:
    client = WalredoClient(MemoryTransport(), timeout=10)
    await client.ping()
    lock = client._stdin_lock
    assert lock is not None
    await lock.acquire()
    waiter = asyncio.ensure_future(lock.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    lock.release()  # meets the cancelled waiter first and drops it
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not lock.locked()


def test_the_backlog_limit_is_inclusive(pipes: Pipes) -> None:
    async def main() -> None:
        t = pipes.transport
        assert t.queue(bytes(WRITE_BACKLOG))  # exactly the limit: go on
        assert not t.queue(b"x")  # one byte more: wait
        t.abort()
        with pytest.raises(TransportClosed) as info:
            t.queue(b"x")
        assert str(info.value) == "walredo pipe transport was aborted"

    asyncio.run(main())


def test_after_a_death_every_write_says_nobody_reads(pipes: Pipes) -> None:
    async def main() -> None:
        t = pipes.transport
        asyncio.get_running_loop().call_later(0.05, pipes.die)
        assert not t.queue(bytes(WRITE_BACKLOG + 1))  # nobody reads: it waits for room
        for later in (t.wait_written, lambda: t.write_all(b"x", coalesce=True), lambda: t.write_all(b"x")):
            with pytest.raises(BrokenPipeError) as info:
                await later()
            assert str(info.value) == "the walredo process exited; nobody reads its stdin"

    asyncio.run(main())


def test_a_direct_write_that_waited_for_room_leaves_no_writer_registered(pipes: Pipes) -> None:
    data = bytes(4 * WRITE_BACKLOG)

    def drain() -> None:
        got = 0
        while got < len(data):
            got += len(os.read(pipes.from_us_r, 1 << 16))

    async def main() -> None:
        await pipes.transport.write_all(data)
        # a writer callback left behind would run on every loop pass while the pipe has room
        assert not asyncio.get_running_loop().remove_writer(pipes.from_us_w)

    reader = threading.Thread(target=drain, daemon=True)
    threading.Timer(0.02, reader.start).start()
    asyncio.run(main())
    reader.join(30)



def test_at_the_end_of_the_stream_the_transport_stops_watching_it(pipes: Pipes) -> None:
    """End of stream stays readable for good: a reader left registered would run on every
    loop pass."""
    def end() -> None:
        pipes.feed(b"x" * 100)
        os.close(pipes.to_us_w)
        pipes.to_us_w = os.open(os.devnull, os.O_WRONLY)  # (for the fixture to close)

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.02, end)  # while the reader waits
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await pipes.transport.read_exactly(BLCKSZ)
        assert info.value.partial == b"x" * 100
        assert not asyncio.get_running_loop().remove_reader(pipes.to_us_r)

    asyncio.run(main())


def test_writes_behind_a_queue_wait_for_their_bytes_and_past_the_backlog(pipes: Pipes) -> None:
    """A direct write behind queued bytes returns once its own bytes are in the pipe; a
    coalesced write returns at once below the backlog and waits past it. Nobody reads until
    the checks are done, so a write that returned early is caught."""
    got = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(pipes.from_us_r, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            got.extend(chunk)

    async def main() -> None:
        t = pipes.transport
        assert t.queue(bytes(200_000))  # more than the pipe holds: the rest stays queued
        await asyncio.sleep(0.01)
        direct = asyncio.ensure_future(t.write_all(b"!"))
        await asyncio.sleep(0)  # queued behind the 200 000 bytes
        await t.write_all(b"?", coalesce=True)  # below the backlog: at once
        over = asyncio.ensure_future(t.write_all(bytes(WRITE_BACKLOG), coalesce=True))
        await asyncio.sleep(0.05)
        assert not direct.done() and not over.done()
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        await direct
        await over
        assert t.unflushed() == 0

    asyncio.run(main())
    assert got[200_000:200_002] == b"!?"


def test_after_an_abort_a_direct_write_says_so(pipes: Pipes) -> None:
    async def main() -> None:
        pipes.transport.abort()
        with pytest.raises(TransportClosed) as info:
            await pipes.transport.write_all(b"x")
        assert str(info.value) == "walredo pipe transport was aborted"

    asyncio.run(main())



def test_a_death_seen_before_reading_ends_the_stream_after_what_was_written(pipes: Pipes) -> None:
    pipes.feed(b"x" * 100)  # written before the death; a descendant keeps the write end open
    pipes.die()

    async def main() -> None:
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await pipes.transport.read_exactly(BLCKSZ)
        assert info.value.partial == b"x" * 100

    asyncio.run(main())


@pytest.mark.parametrize("death", [True, False], ids=["death-pipe", "no-death-pipe"])
def test_an_abort_on_the_loop_unregisters_every_fd(death: bool) -> None:
    p = Pipes(death=death)

    async def main() -> None:
        t = p.transport
        reader = asyncio.ensure_future(t.read_exactly(1))
        assert not t.queue(bytes(WRITE_BACKLOG + 1))  # nobody reads: the flush waits for room
        writer = asyncio.ensure_future(t.wait_written())
        while not t.write_blocked:
            await asyncio.sleep(0.001)
        t.abort()
        for waiting in (reader, writer):
            with pytest.raises(TransportClosed):
                await waiting
        loop = asyncio.get_running_loop()
        assert not loop.remove_reader(p.to_us_r) and not loop.remove_writer(p.from_us_w)
        if p.death_r is not None:
            assert not loop.remove_reader(p.death_r)

    try:
        asyncio.run(main())
    finally:
        p.close()


def test_an_io_error_while_taking_in_reaches_the_reader_and_ends_the_watch(
        pipes: Pipes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read the event loop makes on the reader's behalf fails once (EIO, as on a dying
    terminal): the waiting reader gets that error, the bytes behind it are not passed off as
    the answer, and the failed fd is no longer watched (it would wake the loop for nothing)."""
    real_readv = os.readv
    failures = [OSError(errno.EIO, "Input/output error")]

    def readv(fd: int, buffers: list[memoryview]) -> int:
        # (fails the first read that would find bytes: the one made for the waiting reader)
        if fd == pipes.to_us_r and failures and select.select([fd], [], [], 0)[0]:
            raise failures.pop()
        return real_readv(fd, buffers)

    monkeypatch.setattr(os, "readv", readv)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, pipes.feed, b"x" * BLCKSZ)  # while the reader waits
        with pytest.raises(OSError) as info:
            await pipes.transport.read_exactly(BLCKSZ)
        assert info.value.errno == errno.EIO and not failures
        assert not loop.remove_reader(pipes.to_us_r)
        with pytest.raises(OSError):  # and so does every later read
            await pipes.transport.read_exactly(1)

    asyncio.run(main())


def test_a_death_pipe_that_can_no_longer_be_watched_counts_as_a_death() -> None:
    """A death fd that select() refuses (closed: the process and its fds are gone) means the
    process is gone: an empty stdout pipe is then the end of the stream, and a write that
    finds no room says nobody reads."""
    p = Pipes()

    async def main() -> None:
        # (closed here, once the loop has its fds: no new fd takes the number meanwhile)
        assert p.death_r is not None
        os.close(p.death_r)
        p.death_r = None
        t = p.transport
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await t.read_exactly(BLCKSZ)
        assert info.value.partial == b""
        with pytest.raises(BrokenPipeError, match="nobody reads its stdin"):
            await t.write_all(bytes(4 * WRITE_BACKLOG))

    try:
        asyncio.run(main())
    finally:
        p.close()


def test_a_loop_left_with_a_stale_registration_drops_it_quietly(pipes: Pipes) -> None:
    """The transport moves to another loop while the loop it was registered with (running in
    another thread) has already found stdout readable: that loop's callback, finding itself
    stale, unregisters the fd without an error, and the new loop's reader gets the bytes."""
    t = pipes.transport
    errors: list[dict[str, object]] = []
    loop_a = asyncio.new_event_loop()
    loop_a.set_exception_handler(lambda loop, context: errors.append(context))
    thread = threading.Thread(target=loop_a.run_forever, daemon=True)
    thread.start()
    blocked, release = threading.Event(), threading.Event()
    try:
        # a read that waits for its byte: stdout is registered with loop A from here on
        threading.Timer(0.02, pipes.feed, (b"a",)).start()
        assert asyncio.run_coroutine_threadsafe(t.read_exactly(1), loop_a).result(10) == b"a"

        def hold() -> None:  # holds loop A after its select() found stdout readable
            blocked.set()
            release.wait(10)

        def arm() -> None:
            pipes.feed(b"b")
            loop_a.call_soon(hold)  # runs ahead of A's readable callback in A's next pass

        loop_a.call_soon_threadsafe(arm)
        assert blocked.wait(10)

        async def read_on_b() -> bytes:
            return await t.read_exactly(1)

        assert asyncio.run(read_on_b()) == b"b"  # moves the transport to loop B
        release.set()
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.01), loop_a).result(10)
    finally:
        release.set()
        loop_a.call_soon_threadsafe(loop_a.stop)
        thread.join(10)
        loop_a.close()
    assert errors == []
