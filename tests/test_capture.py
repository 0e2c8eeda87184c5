"""Every failing walredo test leaves a replayable input (issue 12), end to end: the README's own
property against seeded faults, relaunch after failures, session streams through replay and
shrink, the start-up probe, where dumps live and how many there are."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from pytest_walredo.corpus.folder import entry_names, read_entry
from pytest_walredo.process.quiescence import supported as quiescence_supported
from pytest_walredo.protocol import RedoRequest, RelTag, decode_requests
from pytest_walredo.testing.wrappers import reference_wrapper
from pytest_walredo.triage.cli import main

ROOT = Path(__file__).resolve().parent.parent
ASYNCIO_INI = "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"

needs_hang_check = pytest.mark.skipif(not quiescence_supported(), reason="this system does not report where a "
                                      "process sleeps (/proc/<pid>/wchan): no hang check")


def readme_property() -> str:
    """The README's own-property recipe, as a user would paste it."""
    blocks = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    prop = next(b for b in blocks if "def test_my_binary_agrees_with_the_model" in b)
    return prop


@pytest.fixture
def faulty(tmp_path: Path):
    """``faulty("crash-after:2")``: a wrapper script around the reference walredo that adds the
    fault, called by absolute path (the sandbox clears PATH)."""

    def make(*faults: str) -> Path:
        script = tmp_path / f"walredo-{'-'.join(f.replace(':', '') for f in faults)}.sh"
        return reference_wrapper(script, 17, "neon", faults)

    return make


def test_dir(root: Path, name: str) -> Path:
    dirs = [p for p in root.rglob(f"*{name}") if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


test_dir.__test__ = False  # type: ignore[attr-defined]


def allure_results(alluredir: Path) -> dict[str, dict]:
    out = {}
    for p in alluredir.glob("*-result.json"):
        d = json.loads(p.read_text())
        out[d["name"]] = d
    return out


# ------------------------------------------------------------------------------------------
# The README's own property against seeded faults (the "Done means")
# ------------------------------------------------------------------------------------------


def test_readme_property_against_a_record_ignoring_binary(pytester: pytest.Pytester, faulty,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_property=readme_property())
    alluredir = pytester.path / "allure-results"
    # $CI set: pytest's own explanation of a failed ``==`` would diff two 8 KiB reprs with
    # difflib, for minutes; the recipe's ``expect`` never asks for one
    monkeypatch.setenv("CI", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--walredo-bin={faulty('ignore-records')}",
                                           f"--alluredir={alluredir}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # the page comparison is explained field by field, not byte by byte
    assert "differs from the expected page: pages differ" in out and "Full diff" not in out
    tdir = test_dir(pytester.path / ".walredo-dumps", "test_my_binary_agrees_with_the_model")
    # every saved request is a corpus entry, with the page the test wanted and the one it got
    names = entry_names(tdir)
    assert names, list(tdir.iterdir())
    final = [n for n in names if json.loads((tdir / f"{n}.json").read_text()).get("example") in (None, "final")]
    assert len(final) == 1
    entry = read_entry(tdir, final[0])
    assert entry.expected is not None and entry.meta.mask == "none"
    actual = (tdir / f"{final[0]}.actual.page").read_bytes()
    assert actual != entry.expected and len(actual) == 8192
    req = entry.decoded_request()
    assert req.records  # a record the binary ignored: the expected page is the model's answer
    from pytest_walredo.sim import model_page

    assert entry.expected == model_page(req, 17)
    meta = json.loads((tdir / f"{final[0]}.json").read_text())
    assert meta["outcome"] == "differs" and meta["test"].endswith("test_my_binary_agrees_with_the_model")
    # the index names the next steps, and they are real commands
    index = next(p for p in tdir.glob("failure-*.txt") if p.name.count(".") == 1).read_text()
    assert f"pytest-walredo replay {final[0]}.walredo" in index and f"--expect {final[0]}.expected.page" in index
    # Allure: the request, its JSON and both pages are attached
    atts = {a["name"] for a in allure_results(alluredir)["test_my_binary_agrees_with_the_model"]["attachments"]}
    assert {f"{final[0]}.walredo", f"{final[0]}.json", f"{final[0]}.expected.page",
            f"{final[0]}.actual.page"} <= atts


def test_readme_property_against_a_binary_that_crashes_on_its_third_request(pytester: pytest.Pytester,
                                                                           faulty) -> None:
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_property=readme_property())
    alluredir = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--walredo-bin={faulty('crash-after:2')}",
                                           f"--alluredir={alluredir}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Flaky" not in out and "Inconsistent results" not in out
    # the test fails with the crash itself: exit status and FATAL line
    assert re.search(r"E\s+pytest_walredo.process.errors.WalredoProcessError: walredo process \d+ exited with "
                     r"status 1 .*FATAL:  fault injected: crash-after:2", out)
    assert "Falsifying example" in out  # Hypothesis shrank it
    # it needs the two requests before it: said in the log, and saved as a session stream
    assert "fails only after the 2 call(s)" in out
    tdir = test_dir(pytester.path / ".walredo-dumps", "test_my_binary_agrees_with_the_model")
    sessions = sorted(tdir.glob("*.session.walredo"))
    assert sessions
    for s in sessions:
        assert len(decode_requests(s.read_bytes())) == 3
    index = next(p for p in tdir.glob("failure-*.txt") if p.name.count(".") == 1).read_text()
    assert "crash: walredo process" in index and "FATAL:  fault injected: crash-after:2" in index
    assert "the failure needs the calls before it" in index
    # Allure shows the crash too, and holds the session streams
    res = allure_results(alluredir)["test_my_binary_agrees_with_the_model"]
    assert "FATAL:  fault injected: crash-after:2" in res["statusDetails"]["message"]
    assert {s.name for s in sessions} <= {a["name"] for a in res["attachments"]}


@needs_hang_check
def test_swap_at_the_second_answer_leaves_a_replayable_session(pytester: pytest.Pytester, faulty,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(test_property=readme_property())
    binary = faulty("swap-responses:2")
    alluredir = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--walredo-bin={binary}",
                                           f"--alluredir={alluredir}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Flaky" not in out and "WalredoHang" in out
    tdir = test_dir(pytester.path / ".walredo-dumps", "test_my_binary_agrees_with_the_model")
    walredos = sorted(tdir.glob("*.walredo"))
    # the final example and the first failure, each a request and its session stream: a handful
    assert len(walredos) <= 4, walredos
    assert len(list(tdir.iterdir())) <= 20
    assert len(allure_results(alluredir)["test_my_binary_agrees_with_the_model"]["attachments"]) <= 20

    index = next(p for p in tdir.glob("failure-*.txt") if p.name.count(".") == 1).read_text()
    m = re.search(r"pytest-walredo replay (\S+\.session\.walredo)", index)
    assert m, index
    # and it says why: the request alone passes on a fresh process
    assert "the failure needs the calls before it, replay the session stream" in index
    session = tdir / m.group(1)
    request = tdir / m.group(1).replace(".session.walredo", ".walredo")
    monkeypatch.chdir(tdir)
    capsys.readouterr()
    # the request alone passes: replay says so and points at the session stream
    assert main(["replay", request.name, "--walredo-bin", str(binary)]) == 0
    said = capsys.readouterr().out
    assert "verdict: matches" in said and f"pytest-walredo replay {session.name}" in said
    # the session stream, in one process, reproduces the failure
    assert main(["replay", session.name, "--walredo-bin", str(binary)]) == 1
    said = capsys.readouterr().out
    assert ">#1" in said and "will never be answered" in said
    # shrink keeps the two requests the bug needs (and nothing else of them)
    assert main(["shrink", session.name, "--until", "timeout", "--walredo-bin", str(binary)]) == 0
    said = capsys.readouterr().out
    stem = session.name.removesuffix(".session.walredo")
    minimal = tdir / f"{stem}.min.session.walredo"
    reqs = decode_requests(minimal.read_bytes())
    assert len(reqs) == 2 and all(r.base_image is None and not r.records for r in reqs), said
    assert main(["replay", minimal.name, "--walredo-bin", str(binary)]) == 1
    capsys.readouterr()
    # the shrunk failure is a corpus entry whose JSON marks its call in the session
    entry = read_entry(tdir, f"{stem}.min")
    meta = json.loads((tdir / f"{stem}.min.json").read_text())
    assert meta["session"] == {"file": minimal.name, "offset": len(reqs[0].encode()), "index": 1,
                               "needs_history": True}
    assert entry.decoded_request() == reqs[1]


def test_a_property_failing_every_request_leaves_a_handful_of_files(pytester: pytest.Pytester) -> None:
    """Every example fails, and Hypothesis runs many while it shrinks: only the first failure
    and the final example are written."""
    pytester.makeini(ASYNCIO_INI)
    pytester.makeconftest("from pytest_walredo import walredo_fixture\n"
                          "dead_walredo = walredo_fixture(faults=['crash-after:0'], sync=True)\n")
    pytester.makepyfile(
        """
        from hypothesis import HealthCheck, given, settings, strategies as st
        from pytest_walredo.protocol import RedoRequest, RelTag

        runs = []

        @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(blk=st.integers(0, 10**6), fill=st.integers(0, 255))
        def test_every_request_fails(dead_walredo, blk, fill):
            runs.append(blk)
            print(f"EXAMPLES {len(runs)}")
            dead_walredo.apply(RedoRequest(RelTag(1663, 5, 16384), blk, bytes([fill]) * 8192, ()))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    runs = int(re.findall(r"EXAMPLES (\d+)", result.stdout.str())[-1])
    assert runs > 5  # every one of them failed at the process level
    tdir = test_dir(pytester.path / ".walredo-dumps", "test_every_request_fails")
    assert len(list(tdir.glob("*.walredo"))) <= 2, sorted(p.name for p in tdir.iterdir())
    final = [n for n in entry_names(tdir)
             if json.loads((tdir / f"{n}.json").read_text()).get("example") != "first failure"]
    assert len(final) == 1
    req = read_entry(tdir, final[0]).decoded_request()
    assert (req.blknum, req.base_image) == (0, bytes(8192))  # Hypothesis's minimal example


# ------------------------------------------------------------------------------------------
# Relaunch, not poison; expect(); the crash in the report
# ------------------------------------------------------------------------------------------


def test_the_call_after_a_failure_runs_on_a_fresh_process(pytester: pytest.Pytester) -> None:
    pytester.makeini(ASYNCIO_INI)
    pytester.makeconftest("from pytest_walredo import walredo_fixture\n"
                          "crashing = walredo_fixture(faults=['crash-after:1'], sync=True)\n"
                          "crashing_async = walredo_fixture(faults=['crash-after:1'])\n")
    pytester.makepyfile(
        """
        import pytest
        from pytest_walredo import WalredoProcessError

        def test_sync(crashing, caplog):
            first = crashing.process.pid
            crashing.ping()
            # the death is reported first: exit status and FATAL line
            with pytest.raises(WalredoProcessError, match=r"exited with status 1 .*crash-after:1"):
                crashing.ping()
            assert len(crashing.ping()) == 8192  # then a fresh process answers
            assert crashing.process.pid != first and crashing.relaunches == 1
            assert "the next request runs on a fresh process" in caplog.text

        @pytest.mark.asyncio
        async def test_async(crashing_async):
            await crashing_async.ping()
            with pytest.raises(WalredoProcessError):
                await crashing_async.ping()
            assert len(await crashing_async.ping()) == 8192
            assert crashing_async.relaunches == 1 and not crashing_async.poisoned
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_expect_saves_both_pages_and_names_the_difference(pytester: pytest.Pytester) -> None:
    pytester.makeini(ASYNCIO_INI)
    pytester.makepyfile(
        """
        import pytest
        from pytest_walredo.protocol import RedoRequest, RelTag

        REQ = RedoRequest(RelTag(1663, 5, 16384), 3, bytes(range(256)) * 32, ())

        def test_sync(walredo):
            assert walredo.expect(REQ, REQ.base_image) == REQ.base_image
            walredo.expect(REQ, bytes(8192))

        @pytest.mark.asyncio
        async def test_async(walredo_process):
            await walredo_process.expect(REQ, bytes(8192))

        def test_assert(walredo):
            assert walredo.apply(REQ) == bytes(8192)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*AssertionError: walredo answer to redo 1663/5/16384 blk 3: base image, "
                                 "0 record(s) differs from the expected page: pages differ*"])
    # a plain ``assert got == want`` on pages: explained field by field, the pages saved the same way
    result.stdout.fnmatch_lines(["*the walredo answer (left) to redo 1663/5/16384 blk 3: base image, 0 record(s) "
                                 "is not the expected page: pages differ*"])
    for name in ("test_sync", "test_async", "test_assert"):
        tdir = test_dir(pytester.path / ".walredo-dumps", name)
        (entry,) = [read_entry(tdir, n) for n in entry_names(tdir)
                    if json.loads((tdir / f"{n}.json").read_text())["outcome"] == "differs"]
        assert entry.expected == bytes(8192)
        assert (tdir / f"{entry.name.split('/')[-1]}.actual.page").read_bytes() == bytes(range(256)) * 32


# ------------------------------------------------------------------------------------------
# Start-up probe, wrapper scripts, dumps that last
# ------------------------------------------------------------------------------------------


@needs_hang_check
def test_a_binary_that_swallows_the_first_ping_is_a_hang_at_start(pytester: pytest.Pytester, faulty) -> None:
    pytester.makepyfile("def test_x(walredo): pass\n")
    # a two-minute timeout: only the hang check can end this quickly
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--walredo-bin={faulty('swap-responses:1')}",
                                           "--walredo-timeout=120")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--walredo-bin *swap-responses1.sh: hangs: it read the whole ping (5 bytes: H) "
                                 "and sits idle waiting for more input instead of answering (found by the hang "
                                 "check after 0.2 s)*"])


def test_a_wrapper_calling_walredo_ref_by_name_is_told_about_path(pytester: pytest.Pytester) -> None:
    script = pytester.path / "by-name.sh"
    script.write_text('#!/bin/sh\nexec walredo-ref "$@" --fault=ignore-records\n')
    script.chmod(0o755)
    pytester.makepyfile("def test_x(walredo): pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--walredo-bin={script}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*by-name.sh: exited with status 127 before answering a ping*not found*status "
                                 "127 is a shell's 'command not found': the sandbox clears PATH, so a wrapper "
                                 "script must call every program by its absolute path*"])


_FAILING = """
from pytest_walredo.protocol import RedoRequest, RelTag

def test_fails(walredo):
    walredo.expect(RedoRequest(RelTag(1663, 5, 16384), 0, bytes(8192), ()), bytes([1]) * 8192)
"""


def test_dumps_outlive_other_runs_and_keep_the_newest_sessions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fails=_FAILING)
    root = pytester.path / ".walredo-dumps"
    (root / "mine").mkdir(parents=True)  # not a session folder: never touched
    sessions = []
    for _ in range(3):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--walredo-dump-keep=2")
        result.assert_outcomes(failed=1)
        line = next(x for x in result.stdout.lines if x.startswith("this session's folder: "))
        sessions.append(Path(line.split(": ", 1)[1].split(" (")[0]))
        assert sessions[-1].parent == root and (sessions[-1] / "test_fails.py_test_fails").is_dir()
        assert "the newest 2 sessions are kept" in line
    # a run without failures (another project's tests, say) removes nothing
    pytester.makepyfile(test_other="def test_ok(): pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_other.py").assert_outcomes(passed=1)
    kept = sorted(p.name for p in root.iterdir())
    assert kept == sorted([".gitignore", "mine", sessions[1].name, sessions[2].name])
    assert (root / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_session_still_running_keeps_its_dumps(pytester: pytest.Pytester) -> None:
    """Two pytest runs in one checkout: the one that finishes first prunes only sessions whose
    pytest has ended, never the folder another run is still writing to."""
    pytester.makepyfile(test_fails=_FAILING)
    root = pytester.path / ".walredo-dumps"
    ended = subprocess.Popen(["true"])
    ended.wait()
    running = root / f"20000101-000000-{os.getpid()}"  # this test's process: still running
    gone = root / f"20000101-000001-{ended.pid}"
    for folder in (running, gone):
        (folder / "some_test").mkdir(parents=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--walredo-dump-keep=1")
    result.assert_outcomes(failed=1)
    names = {p.name for p in root.iterdir()}
    assert running.name in names and (running / "some_test").is_dir()
    assert gone.name not in names
    assert len(names - {".gitignore", running.name}) == 1  # the new session's folder


def test_a_read_only_rootdir_keeps_dumps_in_the_temporary_folder(pytester: pytest.Pytester) -> None:
    # root may write anywhere: the conftest makes the rootdir look read-only to the plugin
    pytester.makeconftest(
        """
        import os
        from pathlib import Path

        _access, ROOT = os.access, Path(__file__).parent

        def access(path, mode, *args, **kwargs):
            if Path(path) == ROOT and mode & os.W_OK:
                return False
            return _access(path, mode, *args, **kwargs)

        os.access = access
        """
    )
    pytester.makepyfile(test_fails=_FAILING)
    basetemp = pytester.path / "basetemp"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--basetemp={basetemp}")
    result.assert_outcomes(failed=1)
    assert not (pytester.path / ".walredo-dumps").exists()
    tdir = test_dir(basetemp / "walredo-dumps", "test_fails")
    assert entry_names(tdir) and str(tdir) in result.stdout.str()


def test_xdist_workers_write_into_the_session_folder(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fails=_FAILING + "\ndef test_fails_too(walredo):\n    test_fails(walredo)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(failed=2)
    (session,) = [p for p in (pytester.path / ".walredo-dumps").iterdir() if p.is_dir()]
    assert sorted(p.name for p in session.iterdir()) == ["test_fails.py_test_fails", "test_fails.py_test_fails_too"]
    assert f"this session's folder: {session}" in result.stdout.str()


# ------------------------------------------------------------------------------------------
# Dependencies and docs
# ------------------------------------------------------------------------------------------


def test_lz4_and_zstandard_are_plain_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ]", d)[0] for d in project["dependencies"]}
    assert {"lz4", "zstandard"} <= names


def test_walredo_ref_help_lists_every_fault(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_walredo.refserver.__main__ import main as ref_main
    from pytest_walredo.refserver.faults import KNOWN_FAULTS

    assert ref_main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: walredo-ref --wal-redo")
    for name in KNOWN_FAULTS:
        assert re.search(rf"^  {re.escape(name)}[:\[ ]", text, re.M), name
    assert "absolute path" in text


def test_readme_says_how_to_try_seeded_faults() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Trying the harness with seeded faults", 1)[1].split("\n## ", 1)[0]
    assert "walredo-ref --help" in section and "absolute path" in section and "127" in section


def test_replay_of_a_request_names_the_session_stream_beside_it(tmp_path: Path, capsys) -> None:
    req = RedoRequest(RelTag(1663, 5, 16384), 0, bytes(8192), ())
    (tmp_path / "x.walredo").write_bytes(req.encode())
    assert main(["replay", str(tmp_path / "x.walredo")]) == 0
    assert "note:" not in capsys.readouterr().out
    (tmp_path / "x.session.walredo").write_bytes(req.encode() * 2)
    assert main(["replay", str(tmp_path / "x.walredo")]) == 0
    assert f"pytest-walredo replay {tmp_path / 'x.session.walredo'}" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------
# The capture itself: examples, the first failure, the final one, deferred dumps
# ------------------------------------------------------------------------------------------


def _capture_run(tmp_path: Path, fail_from: int):
    """Run a Hypothesis property that records one call per example (as the fixtures do) and
    fails for n >= fail_from; returns the capture and the dumper."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pytest_walredo.plugin.capture import CaptureDumper, Exchange, Session, TestCapture

    cap = TestCapture("t")
    dumper = CaptureDumper(tmp_path, cap)
    session = Session(1)
    seen: list[int] = []

    @settings(max_examples=60, database=None, derandomize=True, deadline=None)
    @given(st.integers(0, 1000))
    def prop(n: int) -> None:
        ex = cap.example()
        data = n.to_bytes(4, "little")
        e = Exchange(object(), data, session, no=len(session.calls))
        session.add(e.no, data)
        ex.add(e)
        seen.append(n)
        if n >= fail_from:
            e.error, e.failure = "boom", "crash"
            e.dump = dumper.dump(data)
            raise AssertionError(n)

    return cap, dumper, prop, seen


def test_capture_keeps_the_first_failure_and_the_final_example(tmp_path: Path) -> None:
    cap, dumper, prop, seen = _capture_run(tmp_path, 500)
    with pytest.raises(AssertionError):
        prop()
    assert cap.first_failure is not None and cap.final is not None and cap.final is not cap.first_failure
    assert cap.final.is_final and cap.final.failed and cap.first_failure.failed
    first_n = int.from_bytes(cap.first_failure.exchanges[0].data, "little")
    assert first_n == next(n for n in seen if n >= 500)
    assert int.from_bytes(cap.final.exchanges[0].data, "little") == 500  # shrunk
    assert cap.examples == len(seen)
    # dumps: the first failure's and the final one's, none of the shrinking steps
    failing = sum(1 for n in seen if n >= 500)
    assert failing > 3
    assert sorted(p.read_bytes() for p in dumper.existing) == sorted(
        [first_n.to_bytes(4, "little"), (500).to_bytes(4, "little")])
    assert len(list(tmp_path.iterdir())) == 2
    ex = cap.failing_example()
    assert ex is not None and ex.first is not None and ex.first_failure_at == cap.first_failure.number
    # the final example's request sits at the end of its process's session stream
    ref = ex.requests[0].session
    assert ref is not None and ref.stream.endswith((500).to_bytes(4, "little"))
    assert ref.offset == 4 * ref.index and ref.index == cap.final.exchanges[0].no


def test_capture_of_a_passing_property_writes_nothing(tmp_path: Path) -> None:
    cap, dumper, prop, _seen = _capture_run(tmp_path, 10**9)
    prop()
    assert cap.first_failure is None and not list(tmp_path.iterdir()) and not dumper.existing


def test_a_page_comparison_names_the_answer_and_the_expected_page() -> None:
    from pytest_walredo.plugin.capture import Exchange, Session, TestCapture

    cap = TestCapture("t")
    ex = cap.example()
    got, want = bytes([1]) * 8192, bytes([2]) * 8192
    e = Exchange(object(), b"x", Session(1), no=0, answer=got)
    ex.add(e)
    assert cap.compared_pages(want, got) is e and e.expected == want  # either side
    e.expected = None
    assert cap.compared_pages(got, want) is e and e.expected == want
    assert cap.compared_pages(got, got) is None  # equal: nothing failed
    assert cap.compared_pages(b"a", b"b") is None  # not pages
    assert cap.compared_pages(bytes(8192), want) is None  # neither is an answer


def test_a_test_making_many_calls_keeps_where_it_went_wrong_and_the_newest() -> None:
    """Memory stays bounded however many calls a test makes; what is kept and written is the
    call that failed and the newest ones, and the index says how many there were."""
    from pytest_walredo.plugin.capture import KEEP_CALLS, MAX_CALLS_REPORTED, Exchange, Session, TestCapture

    cap = TestCapture("t")
    ex = cap.example()
    session = Session(1)
    calls = 20 * KEEP_CALLS
    for n in range(calls):
        data = n.to_bytes(4, "little")
        e = Exchange(object(), data, session, no=n, answer=bytes(8192))
        session.add(n, data)
        ex.add(e)
        if n == 3:  # an early call failed at the process level; the test went on
            e.answer, e.error, e.failure = None, "boom", "crash"
            ex.failed_call(e)
    assert len(ex.kept()) <= KEEP_CALLS + 1
    failing = cap.failing_example()
    assert failing is not None
    written = [int.from_bytes(r.encoded() or b"", "little") for r in failing.requests]
    assert len(written) == MAX_CALLS_REPORTED
    assert written[0] == 3 and written[1:] == list(range(calls - MAX_CALLS_REPORTED + 1, calls))
    assert any(f"the example made {calls} call(s)" in n for n in failing.notes)


def test_a_test_failing_call_after_call_writes_a_capped_number_of_files(pytester: pytest.Pytester) -> None:
    from pytest_walredo.plugin.artifacts import MAX_REQUESTS_WRITTEN
    from pytest_walredo.plugin.capture import MAX_CLIENT_DUMPS

    pytester.makeconftest("from pytest_walredo import walredo_fixture\n"
                          "dead_walredo = walredo_fixture(faults=['crash-after:0'], sync=True)\n")
    calls = MAX_CLIENT_DUMPS + 4
    pytester.makepyfile(
        f"""
        from pytest_walredo import WalredoError
        from pytest_walredo.protocol import RedoRequest, RelTag

        def test_keeps_failing(dead_walredo):
            failed = 0
            for blk in range({calls}):
                try:
                    dead_walredo.apply(RedoRequest(RelTag(1663, 5, 16384), blk, bytes(8192), ()))
                except WalredoError:
                    failed += 1
            assert failed == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert f"more than {MAX_CLIENT_DUMPS} failing walredo inputs; later ones are not saved" in result.stdout.str()
    tdir = test_dir(pytester.path / ".walredo-dumps", "test_keeps_failing")
    walredos = sorted(p.name for p in tdir.glob("*.walredo"))
    assert len(walredos) <= MAX_REQUESTS_WRITTEN, walredos
    # the newest call is among them (the one closest to where the test failed)
    blocks = {read_entry(tdir, n).decoded_request().blknum for n in entry_names(tdir)}
    assert calls - 1 in blocks, blocks
