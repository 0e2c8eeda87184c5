"""Sandboxed launch of a walredo process and capture of its stderr.

``WalredoProcess.launch(config)`` runs ``<binary> [prefix_args...] --wal-redo --tenant-shard-id
<id> [args...]`` the way the pageserver does (see ``shared/seed/process.rs.txt``), plus the
hygiene a test runner needs:

- the environment is cleared except ``LD_LIBRARY_PATH``/``DYLD_LIBRARY_PATH`` (= ``lib_dir``,
  default ``<binary dir>/../lib``) and ``ASAN_OPTIONS``/``UBSAN_OPTIONS`` when we have them;
- only fds 0, 1 and 2 are inherited (``close_fds``), all three are pipes;
- the child leads its own session and process group, so :meth:`WalredoProcess.close` can kill
  it together with anything it forked;
- its working directory is the caller's (fresh, per-test) ``workdir``;
- it gets SIGKILL when the test runner dies (``PR_SET_PDEATHSIG``), see :func:`_spawner`.

Stderr is read by a daemon thread with ``os.read`` in chunks, so it works with or without an
event loop and an endless line cannot exhaust memory: each line is cut at
``stderr_line_limit`` bytes, at most ``stderr_log_bytes`` are sent to the
``pytest_walredo.walredo.stderr`` logger, and the last ``stderr_keep_bytes`` of (cut) lines are
kept for failure reports (:meth:`WalredoProcess.stderr_tail`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import WalredoLaunchError

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "binary", Path(self.binary))
        if self.lib_dir is not None:
            object.__setattr__(self, "lib_dir", Path(self.lib_dir))
        if self.workdir is not None:
            object.__setattr__(self, "workdir", Path(self.workdir))
        for name in ("stderr_line_limit", "stderr_keep_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"LaunchConfig.{name} must be positive, got {getattr(self, name)}")

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
# Parent-death signal
# ---------------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> object | None:
    # ctypes by hand: the standard library has no prctl(), and the only alternative (a helper
    # executable) would need building. Resolved once, here, so the forked child only calls it.
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


_prctl = _load_prctl()


def _make_preexec(parent_pid: int) -> Callable[[], None]:
    """The function run in the child between fork and exec.

    It asks for SIGKILL when the parent dies, then checks ``getppid()``: if the parent died
    before prctl took effect, the child was already re-parented and would never get the signal,
    so it kills itself. Only async-signal-safe-ish work happens here (one foreign call on a
    pre-resolved pointer, getppid, kill): subprocess warns that preexec_fn can deadlock in a
    threaded parent when it takes locks, and this function takes none.
    """
    prctl = _prctl

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # type: ignore[operator]
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process
# (prctl(2): "the parent" is the creating thread). A child spawned from, say, a short-lived
# event-loop thread of the sync facade would be killed as soon as that thread ends. So every
# spawn goes through one worker thread that lives until the interpreter exits
# (ThreadPoolExecutor workers never retire). When the test runner dies, the thread dies with it
# and the kernel delivers SIGKILL to every walredo child; at a normal interpreter exit the
# executor's shutdown ends the thread too, so leaked children do not outlive us either.
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
    ``total_bytes`` counts everything read.
    """

    CHUNK = 64 * 1024

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
        self.done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"walredo-stderr-{pid}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self._fd, self.CHUNK)
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
            self.done.set()

    def _feed(self, chunk: bytes) -> None:
        with self._lock:
            self.total_bytes += len(chunk)
            start = 0
            while start < len(chunk):
                nl = chunk.find(b"\n", start)
                end = len(chunk) if nl < 0 else nl
                room = self._line_limit - len(self._partial)
                piece = end - start
                if piece <= room:
                    self._partial += chunk[start:end]
                else:
                    self._partial += chunk[start:start + room]
                    self._partial_dropped += piece - room
                if nl < 0:
                    break
                self._finish_line()
                start = nl + 1

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

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


# ---------------------------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------------------------


class WalredoProcess:
    """A running (or finished) walredo child with piped stdin/stdout/stderr.

    The client talks over :attr:`stdin_fd` / :attr:`stdout_fd` (raw fds, owned by this object
    and closed by :meth:`close`). Create with :meth:`launch`.
    """

    def __init__(
        self,
        config: LaunchConfig,
        popen: subprocess.Popen[bytes],
        stdin_fd: int,
        stdout_fd: int,
        stderr_fd: int,
    ) -> None:
        self.config = config
        self._popen = popen
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self._stderr_fd = stderr_fd
        self._closed = False
        self._close_lock = threading.Lock()
        self._stderr = _StderrCapture(
            stderr_fd, popen.pid, config.stderr_line_limit, config.stderr_keep_bytes,
            config.stderr_log_bytes,
        )

    @classmethod
    def launch(cls, config: LaunchConfig) -> WalredoProcess:
        """Start the process described by ``config``.

        Raises :class:`WalredoLaunchError` (one sentence naming the path) when the binary is
        missing, not executable or not a valid executable, or ``workdir`` is missing.
        """
        return _spawner().submit(cls._launch_on_spawner, config).result()

    @classmethod
    def _launch_on_spawner(cls, config: LaunchConfig) -> WalredoProcess:
        argv = config.argv()
        binary = argv[0]
        if config.workdir is not None and not Path(config.workdir).is_dir():
            raise WalredoLaunchError(
                f"cannot launch walredo {binary}: working directory {config.workdir} does not exist"
            )
        # Our ends are O_CLOEXEC; subprocess dup2()s the child's ends onto 0-2 (clearing the
        # flag there) and close_fds closes everything else in the child.
        fds: list[int] = []
        try:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            fds += [in_r, in_w]
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            fds += [out_r, out_w]
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            fds += [err_r, err_w]
            try:
                popen = subprocess.Popen(
                    argv,
                    executable=binary,
                    stdin=in_r,
                    stdout=out_w,
                    stderr=err_w,
                    env=config.environment(),
                    cwd=str(config.workdir) if config.workdir is not None else None,
                    close_fds=True,
                    start_new_session=True,
                    preexec_fn=_make_preexec(os.getpid()),
                )
            except OSError as exc:
                raise WalredoLaunchError(_launch_failure(binary, exc)) from exc
            except subprocess.SubprocessError as exc:
                raise WalredoLaunchError(
                    f"cannot launch walredo {binary}: the child failed before exec ({exc})"
                ) from exc
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        log.debug("launched walredo pid %d: %s", popen.pid, argv)
        return cls(config, popen, in_w, out_r, err_r)

    # -- state ----------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def argv(self) -> list[str]:
        return self.config.argv()

    @property
    def returncode(self) -> int | None:
        """Exit status once reaped (negative: killed by that signal), else None."""
        return self._popen.returncode

    def poll(self) -> int | None:
        """Reap the child if it has exited; return :attr:`returncode`."""
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds for the exit; return the status or None."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_tail(self) -> str:
        """The most recent stderr lines (bounded by ``stderr_keep_bytes``)."""
        return self._stderr.tail()

    @property
    def stderr_total_bytes(self) -> int:
        """Every stderr byte read so far, kept or not."""
        return self._stderr.total_bytes

    def wait_stderr(self, timeout: float) -> bool:
        """Wait until stderr reached EOF (the process and its group closed it)."""
        return self._stderr.done.wait(timeout)

    def seccomp_mode(self) -> int | None:
        """The ``Seccomp:`` field of ``/proc/PID/status`` (0 off, 1 strict, 2 filter), or None
        when the process is gone or /proc is unavailable."""
        if self.returncode is not None:
            return None
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Seccomp:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return None

    # -- teardown -------------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the process group now, without waiting (safe to call from an event loop)."""
        if self._popen.returncode is not None:
            return  # reaped: the pid (and group id) may belong to someone else by now
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            # Something in the group is not ours to signal (e.g. it changed uid): at least
            # kill the child itself.
            try:
                self._popen.kill()
            except ProcessLookupError:
                pass

    def close(self, stderr_join_timeout: float = 5.0) -> int | None:
        """Kill the process group, reap the child, finish reading stderr and close the pipes.

        Idempotent. Returns the exit status.
        """
        with self._close_lock:
            if self._closed:
                return self.returncode
            self._closed = True
            self.kill()
            self._popen.wait()
            for fd in (self.stdin_fd, self.stdout_fd):
                _close_quietly(fd)
            if self._stderr.join(stderr_join_timeout):
                _close_quietly(self._stderr_fd)
            else:
                # Someone outside the process group still holds the pipe open; closing the fd
                # under a blocked read could hand the number to an unrelated file. Leak it.
                log.warning("stderr of walredo pid %d still open after %.1fs; leaving it",
                            self.pid, stderr_join_timeout)
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
                self.kill()
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<WalredoProcess pid={self.pid} returncode={self.returncode}>"


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _launch_failure(binary: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"cannot launch walredo {binary}: no such file"
    if isinstance(exc, PermissionError):
        return f"cannot launch walredo {binary}: not executable (permission denied)"
    if exc.errno == errno.ENOEXEC:
        return f"cannot launch walredo {binary}: not a valid executable (exec format error)"
    return f"cannot launch walredo {binary}: {exc.strerror or exc}"
