"""The quiescence probe tells a process that waits for input from one that works or sleeps, and
the scheduler uses it to stop a run whose readers wait for answers that cannot come."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_walredo.interleave import Schedule, ScheduledClient, Status, check_run, run_schedule
from pytest_walredo.process import WalredoClient, WalredoProcess
from pytest_walredo.process.quiescence import (
    ProcessSample,
    _thread_activity,
    _wchan,
    is_quiescent,
    pipe_unread,
    sample,
    supported,
    wait_quiescent,
)
from pytest_walredo.process.sandbox import LaunchConfig, refserver_config
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag
from pytest_walredo.testing.fake import fake_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not supported(),
                                reason="this system does not report where a process sleeps "
                                       "(/proc/<pid>/wchan), so nothing is ever quiescent")


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[LaunchConfig], WalredoProcess]]:
    procs: list[WalredoProcess] = []

    def start(config: LaunchConfig) -> WalredoProcess:
        p = WalredoProcess.launch(config)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.close()


def _probe(p: WalredoProcess) -> bool:
    return asyncio.run(wait_quiescent(p.pid, p.stdin_fd, p.stdout_fd))


def _eventually_quiescent(p: WalredoProcess, tries: int = 1000) -> bool:
    """Start-up of a Python process takes a while: look until it is quiescent (or give up)."""
    for _ in range(tries):
        if _probe(p):
            return True
        time.sleep(0.01)
    return False


def _python(tmp_path: Path, code: str) -> LaunchConfig:
    return LaunchConfig(Path(sys.executable), prefix_args=("-c", code), workdir=tmp_path)


def test_a_process_that_dropped_an_answer_is_quiescent_with_the_request_consumed(launch, tmp_path):
    p = launch(refserver_config(tmp_path, args=["--fault=drop-response:1"]))
    client = WalredoClient(p, timeout=60)

    async def main() -> bool:
        ping = asyncio.ensure_future(client.ping())
        await asyncio.sleep(0)
        for _ in range(1000):
            if await wait_quiescent(p.pid, p.stdin_fd, p.stdout_fd):
                break
            await asyncio.sleep(0.01)
        quiet = not ping.done()
        ping.cancel()
        return quiet

    assert asyncio.run(main())
    s = sample(p.pid, p.stdin_fd, p.stdout_fd)
    assert s is not None and s.stdin_unread == 0 and s.stdout_unread == 0 and s.states[0] == "S"


def test_unread_answers_or_unconsumed_requests_are_not_quiescent(launch, tmp_path):
    p = launch(refserver_config(tmp_path))
    assert _eventually_quiescent(p)  # idle, nothing owed: the probe alone says quiescent
    os.write(p.stdin_fd, b"H\0\0\0\x04")
    for _ in range(1000):  # the answer lands in the pipe and stays there: we do not read it
        s = sample(p.pid, p.stdin_fd, p.stdout_fd)
        assert s is not None
        if s.stdout_unread == BLCKSZ:
            break
        time.sleep(0.01)
    assert s.stdout_unread == BLCKSZ and not s.waiting_for_input
    assert not _probe(p)

    never_reads = launch(_python(tmp_path, "import time; time.sleep(60)"))
    os.write(never_reads.stdin_fd, b"H\0\0\0\x04")
    s = sample(never_reads.pid, never_reads.stdin_fd, never_reads.stdout_fd)
    assert s is not None and s.stdin_unread == 5
    assert not _probe(never_reads)


def test_a_running_or_sleeping_process_is_not_quiescent(launch, tmp_path):
    busy = launch(_python(tmp_path, "while True: pass"))
    for _ in range(20):
        assert not _probe(busy)
        time.sleep(0.01)
    # --hang-at 0 sleeps instead of reading: it might wake up and answer, so it is not
    # quiescent (when the kernel tells where it sleeps).
    sleeper = launch(fake_config(tmp_path, "--hang-at", "0"))
    os.write(sleeper.stdin_fd, b"H\0\0\0\x04")
    for _ in range(2000):
        s = sample(sleeper.pid, sleeper.stdin_fd, sleeper.stdout_fd)
        if s is not None and s.stdin_unread == 0 and s.states == ("S",):
            break
        time.sleep(0.01)
    assert s is not None and s.wchan is not None and "sleep" in s.wchan
    assert not _probe(sleeper)


def test_a_gone_process_cannot_be_sampled(launch, tmp_path):
    p = launch(_python(tmp_path, "pass"))
    p.wait(30)
    pid = p.pid
    p.close()  # reaped: /proc/<pid> is gone
    r, w = os.pipe()
    try:
        assert sample(pid, w, r) is None
        assert sample(os.getpid(), w, r) is not None
    finally:
        os.close(r)
        os.close(w)


def test_a_scheduled_reader_waiting_on_a_quiescent_process_fails_as_a_hang(launch, tmp_path):
    """With a minute-long request timeout, the run still ends: the client's hang check fails
    the reader with WalredoHang, and the oracle reports it as a hang, not a timeout."""
    p = launch(refserver_config(tmp_path, args=["--fault=drop-response:2"]))
    client = ScheduledClient(p, timeout=60, hang_check=0.01)
    jobs = [RedoRequest(RelTag(1663, 5, 16384), i, bytes([i + 1]) * BLCKSZ) for i in range(2)]
    result = asyncio.run(run_schedule(client, jobs, Schedule(), real_io=True))
    assert result.outcomes[0].status is Status.PAGE and result.outcomes[0].page == jobs[0].base_image
    assert result.outcomes[1].status is Status.ERROR
    assert str(result.timeline).splitlines()[-1] == "c1 error WalredoHang"
    problems = check_run(result, [j.base_image for j in jobs])
    assert len(problems) == 1 and problems[0].startswith(
        "[hang] caller c1 failed: WalredoHang: walredo request #1 (redo 1663/5/16384 blk 1")
    assert "will never be answered" in problems[0]
    client.close()


def test_the_clean_process_is_never_declared_hung(launch, tmp_path):
    p = launch(refserver_config(tmp_path))
    client = ScheduledClient(p, timeout=60, hang_check=0.001)
    jobs = [RedoRequest(RelTag(1663, 5, 16384), i, bytes([i + 1]) * BLCKSZ) for i in range(6)]
    for picks in [(), (1,), (5, 4, 3, 2, 1), (1, 0, 1, 0, 2)]:
        result = asyncio.run(run_schedule(client, jobs, Schedule(picks, rest=picks[-1] if picks else 0),
                                          real_io=True))
        assert not result.deadlock, result.timeline
        assert check_run(result, [j.base_image for j in jobs]) == []
    client.close()


def test_a_writer_blocked_on_a_full_pipe_does_not_stall_the_run(launch, tmp_path):
    """Sixteen callers each write a 32 KiB request before anyone reads: the process stops
    reading once its stdout pipe is full of unread answers, and the next writer waits for room.
    The scheduler must count that writer as blocked and resume a parked reader (S5), not wait
    for it until the request timeout (a false failure of a correct process)."""
    p = launch(fake_config(tmp_path))
    client = ScheduledClient(p, timeout=60)
    n = 16
    jobs = [RedoRequest(RelTag(1663, 5, 16384), i, bytes([i + 1]) * BLCKSZ, ((0x1000000 + i, b"r" * 24000),))
            for i in range(n)]
    # Caller k runs start, stdin and write while every earlier caller waits at its stdout checkpoint.
    schedule = Schedule(tuple(k for k in range(n) for _ in range(3)))
    result = asyncio.run(run_schedule(client, jobs, schedule, real_io=True))
    assert check_run(result, [j.base_image for j in jobs]) == []
    assert all(o.status is Status.PAGE for o in result.outcomes)
    client.close()


def _blocked_writer(code: str) -> subprocess.Popen[bytes]:
    """A child whose stdin and stdout are empty pipes and whose stderr pipe nobody reads."""
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _settled_sample(child: subprocess.Popen[bytes]) -> tuple[object, object]:
    """Samples taken once the child sleeps with its stderr pipe full (it blocks there)."""
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    for _ in range(2000):
        s = sample(child.pid, child.stdin.fileno(), child.stdout.fileno())
        full = sample(child.pid, child.stdin.fileno(), child.stdout.fileno(),
                      child.stderr.fileno())
        if (s is not None and full is not None and full.stderr_unread >= 4096
                and all(state == "S" for state in s.states) and len(s.states) >= 1
                and s.wchan is not None and "pipe" in s.wchan):
            return s, full
        time.sleep(0.01)
    pytest.fail("the child never blocked")


@pytest.mark.parametrize("threads", [False, True], ids=["main-thread", "other-thread"])
def test_a_process_blocked_writing_stderr_is_busy_not_waiting_for_input(threads):
    """The kernel's wait channel says "pipe" for a writer too (anon_pipe_write): a process
    that sleeps until its stderr is read is not idle. Neither is one whose main thread reads
    stdin while another thread waits to write stderr."""
    writer = "os.write(2, b'x' * (1 << 22))"
    code = (f"import os, threading\nthreading.Thread(target=lambda: {writer}).start()\n"
            "os.read(0, 1)") if threads else f"import os\n{writer}"
    child = _blocked_writer(code)
    try:
        s, full = _settled_sample(child)
        assert not full.waiting_for_input and full.writing  # the unread stderr bytes tell
        if any(w is not None and "write" in w for w in (s.wchan, *s.thread_wchans)):
            # a kernel that names the write wait: the wait channel alone tells, too
            assert s.writing and not s.waiting_for_input
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        assert not asyncio.run(wait_quiescent(child.pid, child.stdin.fileno(),
                                              child.stdout.fileno(),
                                              stderr_fd=child.stderr.fileno()))
    finally:
        child.kill()
        child.communicate()


# ---------------------------------------------------------------------------------------------
# The predicates on samples (Q1-Q6), on hand-made samples
# ---------------------------------------------------------------------------------------------


def _idle(**changes: object) -> ProcessSample:
    """A sample of a one-thread process asleep in a pipe read with nothing pending."""
    fields: dict[str, object] = dict(stdin_unread=0, stdout_unread=0, states=("S",),
                                     wchan="pipe_read", activity=(1000, 5), stderr_unread=0,
                                     thread_wchans=("pipe_read",))
    fields.update(changes)
    return ProcessSample(**fields)  # type: ignore[arg-type]


def test_is_quiescent_needs_two_idle_samples_with_nothing_run_in_between():
    idle = _idle()
    assert is_quiescent(idle, _idle())
    assert not is_quiescent(None, None)
    assert not is_quiescent(None, idle) and not is_quiescent(idle, None)
    # one of the two looks saw pending input
    assert not is_quiescent(idle, _idle(stdin_unread=1))
    assert not is_quiescent(_idle(stdin_unread=1), idle)
    # it ran (CPU time or a context switch) between the looks
    assert not is_quiescent(idle, _idle(activity=(1001, 5)))
    assert not is_quiescent(idle, _idle(activity=(1000, 6)))
    # a thread came or went
    assert not is_quiescent(idle, _idle(states=("S", "S")))


@pytest.mark.parametrize("wchan", ["pipe_read", "anon_pipe_read", "pipe_wait_readable", "do_sys_poll",
                                   "do_select", "ep_poll", "wait_woken", "unix_stream_read_generic"])
def test_a_thread_asleep_in_an_input_wait_waits_for_input(wchan):
    s = _idle(wchan=wchan, thread_wchans=(wchan,))
    assert s.waiting_for_input and not s.writing


@pytest.mark.parametrize("wchan", ["pipe_write", "anon_pipe_write", "pipe_wait_writable",
                                   "unix_stream_sendmsg", "sk_stream_wait_for_space"])
def test_a_thread_asleep_in_an_output_wait_is_writing(wchan):
    main = _idle(wchan=wchan, thread_wchans=(wchan,))
    other = _idle(states=("S", "S"), thread_wchans=("pipe_read", wchan))
    for s in (main, other):
        assert s.writing and not s.waiting_for_input


@pytest.mark.parametrize("changes", [
    dict(stdin_unread=3),  # Q1
    dict(stdout_unread=8192),  # Q2
    dict(states=("R",)), dict(states=("S", "D")), dict(states=()),  # Q3
    dict(wchan=None), dict(wchan="hrtimer_nanosleep"), dict(wchan="futex_wait_queue"),  # Q4
    dict(stderr_unread=1),  # Q6
], ids=repr)
def test_each_condition_alone_stops_a_sample_from_waiting_for_input(changes):
    assert _idle().waiting_for_input
    assert not _idle(**changes).waiting_for_input


def test_unread_stderr_alone_counts_as_writing():
    assert not _idle().writing
    assert _idle(stderr_unread=1).writing
    assert not _idle(wchan=None, thread_wchans=(None,)).writing  # the kernel does not say


# ---------------------------------------------------------------------------------------------
# Reading /proc
# ---------------------------------------------------------------------------------------------


def test_pipe_unread_counts_the_bytes_waiting_seen_from_either_end():
    r, w = os.pipe()
    try:
        assert pipe_unread(r) == pipe_unread(w) == 0
        os.write(w, b"x" * 5000)
        assert pipe_unread(r) == pipe_unread(w) == 5000
        os.read(r, 1000)
        assert pipe_unread(r) == pipe_unread(w) == 4000
    finally:
        os.close(r)
        os.close(w)


# The child names its main thread with bytes that are not ASCII and a ")" that, read naively,
# would end the name early, then blocks in reads on two threads.
_ODD_NAME = r'''
import os, threading
with open(f"/proc/self/task/{threading.get_native_id()}/comm", "wb") as f:
    f.write(b"\xe9) R (x y")
r, w = os.pipe()
threading.Thread(target=lambda: os.read(r, 1), daemon=True).start()
os.write(1, b"ready")
while True:
    os.read(0, 1)
'''


@pytest.fixture
def odd_child() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", _ODD_NAME], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.read(5) == b"ready"
    yield child
    child.kill()
    child.communicate()


def _fds(child: subprocess.Popen[bytes]) -> tuple[int, int, int]:
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    return child.stdin.fileno(), child.stdout.fileno(), child.stderr.fileno()


def _settle(child: subprocess.Popen[bytes]) -> ProcessSample:
    """A sample once both threads sleep waiting for input."""
    for _ in range(2000):
        s = sample(child.pid, *_fds(child))
        if s is not None and s.waiting_for_input and len(s.states) == 2:
            return s
        time.sleep(0.01)
    pytest.fail(f"the child never settled: {sample(child.pid, *_fds(child))}")


def test_a_thread_named_with_odd_bytes_is_sampled_like_any_other(odd_child):
    s = _settle(odd_child)
    assert s.states == ("S", "S")
    assert len(s.thread_wchans) == 2 and all(w is not None and "pipe" in w for w in s.thread_wchans)
    # two numbers per thread: nanoseconds on a CPU (as the kernel's schedstat counts them) and
    # context switches
    assert len(s.activity) == 4
    tids = sorted(os.listdir(f"/proc/{odd_child.pid}/task"))
    for i, tid in enumerate(tids):
        on_cpu = int(Path(f"/proc/{odd_child.pid}/task/{tid}/schedstat").read_text().split()[0])
        assert s.activity[2 * i] == on_cpu
        assert s.activity[2 * i + 1] >= 1
    assert wait_quiescent_now(odd_child)


def wait_quiescent_now(child: subprocess.Popen[bytes], **kw: object) -> bool:
    stdin, stdout, stderr = _fds(child)
    return asyncio.run(wait_quiescent(child.pid, stdin, stdout, stderr_fd=stderr, **kw))  # type: ignore[arg-type]


def test_thread_activity_without_schedstat_counts_clock_ticks_and_all_switches(tmp_path):
    """Kernels without schedstats: CPU time is utime + stime from ``stat``; the switch count is
    voluntary plus involuntary, from ``status`` (written here as the kernel writes them)."""
    (tmp_path / "stat").write_text(
        "4242 (a (b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 17 4 0 0 20 0 1 0 99 0 0\n")
    (tmp_path / "status").write_text(
        "Name:\ta (b) c\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t7\n"
        "nonvoluntary_ctxt_switches:\t3\n")
    assert _thread_activity(str(tmp_path)) == ("S", 21, 10)
    (tmp_path / "schedstat").write_text("123456 789 12\n")
    assert _thread_activity(str(tmp_path)) == ("S", 123456, 10)


@pytest.mark.parametrize(("text", "expected"), [("pipe_read\n", "pipe_read"), ("0", None), ("", None)])
def test_a_wchan_of_0_or_nothing_means_the_kernel_does_not_say(tmp_path, text, expected):
    (tmp_path / "wchan").write_text(text)
    assert _wchan(str(tmp_path / "wchan")) == expected
    assert _wchan(str(tmp_path / "absent")) is None


# ---------------------------------------------------------------------------------------------
# wait_quiescent: the looks and what happens between them
# ---------------------------------------------------------------------------------------------


def _between_looks(child: subprocess.Popen[bytes], samples: int, act: Callable[[], object]) -> bool:
    """wait_quiescent with ``act()`` run right after its first look (it takes that look before
    its first await) and a window long enough for the child to react."""
    stdin, stdout, stderr = _fds(child)

    async def main() -> bool:
        probe = asyncio.ensure_future(wait_quiescent(child.pid, stdin, stdout, stderr_fd=stderr,
                                                     window=0.3, samples=samples))
        await asyncio.sleep(0)
        act()
        return await probe

    return asyncio.run(main())


def test_input_consumed_between_two_looks_is_activity(odd_child):
    _settle(odd_child)
    stdin, _, _ = _fds(odd_child)
    assert not _between_looks(odd_child, 2, lambda: os.write(stdin, b"x"))
    _settle(odd_child)
    assert not _between_looks(odd_child, 3, lambda: os.write(stdin, b"x"))
    _settle(odd_child)
    assert _between_looks(odd_child, 1, lambda: os.write(stdin, b"x"))  # one look only


def test_stderr_bytes_nobody_read_are_seen_by_every_look():
    r, w = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", "import os\nwhile True: os.read(0, 1)"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=w)
    try:
        assert child.stdin is not None and child.stdout is not None
        stdin, stdout = child.stdin.fileno(), child.stdout.fileno()

        def probe(**kw: object) -> bool:
            return asyncio.run(wait_quiescent(child.pid, stdin, stdout, **kw))  # type: ignore[arg-type]

        for _ in range(1000):
            if probe(stderr_fd=r):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child never became quiescent")

        async def main() -> bool:
            # another holder of the stderr pipe writes after the first look
            looks = asyncio.ensure_future(wait_quiescent(child.pid, stdin, stdout, stderr_fd=r,
                                                         window=0.3, samples=2))
            await asyncio.sleep(0)
            os.write(w, b"late")
            return await looks

        assert not asyncio.run(main())
        assert not probe(stderr_fd=r)  # the bytes are still there at the first look
        assert not probe(stderr_fd=r, samples=1)
        assert probe()  # the probe only knows about stderr it is given
    finally:
        child.kill()
        child.communicate()
        os.close(r)
        os.close(w)


def test_a_gone_process_is_never_quiescent(launch, tmp_path):
    p = launch(_python(tmp_path, "pass"))
    p.wait(30)
    pid = p.pid
    p.close()
    r, w = os.pipe()
    try:
        assert not asyncio.run(wait_quiescent(pid, w, r))
    finally:
        os.close(r)
        os.close(w)
