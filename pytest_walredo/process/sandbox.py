"""Sandboxed launch of a walredo process, its whole process tree, and capture of its stderr.

``WalredoProcess.launch(config)`` runs ``<binary> [prefix_args...] --wal-redo --tenant-shard-id
<id> [args...]`` the way the pageserver does (see ``shared/seed/process.rs.txt``), plus the
hygiene a test runner needs:

- the environment is cleared except ``LD_LIBRARY_PATH``/``DYLD_LIBRARY_PATH`` (= ``lib_dir``,
  default ``<binary dir>/../lib``) and ``ASAN_OPTIONS``/``UBSAN_OPTIONS`` when we have them;
- only fds 0, 1 and 2 are inherited, all three are pipes;
- the binary leads its own session and process group; its working directory is the caller's
  (fresh, per-test) ``workdir``;
- optional resource limits (``rlimit_as``, ``rlimit_cpu``), core files off unless
  ``core_dumps``, and ``no_new_privs`` (on by default);
- every process it starts, even one that calls ``setsid`` or double-forks, is killed when the
  binary dies, when :meth:`WalredoProcess.kill` or :meth:`~WalredoProcess.close` is called, and
  when the test runner dies, even by SIGKILL.

The last point is the job of a small supervisor, :mod:`._shim` (one per walredo, a child
subreaper; see its docstring for why not the test runner itself, a PID namespace or a cgroup).
The binary is the shim's only child; :attr:`WalredoProcess.pid` is the binary's pid, and the
shim never touches the data pipes. The shim reports the binary's pid, its exit status and
what it swept on a control pipe, and closes a *death pipe* the moment the binary is reaped
(:attr:`WalredoProcess.death_fd`), so a client learns of the death at once even when a
descendant still holds stdout open. What could not be killed is reported
(:attr:`WalredoProcess.leftovers`, and a warning) instead of being waited for.

Stderr is read by a daemon thread with ``os.read`` in chunks, so it works with or without an
event loop and an endless line cannot exhaust memory: each line is cut at
``stderr_line_limit`` bytes, at most ``stderr_log_bytes`` are sent to the
``pytest_walredo.walredo.stderr`` logger, and the last ``stderr_keep_bytes`` of (cut) lines are
kept for failure reports (:meth:`WalredoProcess.stderr_tail`). The stderr pipe is enlarged to
1 MiB where the kernel allows, so a process that writes a burst of stderr rarely waits for the
reader; when it does, the hang check sees the unread bytes (:mod:`.quiescence`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import fcntl
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._shim import format_spec
from .errors import WalredoLaunchError
from .quiescence import pipe_unread

__all__ = [
    "DEFAULT_TENANT_SHARD_ID",
    "LaunchConfig",
    "WalredoProcess",
    "refserver_config",
]

stderr_log = logging.getLogger("pytest_walredo.walredo.stderr")
log = logging.getLogger("pytest_walredo.process")

DEFAULT_TENANT_SHARD_ID = "00000000000000000000000000000000"
PASSED_THROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS")
"""Variables copied from our environment to the child's when set (sanitizer settings)."""

_SHIM = Path(__file__).resolve().with_name("_shim.py")
SWEEP_SECONDS = 2.0
"""How long the shim keeps killing descendants before it reports the survivors."""
STDERR_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass(frozen=True)
class LaunchConfig:
    """How to start one walredo process.

    ``prefix_args`` go before ``--wal-redo``; they exist for interpreters, e.g.
    ``LaunchConfig(sys.executable, prefix_args=("-m", "pytest_walredo.refserver"))``
    (see :func:`refserver_config`). ``args`` go after ``--tenant-shard-id <id>``.
    """

    binary: Path
    args: Sequence[str] = ()
    lib_dir: Path | None = None
    workdir: Path | None = None
    tenant_shard_id: str = DEFAULT_TENANT_SHARD_ID
    stderr_line_limit: int = 4096
    """Longest stderr line logged or kept; the rest of a longer line is counted and dropped."""
    stderr_keep_bytes: int = 64 * 1024
    """Bytes of the most recent stderr lines kept for :meth:`WalredoProcess.stderr_tail`."""
    stderr_log_bytes: int = 1024 * 1024
    """Stderr bytes sent to the logger before logging stops (reading and the tail go on)."""
    prefix_args: Sequence[str] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Extra variables for the child (e.g. ``PYTHONPATH`` for an interpreter); empty by default."""
    rlimit_as: int | None = None
    """Address-space limit of the binary in bytes (``RLIMIT_AS``); None: inherited."""
    rlimit_cpu: int | None = None
    """CPU-time limit of the binary in seconds (``RLIMIT_CPU``: SIGXCPU, then SIGKILL); None:
    inherited."""
    core_dumps: bool = False
    """False: ``RLIMIT_CORE`` 0, a crash writes no core file. True: inherited."""
    no_new_privs: bool = True
    """``PR_SET_NO_NEW_PRIVS``: exec of set-uid files and file capabilities cannot raise the
    binary's (or its descendants') privileges."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "binary", Path(self.binary))
        if self.lib_dir is not None:
            object.__setattr__(self, "lib_dir", Path(self.lib_dir))
        if self.workdir is not None:
            object.__setattr__(self, "workdir", Path(self.workdir))
        for name in ("stderr_line_limit", "stderr_keep_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"LaunchConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("rlimit_as", "rlimit_cpu"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"LaunchConfig.{name} must be positive or None, got {value}")

    def resolved_binary(self) -> Path:
        """The binary as an absolute path; a bare name is looked up in *our* ``PATH`` (the child
        gets no ``PATH``)."""
        b = self.binary
        if os.sep not in str(b):
            found = shutil.which(str(b))
            if found is not None:
                return Path(found)
        return b.absolute()

    def argv(self) -> list[str]:
        """The child's full argv."""
        return [
            str(self.resolved_binary()),
            *self.prefix_args,
            "--wal-redo",
            "--tenant-shard-id",
            self.tenant_shard_id,
            *self.args,
        ]

    def environment(self) -> dict[str, str]:
        """The child's complete environment."""
        lib = self.lib_dir if self.lib_dir is not None else (
            self.resolved_binary().parent.parent / "lib"
        )
        env = {"LD_LIBRARY_PATH": str(lib), "DYLD_LIBRARY_PATH": str(lib)}
        for name in PASSED_THROUGH_ENV:
            value = os.environ.get(name)
            if value is not None:
                env[name] = value
        env.update(self.extra_env)
        return env

    def rlimits(self) -> list[tuple[str, int, int]]:
        """``(RLIMIT_name, soft, hard)`` set in the child before the exec. A limit never goes
        above the hard limit we run under (raising it would need privileges)."""
        out = []
        for name, value in (("RLIMIT_AS", self.rlimit_as), ("RLIMIT_CPU", self.rlimit_cpu)):
            if value is None:
                continue
            _, hard = resource.getrlimit(getattr(resource, name))
            soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
            # CPU: SIGXCPU at the soft limit, SIGKILL one second later.
            new_hard = soft + 1 if name == "RLIMIT_CPU" else soft
            if hard != resource.RLIM_INFINITY:
                new_hard = min(new_hard, hard)
            out.append((name, soft, new_hard))
        if not self.core_dumps:
            out.append(("RLIMIT_CORE", 0, 0))
        return out

    def limits_summary(self) -> str:
        """One line for reports, e.g. ``address space 4 GiB, CPU time unlimited, core files
        off, no_new_privs on``."""
        space = "inherited" if self.rlimit_as is None else _bytes_text(self.rlimit_as)
        cpu = "inherited" if self.rlimit_cpu is None else f"{self.rlimit_cpu} s"
        return (f"address space {space}, CPU time {cpu}, "
                f"core files {'on' if self.core_dumps else 'off'}, "
                f"no_new_privs {'on' if self.no_new_privs else 'off'}")


def _bytes_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def refserver_config(
    workdir: Path | None = None,
    *,
    pg_version: int | None = None,
    args: Sequence[str] = (),
    python: str | Path | None = None,
    **kw: object,
) -> LaunchConfig:
    """A :class:`LaunchConfig` for the reference walredo (``python -m pytest_walredo.refserver``).

    The package must be importable by ``python`` without ``PYTHONPATH`` (installed, or editable),
    since the child's environment is cleared.
    """
    extra = list(args)
    if pg_version is not None:
        extra = ["--pg-version", str(pg_version), *extra]
    return LaunchConfig(
        binary=Path(python or sys.executable),
        prefix_args=("-m", "pytest_walredo.refserver"),
        args=tuple(extra),
        workdir=workdir,
        **kw,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------------------------------
# The spawner thread
# ---------------------------------------------------------------------------------------------

# The shim asks for a parent-death signal (SIGTERM, on which it kills the whole tree), and
# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process
# (prctl(2): "the parent" is the creating thread). A shim spawned from, say, a short-lived
# event-loop thread of the sync facade would sweep its walredo as soon as that thread ends. So
# every spawn goes through one worker thread that lives until the interpreter exits
# (ThreadPoolExecutor workers never retire). The shim's lifeline pipe is the second, race-free
# channel: it reaches EOF only when every copy of our write end is closed, i.e. when this
# process is gone, however it died.
_spawner_executor: concurrent.futures.ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _spawner() -> concurrent.futures.ThreadPoolExecutor:
    global _spawner_executor
    with _spawner_lock:
        if _spawner_executor is None:
            _spawner_executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="walredo-spawner"
            )
        return _spawner_executor


def _forget_spawner_after_fork() -> None:
    # A forked child (multiprocessing "fork", pytester in-process forks...) inherits the
    # executor object but not its thread; submitting to it would wait forever. Start afresh.
    global _spawner_executor, _spawner_lock
    _spawner_executor = None
    _spawner_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_spawner_after_fork)


# ---------------------------------------------------------------------------------------------
# Stderr capture
# ---------------------------------------------------------------------------------------------


class _StderrCapture:
    """Reads a stderr pipe to EOF on a daemon thread, logging and keeping a bounded tail.

    Invariants (checked by tests): memory held is at most ``line_limit`` for the line being
    assembled plus ``keep_bytes`` (+ one line's overhead) of tail, whatever the process writes;
    ``total_bytes`` counts everything read. :meth:`stop` ends the thread without EOF (a
    descendant nobody could kill may hold the pipe open forever); the fd stays open until the
    thread has ended, so its number is never reused under a pending read.
    """

    CHUNK = 256 * 1024

    def __init__(self, fd: int, pid: int, line_limit: int, keep_bytes: int, log_bytes: int):
        self._fd = fd
        self._pid = pid
        self._line_limit = line_limit
        self._keep_bytes = keep_bytes
        self._log_budget = log_bytes
        self._lock = threading.Lock()
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0
        self._partial = bytearray()  # current line, at most line_limit bytes
        self._partial_dropped = 0  # bytes of the current line beyond line_limit
        self.total_bytes = 0
        self.total_lines = 0
        self._log_suppressed = False
        self._busy = False  # a chunk was read and is not yet fed
        self.done = threading.Event()
        os.set_blocking(fd, False)
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(
            target=self._run, name=f"walredo-stderr-{pid}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        stopping = False
        try:
            while True:
                self._busy = True
                try:
                    chunk = os.read(self._fd, self.CHUNK)
                except BlockingIOError:
                    self._busy = False
                    if stopping:
                        break
                    if any(fd == self._stop_r for fd, _ in poller.poll()):
                        stopping = True  # drain what is there, then end
                    continue
                except InterruptedError:
                    continue
                except OSError as exc:
                    log.warning("reading stderr of walredo pid %d failed: %s", self._pid, exc)
                    break
                if not chunk:
                    break
                self._feed(chunk)
            with self._lock:
                if self._partial or self._partial_dropped:
                    self._finish_line()
        finally:
            self._busy = False
            self.done.set()

    def _feed(self, chunk: bytes) -> None:
        with self._lock:
            self.total_bytes += len(chunk)
            start = 0
            while start < len(chunk):
                if self._log_suppressed and chunk.count(b"\n", start) > 1:
                    self._feed_lines_tail_only(chunk[start:])
                    return
                nl = chunk.find(b"\n", start)
                end = len(chunk) if nl < 0 else nl
                self._add_to_line(chunk, start, end)
                if nl < 0:
                    break
                self._finish_line()
                start = nl + 1

    def _add_to_line(self, chunk: bytes, start: int, end: int) -> None:
        room = self._line_limit - len(self._partial)
        piece = end - start
        if piece <= room:
            self._partial += chunk[start:end]
        else:
            self._partial += chunk[start:start + room]
            self._partial_dropped += piece - room

    def _feed_lines_tail_only(self, chunk: bytes) -> None:
        """Once logging has stopped, lines only matter if they can still be in the tail: walk
        the chunk's complete lines from the end, and skip (count, without building) every line
        that the lines after it push out of the tail anyway. A flood of short lines then costs
        a ``split`` per chunk instead of Python work per line, so the reader keeps up with the
        process writing them.

        A line is pushed out once the lines after it add up to ``keep_bytes`` (see
        :meth:`_finish_line`); each line adds at least ``min(len, line_limit)`` characters when
        ASCII and a quarter of that otherwise (UTF-8), plus one."""
        first, *middle, last = chunk.split(b"\n")
        limit = self._line_limit
        acc = 0
        keep_from = len(middle)
        while keep_from > 0 and acc < self._keep_bytes:
            keep_from -= 1
            line = middle[keep_from]
            n = min(len(line), limit)
            acc += (n if line.isascii() else n // 4) + 1
        if acc >= self._keep_bytes and keep_from > 0:
            # The partial line, ``first``, the old tail and middle[:keep_from] are all out.
            self.total_lines += 1 + keep_from
            self._partial = bytearray()
            self._partial_dropped = 0
            self._tail.clear()
            self._tail_size = 0
        else:
            self._add_to_line(first, 0, len(first))
            self._finish_line()
            keep_from = 0
        for line in middle[keep_from:]:
            self._add_to_line(line, 0, len(line))
            self._finish_line()
        self._add_to_line(last, 0, len(last))

    def _finish_line(self) -> None:
        # Called with self._lock held.
        text = self._partial.decode("utf-8", "replace")
        if self._partial_dropped:
            text += f" [... {self._partial_dropped} more bytes of this line dropped]"
        self._partial = bytearray()
        self._partial_dropped = 0
        self.total_lines += 1
        self._log(text)
        if len(text) > self._keep_bytes:
            text = text[-self._keep_bytes:]
        self._tail.append(text)
        self._tail_size += len(text) + 1
        while self._tail_size > self._keep_bytes and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft()) + 1

    def _log(self, text: str) -> None:
        if self._log_suppressed:
            return
        self._log_budget -= len(text) + 1
        if self._log_budget < 0:
            self._log_suppressed = True
            stderr_log.warning(
                "[walredo pid %d] stderr logging stopped: the log budget is spent "
                "(the tail is still kept)", self._pid,
            )
            return
        stderr_log.warning("[walredo pid %d] %s", self._pid, text)

    def tail(self) -> str:
        """The kept lines, oldest first, plus the unfinished last line if any."""
        with self._lock:
            lines = list(self._tail)
            if self._partial or self._partial_dropped:
                partial = self._partial.decode("utf-8", "replace")
                if self._partial_dropped:
                    partial += f" [... {self._partial_dropped} more bytes so far]"
                lines.append(partial)
        return "\n".join(lines)

    def unread(self) -> int:
        """Bytes written to the pipe and not yet read (0 once the reader has ended)."""
        if self.done.is_set():
            return 0
        try:
            return pipe_unread(self._fd)
        except OSError:
            return 0

    def settled(self) -> bool:
        """Everything written so far has been read and fed (or the reader has ended)."""
        return self.done.is_set() or (not self._busy and self.unread() == 0)

    def stop(self) -> None:
        """Make the reader end after reading what is in the pipe now, EOF or not."""
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close_fds(self) -> None:
        """Close the stderr fd and the stop pipe; only after the thread has ended."""
        for fd in (self._fd, self._stop_r, self._stop_w):
            _close_quietly(fd)


# ---------------------------------------------------------------------------------------------
# The shim's reports
# ---------------------------------------------------------------------------------------------


class _Reports:
    """Parses the shim's control pipe (see :mod:`._shim`) as lines arrive. Thread-safe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._buf = b""
        self._lock = threading.Lock()
        self.eof = False
        self.pid: int | None = None
        self.error: tuple[int, str] | None = None
        self.returncode: int | None = None
        self.swept: tuple[int, list[int]] | None = None
        self.subreaper = True

    def pump(self) -> None:
        """Read and parse whatever the shim has written (never blocks)."""
        with self._lock:
            while not self.eof:
                try:
                    data = os.read(self.fd, 4096)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self.eof = True
                    break
                self._buf += data
            *lines, self._buf = self._buf.split(b"\n")
            for line in lines:
                self._parse(line.decode("ascii", "replace").split())

    def _parse(self, words: list[str]) -> None:
        if not words:
            return
        what, args = words[0], words[1:]
        if what == "pid":
            self.pid = int(args[0])
        elif what == "error":
            self.error = (int(args[0]), args[1] if len(args) > 1 else "exec")
        elif what == "exit":
            self.returncode = int(args[0])
        elif what == "swept":
            left = [] if args[1] == "-" else [int(p) for p in args[1].split(",")]
            self.swept = (int(args[0]), left)
        elif what == "nosubreaper":
            self.subreaper = False

    def wait(self, until: float, done: Callable[[], bool]) -> None:
        """Pump until ``done()`` is true, EOF, or the monotonic time ``until``."""
        while True:
            self.pump()
            if done() or self.eof:
                return
            left = until - time.monotonic()
            if left <= 0:
                return
            select.select([self.fd], [], [], left)


# ---------------------------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------------------------


class WalredoProcess:
    """A running (or finished) walredo child with piped stdin/stdout/stderr, under its shim.

    The client talks over :attr:`stdin_fd` / :attr:`stdout_fd` (raw fds, owned by this object
    and closed by :meth:`close`) and learns of the binary's death from :attr:`death_fd`.
    Create with :meth:`launch`.
    """

    def __init__(
        self,
        config: LaunchConfig,
        shim: subprocess.Popen[bytes] | _ForkedShim,
        reports: _Reports,
        *,
        pid: int,
        stdin_fd: int,
        stdout_fd: int,
        stderr_fd: int,
        lifeline_fd: int,
        death_fd: int,
    ) -> None:
        self.config = config
        self._shim = shim
        self._reports = reports
        self._pid = pid
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.death_fd = death_fd
        """Readable (EOF) from the moment the binary has exited and been reaped, forever."""
        self._lifeline = lifeline_fd
        self._pidfd = self._open_pidfd()
        self._closed = False
        self._close_lock = threading.Lock()
        self._stderr = _StderrCapture(
            stderr_fd, pid, config.stderr_line_limit, config.stderr_keep_bytes,
            config.stderr_log_bytes,
        )

    @classmethod
    def launch(cls, config: LaunchConfig, *, start_timeout: float = 60.0) -> WalredoProcess:
        """Start the process described by ``config``.

        Raises :class:`WalredoLaunchError` (one sentence naming the path) when the binary is
        missing, not executable or not a valid executable, ``workdir`` is missing, or a limit
        cannot be set. ``start_timeout`` bounds the wait for the shim's report of the exec.
        """
        argv = config.argv()
        binary = argv[0]
        if config.workdir is not None and not Path(config.workdir).is_dir():
            raise WalredoLaunchError(
                f"cannot launch walredo {binary}: working directory {config.workdir} does not exist"
            )
        shim, reports, fds = _spawner().submit(_start_shim, config, argv).result()
        in_w, out_r, err_r, life_w, death_r = fds
        reports.wait(time.monotonic() + start_timeout,
                     lambda: reports.pid is not None or reports.error is not None)
        if reports.pid is None:
            try:
                os.write(life_w, b"K")
            except OSError:
                pass
            for fd in (in_w, out_r, life_w, death_r):
                _close_quietly(fd)
            try:
                shim.wait(5)
            except subprocess.TimeoutExpired:
                shim.kill()
                shim.wait()
            said = _drain(err_r).decode("utf-8", "replace").strip()
            _close_quietly(err_r)
            _close_quietly(reports.fd)
            if reports.error is not None:
                err, stage = reports.error
                raise WalredoLaunchError(_launch_failure(binary, err, stage))
            detail = said.splitlines()[-1] if said else f"exit status {shim.returncode}"
            raise WalredoLaunchError(
                f"cannot launch walredo {binary}: its supervisor ({sys.executable} {_SHIM.name}) "
                f"did not start it ({detail})"
            )
        log.debug("launched walredo pid %d under shim %d: %s", reports.pid, shim.pid, argv)
        return cls(config, shim, reports, pid=reports.pid, stdin_fd=in_w, stdout_fd=out_r,
                   stderr_fd=err_r, lifeline_fd=life_w, death_fd=death_r)

    # -- state ----------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The binary's pid (not the shim's)."""
        return self._pid

    @property
    def shim_pid(self) -> int:
        """The supervising shim's pid (the binary's parent)."""
        return self._shim.pid

    @property
    def argv(self) -> list[str]:
        return self.config.argv()

    @property
    def returncode(self) -> int | None:
        """Exit status once the binary has been reaped (negative: killed by that signal), else
        None."""
        return self._reports.returncode

    @property
    def stderr_fd(self) -> int:
        """Our read end of the stderr pipe (for fill-level checks; read only by the capture
        thread)."""
        return self._stderr._fd

    def dead(self) -> bool:
        """Whether the binary has exited and been reaped (the death pipe is at EOF)."""
        try:
            return bool(select.select([self.death_fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def poll(self) -> int | None:
        """The exit status if the binary has exited, else None (never blocks)."""
        self._reports.pump()
        if self._reports.returncode is None and self._reports.eof:
            self._shim_gone()
        return self._reports.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds (None: forever) for the exit; return the status or
        None."""
        until = time.monotonic() + (timeout if timeout is not None else 1e9)
        self._reports.wait(until, lambda: self._reports.returncode is not None)
        return self.poll()

    def _shim_gone(self) -> None:
        """The control pipe ended without an exit report: the shim itself was killed, and the
        binary with it (its parent-death signal is SIGKILL).

        The shim closes the control pipe only when it exits, so at EOF it is exiting: wait for
        it (briefly) rather than ``poll()``, which could still see it running for a moment and
        leave the binary's status unknown although it is dead."""
        try:
            self._shim.wait(5)
        except subprocess.TimeoutExpired:
            return
        self._reports.returncode = -signal.SIGKILL
        log.warning("the supervisor of walredo pid %d ended (%s) without reporting its exit",
                    self._pid, self._shim.returncode)

    @property
    def leftovers(self) -> list[int]:
        """Descendants the shim could not kill (known once it has swept; normally empty)."""
        swept = self._reports.swept
        return list(swept[1]) if swept is not None else []

    @property
    def subreaper(self) -> bool:
        """Whether the kernel let the shim collect orphans (False: descendants that leave the
        binary's process group before it dies may escape, and are then not swept)."""
        self._reports.pump()
        return self._reports.subreaper

    def stderr_tail(self) -> str:
        """The most recent stderr lines (bounded by ``stderr_keep_bytes``)."""
        return self._stderr.tail()

    @property
    def stderr_total_bytes(self) -> int:
        """Every stderr byte read so far, kept or not."""
        return self._stderr.total_bytes

    def wait_stderr(self, timeout: float) -> bool:
        """Wait until stderr reached EOF (the process and its descendants closed it)."""
        return self._stderr.done.wait(timeout)

    def stderr_settled(self) -> bool:
        """Every stderr byte written so far has been read into the tail."""
        return self._stderr.settled()

    def stderr_unread(self) -> int:
        """Stderr bytes waiting in the pipe for our reader."""
        return self._stderr.unread()

    def seccomp_mode(self) -> int | None:
        """The ``Seccomp:`` field of ``/proc/PID/status`` (0 off, 1 strict, 2 filter), or None
        when the process is gone or /proc is unavailable."""
        if self.dead():
            return None
        mode = None
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Seccomp:"):
                        mode = int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            return None
        # The shim reaps the binary only after it died: if it is still not dead, the pid was
        # not reused and the line above was the binary's.
        return None if self.dead() else mode

    # -- teardown -------------------------------------------------------------------------------

    def _open_pidfd(self) -> int | None:
        """A pidfd of the binary, to signal it without a pid-reuse race: opened while the death
        pipe is still open, so the pid is still the binary's (the shim reaps it only after)."""
        try:
            fd = os.pidfd_open(self._pid)
        except (AttributeError, OSError):
            return None
        if self.dead():
            os.close(fd)
            return None
        return fd

    def kill(self) -> None:
        """SIGKILL the binary now and ask the shim to SIGKILL every descendant, without waiting
        (safe to call from an event loop)."""
        if self._closed:
            return
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass  # already exited
        try:
            os.write(self._lifeline, b"K")
        except OSError:
            pass  # the shim is gone already (and the binary with it)

    def close(self, stderr_join_timeout: float = 5.0) -> int | None:
        """Kill the binary and all its descendants, reap, finish reading stderr, close the
        pipes. Never waits for a pipe held by a process that could not be killed: that is
        reported (:attr:`leftovers`, a warning) instead.

        Idempotent. Returns the exit status.
        """
        with self._close_lock:
            if self._closed:
                return self.returncode
            self._closed = True
            # Kill the binary ourselves first (the shim then finds it dead at once rather
            # than killing it in its sweep), then EOF on the lifeline: the shim sweeps
            # everything else and exits.
            if self._pidfd is not None and self._reports.returncode is None:
                try:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                except OSError:
                    pass  # already exited
            _close_quietly(self._lifeline)
            try:
                self._shim.wait(SWEEP_SECONDS + 10)
            except subprocess.TimeoutExpired:
                log.warning("the supervisor of walredo pid %d did not exit; killing it", self._pid)
                self._shim.kill()  # the binary dies with it (parent-death signal)
                self._shim.wait()
            self._reports.wait(time.monotonic() + 1.0, lambda: self._reports.eof)
            self.poll()
            for fd in (self.stdin_fd, self.stdout_fd):
                _close_quietly(fd)
            left = self.leftovers
            if left:
                log.warning("walredo pid %d: descendants %s could not be killed; not waiting "
                            "for their end of the stderr pipe", self._pid, left)
                self._stderr.stop()
            elif not self._stderr.join(stderr_join_timeout):
                log.warning("stderr of walredo pid %d still open after %.1fs; stopped reading",
                            self._pid, stderr_join_timeout)
                self._stderr.stop()
            if self._stderr.join(5.0):
                self._stderr.close_fds()
            for fd in (self.death_fd, self._reports.fd):
                _close_quietly(fd)
            if self._pidfd is not None:
                _close_quietly(self._pidfd)
            return self.returncode

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> WalredoProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                # Dropping the lifeline makes the shim sweep the tree and exit.
                _close_quietly(self._lifeline)
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<WalredoProcess pid={self.pid} returncode={self.returncode}>"


class _ForkedShim:
    """A shim forked by the shim server (not our child): the part of ``subprocess.Popen``
    that :class:`WalredoProcess` uses, through a pidfd the server opened before the shim
    could be reaped. The exit status is the server's to collect; ours reads 0."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self._pidfd is not None:
            if select.select([self._pidfd], [], [], 0)[0]:
                self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._pidfd is not None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"shim {self.pid}", timeout or 0.0)
            self._ended()
        return self.returncode or 0

    def _ended(self) -> None:
        self.returncode = 0
        if self._pidfd is not None:
            _close_quietly(self._pidfd)
            self._pidfd = None

    def kill(self) -> None:
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass

    def __del__(self) -> None:
        if getattr(self, "_pidfd", None) is not None:
            _close_quietly(self._pidfd)  # type: ignore[arg-type]


class _ShimServer:
    """This runner's shim server (``_shim.py --server``, see :mod:`._shim`): one interpreter
    started once, forking a shim per launch in about a millisecond, instead of an interpreter
    started per launch. Used from the spawner thread only (its parent-death signal is tied
    to that thread, like every shim's was)."""

    def __init__(self) -> None:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        life_r, life_w = os.pipe2(os.O_CLOEXEC)
        env = {k: os.environ[k] for k in ("LD_LIBRARY_PATH",) if k in os.environ}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_SHIM), "--server", str(life_r),
                 str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                pass_fds=(life_r, theirs.fileno()), env=env, close_fds=True,
                start_new_session=True)
        except BaseException:
            os.close(life_w)
            ours.close()
            raise
        finally:
            os.close(life_r)
            theirs.close()
        self.sock = ours
        self.lifeline = life_w  # held only here: EOF when this runner is gone

    def fork_shim(self, spec: list[str], workdir: Path | None, fds: Sequence[int]) -> _ForkedShim:
        """Have the server fork a shim with ``spec`` and ``fds`` (OSError if it cannot)."""
        import socket

        msg = "\0".join([str(workdir) if workdir is not None else "", *spec])
        socket.send_fds(self.sock, [msg.encode("utf-8", "surrogateescape")], list(fds))
        reply, got, _flags, _addr = socket.recv_fds(self.sock, 64, 1)
        if not reply or not got:
            for fd in got:
                _close_quietly(fd)
            raise OSError(errno.EPIPE, "the walredo shim server ended")
        return _ForkedShim(int(reply), got[0])

    def close(self) -> None:
        _close_quietly(self.lifeline)
        self.sock.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_shim_server: _ShimServer | None = None
_shim_server_failed = False
use_shim_server = True
"""False: start one interpreter per shim (``benchmarks/bench_fixture.py`` compares both)."""


def _server() -> _ShimServer | None:
    """The shim server, started on first use (None: it cannot run here; shims are started
    one interpreter each, as before). Spawner thread only."""
    global _shim_server, _shim_server_failed
    if not use_shim_server:
        return None
    if _shim_server is None and not _shim_server_failed:
        if not hasattr(os, "pidfd_open") or not hasattr(__import__("socket"), "send_fds"):
            _shim_server_failed = True
            return None
        try:
            _shim_server = _ShimServer()
        except OSError as exc:
            log.warning("walredo shim server could not start (%s); one interpreter per shim", exc)
            _shim_server_failed = True
    return _shim_server


def _forget_server_after_fork() -> None:
    global _shim_server
    _shim_server = None  # the server talks to our parent; a forked child starts its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_server_after_fork)


def _start_shim(config: LaunchConfig, argv: list[str]) -> tuple[
        subprocess.Popen[bytes] | _ForkedShim, _Reports, tuple[int, int, int, int, int]]:
    """On the spawner thread: create the pipes and start the shim (see :mod:`._shim`)."""
    fds: list[int] = []
    try:
        def pipe() -> tuple[int, int]:
            r, w = os.pipe2(os.O_CLOEXEC)
            fds.extend((r, w))
            return r, w

        in_r, in_w = pipe()
        out_r, out_w = pipe()
        err_r, err_w = pipe()
        life_r, life_w = pipe()
        ctl_r, ctl_w = pipe()
        death_r, death_w = pipe()
        try:
            fcntl.fcntl(err_w, _F_SETPIPE_SZ, STDERR_PIPE_SIZE)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: keep the default
        spec = format_spec({
            "argv": argv, "env": config.environment(), "parent": os.getpid(),
            "lifeline": life_r, "control": ctl_w, "death": death_w,
            "rlimits": config.rlimits(), "no_new_privs": config.no_new_privs,
            "sweep_seconds": SWEEP_SECONDS,
        })
        global _shim_server
        shim: subprocess.Popen[bytes] | _ForkedShim | None = None
        server = _server()
        if server is not None:
            try:
                shim = server.fork_shim(spec, config.workdir,
                                        (in_r, out_w, err_w, life_r, ctl_w, death_w))
            except OSError as exc:
                log.warning("walredo shim server failed (%s); starting a new one", exc)
                _shim_server = None
                server.sock.close()
        env = {k: os.environ[k] for k in ("LD_LIBRARY_PATH",) if k in os.environ}
        try:
            shim = shim or subprocess.Popen(
                [sys.executable, "-I", "-S", str(_SHIM), *spec],
                stdin=in_r, stdout=out_w, stderr=err_w, pass_fds=(life_r, ctl_w, death_w),
                env=env, cwd=str(config.workdir) if config.workdir is not None else None,
                close_fds=True, start_new_session=True,
            )
        except OSError as exc:
            raise WalredoLaunchError(
                f"cannot launch walredo {argv[0]}: its supervisor {sys.executable} cannot be "
                f"started ({exc.strerror or exc})"
            ) from exc
    except BaseException:
        for fd in fds:
            _close_quietly(fd)
        raise
    for fd in (in_r, out_w, err_w, life_r, ctl_w, death_w):
        os.close(fd)
    os.set_blocking(life_w, False)
    os.set_blocking(death_r, False)
    return shim, _Reports(ctl_r), (in_w, out_r, err_r, life_w, death_r)


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = b""
    while len(out) < 1 << 16:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            break
        if not data:
            break
        out += data
    return out


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _launch_failure(binary: str, err: int, stage: str = "exec") -> str:
    if stage != "exec":
        what = {"rlimit": "set its resource limits", "no_new_privs": "set no_new_privs",
                "setsid": "start a session", "prctl": "set its parent-death signal"}.get(stage, stage)
        return f"cannot launch walredo {binary}: could not {what} ({os.strerror(err)})"
    if err == errno.ENOENT:
        return f"cannot launch walredo {binary}: no such file"
    if err == errno.EACCES:
        return f"cannot launch walredo {binary}: not executable (permission denied)"
    if err == errno.ENOEXEC:
        return f"cannot launch walredo {binary}: not a valid executable (exec format error)"
    return f"cannot launch walredo {binary}: {os.strerror(err)}"
