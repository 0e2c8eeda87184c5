"""``pytest-walredo shrink``: the delta-debugging search (with Python predicates) and the command
(with the reference walredo and its faults)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.pg import rmgr
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import decode_record, verify_crc
from pytest_walredo.protocol import RedoRequest
from pytest_walredo.triage.cli import main
from pytest_walredo.triage.shrink import NothingToShrink, shrink_request

pytestmark = pytest.mark.needs_vectors


@pytest.fixture(scope="module")
def bench(vectors_dir: Path) -> RedoRequest:
    return RedoRequest.decode((vectors_dir / "bench_medium_v14.walredo").read_bytes())


def lsns(req: RedoRequest) -> list[int]:
    return [lsn for lsn, _ in req.records]


def tuple_data(raw: bytes) -> bytes:
    body = rmgr.parse(decode_record(raw, 14), 14, Flavour.NEON)
    assert isinstance(body, rmgr.HeapInsert) and body.tuple is not None
    return body.tuple.data


# ------------------------------------------------------------------------------ the search


def test_keeps_exactly_the_records_the_failure_needs_and_shortens_tuple_data(bench):
    all_lsns = lsns(bench)
    need_a, need_b = all_lsns[4], all_lsns[99]
    seen: list[RedoRequest] = []

    def fails(req: RedoRequest) -> bool:
        seen.append(req)
        recs = dict(req.records)
        # needs records 5 and 100, and at least 4 tuple data bytes in record 100
        return need_a in recs and need_b in recs and len(tuple_data(recs[need_b])) >= 4

    result = shrink_request(bench, fails, pg_version=14, flavour=Flavour.NEON)
    assert result.kept_indices == (5, 100)
    assert lsns(result.request) == [need_a, need_b]
    assert fails(result.request)  # the invariant: the result was observed to fail
    a_raw, b_raw = (raw for _, raw in result.request.records)
    assert tuple_data(a_raw) == b""
    assert tuple_data(b_raw) == tuple_data(bench.records[99][1])[:4]
    for raw in (a_raw, b_raw):  # rebuilt records are well-formed: length and CRC fixed up
        assert decode_record(raw, 14).tot_len == len(raw) and verify_crc(raw)
    assert result.removed == [
        "removed 225 of 227 record(s): #1-#4, #6-#99, #101-#227",
        "shortened the tuple data of record #5 from 9 to 0 bytes",
        "shortened the tuple data of record #100 from 9 to 4 bytes",
    ]
    assert result.runs == len({r.encode() for r in seen[:-1]})  # cached: no candidate ran twice
    assert result.runs < 120  # ddmin is logarithmic-ish here, not one run per record


def test_base_image_dropped_only_when_the_failure_allows(bench, vectors_dir):
    page = (vectors_dir / "short_v14_redo.page").read_bytes()
    req = RedoRequest(bench.rel, bench.blknum, page, bench.records[:3])
    r1 = shrink_request(req, lambda r: len(r.records) >= 1, pg_version=14, flavour=Flavour.NEON)
    assert r1.request.base_image is None and "removed the base image (P message)" in r1.removed
    r2 = shrink_request(req, lambda r: r.base_image is not None, pg_version=14, flavour=Flavour.NEON)
    assert r2.request.base_image == page and r2.request.records == ()
    assert r2.removed == ["removed 3 of 3 record(s): #1-#3"]


def test_nothing_to_shrink_when_the_original_passes(bench):
    with pytest.raises(NothingToShrink):
        shrink_request(bench, lambda r: False, pg_version=14, flavour=Flavour.NEON)


def test_max_runs_stops_early_with_a_failing_result(bench):
    result = shrink_request(bench, lambda r: len(r.records) >= 7, pg_version=14, flavour=Flavour.NEON, max_runs=5)
    assert result.exhausted and result.runs == 5
    assert len(result.request.records) >= 7


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sets(st.integers(0, 226), min_size=0, max_size=6))
def test_monotone_failures_shrink_to_exactly_the_culprits(bench, culprits):
    """For a failure that needs exactly a set of records (and nothing else), ddmin finds that set."""
    wanted = {bench.records[i][0] for i in culprits}
    result = shrink_request(bench, lambda r: wanted <= {lsn for lsn, _ in r.records},
                            pg_version=14, flavour=Flavour.NEON)
    assert set(lsns(result.request)) == wanted
    assert result.kept_indices == tuple(sorted(i + 1 for i in culprits))


# ------------------------------------------------------------------------------ the command


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_shrink_crash_to_the_bad_record(capsys, tmp_path, bench):
    recs = list(bench.records[:12])
    lsn, raw = recs[6]
    recs[6] = (lsn, (len(raw) + 5).to_bytes(4, "little") + raw[4:])  # xl_tot_len disagrees: FATAL
    path = tmp_path / "crash.walredo"
    path.write_bytes(RedoRequest(bench.rel, bench.blknum, None, tuple(recs)).encode())
    code, out, err = run(capsys, "shrink", path, "--until", "crash", "--pg-version", "14",
                         "--match", "mismatch between record")
    assert code == 0, out + err
    minimal = tmp_path / "crash.min.walredo"  # default: next to the input
    req = RedoRequest.decode(minimal.read_bytes())
    assert req.records == ((lsn, recs[6][1]),) and req.base_image is None
    assert "removed 11 of 12 record(s): #1-#6, #8-#12" in out
    assert "FATAL:  mismatch between record (72) and message size (67)" in out
    assert f"wrote {minimal} ({len(req.encode())} bytes, was {path.stat().st_size})" in out


def test_shrink_differs_with_a_seeded_reference_bug(capsys, tmp_path, vectors_dir):
    out_path = tmp_path / "min.walredo"
    code, out, err = run(capsys, "shrink", vectors_dir / "short_v14.walredo", "--until", "differs",
                         "--pg-version", "14", "--ref-fault", "no-lsn", "-o", out_path)
    assert code == 0, out + err
    req = RedoRequest.decode(out_path.read_bytes())
    short = RedoRequest.decode((vectors_dir / "short_v14.walredo").read_bytes())
    # the FPI insert alone shows the bug (pd_lsn not set); the INPLACE record is not needed
    assert req.records == short.records[:1]
    assert "removed 1 of 2 record(s): #2" in out
    assert "#1 end lsn 0/16A9388, 874 bytes: Heap INSERT off 2 flags 0x01" in out
    assert "minimal failure: the answer differs from the redo model's prediction (pages differ: 1 header" in out


def test_shrink_timeout(capsys, tmp_path, vectors_dir):
    out_path = tmp_path / "hang.walredo"
    code, out, _ = run(capsys, "shrink", vectors_dir / "short_v14.walredo", "--until", "timeout", "--pg-version",
                       "14", "--ref-fault", "hang-after:0", "--timeout", "0.3", "--hang-check", "off", "-o", out_path)
    assert code == 0
    assert RedoRequest.decode(out_path.read_bytes()).records == ()
    assert "removed 2 of 2 record(s): #1-#2" in out and "waited more than 0.3s" in out


def test_shrink_reports_nothing_to_shrink(capsys, tmp_path, vectors_dir):
    src = tmp_path / "short.walredo"
    shutil.copyfile(vectors_dir / "short_v14.walredo", src)
    code, out, err = run(capsys, "shrink", src, "--until", "crash", "--pg-version", "14")
    assert code == 1 and err == ""
    assert "does not crash on this request; nothing to shrink" in out
    assert not (tmp_path / "short.min.walredo").exists()


def test_shrink_bad_inputs_are_one_line(capsys, tmp_path, vectors_dir):
    code, _, err = run(capsys, "shrink", vectors_dir / "short_v14.walredo", "--until", "crash", "--max-runs", "0")
    assert code == 2 and err.count("\n") == 1 and "--max-runs 0 must be at least 1" in err
    code, _, err = run(capsys, "shrink", tmp_path / "gone.walredo", "--until", "crash")
    assert code == 2 and err.count("\n") == 1 and "gone.walredo: no such file" in err
    src = tmp_path / "s.walredo"
    shutil.copyfile(vectors_dir / "short_v14.walredo", src)
    code, _, err = run(capsys, "shrink", src, "--until", "crash", "-o", src)
    assert code == 2 and err.count("\n") == 1 and "is the input file" in err
    ro = tmp_path / "ro"
    ro.mkdir()
    code, _, err = run(capsys, "shrink", src, "--until", "crash", "--pg-version", "14", "--ref-fault",
                       "crash-after:0", "-o", ro / "missing-dir" / "x.walredo")
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err and "missing-dir/x.walredo" in err


def test_shrink_writes_a_corpus_entry(capsys, tmp_path, vectors_dir):
    import json

    from pytest_walredo.corpus.folder import entry_names, read_entry
    from pytest_walredo.sim import model_page

    code, out, err = run(capsys, "shrink", vectors_dir / "short_v14.walredo", "--until", "differs",
                         "--pg-version", "14", "--ref-fault", "no-lsn", "-o", tmp_path / "min.walredo")
    assert code == 0, out + err
    assert entry_names(tmp_path) == ["min"]
    entry = read_entry(tmp_path, "min")
    req = entry.decoded_request()
    assert entry.expected == model_page(req, 14, flavour=Flavour.NEON)
    actual = (tmp_path / "min.actual.page").read_bytes()
    assert actual != entry.expected and actual[8:] == entry.expected[8:]  # no-lsn: only pd_lsn differs
    meta = json.loads((tmp_path / "min.json").read_text())
    assert meta["kind"] == "Heap/INSERT" and meta["shrunk_from"] == "short_v14.walredo"
    assert meta["outcome"] == "differs" and meta["pg_version"] == 14
    assert "with min.expected.page, min.actual.page, min.json (a corpus entry)" in out
