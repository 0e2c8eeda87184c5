"""No false verdicts and no leaked processes, whatever the binary under test does.

A catalogue of hostile stand-in binaries (``tests/hostile/hostile.c``, compiled here with
``cc``; one binary, the mode is the name it runs under) drives the process layer through every
way a walredo can misbehave. Each case asserts the verdict, and that the verdict came from the
right mechanism rather than from a timeout (a request timeout that would give a different
verdict is the bound), and that no process running the hostile binary is left afterwards
(process listing: ``/proc/*/exe`` under the case's own directory). The last tests kill -9 the
pytest process itself, with and without xdist, and check the listing again; and a correct
walredo that floods stderr passes conformance properties with the hang check on.

The README's table of hostile cases is this file's summary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_walredo.process import (
    LaunchConfig,
    SyncWalredoClient,
    WalredoError,
    WalredoHang,
    WalredoProcess,
    WalredoProcessError,
    WalredoTimeout,
)
from pytest_walredo.process.quiescence import supported as quiescence_supported
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process trees are listed through /proc")

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "hostile" / "hostile.c"
ROOT = HERE.parent


# ------------------------------------------------------------------------------------------
# Building and listing
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hostile_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build the hostile stand-in binaries")
    out = tmp_path_factory.mktemp("hostile-build") / "hostile"
    proc = subprocess.run([cc, "-O1", "-o", str(out), str(SOURCE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def hostile(hostile_binary: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``hostile(mode)``: a copy of the binary named ``mode`` in a directory of its own."""

    def make(mode: str) -> Path:
        directory = tmp_path / f"bin-{mode}"
        directory.mkdir(exist_ok=True)
        path = directory / mode
        shutil.copy2(hostile_binary, path)
        return path

    return make


def running_under(directory: Path) -> list[int]:
    """Pids of live processes (not zombies) whose executable or command line is in
    ``directory``."""
    mark = str(directory)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{name}/exe")
        except OSError:
            exe = ""
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if exe.startswith(mark) or mark in cmdline:
            found.append(int(name))
    return found


def wait_until_none(directory: Path, limit: float) -> list[int]:
    """Poll the listing until nothing runs under ``directory`` (or ``limit`` seconds pass);
    return what still runs."""
    end = time.monotonic() + limit
    left = running_under(directory)
    while left and time.monotonic() < end:
        time.sleep(0.05)
        left = running_under(directory)
    return left


def _request(blk: int) -> RedoRequest:
    return RedoRequest(RelTag(1663, 5, 16384), blk, bytes([blk + 1]) * BLCKSZ, ())


# ------------------------------------------------------------------------------------------
# The catalogue
# ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    pages: list[bytes] = field(default_factory=list)
    error: WalredoError | None = None
    process: WalredoProcess | None = None
    leftovers: list[int] = field(default_factory=list)
    stderr_tail: str = ""


def run_case(path: Path, workdir: Path, *, requests: int = 3, timeout: float = 10.0,
             hang_check: float | None = 0.05) -> Outcome:
    """Launch ``path``, ping it, apply ``requests`` push-get requests until one fails, close
    everything, and list what still runs from ``path``'s directory."""
    out = Outcome()
    proc = WalredoProcess.launch(LaunchConfig(path, workdir=workdir))
    out.process = proc
    client = SyncWalredoClient(proc, timeout=timeout, hang_check=hang_check)
    try:
        out.pages.append(client.ping())
        for blk in range(requests):
            page = client.apply(_request(blk))
            assert page == _request(blk).base_image or path.name == "garbage", \
                f"{path.name}: wrong page for request {blk}"
            out.pages.append(page)
    except WalredoError as exc:
        out.error = exc
    finally:
        client.close()
    out.stderr_tail = proc.stderr_tail()
    out.leftovers = running_under(path.parent)
    return out


def _needs_quiescence() -> None:
    if not quiescence_supported():
        pytest.skip("the kernel does not say where a process sleeps: no hang check")


def test_crash_mid_request_is_a_crash_with_its_signal_and_fatal_line(hostile, tmp_path):
    out = run_case(hostile("crash"), tmp_path)
    assert isinstance(out.error, WalredoProcessError), out.error
    assert out.error.returncode == -signal.SIGSEGV
    assert "killed by signal 11 (SIGSEGV)" in str(out.error)
    assert "FATAL:  hostile crash at answer 1" in str(out.error)
    assert out.leftovers == []


def test_a_process_that_reads_and_never_answers_is_a_hang_not_a_timeout(hostile, tmp_path):
    _needs_quiescence()
    out = run_case(hostile("hang-read"), tmp_path, timeout=60)
    assert isinstance(out.error, WalredoHang), out.error
    assert out.leftovers == []


def test_a_process_that_sleeps_is_left_to_the_timeout(hostile, tmp_path):
    out = run_case(hostile("hang-sleep"), tmp_path, timeout=1.0)
    assert type(out.error) is WalredoTimeout, out.error
    assert out.leftovers == []


def test_slow_answers_are_not_hangs(hostile, tmp_path):
    out = run_case(hostile("slow"), tmp_path, hang_check=0.01)
    assert out.error is None and len(out.pages) == 4
    assert out.leftovers == []


@pytest.mark.parametrize("mode", ["stderr-lines", "stderr-line"])
def test_100_mb_of_stderr_is_not_a_hang_and_keeps_a_bounded_tail(hostile, tmp_path, mode):
    """A correct process writes 20 MB of stderr before each of 5 answers; the hang check,
    probing every 10 ms, must see it busy writing, not idle."""
    out = run_case(hostile(mode), tmp_path, requests=5, hang_check=0.01, timeout=60)
    assert out.error is None, out.error
    assert out.process is not None and out.process.stderr_total_bytes >= 100_000_000
    tail = out.stderr_tail
    assert len(tail) <= 64 * 1024 + 200
    if mode == "stderr-lines":
        assert tail.splitlines()[-1] == "e" * 99
    else:
        assert "more bytes so far" in tail or "more bytes of this line dropped" in tail
    assert out.leftovers == []


def test_a_garbage_page_is_returned_as_the_answer(hostile, tmp_path):
    """The client cannot know a page is wrong; the conformance properties compare it
    (``test_getpage_answers_the_pushed_image`` fails: see the conformance test below)."""
    out = run_case(hostile("garbage"), tmp_path)
    assert out.error is None
    assert out.pages[1] != _request(0).base_image and len(out.pages[1]) == BLCKSZ
    assert out.leftovers == []


def test_half_a_page_then_silence_is_a_hang_naming_the_partial_answer(hostile, tmp_path):
    _needs_quiescence()
    out = run_case(hostile("half-page"), tmp_path, timeout=60)
    assert isinstance(out.error, WalredoHang), out.error
    assert "after 4096 of 8192 bytes of an answer" in str(out.error)
    assert out.leftovers == []


def test_closing_stdout_and_running_on_is_an_error(hostile, tmp_path):
    out = run_case(hostile("close-stdout"), tmp_path, timeout=60)
    assert isinstance(out.error, WalredoProcessError), out.error
    assert "is still running and closed its stdout before answering request #1" in str(out.error)
    assert out.leftovers == []


@pytest.mark.parametrize("mode", ["group-child", "setsid-child", "double-fork"])
def test_descendants_die_with_the_process_even_outside_its_group(hostile, tmp_path, mode):
    """The binary behaves; a descendant in its group ignoring SIGTERM, one in its own session
    holding the pipes, or a double-forked orphan: all are killed at close, and close does not
    wait for pipes they held (stderr reached EOF: the holder is dead, not given up on)."""
    path = hostile(mode)
    out = run_case(path, tmp_path)
    assert out.error is None and len(out.pages) == 4
    assert out.process is not None and out.process.wait_stderr(0)
    assert out.process.leftovers == []
    assert out.leftovers == []


def test_a_crash_behind_a_pipe_holding_descendant_is_a_crash_within_a_second(hostile, tmp_path):
    """The binary forks a setsid child that keeps its stdout and stderr open, then dies of
    SIGSEGV. With a one-second request timeout the verdict must still be the crash (seen from
    the process's death, not from EOF on stdout, which the child holds back)."""
    out = run_case(hostile("setsid-crash"), tmp_path, timeout=1.0)
    assert isinstance(out.error, WalredoProcessError), out.error
    assert "killed by signal 11 (SIGSEGV)" in str(out.error)
    assert "FATAL:  hostile crash at answer 1" in str(out.error)
    assert out.leftovers == []


def test_a_death_while_a_write_waits_for_room_is_seen_at_once(hostile, tmp_path):
    """The binary exits while a 4 MiB request is being written; its setsid child keeps the
    stdin pipe open, so the write would wait for room forever (no EPIPE): the death ends it."""
    path = hostile("setsid-exit")
    proc = WalredoProcess.launch(LaunchConfig(path, workdir=tmp_path))
    client = SyncWalredoClient(proc, timeout=60, hang_check=None)
    try:
        assert client.ping() == bytes(BLCKSZ)
        with pytest.raises(WalredoProcessError) as info:
            client.apply_raw(bytes(4 << 20))
    finally:
        client.close()
    assert "exited with status 3 and closed its stdin while request #1" in str(info.value)
    assert running_under(path.parent) == []


def test_exiting_at_once_is_an_exit_before_the_first_answer(hostile, tmp_path):
    out = run_case(hostile("exit0"), tmp_path)
    assert isinstance(out.error, WalredoProcessError), out.error
    assert "exited with status 0" in str(out.error) and "request #0" in str(out.error)
    assert out.leftovers == []


# ------------------------------------------------------------------------------------------
# Through the plugin: conformance verdicts, kill -9 of pytest
# ------------------------------------------------------------------------------------------


def _pytest_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


@pytest.mark.parametrize(("mode", "selection", "verdict"), [
    # a binary that answers a message cut short, instead of waiting for the rest until EOF
    ("answer-cut", "truncated", "[error] truncated message: the process answered"),
    ("garbage", "pushed_image", "[wrong-page] GetPage after PushPage"),
])
def test_hostile_binaries_fail_the_conformance_property_that_should_catch_them(
        hostile, tmp_path, mode, selection, verdict):
    path = hostile(mode)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--basetemp",
         str(tmp_path / "bt"), "--walredo-bin", str(path), "--pyargs", "pytest_walredo.conformance",
         "-k", selection],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_pytest_env(),
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert verdict in proc.stdout, proc.stdout[-3000:]
    assert running_under(path.parent) == []


_INNER = """
import os, time
from pathlib import Path
from pytest_walredo.target import user_binary

def test_start_hostiles_then_wait(walredo_factory):
    for path in {paths!r}:
        binary = user_binary(Path(path), None, 17, "neon")
        client = walredo_factory(binary=binary, sync=True)
        assert len(client.ping()) == 8192
    with open({ready!r} + "." + os.environ.get("PYTEST_XDIST_WORKER", "main"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)

test_second_worker = test_start_hostiles_then_wait
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["plain", "xdist"])
def test_nothing_survives_kill_9_of_pytest(hostile, tmp_path, xdist):
    """pytest runs hostile binaries (a descendant in the group ignoring SIGTERM, one in its own
    session, a double-forked orphan, a hung process) and is killed with SIGKILL: every one of
    them, and everything they started, must be gone soon after."""
    if xdist:
        pytest.importorskip("xdist")
    paths = [hostile(m) for m in ("group-child", "setsid-child", "double-fork", "hang-sleep")]
    directory = tmp_path
    ready = tmp_path / "ready"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(textwrap.dedent(_INNER.format(paths=[str(p) for p in paths],
                                                       ready=str(ready))))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
           "--basetemp", str(tmp_path / "bt"), str(test_file)]
    if xdist:
        cmd += ["-n", "2"]
    inner = subprocess.Popen(cmd, cwd=tmp_path, env=_pytest_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        expected = 2 if xdist else 1
        end = time.monotonic() + 120
        while len(list(tmp_path.glob("ready.*"))) < expected and time.monotonic() < end:
            assert inner.poll() is None, "the inner pytest ended early"
            time.sleep(0.05)
        assert len(list(tmp_path.glob("ready.*"))) == expected, "the inner tests never got ready"
        before = running_under(directory)
        # 4 binaries, 3 of them with one descendant each, per pytest process that ran them
        assert len(before) >= 7 * expected, before
        os.kill(inner.pid, signal.SIGKILL)
        inner.wait()
        left = wait_until_none(directory, 30)
        assert left == [], f"still running after kill -9 of pytest: {left}"
    finally:
        if inner.poll() is None:
            os.killpg(inner.pid, signal.SIGKILL)
            inner.wait()
        for pid in running_under(directory):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# ------------------------------------------------------------------------------------------
# A correct binary that floods stderr passes with the hang check on
# ------------------------------------------------------------------------------------------


@pytest.fixture
def flood_walredo(tmp_path: Path) -> Iterator[Callable[[int, bool], Path]]:
    def make(per_answer: int, lines: bool) -> Path:
        launcher = tmp_path / f"flood-walredo-{per_answer}-{int(lines)}"
        launcher.write_text(
            f"#!{sys.executable} -I\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
            f"FLOOD = {per_answer}\nLINES = {lines}\n"
            + (HERE / "hostile" / "flood_walredo.py").read_text())
        launcher.chmod(0o755)
        return launcher

    yield make


@pytest.mark.parametrize("lines", [True, False], ids=["lines", "one-line"])
def test_a_correct_binary_flooding_stderr_passes_conformance_with_the_hang_check_on(
        flood_walredo, tmp_path, lines):
    """The reference walredo writing 2 MiB of stderr before each answer (the stderr pipe holds
    1 MiB, so it often sleeps in a pipe write while a caller waits): the answer and concurrency
    properties pass with the hang check probing every 10 ms. (The whole suite, 10 runs of
    10: see the README.)"""
    _needs_quiescence()
    path = flood_walredo(2 << 20, lines)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--basetemp",
         str(tmp_path / "bt"), "--walredo-bin", str(path), "--walredo-hang-check", "0.01",
         "--pyargs", "pytest_walredo.conformance", "-k",
         "ping or pushed_image or each_caller_gets_its_own_page"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=_pytest_env(),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
