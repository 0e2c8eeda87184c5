"""The corpus builder against a real PostgreSQL 15 (Debian's): a fresh corpus of every built-in
workload, judged three ways. PostgreSQL's own consistency images are the expected pages; the
redo model must reproduce them for every kind it implements (others are reported unsupported,
never passed); the reference walredo process the same; a walredo that ignores records fails
every entry. The record names agree with pg_waldump's; WAL compressed with pglz, lz4 and zstd
gives the same verdicts. The same corpus through the plugin (``pytest --walredo-corpus DIR``):
one test per entry, the per-kind table, the reference passing every entry it supports, a
walredo that ignores records failing every entry, a faulty reference's failure artifacts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_walredo.conformance.variant import SuiteVariant
from pytest_walredo.corpus.builder import BuildOptions, BuildReport, build_corpus
from pytest_walredo.corpus.folder import load_corpus, write_entry
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.judge import Verdict, kind_table, model_answer, model_unsupported
from pytest_walredo.corpus.replay import reference_for, replay_entries
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg.mask import masked_equal
from pytest_walredo.pg.rmgr import rmgr_name
from pytest_walredo.pg.rmgr.names import record_name
from pytest_walredo.pg.walstream import iter_wal
from pytest_walredo.pg.xlogrecord import decode_header, decode_record
from pytest_walredo.testing.wrappers import reference_wrapper

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent"),
]

# Kinds the built-in workloads reach on PostgreSQL 15 every time (records with a page to check).
EXPECTED_KINDS = {
    "Heap/INSERT", "Heap/INSERT+INIT", "Heap/UPDATE", "Heap/HOT_UPDATE", "Heap/DELETE", "Heap/LOCK",
    "Heap/HEAP_CONFIRM", "Heap/INPLACE", "Heap2/MULTI_INSERT", "Heap2/MULTI_INSERT+INIT", "Heap2/PRUNE",
    "Heap2/VACUUM", "Heap2/FREEZE_PAGE", "Heap2/VISIBLE",
    "Btree/INSERT_LEAF", "Btree/INSERT_UPPER", "Btree/SPLIT_L", "Btree/SPLIT_R", "Btree/NEWROOT",
    "Btree/DEDUP", "Btree/INSERT_POST", "Btree/DELETE", "Btree/VACUUM", "Btree/MARK_PAGE_HALFDEAD",
    "Btree/UNLINK_PAGE", "Btree/META_CLEANUP",
    "Hash/INIT_META_PAGE", "Hash/INIT_BITMAP_PAGE", "Hash/INSERT", "Hash/ADD_OVFL_PAGE",
    "Hash/SPLIT_ALLOCATE_PAGE", "Hash/SPLIT_COMPLETE", "Hash/DELETE", "Hash/SQUEEZE_PAGE",
    "Gin/INSERT", "Gin/INSERT_LISTPAGE", "Gin/UPDATE_META_PAGE", "Gin/DELETE_LISTPAGE",
    "Gin/CREATE_PTREE", "Gin/SPLIT", "Gin/VACUUM_DATA_LEAF_PAGE", "Gin/DELETE_PAGE",
    "Gist/PAGE_UPDATE", "Gist/PAGE_SPLIT", "Gist/PAGE_DELETE", "Gist/DELETE",
    "SPGist/ADD_LEAF", "SPGist/PICKSPLIT", "SPGist/MOVE_LEAFS", "SPGist/VACUUM_LEAF", "SPGist/VACUUM_ROOT",
    "BRIN/CREATE_INDEX", "BRIN/INSERT", "BRIN/SAMEPAGE_UPDATE", "BRIN/REVMAP_EXTEND", "BRIN/DESUMMARIZE",
    "BRIN/UPDATE",
    "Sequence/LOG", "Generic/Generic",
}
# Kinds the redo model implements today; every entry made only of these must be reproduced.
MODELLED = {"Heap/INSERT", "Heap/INSERT+INIT", "Heap/UPDATE", "Heap/UPDATE+INIT", "Heap/HOT_UPDATE",
            "Heap/DELETE", "Heap/LOCK", "Heap/HEAP_CONFIRM", "Heap/INPLACE", "Heap2/MULTI_INSERT",
            "Heap2/MULTI_INSERT+INIT", "Heap2/PRUNE", "Heap2/VACUUM", "Heap2/FREEZE_PAGE", "Heap2/VISIBLE",
            "Heap2/LOCK_UPDATED", "Btree/INSERT_LEAF", "Btree/INSERT_UPPER", "Btree/INSERT_META",
            "Btree/INSERT_POST", "Btree/SPLIT_L", "Btree/SPLIT_R", "Btree/NEWROOT", "Btree/DEDUP",
            "Btree/DELETE", "Btree/VACUUM", "Btree/MARK_PAGE_HALFDEAD", "Btree/UNLINK_PAGE",
            "Btree/UNLINK_PAGE_META", "Btree/META_CLEANUP"}
MODELLED |= {"Sequence/LOG", "Generic/Generic", "BRIN/CREATE_INDEX", "BRIN/INSERT", "BRIN/INSERT+INIT",
             "BRIN/UPDATE", "BRIN/UPDATE+INIT", "BRIN/SAMEPAGE_UPDATE", "BRIN/REVMAP_EXTEND", "BRIN/DESUMMARIZE"}
MODELLED |= {"Gist/PAGE_UPDATE", "Gist/PAGE_SPLIT", "Gist/DELETE", "Gist/PAGE_DELETE"}
MODELLED |= {"SPGist/ADD_LEAF", "SPGist/MOVE_LEAFS", "SPGist/ADD_NODE", "SPGist/SPLIT_TUPLE", "SPGist/PICKSPLIT",
             "SPGist/VACUUM_LEAF", "SPGist/VACUUM_ROOT", "SPGist/VACUUM_REDIRECT"}
MODELLED |= {"Gin/CREATE_PTREE", "Gin/INSERT", "Gin/SPLIT", "Gin/VACUUM_PAGE", "Gin/VACUUM_DATA_LEAF_PAGE",
             "Gin/DELETE_PAGE", "Gin/UPDATE_META_PAGE", "Gin/INSERT_LISTPAGE", "Gin/DELETE_LISTPAGE"}
MODELLED |= {f"Hash/{k}" for k in ("INIT_META_PAGE", "INIT_BITMAP_PAGE", "INSERT", "ADD_OVFL_PAGE",
                                   "SPLIT_ALLOCATE_PAGE", "SPLIT_PAGE", "SPLIT_COMPLETE", "MOVE_PAGE_CONTENTS",
                                   "SQUEEZE_PAGE", "DELETE", "SPLIT_CLEANUP", "UPDATE_META_PAGE",
                                   "VACUUM_ONE_PAGE")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuildReport, list[Entry]]]:
    out = tmp_path_factory.mktemp("corpus") / "pg15"
    report = build_corpus(BuildOptions(out, per_kind=1, max_records=3, keep_server=True))
    try:
        yield report, load_corpus(out)
    finally:
        if report.wal_dir is not None:
            shutil.rmtree(report.wal_dir.parent.parent, ignore_errors=True)


def test_every_page_touching_kind_of_the_workloads_is_in_the_corpus(built: tuple[BuildReport, list[Entry]]) -> None:
    report, entries = built
    kinds = Counter(e.meta.kind for e in entries)
    assert EXPECTED_KINDS <= set(kinds), sorted(EXPECTED_KINDS - set(kinds))
    assert max(kinds.values()) == 1
    assert report.workloads == ["heap", "btree", "hash", "gin", "gist", "spgist", "brin", "sequence", "generic"]
    for e in entries:
        assert e.meta.pg_version == 15 and e.meta.flavour.value == "vanilla" and e.meta.fork == 0
        assert e.meta.mask == e.meta.rmgr and e.expected is not None
        assert "workload " in e.meta.source and "15." in e.meta.source
        req = e.decoded_request()
        assert 1 <= len(req.records) <= 3 and req.records[-1][0] == e.meta.end_lsn


def check_names_against_pg_waldump(report: BuildReport, waldump: Path, pg_version: int) -> None:
    """Our names for every record of the run, counted per kind, equal pg_waldump's own
    per-record statistics (which also shows that our reader found every record, those that
    straddle segments included)."""
    assert report.wal_dir is not None
    proc = subprocess.run([str(waldump), "-p", str(report.wal_dir), "-s", format_lsn(report.start_lsn),
                           "--stats=record"], capture_output=True, text=True, timeout=300, check=False)
    theirs = {m.group(1): int(m.group(2))
              for m in re.finditer(r"^(\w+/\S+)\s+(\d+) \(", proc.stdout, re.MULTILINE)}
    assert theirs, proc.stdout[-500:] + proc.stderr[-500:]
    segs = sorted(p for p in report.wal_dir.iterdir() if re.match(r"^[0-9A-F]{24}$", p.name))
    seg_size = segs[0].stat().st_size
    first = report.start_lsn // seg_size
    ours: Counter[str] = Counter()
    crossing = 0
    stream = ((int(p.name[8:16], 16) * (2**32 // seg_size) + int(p.name[16:], 16), p) for p in segs)
    for w in iter_wal(((n, p.read_bytes()) for n, p in stream if n >= first), pg_version=pg_version,
                      seg_size=seg_size):
        if w.start < report.start_lsn:
            continue
        crossing += w.start // seg_size != (w.end - 1) // seg_size
        _tot, _xid, _prev, info, rmid, _pad, _crc = decode_header(w.raw)
        name = record_name(rmid, info, pg_version)
        if name is not None:
            ours[f"{rmgr_name(rmid)}/{name}"] += 1
    rmgrs = {k.split("/")[0] for k in ours}
    assert dict(ours) == {k: v for k, v in theirs.items() if k.split("/")[0] in rmgrs}
    assert crossing > 0


def test_record_names_agree_with_pg_waldump(built: tuple[BuildReport, list[Entry]]) -> None:
    check_names_against_pg_waldump(built[0], DEFAULT_BIN_DIR / "pg_waldump", 15)


def test_the_model_reproduces_every_entry_it_implements(built: tuple[BuildReport, list[Entry]]) -> None:
    _, entries = built
    unsupported: Counter[str] = Counter()
    for e in entries:
        why = model_unsupported(e)
        if why is not None:
            unsupported[e.meta.kind] += 1
            continue
        assert e.meta.kind in MODELLED, e.name
        assert e.expected is not None
        assert masked_equal(e.expected, model_answer(e), e.meta.mask, e.meta.blk), e.name
    # every heap, heap2, btree, hash, BRIN, sequence, generic, GIN, GiST and SP-GiST record is
    # modelled, so none of their entries is unsupported
    modelled = ("Heap", "Btree", "Hash", "BRIN", "Sequence", "Generic", "Gin", "Gist", "SPGist")
    assert not any(k.startswith(modelled) for k in unsupported), unsupported


def test_the_reference_walredo_matches_what_the_model_implements(built: tuple[BuildReport, list[Entry]],
                                                                 tmp_path: Path) -> None:
    _, entries = built
    results = replay_entries(entries, reference_for(entries, tmp_path), timeout=30)
    print(kind_table(results))
    verdicts = {r.name: r.verdict for r in results}
    for e in entries:
        expected = Verdict.UNSUPPORTED if model_unsupported(e) else Verdict.MATCHED
        assert verdicts[e.name] is expected, (e.name, [r for r in results if r.name == e.name])
    assert Counter(verdicts.values())[Verdict.MATCHED] >= 15


def test_a_walredo_that_ignores_records_fails_every_entry(built: tuple[BuildReport, list[Entry]],
                                                          tmp_path: Path) -> None:
    _, entries = built
    faulty = reference_for(entries, tmp_path, ["ignore-records"])
    results = replay_entries(entries, faulty, timeout=30, model_oracle=False)
    assert {r.verdict for r in results} <= {Verdict.DIFFERING, Verdict.FAILED}, kind_table(results)
    # one corrupted byte is seen wherever the entry's mask does not hide that byte
    corrupt = reference_for(entries, tmp_path, ["corrupt-byte:8176"])
    results = replay_entries(entries, corrupt, timeout=30)
    judged = 0
    for e, r in zip(entries, results, strict=True):
        if r.verdict is Verdict.UNSUPPORTED:
            continue
        assert e.expected is not None
        flipped = bytearray(e.expected)
        flipped[8176] ^= 0xFF
        visible = not masked_equal(e.expected, bytes(flipped), e.meta.mask, e.meta.blk)
        assert r.verdict is (Verdict.DIFFERING if visible else Verdict.MATCHED), (e.name, r)
        judged += visible
    assert judged >= 15


@pytest.mark.parametrize("method", ["pglz", "lz4", "zstd"])
def test_compressed_wal(tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    report = build_corpus(BuildOptions(out, workloads=("heap",), per_kind=1, max_records=2,
                                       wal_compression=method))
    entries = load_corpus(out)
    assert len(entries) == len(report.entries) >= 12
    methods = Counter()
    for e in entries:
        for _lsn, raw in e.decoded_request().records:
            for b in decode_record(raw, 15).blocks:
                if b.image is not None:
                    methods[b.image.compression.value] += 1
    assert methods[method] > 0, methods
    results = replay_entries(entries, reference_for(entries, tmp_path), timeout=30)
    for e, r in zip(entries, results, strict=True):
        assert r.verdict is (Verdict.UNSUPPORTED if model_unsupported(e) else Verdict.MATCHED), (e.name, r)


# ------------------------------------------------------------------------------------------
# The same fresh corpus through the plugin: pytest --walredo-corpus DIR
# ------------------------------------------------------------------------------------------


def _plugin_run(pytester: pytest.Pytester, corpus: Path, *args: str, plugins: tuple[object, ...] = ()):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    argv = ["-p", "no:cacheprovider", "--walredo-pg-version", "15", "--walredo-flavour", "vanilla",
            "--walredo-corpus", str(corpus), "--walredo-dump-dir", str(pytester.path / "dumps"),
            "--pyargs", "pytest_walredo.conformance.test_corpus", *args]
    if plugins:
        return pytester.runpytest_inprocess(*argv, plugins=list(plugins))
    return pytester.runpytest_subprocess(*argv, timeout=600)


def _table(text: str) -> dict[str, list[int]]:
    """The per-kind table of the ``walredo verdicts`` summary: kind -> [matched, differing,
    failed, unsupported]."""
    section = text[text.index("walredo verdicts"):]
    rows = re.findall(r"^(\S+/\S+|total)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", section, re.M)
    return {kind: [int(n) for n in counts] for kind, *counts in rows}


@pytest.fixture
def corpus_dir(built: tuple[BuildReport, list[Entry]], tmp_path: Path) -> Path:
    for e in built[1]:
        write_entry(tmp_path / "fresh", e)
    return tmp_path / "fresh"


def test_the_plugin_judges_every_entry_and_prints_the_table(built: tuple[BuildReport, list[Entry]],
                                                           corpus_dir: Path, pytester: pytest.Pytester) -> None:
    _, entries = built
    supported = [e for e in entries if model_unsupported(e) is None]
    result = _plugin_run(pytester, corpus_dir, "-v")
    result.assert_outcomes(passed=len(supported), skipped=len(entries) - len(supported))
    table = _table(result.stdout.str())
    assert table["total"] == [len(supported), 0, 0, len(entries) - len(supported)]
    for kind in {e.meta.kind for e in entries}:
        n = sum(e.meta.kind == kind for e in supported)
        assert table[kind] == [n, 0, 0, sum(e.meta.kind == kind for e in entries) - n], kind
    result.stdout.fnmatch_lines([f"*tests judged by: corpus {len(supported)}*"])
    # one test per entry, its id from the kind and the name
    ids = re.findall(r"test_corpus_entry\[([^\]]+)\] (?:PASSED|SKIPPED)", result.stdout.str())
    kinds = {e.name: e.meta.kind for e in entries}
    assert sorted(ids) == sorted(kinds) and all(i.startswith(kinds[i].replace("/", ".") + ".") for i in ids)


def test_a_walredo_that_ignores_records_fails_every_entry_under_xdist(corpus_dir: Path, tmp_path: Path,
                                                                     built: tuple[BuildReport, list[Entry]],
                                                                     pytester: pytest.Pytester) -> None:
    _, entries = built
    assert all(e.decoded_request().records for e in entries)
    # Not the reference to the plugin (a script), so every entry is sent: none is "unsupported".
    ignoring = reference_wrapper(tmp_path / "ignoring-walredo", 15, "vanilla", ["ignore-records"])
    result = _plugin_run(pytester, corpus_dir, "-n", "2", "--walredo-bin", str(ignoring))
    result.assert_outcomes(failed=len(entries))
    assert _table(result.stdout.str())["total"] == [0, len(entries), 0, 0]


def test_a_faulty_references_differing_entry_leaves_its_artifacts(corpus_dir: Path, pytester: pytest.Pytester,
                                                                  built: tuple[BuildReport, list[Entry]]) -> None:
    _, entries = built
    offset = 8176
    result = _plugin_run(pytester, corpus_dir, "--alluredir", str(pytester.path / "allure"),
                         plugins=(SuiteVariant(faults=[f"corrupt-byte:{offset}"]),))
    visible = []
    for e in entries:
        assert e.expected is not None
        flipped = bytearray(e.expected)
        flipped[offset] ^= 0xFF
        if model_unsupported(e) is None and not masked_equal(e.expected, bytes(flipped), e.meta.mask, e.meta.blk):
            visible.append(e)
    assert visible
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == len(visible), result.stdout.str()[-3000:]
    e = visible[0]
    folder = next(p for p in (pytester.path / "dumps").iterdir() if e.name.replace("+", "_") in p.name)
    index = next(folder.glob("failure-*[0-9].txt")).read_text()
    assert f"corpus entry {e.name}: {e.meta.kind}, mask {e.meta.mask}" in index
    assert "expected pages from the corpus" in index and f"1 byte(s) differ, first at offset {offset}" in index
    request = next(p for p in folder.glob("walredo-*.walredo"))
    assert request.read_bytes() == e.request
    assert request.with_name(request.name.replace(".walredo", ".expected.page")).read_bytes() == e.expected
    actual = request.with_name(request.name.replace(".walredo", ".actual.page")).read_bytes()
    assert actual[offset] == e.expected[offset] ^ 0xFF
    assert request.with_name(request.name.replace(".walredo", ".diff.txt")).exists()
    # the table is attached to the run in Allure (a global attachment), each test labelled with its oracle
    allure_dir = pytester.path / "allure"
    globals_doc = json.loads(next(allure_dir.glob("*-globals.json")).read_text())
    attached = allure_dir / globals_doc["attachments"][0]["source"]
    assert "total" in attached.read_text() and f"{len(visible)}" in attached.read_text()
    labels = [lab for p in allure_dir.glob("*-result.json") for lab in json.loads(p.read_text())["labels"]]
    assert {"name": "walredo oracle", "value": "corpus"} in labels
