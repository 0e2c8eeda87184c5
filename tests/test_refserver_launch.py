"""The embedded reference walredo launched through the process layer, both ways it can start.

With the shim server (the default) the launcher written by ``target.reference_binary`` is not
exec'd: the server has imported the reference once and the walredo's process, forked from its
shim, runs it (``process/_shim.py``, "Launchers the server runs in-process"). Without the
server (one interpreter per shim, the fallback where the server cannot run) the launcher is
exec'd as any binary. Every test runs both ways: what a caller sees must be the same.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_walredo.process import LaunchConfig, WalredoProcess, sandbox
from pytest_walredo.process._shim import fork_entry
from pytest_walredo.protocol import Ping
from pytest_walredo.refserver.machine import EOF_LINE
from pytest_walredo.target import reference_binary

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PAGE = 8192


@pytest.fixture(params=["fork server", "interpreter per launch"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sandbox, "use_shim_server", request.param == "fork server")
    return str(request.param)


@pytest.fixture
def launch(way: str, tmp_path: Path) -> Iterator[object]:
    ref = reference_binary(tmp_path / "ref", 15)
    procs: list[WalredoProcess] = []

    def start(*args: str) -> WalredoProcess:
        config = LaunchConfig(ref.path, args=(*ref.args, *args), workdir=tmp_path)
        proc = WalredoProcess.launch(config)
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.close()


def _ping(proc: WalredoProcess) -> bytes:
    os.write(proc.stdin_fd, Ping().encode())
    out = b""
    while len(out) < PAGE:
        part = os.read(proc.stdout_fd, PAGE - len(out))
        if not part:
            break
        out += part
    return out


def _gone(pid: int, limit: float = 15.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def test_answers_a_ping_under_seccomp_and_ends_on_eof_with_its_log_line(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch()
    assert _ping(proc) == bytes(PAGE)
    assert proc.seccomp_mode() == 2
    os.close(proc.stdin_fd)
    assert proc.wait(30) == 0
    assert proc.wait_stderr(30)
    assert proc.stderr_tail() == EOF_LINE


def test_a_fault_ends_it_with_its_fatal_line_and_status_1(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch("--fault=crash-after:1")
    assert _ping(proc) == bytes(PAGE)
    assert proc.wait(30) == 1
    assert proc.wait_stderr(30)
    assert proc.stderr_tail() == "FATAL:  fault injected: crash-after:1"


def test_a_bad_fault_is_a_usage_error_with_status_2(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch("--fault=no-such-fault")
    assert proc.wait(30) == 2
    assert proc.wait_stderr(30)
    tail = proc.stderr_tail()
    assert tail.startswith("walredo-ref: invalid --fault=no-such-fault") and "\n" not in tail


def test_a_broken_pipe_is_a_fatal_error_not_a_signal(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch()
    assert _ping(proc) == bytes(PAGE)
    os.close(proc.stdout_fd)
    os.write(proc.stdin_fd, Ping().encode())
    assert proc.wait(30) == 1  # CPython ignores SIGPIPE: EPIPE, then FATAL and exit 1
    assert proc.wait_stderr(30)
    assert proc.stderr_tail().startswith("FATAL:  could not write to stdout")


def test_holds_only_its_three_pipes_and_none_of_our_environment(  # type: ignore[no-untyped-def]
        launch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALREDO_TEST_SECRET", "leaked")
    proc = launch()
    assert _ping(proc) == bytes(PAGE)
    assert sorted(int(fd) for fd in os.listdir(f"/proc/{proc.pid}/fd")) == [0, 1, 2]
    assert b"WALREDO_TEST_SECRET" not in Path(f"/proc/{proc.pid}/environ").read_bytes()
    assert os.getsid(proc.pid) == proc.pid  # its own session, as an exec'd binary has


def test_dies_with_its_supervisor(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch()
    assert _ping(proc) == bytes(PAGE)
    os.kill(proc.shim_pid, signal.SIGKILL)
    assert _gone(proc.pid)


def test_close_kills_and_reaps_it(launch) -> None:  # type: ignore[no-untyped-def]
    proc = launch()
    assert _ping(proc) == bytes(PAGE)
    proc.close()
    assert proc.returncode == -signal.SIGKILL
    assert proc.leftovers == []
    assert _gone(proc.pid)


def test_the_fork_server_runs_the_launcher_without_exec(launch, way: str) -> None:  # type: ignore[no-untyped-def]
    proc = launch()
    assert _ping(proc) == bytes(PAGE)
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    if way == "fork server":
        assert b"--server" in cmdline  # forked from the shim server: no interpreter started
    else:
        assert b"walredo-ref" in cmdline and b"--wal-redo" in cmdline


def test_only_a_marked_launcher_of_this_interpreter_runs_in_the_server(tmp_path: Path) -> None:
    ref = reference_binary(tmp_path / "ref")
    text = ref.path.read_text()
    assert fork_entry(os.path.relpath(ref.path)) is None  # only absolute paths
    other = tmp_path / "other-python"
    other.write_text(text.replace(f"#!{sys.executable} -I", "#!/usr/bin/python3.99 -I", 1))
    assert fork_entry(str(other)) is None
    unmarked = tmp_path / "unmarked"
    unmarked.write_text("".join(line for line in text.splitlines(keepends=True)
                                if "walredo-fork-server" not in line))
    assert fork_entry(str(unmarked)) is None
    assert fork_entry(str(tmp_path / "missing")) is None
