"""Tell "the walredo process is still working" from "it will never answer", without a timeout.

A caller waiting for an answer cannot tell a slow process from one that dropped the answer (or
from a client that waits for an answer nobody asked for) except by a timeout. In a property
test that runs hundreds of examples, paying a full request timeout for every hanging example
makes hunting hang-class bugs take minutes. Linux can tell us more: this module samples the
process and its pipes through ``/proc`` and ``FIONREAD`` and says whether it is **quiescent**:

* (Q1) the stdin pipe holds no unread bytes: the process has consumed every request written;
* (Q2) the stdout pipe holds no unread bytes: nothing it wrote is waiting for us;
* (Q3) every thread of the process is asleep (state ``S``): not running, not in disk I/O;
* (Q4) the kernel reports (``wchan``) that the main thread sleeps in a pipe read or in
  poll/select/epoll: it waits for input, not in ``nanosleep`` or on a futex (a process that
  merely sleeps may wake up and answer, so it does not count as quiescent). A kernel that
  hides ``wchan`` gives no quiescence at all: a false "hang" is worse than a slow timeout;
* (Q5) two samples ``window`` seconds apart show no activity in between: the threads' CPU time
  (``schedstat``, in ns) and context-switch counts are unchanged and Q1-Q4, Q6 held both times;
* (Q6) no thread is blocked *writing*: no thread's ``wchan`` names a write wait
  (``pipe_write``, ``anon_pipe_write``, ``pipe_wait_writable``, socket sends...), and the
  stderr pipe holds no bytes our reader has not taken yet. A process that waits for room to
  write its stderr (or anything else) is busy, even though the word "pipe" is in its ``wchan``:
  it answers as soon as the reader catches up. (Older kernels sleep in ``pipe_wait`` both ways;
  there the fill levels of Q1, Q2 and the stderr pipe tell.)

A quiescent process that still owes answers will never send them: it waits for input that we
will not write. The converse needs care: a process that has answered everything is quiescent
too, so the caller decides what "owes" means (e.g. every live caller is waiting to read).

The probe only reads; it never signals or ptraces the process. On systems without ``/proc``
(or where the files are unreadable) :func:`sample` returns None and callers fall back to their
timeout; :func:`supported` says whether this system can tell at all. Written by hand: ``psutil`` (not installed here) reports thread states and CPU times
but not ``wchan``/``schedstat`` or pipe fill levels, and the whole probe is a few file reads.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import struct
import termios
from dataclasses import dataclass

__all__ = ["ProcessSample", "is_quiescent", "pipe_unread", "sample", "supported", "wait_quiescent"]

# Kernel functions a thread waiting for input sleeps in (names vary between kernel versions:
# pipe_read / anon_pipe_read / pipe_wait_readable, do_sys_poll / do_select / ep_poll, ...).
_INPUT_WAITS = ("pipe", "poll", "select", "epoll", "wait_woken", "unix_stream")
# Kernel functions a thread waiting for room to write sleeps in (checked first: "pipe_write"
# also contains "pipe").
_OUTPUT_WAITS = ("write", "writable", "send", "wait_for_space")


def _is_output_wait(wchan: str | None) -> bool:
    return wchan is not None and any(w in wchan for w in _OUTPUT_WAITS)


@dataclass(frozen=True)
class ProcessSample:
    """One look at a process and its pipes (see the module docstring for Q1-Q6)."""

    stdin_unread: int
    stdout_unread: int
    states: tuple[str, ...]
    wchan: str | None  # the main thread's; None: the kernel does not say (never quiescent)
    activity: tuple[int, ...]  # per thread: ns on CPU (or ticks), context switches
    stderr_unread: int = 0
    thread_wchans: tuple[str | None, ...] = ()  # per thread, same order as ``states``

    @property
    def writing(self) -> bool:
        """Q6 fails: some thread waits to write, or our stderr reader is behind."""
        return self.stderr_unread > 0 or any(_is_output_wait(w)
                                             for w in (self.wchan, *self.thread_wchans))

    @property
    def waiting_for_input(self) -> bool:
        """Q1-Q4 and Q6 for this sample."""
        if self.stdin_unread or self.stdout_unread or self.writing:
            return False
        if not self.states or any(s != "S" for s in self.states):
            return False
        return self.wchan is not None and any(w in self.wchan for w in _INPUT_WAITS)


def pipe_unread(fd: int) -> int:
    """Bytes waiting in the pipe ``fd`` is an end of (``FIONREAD`` works on either end of a
    Linux pipe)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def _thread_activity(task_dir: str) -> tuple[str, int, int]:
    """(state, cpu, context switches) of one thread."""
    stat = _read(f"{task_dir}/stat")
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    state = fields[0]
    try:
        cpu = int(_read(f"{task_dir}/schedstat").split()[0])
    except (OSError, ValueError, IndexError):
        cpu = int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    switches = 0
    for line in _read(f"{task_dir}/status").splitlines():
        if "ctxt_switches:" in line:
            switches += int(line.split(":")[1])
    return state, cpu, switches


def _wchan(path: str) -> str | None:
    try:
        wchan = _read(path).strip()
    except OSError:
        return None
    return None if wchan in ("", "0") else wchan  # "": hidden (kptr_restrict) or running


def sample(pid: int, stdin_fd: int, stdout_fd: int,
           stderr_fd: int | None = None) -> ProcessSample | None:
    """Sample process ``pid`` whose stdin we write through ``stdin_fd``, whose stdout we read
    through ``stdout_fd`` and (optionally) whose stderr we read through ``stderr_fd``. None
    when the system cannot tell (no ``/proc``, the process is gone, a pipe fd is closed)."""
    try:
        stdin_unread = pipe_unread(stdin_fd)
        stdout_unread = pipe_unread(stdout_fd)
        stderr_unread = pipe_unread(stderr_fd) if stderr_fd is not None else 0
        base = f"/proc/{pid}/task"
        states: list[str] = []
        wchans: list[str | None] = []
        activity: list[int] = []
        for tid in sorted(os.listdir(base)):
            state, cpu, switches = _thread_activity(f"{base}/{tid}")
            states.append(state)
            wchans.append(_wchan(f"{base}/{tid}/wchan"))
            activity += [cpu, switches]
        wchan = _wchan(f"/proc/{pid}/wchan")
    except (OSError, ValueError, IndexError):
        return None
    return ProcessSample(stdin_unread, stdout_unread, tuple(states), wchan, tuple(activity),
                         stderr_unread, tuple(wchans))


def is_quiescent(before: ProcessSample | None, after: ProcessSample | None) -> bool:
    """Q5: both samples wait for input and nothing ran in between."""
    if before is None or after is None:
        return False
    return (before.waiting_for_input and after.waiting_for_input
            and before.activity == after.activity and before.states == after.states)


@functools.cache
def supported() -> bool:
    """Whether this system reports what the probe needs: start a child that blocks reading a
    pipe and look at it (Linux with ``/proc`` and a readable ``wchan``). Cached."""
    import subprocess
    import sys
    import time

    try:
        child = subprocess.Popen([sys.executable, "-c", "import os; os.read(0, 1)"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    except OSError:
        return False
    try:
        assert child.stdin is not None and child.stdout is not None
        for _ in range(500):
            s = sample(child.pid, child.stdin.fileno(), child.stdout.fileno())
            if s is None:
                return False
            if s.waiting_for_input:
                return True
            time.sleep(0.01)
        return False
    finally:
        child.kill()
        child.wait()
        for f in (child.stdin, child.stdout):
            if f is not None:
                f.close()


async def wait_quiescent(pid: int, stdin_fd: int, stdout_fd: int, *, window: float = 0.01,
                         samples: int = 3, stderr_fd: int | None = None) -> bool:
    """Whether the process stays quiescent over ``samples`` consecutive looks ``window``
    seconds apart (the first look that is not quiescent returns False at once)."""
    prev = sample(pid, stdin_fd, stdout_fd, stderr_fd)
    if prev is None or not prev.waiting_for_input:
        return False
    for _ in range(samples - 1):
        await asyncio.sleep(window)
        cur = sample(pid, stdin_fd, stdout_fd, stderr_fd)
        if not is_quiescent(prev, cur):
            return False
        prev = cur
    return True
