"""Failure artifacts: what write_failure_artifacts writes, Hypothesis seeds, and the reporting
plugin end to end (pytester sub-runs: recorder, plain fixture failures, Allure attachments)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.interleave import Event, Schedule, Timeline
from pytest_walredo.pg.version import Flavour
from pytest_walredo.plugin.artifacts import decode_text, page_diff_text, write_failure_artifacts
from pytest_walredo.plugin.example import ExampleRequest, FailingExample, HypothesisInfo, ProcessInfo
from pytest_walredo.plugin.reporting import hypothesis_info
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag, decode_requests

pytest_plugins = ["pytester"]

DUMP_NAME = re.compile(r"^walredo-(\d+)-(\d+)-(\d+)\.walredo$")
ASYNCIO_INI = "asyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _pytester_ini(request: pytest.FixtureRequest) -> None:
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester").makeini("[pytest]\n" + ASYNCIO_INI)


def _request(blkno: int, fill: int = 0) -> RedoRequest:
    return RedoRequest(RelTag(1663, 5, 16384), blkno, bytes([fill]) * BLCKSZ, ())


def _page(byte_at_100: int) -> bytes:
    page = bytearray(BLCKSZ)
    page[100] = byte_at_100
    return bytes(page)


# ------------------------------------------------------------------------------------------
# write_failure_artifacts
# ------------------------------------------------------------------------------------------


def test_record_artifacts_are_complete_and_replayable(tmp_path: Path) -> None:
    reqs = [_request(3, 0), _request(4, 7)]
    record = FailingExample(
        requests=[ExampleRequest(reqs[0], expected=_page(1), actual=_page(2), caller=0),
                  ExampleRequest(reqs[1], error="walredo process exited", caller=1)],
        timeline=["c0 start", "c1 start", "c1 write #0 CANCEL"],
        stderr_tail="FATAL:  something\n",
        notes=["property each_caller_gets_its_page"],
        seed=hypothesis_info_stub(),
        processes=[ProcessInfo(42, -9, "FATAL: killed")],
    )
    out = write_failure_artifacts(
        tmp_path, record, test_id="tests/x.py::test_y", outcome="AssertionError: boom", pg_version=15,
        flavour=Flavour.NEON,
    )
    kinds = [a.kind for a in out.artifacts]
    assert kinds.count("walredo") == 2 and kinds.count("decode") == 2 and kinds.count("diff") == 1
    assert kinds.count("page") == 2 and {"stderr", "timeline", "hypothesis", "index"} <= set(kinds)
    dumps = [a.path for a in out.artifacts if a.kind == "walredo"]
    for req, dump in zip(reqs, dumps, strict=True):
        m = DUMP_NAME.match(dump.name)
        assert m, dump.name
        assert int(m.group(2)) == dump.stat().st_size
        assert dump.read_bytes() == req.encode()
        assert decode_requests(dump.read_bytes()) == [req]  # replayable as is
    decode0 = dumps[0].with_name(dumps[0].name.replace(".walredo", ".decode.txt")).read_text()
    assert "B BeginRedoForBlock 1663/5/16384 blk 3" in decode0 and "G GetPage" in decode0
    diff = next(a.path for a in out.artifacts if a.kind == "diff").read_text()
    assert diff.startswith("pages differ") and "bytes 100..100" in diff
    pages = {a.path.name.split(".")[-2]: a.path.read_bytes() for a in out.artifacts if a.kind == "page"}
    assert pages == {"expected": _page(1), "actual": _page(2)}
    stderr = next(a.path for a in out.artifacts if a.kind == "stderr").read_text()
    assert "walredo pid 42 (exit status -9)" in stderr and "FATAL: killed" in stderr
    assert "FATAL:  something" in stderr
    assert "c1 write #0 CANCEL" in next(a.path for a in out.artifacts if a.kind == "timeline").read_text()
    index = out.index.read_text()
    assert index.startswith("tests/x.py::test_y\nAssertionError: boom\n")
    # Next steps aim at the first request that went wrong: the one whose pages differ.
    assert f"  pytest-walredo shrink {dumps[0].name} --until differs --pg-version 15 --flavour neon\n" in index
    assert out.next_steps[-1] == f"  pytest-walredo diff {dumps[0].name.removesuffix('.walredo')}.expected.page " \
                                 f"{dumps[0].name.removesuffix('.walredo')}.actual.page"
    assert "property each_caller_gets_its_page" in index and "error: walredo process exited" in index
    for a in out.artifacts[:-1]:
        assert f"  {a.name}\n" in index  # the index lists every other file
    # Nothing else was written.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(a.name for a in out.artifacts)


def hypothesis_info_stub() -> HypothesisInfo:

    return HypothesisInfo(123, "generated", "@reproduce_failure('6.0.0', b'AA==')", "Falsifying example: t(n=5)", True)


def test_process_dumps_are_decoded_in_place_not_copied(tmp_path: Path) -> None:
    dump = tmp_path / "walredo-1-8258-0.walredo"
    dump.write_bytes(_request(9).encode())
    garbage = tmp_path / "walredo-1-5-1.walredo"
    garbage.write_bytes(b"\x00junk")
    out = write_failure_artifacts(tmp_path, FailingExample(process_dumps=[dump, garbage, dump]), test_id="t",
                                  outcome="x", pg_version=16, flavour=Flavour.VANILLA)
    decodes = [a.path for a in out.artifacts if a.kind == "decode"]
    assert [p.name for p in decodes] == ["walredo-1-5-1.decode.txt", "walredo-1-8258-0.decode.txt"]
    assert "blk 9" in decodes[1].read_text()
    junk = decodes[0].read_text()
    assert "walredo-1-5-1.walredo" in junk and len(junk.strip().splitlines()) == 1
    # The client's dumps stay where they are (listed for attaching, not copied).
    assert [a.path for a in out.artifacts if a.kind == "walredo"] == [garbage, dump]
    assert sorted(p.name for p in tmp_path.glob("*.walredo")) == ["walredo-1-5-1.walredo", "walredo-1-8258-0.walredo"]


def test_artifact_names_never_collide_across_threads(tmp_path: Path) -> None:
    record = FailingExample(requests=[ExampleRequest(_request(1))], timeline=["c0 start"])
    results = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(15):
            r = write_failure_artifacts(tmp_path, record, test_id="t", outcome="x", pg_version=17,
                                        flavour=Flavour.NEON)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    paths = [p for r in results for p in r.paths()]
    assert len(paths) == len(set(paths)) == 60 * 5  # walredo, json, decode, timeline, index per call
    assert all(p.exists() for p in paths)
    assert len(list(tmp_path.glob("*.walredo"))) == 60


def test_decode_and_diff_never_raise_on_bad_content() -> None:
    text = decode_text(b"\xff" * 10, "x.walredo", 17, Flavour.NEON)
    assert "x.walredo" in text and len(text.strip().splitlines()) == 1
    assert "cannot be compared" in page_diff_text(b"a" * 10, b"b" * BLCKSZ)
    assert page_diff_text(_page(3), _page(3)).startswith("pages are identical")


def test_conformance_recorder_hands_over_its_failing_example() -> None:
    from pytest_walredo.conformance.recorder import ExampleRecorder
    from pytest_walredo.plugin.example import FAILING_EXAMPLE_KEY

    node = SimpleNamespace(stash=pytest.Stash())
    rec = ExampleRecorder(node)  # type: ignore[arg-type]
    with rec.example("each_caller_gets_its_page") as ex:
        ex.set_requests([_request(1)])
    assert FAILING_EXAMPLE_KEY not in node.stash  # a passing example is not handed over
    with pytest.raises(AssertionError), rec.example("each_caller_gets_its_page") as ex:
        ex.set_requests([_request(1), None, _request(2)])
        ex.set_pages(expected=[_page(1), None, _page(2)], actual=[_page(1), bytes(BLCKSZ), _page(9)])
        ex.timeline = Timeline([Event(0, "start"), Event(2, "write", 0, cancel=True)]).lines()
        ex.schedule = str(Schedule((1, 0)))
        ex.notes.append("c2 got c0's page")
        raise AssertionError
    fr = node.stash[FAILING_EXAMPLE_KEY]
    assert fr is rec.current and (fr.examples, fr.first_failure_at) == (2, 2)
    assert [r.caller for r in fr.requests] == [0, 1, 2] and fr.requests[1].request is None
    assert fr.requests[2].expected == _page(2) and fr.requests[2].actual == _page(9)
    s = fr.summary()
    assert (s["callers"], s["requests"], s["expected_differs"]) == (3, 2, [False, False, True])
    assert "c1: ping" in fr.render() and "c2 write #0 CANCEL" in fr.render()


def test_recorded_example_is_written_with_pings_noted(tmp_path: Path) -> None:
    ex = FailingExample(prop="p", schedule="picks [1]", timeline=["c0 start", "c1 write #0 CANCEL"])
    ex.set_requests([_request(1), None])
    out = write_failure_artifacts(tmp_path, ex, test_id="t", outcome="x", pg_version=17, flavour=Flavour.NEON)
    index = out.index.read_text()
    assert "caller 1: ping" in index and "request 0 (caller 0): walredo-" in index
    timeline = next(a.path for a in out.artifacts if a.kind == "timeline").read_text()
    assert timeline.startswith("schedule: picks [1]\nc0 start\n")


# ------------------------------------------------------------------------------------------
# Hypothesis: the seed and @reproduce_failure line really reproduce the failure
# ------------------------------------------------------------------------------------------


def _failing_property(seen: list[int], derandomize: bool = False) -> Any:
    # derandomize explicit: the project's "ci" Hypothesis profile turns it on.
    @settings(database=None, print_blob=True, max_examples=200, deadline=None, derandomize=derandomize)
    @given(st.integers(0, 10_000))
    def prop(n: int) -> None:
        seen.append(n)
        assert n < 5000  # fails on about half the draws, so every seed finds it

    return prop


def test_hypothesis_seed_and_blob_reproduce_the_failure() -> None:
    seen: list[int] = []
    prop = _failing_property(seen)
    with pytest.raises(AssertionError) as excinfo:
        prop()
    info = hypothesis_info(SimpleNamespace(obj=prop), excinfo.value)  # type: ignore[arg-type]
    assert info is not None and info.seed is not None and info.seed_source == "generated"
    assert info.falsifying_example is not None
    m = re.search(r"n=(\d+)", info.falsifying_example)
    assert m is not None and int(m.group(1)) >= 5000
    minimal = int(m.group(1))
    assert info.reproduce_failure is not None
    text = info.text()
    assert f"--hypothesis-seed={info.seed}" in text and info.reproduce_failure in text

    # The seed replays the same run: the same examples in the same order.
    again: list[int] = []
    with pytest.raises(AssertionError):
        hypothesis.seed(info.seed)(_failing_property(again))()
    assert again == seen

    # The decorator line runs exactly the minimal failing example.
    once: list[int] = []
    decorator = eval(info.reproduce_failure[1:], {"reproduce_failure": hypothesis.reproduce_failure})
    with pytest.raises(AssertionError):
        decorator(_failing_property(once))()
    assert once == [minimal]


def test_hypothesis_info_of_a_derandomized_test() -> None:
    prop = _failing_property([], derandomize=True)
    with pytest.raises(AssertionError) as excinfo:
        prop()
    info = hypothesis_info(SimpleNamespace(obj=prop), excinfo.value)  # type: ignore[arg-type]
    assert info is not None and info.seed is None and info.seed_source == "derandomize"
    assert "seed: none (derandomize)" in info.text() and "--hypothesis-seed" not in info.text()


def test_hypothesis_info_is_none_for_plain_tests() -> None:
    assert hypothesis_info(SimpleNamespace(obj=lambda: None), AssertionError()) is None  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# The reporting plugin in a pytest run
# ------------------------------------------------------------------------------------------

_SUBRUN_TESTS = """
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pytest_walredo import ExampleRequest, FailingExample, record_failure
from pytest_walredo.protocol import RedoRequest, RelTag

@settings(max_examples=30, database=None, print_blob=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 1000))
def test_recorded_property(request, walredo, blk):
    req = RedoRequest(RelTag(1663, 5, 16384), blk, bytes(8192), ())
    page = walredo.apply(req)
    expected = bytearray(page)
    expected[200] = 0x5A
    record_failure(request.node, FailingExample([ExampleRequest(req, bytes(expected), page)],
                                                timeline=["c0 start", "c0 write #0"]))
    assert blk < 7, "pages differ"

def test_plain_fixture_assertion(walredo):
    assert len(walredo.ping()) == 1

def test_not_walredo():
    assert False
"""


def _results(alluredir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for p in alluredir.glob("*-result.json"):
        d = json.loads(p.read_text())
        out[d["name"]] = d
    return out


def test_reporting_writes_and_attaches_artifacts(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(_SUBRUN_TESTS)
    dumps = pytester.path / "dumps"
    alluredir = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess(f"--walredo-dump-dir={dumps}", f"--alluredir={alluredir}")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()

    # The recorded property: the minimal example's request, decode, diff, pages, Hypothesis.
    tdir = next(dumps.glob("*test_recorded_property"))
    walredos = list(tdir.glob("*.walredo"))
    assert len(walredos) == 1
    assert walredos[0].read_bytes() == RedoRequest(RelTag(1663, 5, 16384), 7, bytes(BLCKSZ), ()).encode()
    stem = walredos[0].name.removesuffix(".walredo")
    assert "tuple" in (tdir / f"{stem}.diff.txt").read_text() or "bytes 200..200" in (tdir / f"{stem}.diff.txt").read_text()
    hyp = next(tdir.glob("failure-*.hypothesis.txt")).read_text()
    assert "@reproduce_failure(" in hyp and "blk=7" in hyp
    assert "c0 write #0" in next(tdir.glob("failure-*.timeline.txt")).read_text()
    # The failure output names the directory and the files and shows the recorded example;
    # the summary lists the test.
    assert f"failure artifacts in {tdir}" in out and f"{stem}.decode.txt" in out
    assert "walredo failing example" in out and "c0: redo 1663/5/16384 blk 7: base image, 0 record(s)" in out
    assert "walredo failure artifacts" in out and str(tdir) in out

    # The plain walredo test: no recorder, still stderr and index; the non-walredo test: nothing.
    pdir = next(dumps.glob("*test_plain_fixture_assertion"))
    assert "walredo pid" in next(pdir.glob("failure-*.stderr.txt")).read_text()
    assert not list(dumps.glob("*test_not_walredo"))

    # Allure: every artifact attached to the right result, byte for byte.
    results = _results(alluredir)
    atts = {a["name"]: a for a in results["test_recorded_property"]["attachments"]}
    assert atts[walredos[0].name]["type"] == "application/octet-stream"
    assert atts[walredos[0].name]["source"].endswith(".walredo")
    assert (alluredir / atts[walredos[0].name]["source"]).read_bytes() == walredos[0].read_bytes()
    decode = (alluredir / atts[f"{stem}.decode.txt"]["source"]).read_text()
    assert decode == (tdir / f"{stem}.decode.txt").read_text() and "GetPage" in decode
    assert any(n.endswith(".hypothesis.txt") for n in atts)
    assert any(n.endswith(".stderr.txt") for n in
               (a["name"] for a in results["test_plain_fixture_assertion"]["attachments"]))
    assert not results["test_not_walredo"].get("attachments")

    # The index's next steps are real commands: run them where the files are.
    index = next(p for p in tdir.glob("failure-*.txt") if p.name.count(".") == 1).read_text()
    steps = [line.split()[1:] for line in index.splitlines() if line.startswith("  pytest-walredo ")]
    assert [s[0] for s in steps] == ["inspect", "replay", "shrink", "diff"]
    assert steps[2][:4] == ["shrink", walredos[0].name, "--until", "differs"]
    monkeypatch.chdir(tdir)
    from pytest_walredo.triage.cli import main

    capsys.readouterr()
    assert main(steps[0]) == 0 and "G GetPage 1663/5/16384 blk 7" in capsys.readouterr().out
    assert main(steps[1]) == 1 and f"differs from --expect {stem}.expected.page" in capsys.readouterr().out
    assert main(steps[3]) == 1 and "bytes 200..200" in capsys.readouterr().out


def test_reporting_without_allure_still_writes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_SUBRUN_TESTS)
    dumps = pytester.path / "dumps"
    result = pytester.runpytest_subprocess(f"--walredo-dump-dir={dumps}", "-p", "no:allure_pytest",
                                           "-k", "recorded")
    result.assert_outcomes(failed=1)
    tdir = next(dumps.glob("*test_recorded_property"))
    assert len(list(tdir.glob("*.walredo"))) == 1 and list(tdir.glob("*.diff.txt"))
    result.stdout.fnmatch_lines(["*walredo failure artifacts*"])


# ------------------------------------------------------------------------------------------
# Requests as corpus entries, session streams, the first failure
# ------------------------------------------------------------------------------------------


def test_requests_are_written_as_corpus_entries_with_their_session(tmp_path: Path) -> None:
    from pytest_walredo.corpus.folder import entry_names, read_entry
    from pytest_walredo.plugin.example import SessionRef

    earlier, failing = _request(1, 3), _request(2, 4)
    stream = earlier.encode() + b"H\x00\x00\x00\x04" + failing.encode()
    ref = SessionRef(stream, len(stream) - len(failing.encode()), 2, pid=77, needs_history=True)
    raw = b"B\x00\x00\x00\x09junk"  # malformed input: not a corpus entry
    ex = FailingExample(requests=[ExampleRequest(failing, expected=_page(1), actual=_page(2), session=ref),
                                  ExampleRequest(raw, error="walredo process exited", failure="crash")])
    out = write_failure_artifacts(tmp_path, ex, test_id="t.py::t", outcome="x", pg_version=16,
                                  flavour=Flavour.VANILLA)
    (name,) = entry_names(tmp_path)  # one entry: the raw request has no JSON
    entry = read_entry(tmp_path, name)
    assert entry.decoded_request() == failing and entry.expected == _page(1)
    assert (entry.meta.pg_version, entry.meta.flavour, entry.meta.mask) == (16, Flavour.VANILLA, "none")
    assert entry.meta.kind == "none/NO_RECORDS"
    meta = json.loads((tmp_path / f"{name}.json").read_text())
    assert meta["outcome"] == "differs" and meta["test"] == "t.py::t" and meta["actual_page"] == f"{name}.actual.page"
    assert meta["session"] == {"file": f"{name}.session.walredo", "offset": ref.offset, "index": 2, "pid": 77,
                               "needs_history": True}
    assert (tmp_path / f"{name}.session.walredo").read_bytes() == stream
    assert (tmp_path / f"{name}.actual.page").read_bytes() == _page(2)
    assert {a.kind for a in out.artifacts} >= {"walredo", "entry", "session", "page", "diff", "decode", "index"}
    # the failure needs the calls before it: the next steps replay and shrink the session
    assert out.next_steps[2].startswith(f"  pytest-walredo replay {name}.session.walredo ")
    assert out.next_steps[3].startswith(f"  pytest-walredo shrink {name}.session.walredo --until differs")
    index = out.index.read_text()
    assert "it is call #2, at byte" in index and "the failure needs the calls before it" in index


def test_the_client_dump_named_by_the_error_becomes_the_entry(tmp_path: Path) -> None:
    from pytest_walredo.corpus.folder import entry_names

    req = _request(5)
    dump = tmp_path / "walredo-1-8258-0.walredo"
    dump.write_bytes(req.encode())
    ex = FailingExample(requests=[ExampleRequest(req, error="exited", failure="crash", dump=dump)],
                        process_dumps=[dump])
    out = write_failure_artifacts(tmp_path, ex, test_id="t", outcome="x", pg_version=17, flavour=Flavour.NEON)
    assert entry_names(tmp_path) == ["walredo-1-8258-0"]
    assert len(list(tmp_path.glob("*.walredo"))) == 1  # not written twice
    assert [a.path for a in out.artifacts if a.kind == "walredo"] == [dump]
    assert "--until crash" in out.next_steps[3]


def test_the_first_failure_is_written_after_the_final_example(tmp_path: Path) -> None:
    final = FailingExample(requests=[ExampleRequest(_request(0), expected=_page(1), actual=_page(2))])
    final.first = FailingExample(requests=[ExampleRequest(_request(812), expected=_page(1), actual=_page(2))],
                                 notes=["needs the calls before it"], first_failure_at=9)
    out = write_failure_artifacts(tmp_path, final, test_id="t", outcome="x", pg_version=17, flavour=Flavour.NEON)
    metas = {json.loads(p.read_text())["example"]: p for p in tmp_path.glob("walredo-*.json")}
    assert set(metas) == {"final", "first failure"}
    assert json.loads(metas["first failure"].read_text())["blk"] == 812
    index = out.index.read_text()
    assert "first failure (before shrinking, example 9):" in index and "  needs the calls before it" in index
    # the next steps aim at the final example
    assert metas["final"].name.removesuffix(".json") in out.next_steps[1]


def test_conformance_recorder_hands_over_the_first_failure_too() -> None:
    from pytest_walredo.conformance.recorder import ExampleRecorder
    from pytest_walredo.plugin.example import FAILING_EXAMPLE_KEY

    node = SimpleNamespace(stash=pytest.Stash())
    rec = ExampleRecorder(node)  # type: ignore[arg-type]
    for blk in (9, 5, 1):
        with pytest.raises(AssertionError), rec.example("p") as ex:
            ex.set_requests([_request(blk)])
            raise AssertionError
    final = node.stash[FAILING_EXAMPLE_KEY]
    assert final.requests[0].request.blknum == 1
    assert final.first is not None and final.first.requests[0].request.blknum == 9
    assert final.first.first_failure_at == 1
