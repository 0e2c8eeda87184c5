"""Differential mode (``--walredo-baseline-bin``): the rule that judges two walredos' answers, the
baseline oracle's requests (corpus requests of kinds the model does not implement), and the
conformance suite run against a baseline: the same binary passes (under xdist too), a seeded
fault is found for the right reason and shrunk, a request failing on one side only fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import find, settings
from hypothesis.errors import NoSuchExample

from pytest_walredo.conformance.oracle import (
    Answer,
    BaselineOracle,
    Disagreement,
    ModelOracle,
    compare_with_baseline,
)
from pytest_walredo.corpus.default import load_shipped
from pytest_walredo.corpus.folder import write_entry
from pytest_walredo.corpus.format import Entry, EntryMeta, entry_name
from pytest_walredo.corpus.judge import model_unsupported
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import make_block
from pytest_walredo.plugin.example import FailingExample
from pytest_walredo.process import WalredoProcessError
from pytest_walredo.protocol import RedoRequest, RelTag
from pytest_walredo.sim import model_page
from pytest_walredo.target import reference_binary
from pytest_walredo.testing.wrappers import reference_wrapper

pytest_plugins = ["pytester"]

ENTRIES = load_shipped(17)
HEAP_INSERT = next(e for e in ENTRIES if e.meta.kind == "Heap/INSERT")


# ------------------------------------------------------------------------------------------
# The rule
# ------------------------------------------------------------------------------------------


def test_same_pages_or_both_failing_agree() -> None:
    req = HEAP_INSERT.decoded_request()
    page = HEAP_INSERT.expected
    assert page is not None
    crash = WalredoProcessError("walredo process 7 exited with status 1")
    assert compare_with_baseline(req, Answer(page), Answer(page), "none", 17) is None
    assert compare_with_baseline(req, Answer(None, crash), Answer(None, crash), "none", 17) is None
    d = compare_with_baseline(req, Answer(page), Answer(None, crash), "none", 17)
    assert d is not None and d.message.startswith(
        "[error] [baseline] the walredo under test failed where the baseline answered: WalredoProcessError: "
        "walredo process 7 exited")
    d = compare_with_baseline(req, Answer(None, crash), Answer(page), "none", 17)
    assert d is not None and d.message.startswith("[error] [baseline] the baseline failed where the walredo "
                                                  "under test answered")


def test_auto_mask_hides_what_wal_consistency_checking_hides() -> None:
    req = HEAP_INSERT.decoded_request()
    page = HEAP_INSERT.expected
    assert page is not None
    other_lsn = bytes(8) + page[8:]  # pd_lsn differs: every rule masks it
    d = compare_with_baseline(req, Answer(page), Answer(other_lsn), "none", 17)
    assert d is not None and d.message.startswith("[wrong-page] [baseline] the page differs from the "
                                                  "baseline's (mask none): ")
    assert compare_with_baseline(req, Answer(page), Answer(other_lsn), "auto", 17) is None
    upper = int.from_bytes(page[14:16], "little")
    tuple_data = upper + 24  # past the first tuple's header: no rule hides its data
    data = bytearray(page)
    data[tuple_data] ^= 0xFF
    d = compare_with_baseline(req, Answer(page), Answer(bytes(data)), "auto", 17)
    assert d is not None and f"(mask Heap): 1 byte(s) differ, first at offset {tuple_data}" in d.message


def test_a_disagreement_becomes_the_failing_example() -> None:
    req = RedoRequest(RelTag(1663, 5, 16384), 3, Page.initialized().to_bytes(), ())
    want, got = Answer(bytes(8192)), Answer(b"\x01" + bytes(8191))
    ex = FailingExample(prop="determinism")
    ex.set_requests([req, req])
    Disagreement(req, want, got, "baseline", "[wrong-page] [baseline] ...").record(ex)
    assert [(r.request, r.expected, r.actual) for r in ex.requests] == [(req, want.page, got.page)]
    assert ex.oracle == "baseline" and ex.notes == ["[wrong-page] [baseline] ..."]
    assert ex.summary()["oracle"] == "baseline" and "expected pages from the baseline" in ex.render()


# The model implements every record kind of the shipped corpora, so the tests of what it cannot
# judge pretend that it lacks one rmgr: the judge's tables (rmgr.supported_records) leave GIN out,
# while the reference walredo, a separate process, still replays it. A plugin module does the
# same in the pytest runs below (-p PRETEND_PLUGIN).
PRETEND_PLUGIN = "pretend_no_gin"
PRETEND_SOURCE = """
from pytest_walredo.pg import rmgr

_supported = rmgr.supported_records


def _without_gin(*args, **kwargs):
    return tuple(c for c in _supported(*args, **kwargs) if not c.__module__.startswith("pytest_walredo.pg.rmgr.gin"))


rmgr.supported_records = _without_gin
"""


@pytest.fixture
def no_gin_in_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    supported = rmgr.supported_records
    monkeypatch.setattr(rmgr, "supported_records", lambda *a, **kw: tuple(
        c for c in supported(*a, **kw) if not c.__module__.startswith("pytest_walredo.pg.rmgr.gin")))


def test_the_baseline_draws_corpus_requests_the_model_cannot_judge(tmp_path: Path,
                                                                   no_gin_in_the_model: None) -> None:
    baseline = BaselineOracle(reference_binary(tmp_path, 17), "none", ENTRIES)
    unsupported = {e.request for e in ENTRIES if model_unsupported(e) is not None}
    assert unsupported and all(e.meta.kind.startswith("Gin/") for e in ENTRIES
                               if model_unsupported(e) is not None)

    def beyond_the_model(req: RedoRequest) -> bool:
        """Cut from an entry the model (pretends it) cannot replay."""
        return any(RedoRequest.decode(raw).records[: len(req.records)] == req.records and
                   RedoRequest.decode(raw).base_image == req.base_image for raw in unsupported)

    found = find(baseline.requests(17, Flavour.NEON), beyond_the_model,
                 settings=settings(max_examples=2000, database=None))
    assert found.records
    # The model oracle draws generated requests only: every one of them the model can judge.
    with pytest.raises(NoSuchExample):
        find(ModelOracle().requests(17, Flavour.NEON), beyond_the_model,
             settings=settings(max_examples=200, database=None))


# ------------------------------------------------------------------------------------------
# The suite against a baseline
# ------------------------------------------------------------------------------------------


def _small_corpus(folder: Path) -> tuple[int, int]:
    """A corpus of shipped PG17 entries: three the model implements, three it does not (whatever
    the model implements today). Returns (supported, unsupported)."""
    supported = [e for e in ENTRIES if model_unsupported(e) is None][:3]
    unsupported = [e for e in ENTRIES if model_unsupported(e) is not None][:3]
    for e in supported + unsupported:
        write_entry(folder, e)
    return len(supported), len(unsupported)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--walredo-hypothesis-profile", "dev",
                                         "--walredo-dump-dir", str(pytester.path / "dumps"),
                                         "--pyargs", "pytest_walredo.conformance", *args, timeout=600)


def test_the_same_binary_as_baseline_passes_under_xdist(pytester: pytest.Pytester, tmp_path: Path,
                                                       no_gin_in_the_model: None) -> None:
    supported, unsupported = _small_corpus(tmp_path / "corpus")
    assert supported == 3 and unsupported == 3
    baseline = reference_wrapper(tmp_path / "baseline-walredo", 17, "neon")
    pytester.makepyfile(**{PRETEND_PLUGIN: PRETEND_SOURCE})
    result = _run(pytester, "-p", PRETEND_PLUGIN, "-n", "2", "--walredo-baseline-bin", str(baseline),
                  "--walredo-corpus", str(tmp_path / "corpus"))
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    assert "failed" not in out.splitlines()[-1]
    result.stdout.fnmatch_lines([f"walredo baseline: {baseline} (pages compared with mask none)*"])
    # The entries the model cannot judge ran, judged by the baseline alone; the table still says so.
    total = re.findall(r"^total\s+(.+)$", out, re.M)[-1].split()
    assert total == [str(supported), "0", "0", str(unsupported)]
    judged = dict(re.findall(r"(\w+) (\d+)", re.search(r"^tests judged by: (.*)$", out, re.M).group(1)))
    assert int(judged["baseline"]) >= 6 + 6 and int(judged["corpus"]) == supported, judged
    assert "model" not in judged


@pytest.fixture
def corrupt_vs_clean(tmp_path: Path) -> tuple[Path, Path]:
    return (reference_wrapper(tmp_path / "new-walredo", 17, "neon", ["corrupt-byte:8000"]),
            reference_wrapper(tmp_path / "old-walredo", 17, "neon"))


def test_a_seeded_fault_fails_for_the_right_reason_shrunk(pytester: pytest.Pytester,
                                                          corrupt_vs_clean: tuple[Path, Path]) -> None:
    new, old = corrupt_vs_clean
    # Determinism alone cannot see a corrupted byte (it is corrupted the same way every time):
    # only the baseline can.
    _run(pytester, "--walredo-bin", str(new), "--walredo-corpus", "off",
         "-k", "test_same_request_twice_gives_the_same_page").assert_outcomes(passed=1)
    result = _run(pytester, "--walredo-bin", str(new), "--walredo-baseline-bin", str(old), "--walredo-corpus", "off",
                  "-k", "test_same_request_twice_gives_the_same_page")
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert ("OracleMismatch: [wrong-page] [baseline] the page differs from the baseline's (mask none): "
            "1 byte(s) differ, first at offset 8000") in out
    # shrunk: one request, no record (a pushed page read back is the smallest request there is)
    result.stdout.fnmatch_lines(["*property determinism: 1 caller(s), 1 request(s), 0 record(s)*"
                                 "expected pages from the baseline*"])
    dumps = pytester.path / "dumps"
    # Each dumped request (the first failure's, the final example's) has its own pair of pages:
    # compare within a pair (rglob's order across pairs is the file system's).
    pairs = [(e, e.with_name(e.name.replace(".expected.page", ".actual.page")))
             for e in dumps.rglob("*.expected.page")]
    assert pairs and all(a.exists() for _e, a in pairs), pairs
    for e, a in pairs:
        expected, actual = e.read_bytes(), a.read_bytes()
        assert [i for i in range(8192) if expected[i] != actual[i]] == [8000], e.name
    diff = next(dumps.rglob("walredo-*.diff.txt")).read_text()
    assert "8000" in diff or "0x1f40" in diff.lower(), diff
    index = next(dumps.rglob("failure-*[0-9].txt")).read_text()
    assert "expected pages from the baseline" in index


def test_a_request_failing_on_one_side_only_fails(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A Neon PostgreSQL 17 heap insert (rmgr 134) as a corpus entry: the Neon-flavour walredo
    under test replays it; a vanilla walredo as the baseline cannot (it has no rmgr 134)."""
    rel = (1663, 5, 16384)
    tup = rmgr.XlTuple(1, 0x0800, 24, b"\x00" + b"abcdefgh", t_cid=5)
    record = rmgr.build(rmgr.HeapInsert(1, 0, tup, init_page=True, t_cid=5),
                        [make_block(0, rel, 0, will_init=True)], pg_version=17, flavour=Flavour.NEON, xid=42)
    assert record.rmid == rmgr.RM_NEON_ID
    req = RedoRequest(RelTag(*rel, 0), 0, None, ((0x1000028, record.encode()),))
    kind, end = "neon/INSERT+INIT", req.records[-1][0]
    meta = EntryMeta(17, Flavour.NEON, kind, rel, req.rel.forknum, req.blknum, end, "neon", "generated")
    write_entry(tmp_path / "corpus", Entry(entry_name(kind, end, rel, req.rel.forknum, req.blknum), meta,
                                           req.encode(), model_page(req, 17, Flavour.NEON)))
    vanilla = reference_wrapper(tmp_path / "vanilla-walredo", 17, "vanilla")
    result = _run(pytester, "--walredo-baseline-bin", str(vanilla), "--walredo-corpus", str(tmp_path / "corpus"),
                  "-k", "test_corpus_entry")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "[error] [baseline] the baseline failed where the walredo under test answered: WalredoProcessError" in out
    assert "rmgr neon (134) records exist only in Neon" in out
    # The corpus judged the entry (matched), the baseline failed it: the table says matched.
    assert re.findall(r"^total\s+(.+)$", out, re.M)[-1].split() == ["1", "0", "0", "0"]
