"""pytest-xdist: walredo tests on 2 workers get one process per test, dump names never
collide, and one test's crash or hang never touches another test's process.

One sub-run (``pytest -n 2 --dist loadfile``) of two mirrored test files is shared by the
checks below: while one worker deals with a hanging process the other runs its own tests,
and each worker runs healthy tests right after a crash and a hang. Every sub-test logs its
worker, pytest pid and walredo pids to a shared JSON-lines file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_walredo.process.quiescence import supported as quiescence_supported
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag

pytest.importorskip("xdist")

N_CONCURRENT_CRASHES = 6
N_SHARED_DUMPS = 40

_CONFTEST = """
import json, os
import pytest

@pytest.fixture
def log_pids(request):
    path = os.environ["XDIST_TEST_LOG"]
    def log(*pids):
        with open(path, "a") as f:
            f.write(json.dumps({"test": request.node.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                "pytest_pid": os.getpid(), "walredo_pids": list(pids)}) + "\\n")
    return log
"""

# {side} is "a" or "b"; the b file runs the same tests in reverse order, so the two workers are
# in different phases (one waiting on a hang while the other crashes or passes).
_TESTS = """
import asyncio, os, time
import pytest
from pytest_walredo.process import FailureDumper, WalredoProcessError, WalredoTimeout
from pytest_walredo.protocol import RedoRequest, RelTag

SIDE = {side_no}

def req(blk):
    return RedoRequest(RelTag(1663, 5, 16384), blk, bytes([SIDE]) * 8192, ())

def test_hang(walredo_factory, log_pids):
    client = walredo_factory(faults=["hang-after:0"], sync=True, timeout=1.0)
    log_pids(client.process.pid)
    client.apply(req(1))

def test_after_hang(walredo, log_pids):
    log_pids(walredo.process.pid)
    assert walredo.apply(req(2)) == req(2).base_image
    assert len(walredo.ping()) == 8192

def test_crash(walredo_factory, log_pids):
    client = walredo_factory(faults=["crash-after:0"], sync=True)
    log_pids(client.process.pid)
    client.apply(req(3))

def test_after_crash(walredo, log_pids):
    log_pids(walredo.process.pid)
    assert walredo.apply(req(4)) == req(4).base_image

def test_crash_beside_healthy_process(walredo_factory, log_pids):
    healthy = walredo_factory(sync=True)
    doomed = walredo_factory(faults=["crash-after:1"], sync=True)
    log_pids(healthy.process.pid, doomed.process.pid)
    assert doomed.apply(req(5)) == req(5).base_image
    with pytest.raises(WalredoProcessError):
        doomed.apply(req(6))
    for blk in (7, 8, 9):
        assert healthy.apply(req(blk)) == req(blk).base_image

@pytest.mark.asyncio
async def test_concurrent_crashes(walredo_factory, log_pids):
    # {n_crash} processes fail on same-length requests at once: same millisecond, same length,
    # each client's dumper starting at seq 0 in the same directory.
    clients = [walredo_factory(faults=["crash-after:0"]) for _ in range({n_crash})]
    log_pids(*(c.process.pid for c in clients))
    results = await asyncio.gather(*(c.apply(req(100 + i)) for i, c in enumerate(clients)),
                                   return_exceptions=True)
    assert all(isinstance(r, WalredoProcessError) for r in results), results
    assert False, "all crashed as planned"

def test_shared_directory_dumps():
    # Both workers dump same-length inputs into one directory at the same time: a file barrier
    # (bounded) makes them start together, so names from both dumpers' seq 0, 1, ... race.
    shared = os.environ["XDIST_SHARED_DUMPS"]
    os.makedirs(shared, exist_ok=True)
    open(os.path.join(shared, f"ready-{{SIDE}}"), "w").close()
    other = os.path.join(shared, f"ready-{{3 - SIDE}}")
    deadline = time.monotonic() + 60
    while not os.path.exists(other):
        if time.monotonic() > deadline:
            pytest.fail("the other xdist worker never reached the barrier")
        time.sleep(0.005)
    dumper = FailureDumper(shared)
    for i in range({n_shared}):
        assert dumper.dump(bytes([SIDE, i]) * 50) is not None
"""


def _reverse_tests(src: str) -> str:
    """The same module with its test functions in reverse order (decorators kept with them)."""
    head, *blocks = src.split("\n\n")
    tests = [b for b in blocks if "def test_" in b]
    rest = [b for b in blocks if "def test_" not in b]
    return "\n\n".join([head, *rest, *reversed(tests)])


class XdistRun:
    def __init__(self, root: Path, proc: subprocess.CompletedProcess[str]) -> None:
        self.root = root
        self.proc = proc
        self.out = proc.stdout + proc.stderr
        self.log = [json.loads(line) for line in (root / "log.jsonl").read_text().splitlines()]
        self.dumps = root / "dumps"
        self.shared = root / "shared"

    def entries(self, test: str) -> list[dict[str, Any]]:
        return [e for e in self.log if e["test"].endswith(test)]


@pytest.fixture(scope="module")
def xdist_run(tmp_path_factory: pytest.TempPathFactory) -> XdistRun:
    root = tmp_path_factory.mktemp("xdist")
    (root / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    (root / "conftest.py").write_text(_CONFTEST)
    for side_no, name in ((1, "test_side_a.py"), (2, "test_side_b.py")):
        src = _TESTS.format(side_no=side_no, n_crash=N_CONCURRENT_CRASHES, n_shared=N_SHARED_DUMPS)
        (root / name).write_text(src if side_no == 1 else _reverse_tests(src))
    env = dict(os.environ, XDIST_TEST_LOG=str(root / "log.jsonl"), XDIST_SHARED_DUMPS=str(root / "shared"))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile",
         "-rA", f"--walredo-dump-dir={root / 'dumps'}", "--walredo-timeout=10"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    return XdistRun(root, proc)


def _outcome(run: XdistRun, side: str, test: str) -> str:
    m = re.search(rf"^(PASSED|FAILED|ERROR|SKIPPED) test_side_{side}\.py::{test}( |$)", run.out, re.M)
    if m:
        return m.group(1)
    raise AssertionError(f"no outcome for test_side_{side}.py::{test} in:\n{run.out[-3000:]}")


def test_both_workers_ran_and_outcomes_are_per_test(xdist_run: XdistRun) -> None:
    run = xdist_run
    assert {e["worker"] for e in run.log} == {"gw0", "gw1"}, run.out[-3000:]
    for side in "ab":
        assert _outcome(run, side, "test_hang") == "FAILED"
        assert _outcome(run, side, "test_crash") == "FAILED"
        assert _outcome(run, side, "test_concurrent_crashes") == "FAILED"
        for ok in ("test_after_hang", "test_after_crash", "test_crash_beside_healthy_process",
                   "test_shared_directory_dumps"):
            assert _outcome(run, side, ok) == "PASSED", run.out[-3000:]
    # Each failure is its own: a hang (found by the default hang check, well before the 1 s
    # timeout) for the hang, an exit for the crash.
    hung = "WalredoHang" if quiescence_supported() else "WalredoTimeout"
    assert run.out.count(hung) >= 2 and run.out.count("WalredoProcessError") >= 2


def test_one_process_per_test_on_its_own_worker(xdist_run: XdistRun) -> None:
    run = xdist_run
    pids = [p for e in run.log for p in e["walredo_pids"]]
    assert len(pids) == len(set(pids)), "a walredo process served two tests"
    for e in run.log:
        for pid in e["walredo_pids"]:
            assert not Path(f"/proc/{pid}").exists(), f"walredo pid {pid} of {e['test']} outlived the run"
    # Within a file, every test ran in the same worker process; the tests after a hang and a
    # crash therefore shared the worker, not the process.
    for side in "ab":
        workers = {(e["worker"], e["pytest_pid"]) for e in run.log if f"test_side_{side}.py" in e["test"]}
        assert len(workers) == 1, workers


def test_dump_names_never_collide_and_all_are_present(xdist_run: XdistRun) -> None:
    run = xdist_run
    for side_no, side in ((1, "a"), (2, "b")):
        tdir = next(run.dumps.glob(f"*test_side_{side}.py_test_concurrent_crashes"))
        dumps = sorted(tdir.glob("*.walredo"))
        # Every crashed request has its own file with its own bytes: nothing was overwritten.
        wanted = {RedoRequest(RelTag(1663, 5, 16384), 100 + i, bytes([side_no]) * BLCKSZ, ()).encode()
                  for i in range(N_CONCURRENT_CRASHES)}
        assert {p.read_bytes() for p in dumps} == wanted and len(dumps) == N_CONCURRENT_CRASHES
        # ...each decoded, and the failure's index lists them.
        assert all(p.with_name(p.name.removesuffix(".walredo") + ".decode.txt").exists() for p in dumps)
        index = next(p for p in tdir.glob("failure-*.txt") if p.name.count(".") == 1).read_text()
        assert all(p.name in index for p in dumps)
        for test in ("test_hang", "test_crash"):
            assert len(list(next(run.dumps.glob(f"*test_side_{side}.py_{test}")).glob("*.walredo"))) == 1
    shared = sorted(run.shared.glob("*.walredo"))
    assert len(shared) == 2 * N_SHARED_DUMPS
    assert len({p.read_bytes() for p in shared}) == 2 * N_SHARED_DUMPS
    # The controller's summary lists every failed walredo test's artifact directory.
    assert "walredo failure artifacts" in run.out
    for side in "ab":
        for test in ("test_hang", "test_crash", "test_concurrent_crashes"):
            assert f"test_side_{side}.py::{test}\n" in run.out


# ------------------------------------------------------------------------------------------
# The conformance suite itself under -n 2
# ------------------------------------------------------------------------------------------

# Loaded into the sub-run with -p: before each test's teardown, log the walredo processes its
# walredo_factory started and, for the live ones, the pid their supervising shim runs under, and
# whether the test skipped (a corpus entry the reference cannot judge skips before any process).
_PIDLOG_PLUGIN = """
import json, os
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "call":
        item.stash[SKIPPED] = outcome.get_result().skipped

SKIPPED = pytest.StashKey[bool]()

def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    factory = getattr(item, "funcargs", {}).get("walredo_factory")
    if factory is not None:
        procs = []
        for client in factory.clients:
            process = client.process
            if process is None:
                continue
            try:
                shim = parent(process.pid)
                assert shim == process.shim_pid
                ppid = parent(shim)
                with open(f"/proc/{ppid}/cmdline", "rb") as f:
                    if b"--server" in f.read():  # the worker's shim server forked the shim
                        ppid = parent(ppid)
            except OSError:
                ppid = None  # already exited and reaped
            procs.append([process.pid, ppid])
        with open(os.environ["XDIST_TEST_LOG"], "a") as f:
            f.write(json.dumps({"test": item.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                "pytest_pid": os.getpid(), "procs": procs,
                                "skipped": item.stash.get(SKIPPED, False)}) + "\\n")
    yield
"""


def test_conformance_suite_under_xdist_gets_a_process_per_test(tmp_path: Path) -> None:
    (tmp_path / "walredo_pidlog.py").write_text(_PIDLOG_PLUGIN)
    log = tmp_path / "log.jsonl"
    env = dict(os.environ, XDIST_TEST_LOG=str(log),
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "walredo_pidlog", "-n", "2", "-q",
         "--pyargs", "pytest_walredo.conformance", f"--walredo-dump-dir={tmp_path / 'dumps'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(not e["skipped"] for e in entries) >= 10, out[-2000:]  # the suite's walredo tests all logged
    assert {e["worker"] for e in entries} == {"gw0", "gw1"}
    owner: dict[int, str] = {}
    live = [ppid for e in entries for _, ppid in e["procs"] if ppid is not None]
    ran = [e for e in entries if not e["skipped"]]
    assert len(live) >= len(ran) // 2, entries  # most processes are alive until teardown
    for e in entries:
        assert e["procs"] or e["skipped"], f"{e['test']} started no walredo process"
        for pid, ppid in e["procs"]:
            assert owner.setdefault(pid, e["test"]) == e["test"], f"pid {pid} served two tests"
            # A live process runs under (its shim is a child of, or of the shim server of) the
            # worker that runs its test, not the other one.
            assert ppid in (None, e["pytest_pid"]), (e, pid, ppid)
