"""Launch hygiene, teardown, parent death and stderr capture of ``pytest_walredo.process``.

All processes here are the tiny fake walredo (``pytest_walredo.testing.fake``) or ``/bin/sh``,
run under the current interpreter; everything observable is read from ``/proc``.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_walredo.process import (
    LaunchConfig,
    SyncWalredoClient,
    WalredoLaunchError,
    WalredoProcess,
)
from pytest_walredo.process.quiescence import pipe_unread
from pytest_walredo.process.sandbox import (
    DEFAULT_TENANT_SHARD_ID,
    _drain,
    _launch_failure,
    _Reports,
    _StderrCapture,
    refserver_config,
)
from pytest_walredo.testing.fake import fake_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def _wait_gone(pid: int, limit: float = 15.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return _gone(pid)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def launched() -> Iterator[list[WalredoProcess]]:
    procs: list[WalredoProcess] = []
    yield procs
    for p in procs:
        p.close()


def _launch(launched: list[WalredoProcess], config: LaunchConfig) -> WalredoProcess:
    p = WalredoProcess.launch(config)
    launched.append(p)
    return p


def _ping(proc: WalredoProcess) -> None:
    """One ping over the client (owned elsewhere): proves the child is up and answering."""
    client = SyncWalredoClient(proc, timeout=30, owns_process=False)
    try:
        assert client.ping() == bytes(8192)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Launch hygiene
# ---------------------------------------------------------------------------------------------


def test_environment_is_cleared_except_library_paths_and_sanitizers(
    workdir: Path, launched: list[WalredoProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0")
    monkeypatch.delenv("UBSAN_OPTIONS", raising=False)
    monkeypatch.setenv("WALREDO_SECRET_TEST_VAR", "must-not-leak")
    proc = _launch(launched, fake_config(workdir))
    _ping(proc)
    raw = Path(f"/proc/{proc.pid}/environ").read_bytes()
    env = dict(item.split(b"=", 1) for item in raw.split(b"\0") if item)
    lib = str(Path(sys.executable).absolute().parent.parent / "lib").encode()
    assert env == {b"LD_LIBRARY_PATH": lib, b"DYLD_LIBRARY_PATH": lib,
                   b"ASAN_OPTIONS": b"detect_leaks=0"}


def test_explicit_lib_dir(workdir: Path, launched: list[WalredoProcess],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASAN_OPTIONS", raising=False)
    monkeypatch.setenv("UBSAN_OPTIONS", "print_stacktrace=1")
    proc = _launch(launched, fake_config(workdir, lib_dir=workdir / "libs"))
    _ping(proc)
    raw = Path(f"/proc/{proc.pid}/environ").read_bytes()
    env = dict(item.split(b"=", 1) for item in raw.split(b"\0") if item)
    assert env == {b"LD_LIBRARY_PATH": str(workdir / "libs").encode(),
                   b"DYLD_LIBRARY_PATH": str(workdir / "libs").encode(),
                   b"UBSAN_OPTIONS": b"print_stacktrace=1"}


def test_only_fds_0_1_2_are_inherited_and_they_are_pipes(
    workdir: Path, launched: list[WalredoProcess]
) -> None:
    # An inheritable fd in the parent must not reach the child.
    r, w = os.pipe()
    os.set_inheritable(r, True)
    os.set_inheritable(w, True)
    try:
        proc = _launch(launched, fake_config(workdir))
        _ping(proc)
        fds = sorted(int(n) for n in os.listdir(f"/proc/{proc.pid}/fd"))
        assert fds == [0, 1, 2]
        for fd in fds:
            assert os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith("pipe:")
    finally:
        os.close(r)
        os.close(w)


def test_own_session_process_group_workdir_and_argv(
    workdir: Path, launched: list[WalredoProcess]
) -> None:
    proc = _launch(launched, fake_config(workdir, "--ready", tenant_shard_id="abc-0102"))
    _ping(proc)
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    assert os.getsid(proc.pid) == proc.pid
    assert os.readlink(f"/proc/{proc.pid}/cwd") == str(workdir)
    argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert argv[3:7] == [b"--wal-redo", b"--tenant-shard-id", b"abc-0102", b"--ready"]
    assert proc.seccomp_mode() == 0  # the fake does not sandbox itself


def _status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def test_core_files_off_and_no_new_privs_by_default_and_optional(
    workdir: Path, launched: list[WalredoProcess]
) -> None:
    import resource

    strict = _launch(launched, fake_config(workdir))
    loose = _launch(launched, fake_config(workdir, core_dumps=True, no_new_privs=False))
    _ping(strict)
    _ping(loose)
    assert resource.prlimit(strict.pid, resource.RLIMIT_CORE) == (0, 0)
    assert _status_field(strict.pid, "NoNewPrivs") == "1"
    assert resource.prlimit(loose.pid, resource.RLIMIT_CORE) == resource.getrlimit(resource.RLIMIT_CORE)
    assert _status_field(loose.pid, "NoNewPrivs") == "0"
    assert resource.prlimit(strict.pid, resource.RLIMIT_AS) == resource.getrlimit(resource.RLIMIT_AS)


def test_cpu_time_limit_ends_a_spinning_process(workdir: Path) -> None:
    config = LaunchConfig(Path(sys.executable), prefix_args=("-c", "while True: pass"),
                          workdir=workdir, rlimit_cpu=1, rlimit_as=1 << 30)
    with WalredoProcess.launch(config) as proc:
        assert resource_limits(proc.pid)["Max address space"] == [str(1 << 30)] * 2
        assert proc.wait(60) == -signal.SIGXCPU


def resource_limits(pid: int) -> dict[str, list[str]]:
    return {line[:26].strip(): line[26:].split()[:2]
            for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]}


def test_launch_failures_are_one_sentence_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-postgres"
    with pytest.raises(WalredoLaunchError, match=r"no such file") as e:
        WalredoProcess.launch(LaunchConfig(missing))
    assert str(missing) in str(e.value)

    not_exec = tmp_path / "postgres"
    not_exec.write_text("#!/bin/sh\n")
    not_exec.chmod(0o644)
    with pytest.raises(WalredoLaunchError, match=r"not executable") as e:
        WalredoProcess.launch(LaunchConfig(not_exec))
    assert str(not_exec) in str(e.value)

    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\x01\x02\x03 this is not an ELF file")
    garbage.chmod(0o755)
    with pytest.raises(WalredoLaunchError, match=r"exec format error") as e:
        WalredoProcess.launch(LaunchConfig(garbage))
    assert str(garbage) in str(e.value)

    with pytest.raises(WalredoLaunchError, match=r"working directory .* does not exist") as e:
        WalredoProcess.launch(fake_config(tmp_path / "missing-workdir"))
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# Teardown
# ---------------------------------------------------------------------------------------------


def test_close_kills_and_reaps_and_is_idempotent(workdir: Path) -> None:
    proc = WalredoProcess.launch(fake_config(workdir))
    _ping(proc)
    assert proc.poll() is None
    assert proc.close() == -signal.SIGKILL
    assert proc.returncode == -signal.SIGKILL
    assert not Path(f"/proc/{proc.pid}").exists()  # reaped: no zombie left
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)
    assert proc.close() == -signal.SIGKILL  # idempotent
    assert proc.seccomp_mode() is None


def test_close_kills_the_whole_process_group(workdir: Path) -> None:
    # A "walredo" that forks a grandchild, reports its pid on stderr, then sleeps.
    script = "sleep 300 & echo grandchild=$! >&2; exec sleep 300"
    proc = WalredoProcess.launch(
        LaunchConfig(Path("/bin/sh"), prefix_args=("-c", script, "sh"), workdir=workdir)
    )
    try:
        end = time.monotonic() + 15
        while "grandchild=" not in proc.stderr_tail() and time.monotonic() < end:
            time.sleep(0.01)
        grandchild = int(proc.stderr_tail().split("grandchild=")[1].split()[0])
        assert not _gone(grandchild)
    finally:
        proc.close()
    assert _wait_gone(grandchild)


def test_exit_status_of_a_process_that_exits_by_itself(workdir: Path) -> None:
    proc = WalredoProcess.launch(
        LaunchConfig(Path("/bin/sh"), prefix_args=("-c", "echo bye >&2; exit 3", "sh"),
                     workdir=workdir)
    )
    assert proc.wait(30) == 3
    assert proc.wait_stderr(30)
    assert proc.stderr_tail() == "bye"
    assert proc.close() == 3


# ---------------------------------------------------------------------------------------------
# Parent death
# ---------------------------------------------------------------------------------------------

_PARENT = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from pytest_walredo.process import LaunchConfig, WalredoProcess

    # `sleep` ignores its stdin, so only the parent-death signal can end it early (a real
    # walredo would also exit on stdin EOF; that must not be what this test sees).
    config = LaunchConfig(Path("/bin/sh"), prefix_args=("-c", "exec sleep 600", "sh"),
                          workdir=Path(sys.argv[1]))
    box = []
    def spawn():
        box.append(WalredoProcess.launch(config))
    # Launch from a thread that ends at once: the spawner thread, not this one, is the
    # child's parent thread for PR_SET_PDEATHSIG, so the child must survive this.
    t = threading.Thread(target=spawn)
    t.start()
    t.join()
    print(box[0].pid, flush=True)
    time.sleep(600)
    """
)


def test_walredo_dies_with_the_test_runner_but_not_with_the_launching_thread(
    workdir: Path,
) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(workdir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        time.sleep(0.2)  # the launching thread has ended by now; the child must live on
        assert not _gone(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        survived = not _wait_gone(child)
        if survived:
            os.kill(child, signal.SIGKILL)
        assert not survived, f"walredo pid {child} survived the death of its test runner"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# ---------------------------------------------------------------------------------------------
# Stderr capture
# ---------------------------------------------------------------------------------------------


def test_stderr_caps_a_10mb_line_and_keeps_a_bounded_correct_tail(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.walredo.stderr")
    config = fake_config(workdir, "--stderr-line", str(10_000_000), "--stderr-lines", "2000",
                         stderr_line_limit=1000, stderr_keep_bytes=4096,
                         stderr_log_bytes=1 << 30)
    tracemalloc.start()
    try:
        proc = WalredoProcess.launch(config)
        try:
            _ping(proc)  # the fake writes all its stderr before answering
        finally:
            proc.close()  # kills, then reads stderr to EOF
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 10 MB went through a 64 KiB read buffer; nothing close to it was ever held.
    assert peak < 3_000_000, f"peak traced memory {peak} bytes while reading 10 MB of stderr"
    assert proc.stderr_total_bytes >= 10_000_000 + 2000 * len("fake stderr line 0\n")
    tail = proc.stderr_tail()
    assert len(tail) <= 4096
    lines = tail.splitlines()
    assert lines[-1] == "fake stderr line 1999"
    numbers = [int(line.rsplit(" ", 1)[1]) for line in lines]
    assert numbers == list(range(2000 - len(numbers), 2000))  # contiguous, most recent
    messages = [r.getMessage() for r in caplog.records
                if r.name == "pytest_walredo.walredo.stderr"]
    long = [m for m in messages if "more bytes of this line dropped" in m]
    assert len(long) == 1
    assert f"[... {10_000_000 - 1000} more bytes" in long[0]
    assert len(long[0]) < 1200
    assert sum("fake stderr line" in m for m in messages) == 2000


def test_stderr_log_budget_stops_logging_but_not_the_tail(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.walredo.stderr")
    proc = WalredoProcess.launch(fake_config(workdir, "--stderr-lines", "500",
                                             stderr_log_bytes=2000))
    try:
        _ping(proc)
    finally:
        proc.close()
    messages = [r.getMessage() for r in caplog.records
                if r.name == "pytest_walredo.walredo.stderr"]
    assert 50 < len(messages) < 120
    assert "logging stopped" in messages[-1]
    assert proc.stderr_tail().splitlines()[-1] == "fake stderr line 499"


def test_unterminated_last_line_is_in_the_tail(workdir: Path) -> None:
    proc = WalredoProcess.launch(fake_config(workdir, "--crash-at", "0",
                                             "--stderr-no-newline", "PANIC: no newline"))
    try:
        client = SyncWalredoClient(proc, timeout=30, owns_process=False)
        with pytest.raises(Exception):  # noqa: B017  (the error itself is tested in test_client)
            client.ping()
        client.close()
        assert proc.wait_stderr(30)
    finally:
        proc.close()
    assert proc.stderr_tail().splitlines()[-2:] == [
        "FATAL:  injected crash at answer 0", "PANIC: no newline"]


def _expected_tail(stream: bytes, line_limit: int, keep: int) -> tuple[str, int]:
    """The documented tail of a finished ``stream`` (an unterminated last line counts as a
    line), computed from the whole stream at once: every line cut to ``line_limit`` bytes with
    a note of what was dropped, then the most recent lines up to ``keep`` characters (at least
    one, itself cut to its last ``keep`` characters). Returns (tail, number of lines)."""
    lines = stream.split(b"\n")
    if not lines[-1]:
        lines.pop()
    kept: list[str] = []
    size = 0
    for line in lines:
        text = line[:line_limit].decode("utf-8", "replace")
        if len(line) > line_limit:
            text += f" [... {len(line) - line_limit} more bytes of this line dropped]"
        text = text[-keep:]
        kept.append(text)
        size += len(text) + 1
        while size > keep and len(kept) > 1:
            size -= len(kept.pop(0)) + 1
    return "\n".join(kept), len(lines)


_stderr_line = st.one_of(st.binary(max_size=3), st.binary(min_size=20, max_size=120),
                         st.text(max_size=30).map(lambda t: t.encode()))
# Many lines (a flood), cheaply: a short drawn pattern of lines repeated up to 3000 lines.
_stderr_lines = st.builds(lambda pattern, n: (pattern * (n // len(pattern) + 1))[:n],
                          st.lists(_stderr_line, min_size=1, max_size=12), st.integers(0, 3000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_stderr_lines, end=st.binary(max_size=50), line_limit=st.integers(4, 64),
       keep=st.integers(16, 600), log_bytes=st.sampled_from([0, 200, 1 << 20]))
def test_stderr_tail_is_the_documented_tail_whatever_the_stream(
    workdir: Path, lines: list[bytes], end: bytes, line_limit: int, keep: int, log_bytes: int
) -> None:
    """Floods of short lines are read in bulk once logging has stopped; the tail and the line
    count must be exactly what reading line by line gives."""
    stream = b"".join(line.replace(b"\n", b"") + b"\n" for line in lines) + end.replace(b"\n", b"")
    data = workdir / "stderr.bin"
    data.write_bytes(stream)
    proc = WalredoProcess.launch(LaunchConfig(
        Path("/bin/sh"), prefix_args=("-c", 'exec /bin/cat "$0" >&2', str(data)), workdir=workdir,
        stderr_line_limit=line_limit, stderr_keep_bytes=keep, stderr_log_bytes=log_bytes))
    try:
        assert proc.wait(30) == 0 and proc.wait_stderr(30)
    finally:
        proc.close()
    tail, n_lines = _expected_tail(stream, line_limit, keep)
    assert proc.stderr_tail() == tail
    assert proc._stderr.total_lines == n_lines
    assert proc.stderr_total_bytes == len(stream)


def test_stderr_reader_does_not_need_an_event_loop(workdir: Path) -> None:
    # No client, no loop: the reader thread alone drains stderr.
    proc = WalredoProcess.launch(fake_config(workdir, "--stderr-lines", "3"))
    try:
        end = time.monotonic() + 30
        while "line 2" not in proc.stderr_tail() and time.monotonic() < end:
            time.sleep(0.01)
        assert proc.stderr_tail() == "fake stderr line 0\nfake stderr line 1\nfake stderr line 2"
    finally:
        proc.close()


def test_launch_works_in_a_forked_child(workdir: Path) -> None:
    # The spawner thread does not survive fork(); a forked child must get a new one instead of
    # waiting forever on the inherited (threadless) executor.
    WalredoProcess.launch(fake_config(workdir)).close()  # make sure the spawner exists here
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            proc = WalredoProcess.launch(fake_config(workdir))
            status = 0 if proc.poll() is None else 2
            proc.close()
        finally:
            os._exit(status)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("launching from a forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0


# ---------------------------------------------------------------------------------------------
# The launch configuration
# ---------------------------------------------------------------------------------------------


def test_launch_config_takes_strings_for_paths_and_rejects_non_positive_limits(tmp_path: Path) -> None:
    config = LaunchConfig(str(tmp_path / "postgres"), lib_dir=str(tmp_path / "lib"),  # type: ignore[arg-type]
                          workdir=str(tmp_path))  # type: ignore[arg-type]
    assert (config.binary, config.lib_dir, config.workdir) == (tmp_path / "postgres", tmp_path / "lib", tmp_path)
    assert LaunchConfig("postgres").lib_dir is None and LaunchConfig("postgres").workdir is None  # type: ignore[arg-type]
    for name in ("stderr_line_limit", "stderr_keep_bytes"):
        with pytest.raises(ValueError) as e:
            LaunchConfig(Path("postgres"), **{name: 0})  # type: ignore[arg-type]
        assert str(e.value) == f"LaunchConfig.{name} must be positive, got 0"
        assert getattr(LaunchConfig(Path("postgres"), **{name: 1}), name) == 1  # type: ignore[arg-type]
    for name in ("rlimit_as", "rlimit_cpu"):
        with pytest.raises(ValueError) as e:
            LaunchConfig(Path("postgres"), **{name: 0})  # type: ignore[arg-type]
        assert str(e.value) == f"LaunchConfig.{name} must be positive or None, got 0"
        assert getattr(LaunchConfig(Path("postgres"), **{name: 1}), name) == 1  # type: ignore[arg-type]


def test_argv_environment_and_binary_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASAN_OPTIONS", raising=False)
    monkeypatch.delenv("UBSAN_OPTIONS", raising=False)
    bindir = tmp_path / "pg" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "postgres").write_text("#!/bin/sh\n")
    (bindir / "postgres").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    config = LaunchConfig(Path("postgres"), args=("--x",), prefix_args=("-p",), tenant_shard_id="t1",
                          extra_env={"PGDATA": "/d", "LD_LIBRARY_PATH": "/over"})
    assert config.resolved_binary() == bindir / "postgres"  # a bare name: looked up in our PATH
    assert config.argv() == [str(bindir / "postgres"), "-p", "--wal-redo", "--tenant-shard-id", "t1", "--x"]
    # lib_dir defaults to <binary dir>/../lib; extra_env comes last and wins
    assert config.environment() == {"LD_LIBRARY_PATH": "/over", "DYLD_LIBRARY_PATH": str(tmp_path / "pg" / "lib"),
                                    "PGDATA": "/d"}
    monkeypatch.chdir(tmp_path)
    assert LaunchConfig(Path("nowhere-on-path")).resolved_binary() == tmp_path / "nowhere-on-path"
    assert LaunchConfig(Path("pg/bin/postgres")).resolved_binary() == bindir / "postgres"


def test_rlimits_stay_under_our_hard_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    inf = resource.RLIM_INFINITY
    hard = {resource.RLIMIT_AS: inf, resource.RLIMIT_CPU: inf}
    monkeypatch.setattr(resource, "getrlimit", lambda which: (0, hard[which]))
    config = LaunchConfig(Path("postgres"), rlimit_as=1 << 30, rlimit_cpu=5)
    # CPU: SIGXCPU at the soft limit, SIGKILL a second later; no core files unless asked for
    assert config.rlimits() == [("RLIMIT_AS", 1 << 30, 1 << 30), ("RLIMIT_CPU", 5, 6), ("RLIMIT_CORE", 0, 0)]
    assert LaunchConfig(Path("postgres"), core_dumps=True).rlimits() == []
    assert LaunchConfig(Path("postgres"), rlimit_cpu=7, core_dumps=True).rlimits() == [("RLIMIT_CPU", 7, 8)]
    hard.update({resource.RLIMIT_AS: 1 << 29, resource.RLIMIT_CPU: 5})
    assert config.rlimits() == [("RLIMIT_AS", 1 << 29, 1 << 29), ("RLIMIT_CPU", 5, 5), ("RLIMIT_CORE", 0, 0)]
    hard[resource.RLIMIT_CPU] = 6
    assert LaunchConfig(Path("postgres"), rlimit_cpu=5).rlimits()[0] == ("RLIMIT_CPU", 5, 6)
    assert LaunchConfig(Path("postgres"), rlimit_cpu=4).rlimits()[0] == ("RLIMIT_CPU", 4, 5)


@pytest.mark.parametrize(("kw", "summary"), [
    ({}, "address space inherited, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=4 << 30, rlimit_cpu=30, core_dumps=True, no_new_privs=False),
     "address space 4 GiB, CPU time 30 s, core files on, no_new_privs off"),
    (dict(rlimit_as=1 << 30), "address space 1 GiB, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=1536 << 20), "address space 1536 MiB, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=1 << 20), "address space 1 MiB, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=3 << 10), "address space 3 KiB, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=1 << 10), "address space 1 KiB, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=1023), "address space 1023 bytes, CPU time inherited, core files off, no_new_privs on"),
    (dict(rlimit_as=(1 << 30) + 1), f"address space {(1 << 30) + 1} bytes, CPU time inherited, core files off, "
                                    "no_new_privs on"),
])
def test_limits_summary(kw: dict[str, object], summary: str) -> None:
    assert LaunchConfig(Path("postgres"), **kw).limits_summary() == summary  # type: ignore[arg-type]


def test_refserver_config_runs_the_reference_under_an_interpreter(tmp_path: Path) -> None:
    config = refserver_config(tmp_path, pg_version=15, args=["--fault=x"], stderr_keep_bytes=10)
    assert config.argv() == [str(Path(sys.executable).absolute()), "-m", "pytest_walredo.refserver",
                             "--wal-redo", "--tenant-shard-id", DEFAULT_TENANT_SHARD_ID,
                             "--pg-version", "15", "--fault=x"]
    assert config.workdir == tmp_path and config.stderr_keep_bytes == 10
    other = refserver_config(python="/opt/py/bin/python3")
    assert other.argv()[:3] == ["/opt/py/bin/python3", "-m", "pytest_walredo.refserver"]
    assert other.argv()[6:] == [] and other.workdir is None


@pytest.mark.parametrize(("err", "stage", "message"), [
    (errno.ENOENT, "exec", "cannot launch walredo /x/postgres: no such file"),
    (errno.EACCES, "exec", "cannot launch walredo /x/postgres: not executable (permission denied)"),
    (errno.ENOEXEC, "exec", "cannot launch walredo /x/postgres: not a valid executable (exec format error)"),
    (errno.ENOMEM, "exec", f"cannot launch walredo /x/postgres: {os.strerror(errno.ENOMEM)}"),
    (errno.EPERM, "rlimit", f"cannot launch walredo /x/postgres: could not set its resource limits "
                            f"({os.strerror(errno.EPERM)})"),
    (errno.EINVAL, "no_new_privs", f"cannot launch walredo /x/postgres: could not set no_new_privs "
                                   f"({os.strerror(errno.EINVAL)})"),
    (errno.EPERM, "setsid", f"cannot launch walredo /x/postgres: could not start a session "
                            f"({os.strerror(errno.EPERM)})"),
    (errno.EINVAL, "prctl", f"cannot launch walredo /x/postgres: could not set its parent-death signal "
                            f"({os.strerror(errno.EINVAL)})"),
    (errno.EIO, "chdir", f"cannot launch walredo /x/postgres: could not chdir ({os.strerror(errno.EIO)})"),
])
def test_each_launch_failure_is_one_sentence(err: int, stage: str, message: str) -> None:
    """What the shim reports (errno and the step that failed) as the user reads it."""
    assert _launch_failure("/x/postgres", err, stage) == message


def test_drain_takes_what_is_there_without_waiting() -> None:
    r, w = os.pipe()
    try:
        assert _drain(r) == b""  # empty and still open: no wait
        os.write(w, b"shim: bad spec\n")
        assert _drain(r) == b"shim: bad spec\n"
        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 18)
        os.set_blocking(w, False)
        data = bytes(range(256)) * 800
        os.write(w, data)
        assert _drain(r) == data[: 1 << 16]  # at most 64 KiB
        assert _drain(r) == data[1 << 16 : 2 << 16]
        os.close(w)
        w = -1
        assert _drain(r) == data[2 << 16 : 3 << 16]
        assert _drain(r) == data[3 << 16 :]
        assert _drain(r) == b""  # EOF
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


# ---------------------------------------------------------------------------------------------
# Signals, the supervisor's death, the shim's reports
# ---------------------------------------------------------------------------------------------


def test_kill_ends_the_binary_without_waiting_and_close_reaps_it(workdir: Path) -> None:
    proc = WalredoProcess.launch(fake_config(workdir))
    try:
        _ping(proc)
        assert not proc.dead() and proc.poll() is None
        assert proc.wait(0.05) is None  # still running: the wait gives up
        assert repr(proc) == f"<WalredoProcess pid={proc.pid} returncode=None>"
        proc.kill()
        assert proc.wait(30) == -signal.SIGKILL
        # the shim reports the exit, then closes the death pipe: a moment may pass in between
        end = time.monotonic() + 30
        while not proc.dead() and time.monotonic() < end:
            time.sleep(0.01)
        assert proc.dead() and proc.returncode == -signal.SIGKILL
        assert repr(proc) == f"<WalredoProcess pid={proc.pid} returncode={-signal.SIGKILL}>"
        assert proc.leftovers == [] and proc.subreaper
    finally:
        assert proc.close() == -signal.SIGKILL
    assert proc.closed
    proc.kill()  # closed: nothing to do, no error
    assert proc.dead()  # the death pipe is closed too


def test_a_supervisor_killed_from_outside_takes_the_binary_with_it(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.process")
    proc = WalredoProcess.launch(fake_config(workdir))
    try:
        _ping(proc)
        assert proc.shim_pid != proc.pid and os.getppid() != proc.shim_pid
        os.kill(proc.shim_pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL  # reported although nobody said "exit"
        assert _wait_gone(proc.pid)
    finally:
        proc.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "pytest_walredo.process"]
    # (the supervisor's own status: -9 for a shim we started, 0 for one the shim server forked)
    assert any(re.fullmatch(rf"the supervisor of walredo pid {proc.pid} ended \((-9|0)\) without reporting its "
                            "exit", w) for w in warnings), warnings


def test_the_exit_report_wins_over_the_supervisors_end(workdir: Path) -> None:
    proc = WalredoProcess.launch(LaunchConfig(Path("/bin/sh"), prefix_args=("-c", "exit 7", "sh"),
                                              workdir=workdir))
    try:
        assert proc.wait(30) == 7
        proc._shim.wait(30)  # the shim has swept and exited
        assert proc.poll() == 7
    finally:
        assert proc.close() == 7


def test_stderr_reader_stops_on_request_without_eof() -> None:
    """A descendant nobody could kill may hold the stderr pipe open: the reader ends on stop(),
    after taking what is in the pipe, and says it is settled."""
    r, w = os.pipe()
    capture = _StderrCapture(r, 1234, line_limit=100, keep_bytes=1000, log_bytes=0)
    try:
        os.write(w, b"first\nsecond\npart")
        end = time.monotonic() + 30
        while not capture.settled() and time.monotonic() < end:
            time.sleep(0.01)
        assert capture.settled() and capture.unread() == 0
        assert capture.tail() == "first\nsecond\npart"
        assert not capture.join(0.05)  # no EOF: still reading
        capture.stop()
        assert capture.join(30) and capture.done.is_set()
        assert capture.tail() == "first\nsecond\npart" and capture.total_lines == 3
        os.write(w, b"late")  # after the end nobody reads it
        assert capture.unread() == 0 and capture.settled()
    finally:
        capture.stop()
        capture.join(30)
        capture.close_fds()
        os.close(w)


def test_stderr_waiting_in_the_pipe_is_unread_until_the_reader_takes_it() -> None:
    r, w = os.pipe()
    capture = _StderrCapture(r, 1234, line_limit=100, keep_bytes=1000, log_bytes=0)
    try:
        capture.stop()  # it ends at once: nothing to drain
        assert capture.join(30)
        os.write(w, b"abc")
        assert capture.unread() == 0  # the reader has ended: nothing more will be read
        assert pipe_unread(r) == 3
    finally:
        capture.close_fds()
        os.close(w)


def test_shim_reports_are_parsed_as_they_arrive() -> None:
    r, w = os.pipe()
    reports = _Reports(r)
    try:
        assert (reports.pid, reports.error, reports.returncode, reports.swept) == (None, None, None, None)
        assert reports.subreaper and not reports.eof
        os.write(w, b"nosubreaper\npid 42\n\nexit -")
        reports.pump()
        assert reports.pid == 42 and not reports.subreaper and reports.returncode is None
        os.write(w, b"9\nswept 3 -\n")
        reports.pump()
        assert reports.returncode == -9 and reports.swept == (3, []) and not reports.eof
        os.write(w, b"swept 2 17,18\nerror 2\n")
        reports.pump()
        assert reports.swept == (2, [17, 18]) and reports.error == (2, "exec")
        os.write(w, b"error 13 rlimit\nunknown words\n")
        os.close(w)
        w = -1
        start = time.monotonic()
        reports.wait(start + 30, lambda: False)  # returns at EOF
        assert reports.eof and reports.error == (13, "rlimit")
        assert time.monotonic() - start < 29  # at EOF, long before the deadline
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)


def test_reports_wait_until_done_or_the_deadline() -> None:
    r, w = os.pipe()
    reports = _Reports(r)
    try:
        reports.wait(time.monotonic() + 0.05, lambda: reports.pid is not None)  # gives up
        assert reports.pid is None and not reports.eof
        os.write(w, b"pid 7\n")
        reports.wait(time.monotonic() + 30, lambda: reports.pid is not None)
        assert reports.pid == 7
    finally:
        os.close(w)
        os.close(r)


def _capture_all(stream: bytes, line_limit: int, keep: int, log_bytes: int) -> _StderrCapture:
    """Feed ``stream`` (at most a pipe's worth, so it arrives as one chunk) to a capture and read
    it to EOF."""
    r, w = os.pipe()
    os.write(w, stream)
    os.close(w)
    capture = _StderrCapture(r, 4321, line_limit=line_limit, keep_bytes=keep, log_bytes=log_bytes)
    assert capture.join(30)
    capture.close_fds()
    return capture


_FLOOD = b"".join(b"line %d\n" % i for i in range(300))


@pytest.mark.parametrize(("stream", "line_limit", "keep", "log_bytes"), [
    (_FLOOD, 64, 50, 0),  # logging stops at once: the flood goes the bulk way
    (_FLOOD, 64, 9, 0),  # a tail of about one line
    (_FLOOD, 4, 20, 0),  # every line cut
    (_FLOOD + b"end", 64, 50, 0),  # an unterminated last line
    (b"partial" + _FLOOD, 64, 3000, 0),  # the whole flood fits the tail
    ("é".encode() * 30 * 40 + b"\n" + "é\n".encode() * 400, 64, 100, 0),  # UTF-8: 4 bytes per char at most
    (b"x" * 64 + b"\n" + b"y" * 65 + b"\n" + b"z" * 63 + b"\n", 64, 200, 1 << 20),  # at the line limit
    (b"abc\n" * 3 + b"\n\n" + b"q" * 10, 8, 4, 1 << 20),  # empty lines; a tail shorter than a line
    (b"0123456789\n" * 20, 64, 11, 0),  # one line fills the tail exactly
    (b"0123456789\n" * 20, 64, 10, 0),  # one line is cut to the tail
])
def test_stderr_tail_of_a_stream_read_at_once(stream: bytes, line_limit: int, keep: int, log_bytes: int) -> None:
    capture = _capture_all(stream, line_limit, keep, log_bytes)
    tail, n_lines = _expected_tail(stream, line_limit, keep)
    assert capture.tail() == tail
    assert capture.total_lines == n_lines and capture.total_bytes == len(stream)


def test_stderr_log_budget_boundary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_walredo.walredo.stderr")
    # each line costs its length plus one: 3 lines of "abcd" cost exactly 15
    _capture_all(b"abcd\n" * 4, 64, 100, 15)
    messages = [r.getMessage() for r in caplog.records if r.name == "pytest_walredo.walredo.stderr"]
    assert messages == ["[walredo pid 4321] abcd"] * 3 + [
        "[walredo pid 4321] stderr logging stopped: the log budget is spent (the tail is still kept)"]


def test_stderr_tail_shows_the_line_being_written() -> None:
    r, w = os.pipe()
    capture = _StderrCapture(r, 1, line_limit=5, keep_bytes=100, log_bytes=0)
    try:
        os.write(w, b"done\n" + "é".encode() + b"0123456789")
        end = time.monotonic() + 30
        while not capture.settled() and time.monotonic() < end:
            time.sleep(0.01)
        assert capture.tail() == "done\né012 [... 7 more bytes so far]"
    finally:
        os.close(w)
        capture.join(30)
        capture.close_fds()
    assert capture.tail() == "done\né012 [... 7 more bytes of this line dropped]"
