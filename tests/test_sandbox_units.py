"""Fast tests of the pieces of ``pytest_walredo.process.sandbox`` that the launch tests reach
only now and then: the supervisor's start in both ways (forked by the shim server, or one
interpreter per shim) and its failures, teardown when the supervisor is stuck or reports
descendants it could not kill, the stderr reader on bare pipes, and the forked shim's
``poll``/``wait``.

Processes here are ``/bin/sh`` (or ``sleep``); what the user sees is read from ``/proc``, from
the exit status and from the log.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_process_sandbox import _expected_tail  # the tail reading line by line gives

from pytest_walredo.process import LaunchConfig, WalredoLaunchError, WalredoProcess, sandbox
from pytest_walredo.process.sandbox import (
    _ForkedShim,
    _launch_failure,
    _Reports,
    _StderrCapture,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
_LIB = "/nonexistent/walredo-test-lib"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state is [0], ppid [1], sid [3])."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


def _ppid(pid: int) -> int:
    return int(_stat(pid)[1])


def _sid(pid: int) -> int:
    return int(_stat(pid)[3])


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if item)


def _gone(pid: int) -> bool:
    try:
        return _stat(pid)[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_until(cond: object, limit: float = 30.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return bool(cond())  # type: ignore[operator]


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _sh(script: str, workdir: Path | None, **kw: object) -> LaunchConfig:
    return LaunchConfig(Path("/bin/sh"), prefix_args=("-c", script, "sh"), workdir=workdir,
                        **kw)  # type: ignore[arg-type]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "pytest_walredo.process" and r.levelno >= logging.WARNING]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def fresh_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No shim server yet (the next launch starts one); the one started here is closed after."""
    monkeypatch.setattr(sandbox, "_shim_server", None)
    monkeypatch.setattr(sandbox, "_shim_server_failed", False)
    yield
    server = sandbox._shim_server
    if server is not None:
        server.close()


@pytest.fixture(params=["server", "direct"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
         fresh_server: None) -> str:
    """Both ways of starting the supervisor: forked by the shim server, or its own interpreter."""
    monkeypatch.setenv("LD_LIBRARY_PATH", _LIB)
    if request.param == "direct":
        monkeypatch.setattr(sandbox, "use_shim_server", False)
    return str(request.param)


# ---------------------------------------------------------------------------------------------
# The supervisor, started both ways
# ---------------------------------------------------------------------------------------------


def test_supervisor_runs_apart_from_the_runner_and_the_binary_gets_its_pipes(
    mode: str, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pytest_walredo.process")
    script = 'echo "up" >&2; read line; echo "got $line"; echo bye >&2; exit 4'
    # The shim server must not hold our stdin (or stdout): give fd 0 something to tell apart.
    saved0 = os.dup(0)
    r0, w0 = os.pipe()
    os.dup2(r0, 0)
    try:
        proc = WalredoProcess.launch(_sh(script, workdir))
    finally:
        os.dup2(saved0, 0)
        for fd in (saved0, r0, w0):
            os.close(fd)
    try:
        assert proc.config.workdir == workdir and proc.argv == proc.config.argv()
        assert proc.closed is False
        shim = proc.shim_pid
        assert _ppid(proc.pid) == shim
        if mode == "direct":
            assert _ppid(shim) == os.getpid()
        else:  # forked by the server, which is our child
            server = _ppid(shim)
            assert server != os.getpid() and _ppid(server) == os.getpid()
            assert _environ(server) == {"LD_LIBRARY_PATH": _LIB}
            assert _sid(server) == server
            for fd in (0, 1):
                assert os.readlink(f"/proc/{server}/fd/{fd}") == "/dev/null"
        # the supervisor: its own session, nothing of our environment
        assert _sid(shim) == shim != _sid(os.getpid())
        assert _environ(shim) == {"LD_LIBRARY_PATH": _LIB}
        assert os.readlink(f"/proc/{proc.pid}/cwd") == str(workdir)
        assert fcntl.fcntl(proc.stderr_fd, _F_GETPIPE_SZ) == sandbox.STDERR_PIPE_SIZE
        assert proc.wait_stderr(0.01) is False  # still running, stderr open
        os.write(proc.stdin_fd, b"hello\n")
        assert proc.wait() == 4
        assert os.read(proc.stdout_fd, 100) == b"got hello\n"
        assert proc.wait_stderr(30) and proc.stderr_tail() == "up\nbye"
    finally:
        fds = (proc.stdin_fd, proc.stdout_fd, proc.stderr_fd, proc.death_fd)
        assert proc.close() == 4
    assert proc.closed is True
    assert not any(_is_open(fd) for fd in fds)
    assert _warnings(caplog) == []
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG
            and r.getMessage().startswith("launched")] == [
        f"launched walredo pid {proc.pid} under shim {shim}: {proc.argv}"]

    # without a workdir the binary runs where we do
    with WalredoProcess.launch(_sh("read line", None)) as proc:
        assert os.readlink(f"/proc/{proc.pid}/cwd") == os.getcwd()
    assert proc.returncode == -signal.SIGKILL

    if mode == "server":  # the server ends by itself once its lifeline closes
        server_obj = sandbox._shim_server
        assert server_obj is not None
        server_obj.close()
        assert server_obj.proc.returncode == 0
        sandbox._shim_server = None


def test_a_working_directory_whose_name_is_not_utf8(mode: str, tmp_path: Path) -> None:
    workdir = tmp_path / os.fsdecode(b"w\xffd")
    workdir.mkdir()
    with WalredoProcess.launch(_sh("read line", workdir, args=(os.fsdecode(b"a\xfe"),))) as proc:
        assert os.readlink(os.fsencode(f"/proc/{proc.pid}/cwd")) == os.fsencode(workdir)
        assert Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[-2] == b"a\xfe"


def test_a_stuck_supervisor_is_killed_on_close_and_the_binary_with_it(
    mode: str, workdir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.process")
    proc = WalredoProcess.launch(_sh("exec sleep 600", workdir))
    # close() waits SWEEP_SECONDS + 10 for the supervisor: make that 0.1 s
    monkeypatch.setattr(sandbox, "SWEEP_SECONDS", -9.9)
    os.kill(proc.shim_pid, signal.SIGSTOP)
    if mode == "server":  # kill() never blocks, even when nobody reads the requests
        for _ in range(fcntl.fcntl(proc._lifeline, _F_GETPIPE_SZ) + 1):
            proc.kill()
    assert proc.close() == -signal.SIGKILL
    assert _wait_until(lambda: _gone(proc.pid))
    shim_status = 0 if mode == "server" else -signal.SIGKILL  # (a forked shim's is the server's)
    assert _warnings(caplog) == [
        f"the supervisor of walredo pid {proc.pid} did not exit; killing it",
        f"the supervisor of walredo pid {proc.pid} ended ({shim_status}) without reporting its exit",
    ]


def test_without_pidfds_kill_and_close_still_end_the_binary(
    fresh_server: None, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open")  # (no shim server either: it needs pidfds)
    proc = WalredoProcess.launch(_sh("exec sleep 600", workdir))
    try:
        assert _ppid(proc.shim_pid) == os.getpid()
        proc.kill()
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        assert proc.close() == -signal.SIGKILL
    proc = WalredoProcess.launch(_sh("exec sleep 600", workdir))
    assert proc.close() == -signal.SIGKILL
    assert _wait_until(lambda: _gone(proc.pid))
    assert sandbox._shim_server is None


def test_without_fd_passing_shims_are_started_one_interpreter_each(
    fresh_server: None, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.delattr(socket, "send_fds")
    with WalredoProcess.launch(_sh("read line", workdir)) as proc:
        assert _ppid(proc.shim_pid) == os.getpid()


def test_launches_from_many_threads_each_get_their_own_supervisor(workdir: Path) -> None:
    procs: list[WalredoProcess] = []
    lock = threading.Lock()

    def launch() -> None:
        p = WalredoProcess.launch(_sh("read line", workdir))
        with lock:
            procs.append(p)

    threads = [threading.Thread(target=launch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(procs) == 6
        for p in procs:
            assert _ppid(p.pid) == p.shim_pid
    finally:
        for p in procs:
            p.close()


def test_launching_works_after_the_at_fork_reset(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a forked child does first (its parent's spawner thread and shim server are not its
    own): from that state a launch starts both afresh."""
    WalredoProcess.launch(_sh("exit 0", workdir)).close()  # both exist here
    for name in ("_spawner_executor", "_spawner_lock", "_shim_server", "_shim_server_failed"):
        monkeypatch.setattr(sandbox, name, getattr(sandbox, name))
    sandbox._forget_spawner_after_fork()
    sandbox._forget_server_after_fork()
    try:
        with WalredoProcess.launch(_sh("read line", workdir)) as proc:
            assert _ppid(_ppid(proc.shim_pid)) == os.getpid()
    finally:
        if sandbox._shim_server is not None:
            sandbox._shim_server.close()
        if sandbox._spawner_executor is not None:
            sandbox._spawner_executor.shutdown(wait=False)


# ---------------------------------------------------------------------------------------------
# The supervisor cannot start
# ---------------------------------------------------------------------------------------------


def _fake_python(path: Path, server: str, shim: str) -> str:
    """A stand-in for our interpreter: runs the Python statement ``server`` when started as the
    shim server (``-I -S _shim.py --server LIFELINE SOCKET``), ``shim`` when started as a shim."""
    path.write_text(f"#!{sys.executable} -S\nimport os, socket, sys\n"
                    f"if sys.argv[4:5] == ['--server']:\n    {server}\n{shim}\n")
    path.chmod(0o755)
    return str(path)


def test_a_supervisor_that_cannot_be_started_is_one_sentence_and_leaks_nothing(
    fresh_server: None, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.process")
    missing = str(tmp_path / "no-python")
    monkeypatch.setattr(sys, "executable", missing)
    config = _sh("exit 0", workdir)
    before = _open_fds()
    for _ in range(2):
        with pytest.raises(WalredoLaunchError) as e:
            WalredoProcess.launch(config)
        assert str(e.value) == (f"cannot launch walredo /bin/sh: its supervisor {missing} cannot be "
                                f"started ({os.strerror(errno.ENOENT)})")
    assert _open_fds() == before
    # the server is tried once, then shims are started one interpreter each
    assert _warnings(caplog) == [
        f"walredo shim server could not start ([Errno {errno.ENOENT}] {os.strerror(errno.ENOENT)}: "
        f"'{missing}'); one interpreter per shim"]


def test_a_supervisor_that_ends_without_a_word_is_reported_with_its_last_line(
    fresh_server: None, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.process")
    # The server takes one request, then dies; the shim says three lines, then exits.
    fake = _fake_python(tmp_path / "python",
                        "socket.socket(fileno=int(sys.argv[6])).recv(1); os._exit(0)",
                        "os.write(2, b'first\\nsecond\\nlast words \\xff\\n'); os._exit(3)")
    real = sys.executable
    monkeypatch.setattr(sys, "executable", fake)
    with pytest.raises(WalredoLaunchError) as e:
        WalredoProcess.launch(_sh("exit 0", workdir))
    assert str(e.value) == ("cannot launch walredo /bin/sh: its supervisor "
                            f"({fake} _shim.py) did not start it (last words \ufffd)")
    assert _warnings(caplog) == [
        f"walredo shim server failed ([Errno {errno.EPIPE}] the walredo shim server ended); "
        "starting a new one"]
    # the next launch starts a new server
    monkeypatch.setattr(sys, "executable", real)
    with WalredoProcess.launch(_sh("read line", workdir)) as proc:
        assert _ppid(_ppid(proc.shim_pid)) == os.getpid()


def test_a_silent_supervisor_is_reported_with_its_exit_status(
    fresh_server: None, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_python(tmp_path / "python", "os._exit(0)", "os._exit(5)")
    monkeypatch.setattr(sys, "executable", fake)
    with pytest.raises(WalredoLaunchError) as e:
        WalredoProcess.launch(_sh("exit 0", workdir))
    assert str(e.value) == ("cannot launch walredo /bin/sh: its supervisor "
                            f"({fake} _shim.py) did not start it (exit status 5)")


def test_a_limit_the_supervisor_cannot_set_names_the_step(
    mode: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # above fs.nr_open: EPERM, even for root
    monkeypatch.setattr(LaunchConfig, "rlimits", lambda self: [("RLIMIT_NOFILE", 10, 1 << 40)])
    with pytest.raises(WalredoLaunchError) as e:
        WalredoProcess.launch(_sh("exit 0", workdir))
    assert str(e.value) == ("cannot launch walredo /bin/sh: could not set its resource limits "
                            "(Operation not permitted)")


def test_a_limit_whose_soft_value_is_above_its_hard_one_is_an_invalid_argument(
    mode: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LaunchConfig, "rlimits", lambda self: [("RLIMIT_NOFILE", 20, 10)])
    with pytest.raises(WalredoLaunchError) as e:
        WalredoProcess.launch(_sh("exit 0", workdir))
    assert str(e.value) == ("cannot launch walredo /bin/sh: could not set its resource limits "
                            "(Invalid argument)")


def test_launch_failure_stage_defaults_to_the_exec() -> None:
    assert _launch_failure("/x/postgres", errno.ENOENT) == "cannot launch walredo /x/postgres: no such file"


# ---------------------------------------------------------------------------------------------
# Teardown against a scripted supervisor
# ---------------------------------------------------------------------------------------------


class _Scripted:
    """A WalredoProcess whose supervisor is scripted by the test: the "binary" is a ``sleep``,
    the "shim" a ``cat`` of the lifeline (it ends when the lifeline closes), and the test
    writes the control reports and holds the stderr pipe's write end."""

    def __init__(self, *, dead: bool = False) -> None:
        self.binary = subprocess.Popen(["sleep", "600"])
        life_r, life_w = os.pipe2(os.O_CLOEXEC)
        self.shim = subprocess.Popen(["cat"], stdin=life_r, stdout=subprocess.DEVNULL)
        os.close(life_r)
        ctl_r, self.ctl_w = os.pipe2(os.O_CLOEXEC)
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
        death_r, self.death_w = os.pipe2(os.O_CLOEXEC)
        if dead:  # reaped already when the object is made
            os.close(self.death_w)
        self.theirs = [in_r, out_w]
        self.proc = WalredoProcess(
            _sh("", None), self.shim, _Reports(ctl_r), pid=self.binary.pid,
            stdin_fd=in_w, stdout_fd=out_r, stderr_fd=err_r, lifeline_fd=life_w,
            death_fd=death_r)
        self.fds = [in_w, out_r, err_r, death_r, ctl_r]

    def report(self, text: bytes, *, end: bool = False) -> None:
        os.write(self.ctl_w, text)
        if end:
            os.close(self.ctl_w)
            if not self.proc.dead():
                os.close(self.death_w)

    def cleanup(self) -> None:
        for fd in (*self.theirs, self.err_w):
            os.close(fd)
        for child in (self.binary, self.shim):
            if child.poll() is None:
                child.kill()
            child.wait()


def test_close_does_not_wait_for_stderr_held_by_descendants_it_could_not_kill(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.process")
    s = _Scripted()
    try:
        os.write(s.err_w, b"said this\n")
        s.report(b"pid %d\nexit -9\nswept 1 4242,4343\n" % s.binary.pid, end=True)
        assert s.proc.close() == -signal.SIGKILL
        assert s.proc.leftovers == [4242, 4343]
        assert s.proc.stderr_tail() == "said this"
        assert not any(_is_open(fd) for fd in s.fds)
        assert s.binary.wait(30) == -signal.SIGKILL  # killed through its pidfd
    finally:
        s.cleanup()
    assert _warnings(caplog) == [
        f"walredo pid {s.binary.pid}: descendants [4242, 4343] could not be killed; not waiting for "
        "their end of the stderr pipe"]


def test_close_stops_reading_stderr_still_open_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.process")
    s = _Scripted()
    try:
        os.write(s.err_w, b"partial")
        s.report(b"pid %d\nexit 0\nswept 0 -\n" % s.binary.pid, end=True)
        assert s.proc.close(stderr_join_timeout=0.2) == 0
        assert s.proc.leftovers == []
        assert s.proc.stderr_tail() == "partial"
        assert not any(_is_open(fd) for fd in s.fds)
    finally:
        s.cleanup()
    assert _warnings(caplog) == [
        f"stderr of walredo pid {s.binary.pid} still open after 0.2s; stopped reading"]


def test_a_process_taken_over_after_its_death_holds_no_pidfd() -> None:
    before = _open_fds()
    s = _Scripted(dead=True)
    try:
        assert s.proc.dead()
        assert not any(os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
                       for fd in _open_fds() - before if _is_open(fd))
        s.report(b"pid %d\nexit 0\nswept 0 -\n" % s.binary.pid)
        os.close(s.ctl_w)
        os.close(s.err_w)
        s.err_w = os.open(os.devnull, os.O_RDONLY)
        assert s.proc.close() == 0
        assert s.binary.poll() is None  # a binary known dead is not signalled
    finally:
        s.cleanup()


def test_a_process_dropped_without_close_takes_its_tree_down(workdir: Path) -> None:
    proc = WalredoProcess.launch(_sh("exec sleep 600", workdir))
    pid = proc.pid
    fds = [proc.stdin_fd, proc.stdout_fd, proc.death_fd, proc._reports.fd]
    del proc
    gc.collect()
    try:
        assert _wait_until(lambda: _gone(pid))
    finally:
        for fd in fds:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# The forked shim's poll and wait (a pidfd of a process that is not our child)
# ---------------------------------------------------------------------------------------------


def test_forked_shim_poll_wait_and_kill() -> None:
    child = subprocess.Popen(["sleep", "600"])
    pidfd = os.pidfd_open(child.pid)
    shim = _ForkedShim(child.pid, pidfd)
    try:
        assert shim.poll() is None and shim.poll() is None and shim.returncode is None
        for timeout in (0, 0.01):
            with pytest.raises(subprocess.TimeoutExpired) as e:
                shim.wait(timeout)
            assert e.value.timeout == timeout and e.value.cmd == f"shim {child.pid}"
        shim.kill()
        assert _wait_until(lambda: shim.poll() is not None)
        assert shim.poll() == 0 and shim.returncode == 0  # the status is the server's to collect
        assert not _is_open(pidfd)
        assert shim.wait() == 0 and shim.wait(0) == 0
        shim.kill()  # ended: nothing to signal, no error
    finally:
        child.kill()
        child.wait()


def test_forked_shim_wait_returns_when_it_ends() -> None:
    child = subprocess.Popen(["sleep", "600"])
    pidfd = os.pidfd_open(child.pid)
    shim = _ForkedShim(child.pid, pidfd)
    try:
        child.kill()
        assert shim.wait() == 0 and shim.returncode == 0
        assert not _is_open(pidfd)
        assert shim.poll() == 0
    finally:
        child.wait()


def test_a_dropped_forked_shim_closes_its_pidfd() -> None:
    child = subprocess.Popen(["sleep", "600"])
    try:
        pidfd = os.pidfd_open(child.pid)
        shim = _ForkedShim(child.pid, pidfd)
        assert os.readlink(f"/proc/self/fd/{pidfd}") == "anon_inode:[pidfd]"
        del shim
        gc.collect()
        assert not _is_open(pidfd)
    finally:
        child.kill()
        child.wait()


# ---------------------------------------------------------------------------------------------
# The supervisor's reports
# ---------------------------------------------------------------------------------------------


def test_reports_skip_lines_that_are_not_ascii() -> None:
    r, w = os.pipe()
    reports = _Reports(r)
    try:
        os.write(w, b"junk \xff\xfe\nnosubreaper\npid 5\n")
        reports.pump()
        assert reports.pid == 5 and reports.subreaper is False
    finally:
        os.close(w)
        os.close(r)


def test_reports_on_an_fd_that_cannot_be_read_end() -> None:
    fd = os.open("/", os.O_RDONLY)  # read(2) of a directory fails with EISDIR
    try:
        reports = _Reports(fd)
        reports.wait(time.monotonic() + 30, lambda: False)
        assert reports.eof and reports.pid is None
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# The stderr reader on bare pipes
# ---------------------------------------------------------------------------------------------


def _reader(fd: int, line_limit: int = 64, keep: int = 1000, log_bytes: int = 0) -> _StderrCapture:
    return _StderrCapture(fd, 4321, line_limit=line_limit, keep_bytes=keep, log_bytes=log_bytes)


def _settle(capture: _StderrCapture) -> None:
    assert _wait_until(capture.settled)


def _finish(capture: _StderrCapture, w: int) -> None:
    os.close(w)
    assert capture.join(30)
    capture.close_fds()


def test_a_line_written_in_pieces_is_one_line() -> None:
    r, w = os.pipe()
    capture = _reader(r)
    os.write(w, b"ab")
    _settle(capture)
    os.write(w, b"cd")
    _settle(capture)
    os.write(w, b"ef\n\nxy")
    _finish(capture, w)
    assert capture.tail() == "abcdef\n\nxy" and capture.total_lines == 3


def test_a_stream_that_starts_with_a_newline() -> None:
    r, w = os.pipe()
    os.write(w, b"\nfirst\n")
    capture = _reader(r)
    _finish(capture, w)
    assert capture.tail() == "\nfirst" and capture.total_lines == 2


def test_logging_that_stops_in_the_middle_of_a_chunk_keeps_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.walredo.stderr")
    r, w = os.pipe()
    os.write(w, b"a\nb\nccc")  # "a" costs 2 of the 3 bytes, "b" spends the rest
    capture = _reader(r, log_bytes=3)
    _finish(capture, w)
    assert capture.tail() == "a\nb\nccc" and capture.total_lines == 3
    assert [rec.getMessage() for rec in caplog.records] == [
        "[walredo pid 4321] a",
        "[walredo pid 4321] stderr logging stopped: the log budget is spent (the tail is still kept)"]


def test_the_unfinished_line_is_shown_even_when_it_is_not_utf8() -> None:
    r, w = os.pipe()
    capture = _reader(r)
    try:
        os.write(w, b"ok\nab\xff")
        _settle(capture)
        assert capture.tail() == "ok\nab\ufffd"
    finally:
        _finish(capture, w)


def test_stderr_is_not_settled_while_a_read_chunk_waits_to_be_kept() -> None:
    r, w = os.pipe()
    capture = _reader(r)
    try:
        _settle(capture)
        with capture._lock:  # the reader cannot keep what it reads
            os.write(w, b"late line\n")
            assert _wait_until(lambda: capture.unread() == 0)  # read, not kept yet
            assert not capture.settled()
        _settle(capture)
        assert capture.tail() == "late line"
    finally:
        _finish(capture, w)


def test_a_read_error_ends_the_reader_with_a_warning_and_keeps_the_last_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo")
    master, slave = pty.openpty()
    try:
        os.write(slave, b"abc")  # no newline: the line is unfinished
        capture = _reader(master, log_bytes=1000)
        _settle(capture)
        os.close(slave)  # reading the master now fails with EIO
        slave = -1
        assert capture.join(30)
        assert capture.tail() == "abc" and capture.total_lines == 1
    finally:
        if slave >= 0:
            os.close(slave)
        capture.close_fds()
    assert [rec.getMessage() for rec in caplog.records] == [
        f"reading stderr of walredo pid 4321 failed: [Errno {errno.EIO}] {os.strerror(errno.EIO)}",
        "[walredo pid 4321] abc"]


_PIECES = [b"", b"a", b"bb", b"cccc", b"dddddd", "é".encode(), "éé".encode()]


@pytest.mark.parametrize("keep", [3, 5, 6, 8, 11])
def test_the_bulk_read_of_a_flood_keeps_exactly_the_lines_that_fit(keep: int) -> None:
    """Once logging has stopped, a chunk of many lines is read in bulk; at every boundary of
    the tail the result is what reading line by line gives."""
    for i, a in enumerate(_PIECES):
        for b in _PIECES[i:]:
            for c in _PIECES:
                stream = b"L\n" + b"z\n" + a + b"\n" + b + b"\n" + c + b"\n" + b"end"
                r, w = os.pipe()
                os.write(w, stream)
                capture = _reader(r, line_limit=5, keep=keep)
                _finish(capture, w)
                assert (capture.tail(), capture.total_lines) == _expected_tail(stream, 5, keep), stream


@pytest.mark.parametrize("stream", [b"L\nz\n\n\n\n", b"L\nz\na\n\na\n"])
def test_the_bulk_read_keeps_empty_lines_that_just_fit(stream: bytes) -> None:
    r, w = os.pipe()
    os.write(w, stream)
    capture = _reader(r, line_limit=5, keep=3)
    _finish(capture, w)
    assert (capture.tail(), capture.total_lines) == _expected_tail(stream, 5, 3)


_HOLDER = """
import os, sys
from pytest_walredo.process.sandbox import _StderrCapture
r, w = os.pipe()
capture = _StderrCapture(r, 1, line_limit=10, keep_bytes=10, log_bytes=0)
os.write(w, b"x")
print("reading", flush=True)
"""


def test_a_reader_on_a_pipe_held_open_does_not_keep_the_interpreter_alive() -> None:
    """A descendant nobody could kill may hold stderr forever: the runner must still exit
    (here and in a fresh interpreter)."""
    r, w = os.pipe()
    capture = _reader(r)
    capture.stop()
    assert capture.join(30)
    capture.close_fds()
    os.close(w)
    done = subprocess.run([sys.executable, "-c", _HOLDER], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0 and done.stdout == "reading\n", done.stderr


# ---------------------------------------------------------------------------------------------
# /proc reads of the binary
# ---------------------------------------------------------------------------------------------


def test_seccomp_mode_of_a_binary_whose_name_is_not_ascii(tmp_path: Path, workdir: Path) -> None:
    name = tmp_path / "walrédo"
    name.symlink_to("/bin/sh")
    proc = WalredoProcess.launch(LaunchConfig(name, prefix_args=("-c", "read line", "sh"),
                                              workdir=workdir))
    try:
        status = Path(f"/proc/{proc.pid}/status").read_bytes()
        assert "walrédo".encode() in status
        field = re.search(rb"^Seccomp:\s*(\d+)$", status, re.M)
        assert field is not None
        assert proc.seccomp_mode() == int(field.group(1))
    finally:
        proc.close()
    assert proc.seccomp_mode() is None
