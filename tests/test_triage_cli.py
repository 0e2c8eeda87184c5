"""The ``pytest-walredo`` triage CLI: inspect, replay, diff, --help, and one-line errors.

Most tests run ``main([...])`` in-process with capsys; ``test_console_script_*`` run the
installed console script in a subprocess once, as a user would. Facts about the vectors come
from ../shared/vectors/README.md.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_walredo.pg import rmgr
from pytest_walredo.pg.page import BLCKSZ, Page
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.waldump import find_pg_waldump, run_waldump
from pytest_walredo.pg.walsegment import write_segment
from pytest_walredo.pg.xlogrecord import ImageRef, decode_record, encode_record
from pytest_walredo.protocol import (
    ApplyRecord,
    BeginRedoForBlock,
    BufferTag,
    GetPage,
    RedoRequest,
    RelTag,
    encode_messages,
)
from pytest_walredo.render.pagediff import diff_pages, render_diff
from pytest_walredo.target import reference_binary
from pytest_walredo.triage.cli import main

pytestmark = pytest.mark.needs_vectors


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"expected exactly one line, got {err!r}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


@pytest.fixture
def short(vectors_dir: Path) -> Path:
    return vectors_dir / "short_v14.walredo"


@pytest.fixture
def final_page(vectors_dir: Path) -> Path:
    return vectors_dir / "short_v14_redo.page"


def fpi_of_short(short: Path) -> bytes:
    """The full-page image carried by short_v14's first record, restored."""
    req = RedoRequest.decode(short.read_bytes())
    image = decode_record(req.records[0][1], 14).blocks[0].image
    assert image is not None
    return image.restore_page()


# ------------------------------------------------------------------------------------ inspect


def test_inspect_short_text_shows_both_heap_records_like_pg_waldump(capsys, short):
    code, out, err = run(capsys, "inspect", short, "--pg-version", "14")
    assert code == 0 and err == ""
    record_lines = [line for line in out.splitlines() if line.strip().startswith("rmgr:")]
    assert len(record_lines) == 2
    insert, inplace = record_lines
    assert "rmgr: Heap" in insert and "end lsn: 0/16A9388" in insert and "desc: INSERT off 2" in insert
    assert "tx:       1024" in insert and "len (rec/tot):     54/   874" in insert
    assert "rmgr: Heap" in inplace and "end lsn: 0/16D4080" in inplace and "desc: INPLACE off 2" in inplace
    blkrefs = [line.strip() for line in out.splitlines() if "blkref #" in line]
    assert len(blkrefs) == 2
    assert all(b.startswith("blkref #0: rel 1663/13010/1259 fork main blk 0") for b in blkrefs)
    assert "FPI: length 820, hole offset 212, hole length 7372" in blkrefs[0]
    assert "HAS_HOLE|APPLY" in blkrefs[0]
    assert "FPI" not in blkrefs[1]
    assert "[0] B BeginRedoForBlock 1663/13010/1259 blk 0" in out
    assert "G GetPage 1663/13010/1259 blk 0" in out


def test_inspect_short_json(capsys, short):
    code, out, _ = run(capsys, "inspect", short, "--pg-version", "14", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["kind"] == "stream" and doc["pg_version"] == 14 and doc["flavour"] == "neon"
    assert [m["tag"] for m in doc["messages"]] == ["B", "A", "A", "G"]
    assert doc["requests"] == ["redo 1663/13010/1259 blk 0: no base image, 2 record(s)"]
    r1, r2 = (m["record"] for m in doc["messages"] if m["tag"] == "A")
    assert (r1["end_lsn"], r2["end_lsn"]) == ("0/16A9388", "0/16D4080")
    assert (r1["rmgr"], r1["name"], r1["xid"], r1["tot_len"]) == ("Heap", "INSERT", 1024, 874)
    assert (r2["rmgr"], r2["name"]) == ("Heap", "INPLACE")
    assert r1["crc_ok"] and r2["crc_ok"]
    (b1,) = r1["blocks"]
    (b2,) = r2["blocks"]
    for b in (b1, b2):
        assert (b["rel"], b["fork"], b["blkno"]) == ("1663/13010/1259", "main", 0)
    img = b1["image"]
    assert (img["hole_offset"], img["length"], img["hole_length"]) == (212, 820, 7372)
    assert img["flags"] == ["HAS_HOLE", "APPLY"] and img["compression"] == "none" and img["error"] is None
    # the restored image is a page summary too: pd_lower/pd_upper bound the hole
    assert (img["page"]["header"]["lower"], img["page"]["header"]["upper"]) == (212, 7584)
    assert b2["image"] is None and b2["data_len"] == 140


def test_inspect_page_file(capsys, final_page):
    code, out, _ = run(capsys, "inspect", final_page, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["kind"] == "page"
    page = doc["page"]
    h = page["header"]
    assert (h["lsn"], h["checksum"], h["lower"], h["upper"], h["special"]) == ("0/16D4080", 0, 212, 7584, 8192)
    assert page["kind"] == "heap" and page["problem"] is None
    assert len(page["line_pointers"]) == (212 - 24) // 4
    assert [t["offnum"] for t in page["tuples"]] == [2, 46, 47]
    tup2 = page["tuples"][0]
    assert tup2["t_xmin"] == 1024 and tup2["t_ctid"] == [0, 2] and tup2["t_hoff"] == 32
    code, text, _ = run(capsys, "inspect", final_page)
    assert "page (heap): lsn 0/16D4080" in text and "lp 2: NORMAL off 7584 len 172 | xmin 1024" in text
    assert "lp 3-18: UNUSED" in text


def test_inspect_bench_medium_counts_records(capsys, vectors_dir):
    code, out, _ = run(capsys, "inspect", vectors_dir / "bench_medium_v14.walredo", "--pg-version", "14", "--json")
    assert code == 0
    recs = [m["record"] for m in json.loads(out)["messages"] if m["tag"] == "A"]
    assert len(recs) == 227
    names = [(r["rmgr"], r["name"]) for r in recs]
    assert names[0] == ("Heap", "INSERT+INIT")
    assert names[1:226] == [("Heap", "INSERT")] * 225
    assert names[226] == ("Heap2", "VISIBLE")


def test_inspect_shows_pushed_page_and_bad_record(capsys, tmp_path, short, final_page):
    req = RedoRequest.decode(short.read_bytes())
    lsn, raw = req.records[1]
    broken = (len(raw) + 3).to_bytes(4, "little") + raw[4:]  # xl_tot_len disagrees with the message
    path = tmp_path / "p.walredo"
    path.write_bytes(RedoRequest(req.rel, req.blknum, final_page.read_bytes(), ((lsn, broken),)).encode())
    code, out, _ = run(capsys, "inspect", path, "--pg-version", "14")
    assert code == 0
    assert "P PushPage 1663/13010/1259 blk 0" in out
    assert "page (heap): lsn 0/16D4080" in out
    assert "WAL record does not decode as PostgreSQL 14 WAL: XLogRecord xl_tot_len" in out


def test_inspect_json_and_text_agree_on_vanilla_flavour(capsys, short):
    # the flavour changes how heap records decode; it is reported, never guessed
    code, out, _ = run(capsys, "inspect", short, "--pg-version", "14", "--flavour", "vanilla", "--json")
    assert code == 0 and json.loads(out)["flavour"] == "vanilla"


# ------------------------------------------------------------------------------------ diff


def test_diff_identical_pages(capsys, final_page):
    code, out, _ = run(capsys, "diff", final_page, final_page)
    assert code == 0 and out.startswith("pages are identical")


def test_diff_fpi_against_final_page_is_structured(capsys, tmp_path, short, final_page):
    fpi = tmp_path / "fpi.page"
    fpi.write_bytes(fpi_of_short(short))
    code, out, _ = run(capsys, "diff", fpi, final_page)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "pages differ: 1 header field(s), 1 tuple difference(s)"
    assert "  pd_lsn: 0/161EC80 -> 0/16D4080" in lines
    assert any(line.startswith("  tuple 2 data: ") and "first at byte 96" in line for line in lines)
    assert len(lines) == 4  # summary, labels, two differences: no hexdump wall
    code, out, _ = run(capsys, "diff", fpi, final_page, "--json")
    doc = json.loads(out)
    assert code == 1 and not doc["identical"]
    assert [(d["section"], d["where"]) for d in doc["differences"]] == [("header", "pd_lsn"),
                                                                       ("tuple", "tuple 2 data")]


def test_diff_names_header_line_pointer_tuple_and_free_space(final_page):
    a = final_page.read_bytes()
    b = bytearray(a)
    b[8:10] = (0x1234).to_bytes(2, "little")  # pd_checksum
    b[24 + 4 * 19] = 7  # lp 20 (unused, all zero): lp_off 7
    b[7984 + 4] = 9  # tuple at lp 46: t_xmax
    b[5000] = 3  # free space
    text = render_diff(diff_pages(a, bytes(b)))
    assert "pd_checksum: 0x0000 -> 0x1234" in text
    assert "lp 20: UNUSED off 0 len 0 -> UNUSED off 7 len 0" in text
    assert "tuple 46 t_xmax: 0 -> 9" in text
    assert "bytes 5000..5000" in text and "free space" in text


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, BLCKSZ - 1), st.integers(0, 255)), max_size=12))
def test_diff_is_empty_iff_pages_are_equal(vectors_dir, edits):
    """Invariant of diff_pages: no difference reported iff the bytes are equal, for arbitrary edits
    (which can break pd_lower, line pointers and tuples in every way)."""
    a = (vectors_dir / "short_v14_redo.page").read_bytes()
    b = bytearray(a)
    for pos, value in edits:
        b[pos] = value
    diffs = diff_pages(a, bytes(b))
    assert (diffs == []) == (a == bytes(b))
    assert (diff_pages(bytes(b), a) == []) == (a == bytes(b))


# ------------------------------------------------------------------------------------ replay


def test_replay_short_matches_model_and_expected_page(capsys, short, final_page):
    code, out, err = run(capsys, "replay", short, "--pg-version", "14")
    assert code == 0, out + err
    assert "outcome: answered with a 8192-byte page" in out
    assert "answer (heap): lsn 0/16D4080" in out
    assert "verdict: matches the redo model's prediction" in out
    assert "stderr: (empty)" in out
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14", "--expect", final_page)
    assert code == 0 and f"verdict: matches --expect {final_page}" in out


def test_replay_shows_difference_from_expected_page(capsys, short, final_page):
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14", "--expect", final_page,
                       "--ref-fault", "corrupt-byte:8000")
    assert code == 1
    assert "verdict: differs from --expect" in out
    assert "pages differ: 1 tuple difference(s)" in out
    # lp 46's tuple starts at 7984; byte 8000 is the low byte of its ip_posid (46 ^ 0xFF = 209)
    assert "tuple 46 t_ctid: (0,46) -> (0,209)" in out


def test_replay_crash_shows_stderr_and_exit_status(capsys, short):
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14", "--ref-fault", "crash-after:0")
    assert code == 1
    assert "outcome: failed:" in out
    assert "  FATAL:  fault injected: crash-after:0" in out.splitlines()
    assert "exit status: the process exited with status 1" in out


def test_replay_timeout(capsys, short):
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14", "--ref-fault", "hang-after:0",
                       "--timeout", "0.5", "--hang-check", "off")
    assert code == 1
    assert "outcome: timed out:" in out and "waited more than 0.5s" in out
    assert "killed by signal 9" in out


def test_replay_sees_a_hang_before_the_timeout(capsys, short):
    # the hang check (on by default, as in the plugin) calls an idle process hung long before
    # the (here: two-minute) timeout
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14", "--ref-fault", "hang-after:0",
                       "--timeout", "120")
    assert code == 1
    assert "outcome: timed out:" in out and "will never be answered" in out


def test_replay_model_refusal_counts_as_expected_failure(capsys, tmp_path, short):
    req = RedoRequest.decode(short.read_bytes())
    lsn, raw = req.records[1]
    path = tmp_path / "inplace-alone.walredo"  # INPLACE on a block that was never initialized
    path.write_bytes(RedoRequest(req.rel, req.blknum, None, ((lsn, raw),)).encode())
    code, out, _ = run(capsys, "replay", path, "--pg-version", "14", "--json")
    doc = json.loads(out)
    assert doc["expected_error"] == "invalid lp"
    assert doc["status"] == "crash" and "FATAL:  invalid lp" in doc["stderr"] and doc["returncode"] == 1
    assert code == 0 and doc["ok"] and doc["verdict"] == "failed, as the model expects (invalid lp)"
    # a walredo that ignores records answers (a zero page) where the model says it must fail
    code, out, _ = run(capsys, "replay", path, "--pg-version", "14", "--ref-fault", "ignore-records")
    assert code == 1
    assert "verdict: answered, but the model expects it to fail: invalid lp" in out
    assert "answer (new): lsn 0/0" in out


def test_replay_user_binary(capsys, tmp_path, short):
    ref = reference_binary(tmp_path / "ref", 14)
    wrapper = tmp_path / "my-walredo"
    wrapper.write_text(f"#!/bin/sh\nexec {ref.path} \"$@\" --pg-version 14 --flavour neon\n")
    wrapper.chmod(0o755)
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14", "--walredo-bin", wrapper, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "answered" and doc["ok"]
    assert doc["binary"] == str(wrapper) and doc["page"]["header"]["lsn"] == "0/16D4080"


# ------------------------------------------------------------------------------------ help


@pytest.mark.parametrize("command", ["inspect", "replay", "shrink", "diff"])
def test_each_subcommand_has_help(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: pytest-walredo {command}")
    if command in ("replay", "shrink"):
        assert "--walredo-bin" in out and "--pg-version" in out and "--ref-fault" in out
    if command == "shrink":
        assert "{crash,timeout,differs}" in out


def test_top_level_help_lists_commands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("inspect", "replay", "shrink", "diff"):
        assert command in out


# ------------------------------------------------------------------------------------ bad input


def test_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "inspect", tmp_path / "nope.walredo")
    assert_one_line_error(code, err, "nope.walredo", "no such file")


def test_directory_instead_of_file(capsys, tmp_path):
    code, _, err = run(capsys, "inspect", tmp_path)
    assert_one_line_error(code, err, str(tmp_path), "is a directory")


def test_empty_file(capsys, tmp_path):
    (tmp_path / "empty.walredo").write_bytes(b"")
    code, _, err = run(capsys, "inspect", tmp_path / "empty.walredo")
    assert_one_line_error(code, err, "empty.walredo", "is empty")


def test_not_a_walredo_stream(capsys, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a walredo stream\n")
    code, _, err = run(capsys, "inspect", path)
    assert_one_line_error(code, err, "notes.txt", "neither a walredo stream", "unknown message tag 0x68",
                          "nor an 8192-byte page")


def test_truncated_stream(capsys, tmp_path, short):
    path = tmp_path / "cut.walredo"
    path.write_bytes(short.read_bytes()[:500])  # inside the first A message
    code, _, err = run(capsys, "inspect", path)
    assert_one_line_error(code, err, "cut.walredo", "at byte 22", "stream ends inside A (ApplyRecord)")
    code, _, err = run(capsys, "replay", path)
    assert_one_line_error(code, err, "cut.walredo", "is not a valid walredo stream", "at byte 22")


def test_wrong_page_size(capsys, tmp_path, final_page):
    small = tmp_path / "small.page"
    small.write_bytes(bytes(4096))
    code, _, err = run(capsys, "diff", final_page, small)
    assert_one_line_error(code, err, "page B", "small.page is 4096 bytes", "exactly 8192 bytes")


def test_expect_page_of_wrong_size(capsys, tmp_path, short):
    bad = tmp_path / "bad.page"
    bad.write_bytes(bytes(100))
    code, _, err = run(capsys, "replay", short, "--expect", bad)
    assert_one_line_error(code, err, "--expect page", "bad.page is 100 bytes")


def test_stream_with_two_requests_is_replayed_in_one_process(capsys, tmp_path, short):
    path = tmp_path / "two.walredo"
    path.write_bytes(short.read_bytes() * 2)
    code, out, _ = run(capsys, "replay", path, "--pg-version", "14")
    assert code == 0, out
    assert "a session stream of 2 call(s) sent to one process; checking the last call" in out
    assert "   #0 redo 1663/13010/1259 blk 0: no base image, 2 record(s): answered" in out
    assert "  >#1 redo 1663/13010/1259 blk 0" in out and "verdict: matches the redo model's prediction" in out


def test_stream_that_is_not_whole_calls(capsys, tmp_path, short):
    path = tmp_path / "tail.walredo"
    data = short.read_bytes()
    path.write_bytes(data + data[:22])  # a second request that stops after its B message
    code, _, err = run(capsys, "replay", path)
    assert_one_line_error(code, err, "tail.walredo", "ends with 1 message(s) after its last G or H")


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["inspect", "X", "--pg-version", "13"], ["--pg-version", "13 is not supported"]),
        (["inspect", "X", "--pg-version", "fourteen"], ["--pg-version", "'fourteen' is not a number"]),
        (["inspect", "X", "--flavour", "oracle"], ["--flavour", "unknown WAL flavour 'oracle'"]),
        (["replay", "X", "--timeout", "-1"], ["--timeout", "must be more than 0"]),
        (["shrink", "X"], ["the following arguments are required: --until"]),
        (["shrink", "X", "--until", "explodes"], ["--until", "invalid choice: 'explodes'"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        ([], ["a command is required"]),
        (["inspect"], ["the following arguments are required: FILE"]),
        (["inspect", "X", "--verbose"], ["unrecognized arguments: --verbose"]),
    ],
)
def test_bad_flags(capsys, argv, needles):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *needles)


def test_bad_ref_fault_and_binary_flags(capsys, tmp_path, short):
    code, _, err = run(capsys, "replay", short, "--ref-fault", "crash-sometimes")
    assert_one_line_error(code, err, "--ref-fault", "unknown fault 'crash-sometimes'")
    code, _, err = run(capsys, "replay", short, "--walredo-bin", tmp_path / "missing-bin")
    assert_one_line_error(code, err, "--walredo-bin", "missing-bin", "no such file")
    code, _, err = run(capsys, "replay", short, "--walredo-bin", sys.executable, "--ref-fault", "no-lsn")
    assert_one_line_error(code, err, "--ref-fault only applies to the reference walredo")
    not_exec = tmp_path / "not-exec"
    not_exec.write_text("#!/bin/sh\n")
    code, _, err = run(capsys, "replay", short, "--walredo-bin", not_exec)
    assert_one_line_error(code, err, "not-exec", "is not executable")
    not_a_program = tmp_path / "garbage-bin"
    not_a_program.write_bytes(b"\x00\x01 not an executable format")
    not_a_program.chmod(0o755)
    code, _, err = run(capsys, "replay", short, "--walredo-bin", not_a_program)
    assert_one_line_error(code, err, "could not be started", "garbage-bin", "exec format error")


# ------------------------------------------------------------------------------------ console script


def _console_script() -> str:
    candidate = Path(sys.executable).parent / "pytest-walredo"
    found = str(candidate) if candidate.exists() else shutil.which("pytest-walredo")
    if found is None:
        pytest.fail("the pytest-walredo console script is not installed (pip install -e .)")
    return found


def test_console_script_inspect_json(short):
    proc = subprocess.run([_console_script(), "inspect", str(short), "--pg-version", "14", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["record"]["end_lsn"] for m in doc["messages"] if m["tag"] == "A"] == ["0/16A9388", "0/16D4080"]


def test_console_script_error_is_one_line(tmp_path):
    proc = subprocess.run([_console_script(), "diff", str(tmp_path / "a.page"), str(tmp_path / "b.page")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"pytest-walredo diff: page A {tmp_path / 'a.page'}: no such file\n"


def test_python_dash_m_entry_point(short):
    proc = subprocess.run([sys.executable, "-m", "pytest_walredo.triage", "inspect", str(short), "--pg-version", "14"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "desc: INPLACE off 2" in proc.stdout


# ------------------------------------------------------------------------------------ pg_waldump


def _as_pg15_vanilla(raw: bytes) -> bytes:
    """The vector's PG14 Neon record rebuilt as PostgreSQL 15 vanilla WAL (no t_cid, PG15 image
    flags), so that the PostgreSQL 15 pg_waldump on this machine can read it."""
    d = decode_record(raw, 14)
    body = rmgr.parse(d, 14, Flavour.NEON)
    changes: dict[str, object] = {}
    for f in dataclasses.fields(body):
        value = getattr(body, f.name)
        if f.name == "t_cid":
            changes[f.name] = None
        elif isinstance(value, rmgr.XlTuple):
            changes[f.name] = dataclasses.replace(value, t_cid=None)
    blocks = [
        dataclasses.replace(b, image=ImageRef.from_page(b.image.restore_page(), 15,
                                                        hole=(b.image.hole_offset, b.image.hole_length)))
        if b.image is not None else b
        for b in d.blocks
    ]
    return encode_record(rmgr.build(dataclasses.replace(body, **changes), blocks, pg_version=15,
                                    flavour=Flavour.VANILLA, xid=d.xid))


@pytest.mark.needs_postgres
def test_inspect_agrees_with_pg_waldump(capsys, tmp_path, vectors_dir):
    """Records from the vectors, rebuilt as PG15 WAL, laid out in a WAL segment: pg_waldump -b
    and `inspect --pg-version 15 --flavour vanilla` must agree on every column they share."""
    if find_pg_waldump() is None:
        pytest.skip("pg_waldump (PostgreSQL 15) is not installed")
    short = RedoRequest.decode((vectors_dir / "short_v14.walredo").read_bytes())
    bench = RedoRequest.decode((vectors_dir / "bench_medium_v14.walredo").read_bytes())
    raws = [_as_pg15_vanilla(r) for _, r in bench.records[:3] + bench.records[-1:] + short.records]
    seg = write_segment(raws, pg_version=15)
    dumped = run_waldump(seg.write_to(tmp_path))
    assert dumped.stopped_cleanly_at(seg.records[-1].end), dumped.stderr
    assert len(dumped.records) == len(raws)

    tag = BufferTag(RelTag(1663, 13010, 1259), 0)
    stream = tmp_path / "pg15.walredo"
    stream.write_bytes(encode_messages([BeginRedoForBlock(tag), *(ApplyRecord(w.end, w.raw) for w in seg.records),
                                        GetPage(tag)]))
    code, out, _ = run(capsys, "inspect", stream, "--pg-version", "15", "--flavour", "vanilla", "--json")
    assert code == 0
    ours = [m["record"] for m in json.loads(out)["messages"] if m["tag"] == "A"]
    for theirs, mine in zip(dumped.records, ours, strict=True):
        assert (mine["rmgr"], mine["name"], mine["desc"]) == (theirs.rmgr, theirs.name, theirs.desc.rstrip())
        assert (mine["rec_len"], mine["tot_len"], mine["xid"]) == (theirs.rec_len, theirs.tot_len, theirs.xid)
        assert mine["prev"] == f"{theirs.prev >> 32:X}/{theirs.prev & 0xFFFFFFFF:X}"
        assert len(mine["blocks"]) == len(theirs.blkrefs)
        for b, t in zip(mine["blocks"], theirs.blkrefs, strict=True):
            assert (b["block_id"], b["spcnode"], b["dbnode"], b["relnode"], b["forknum"], b["blkno"]) == (
                t.block_id, t.spcnode, t.dbnode, t.relnode, t.forknum, t.blkno)
            assert (b["image"] is not None) == t.fpw
            if t.fpw:
                assert (b["image"]["hole_offset"], b["image"]["hole_length"]) == (t.hole_offset, t.hole_length)
                assert b["image"]["apply"] == t.apply


def _index_page(page_id_or_cycle: int, btpo_flags: int) -> bytes:
    """A page with a 16-byte special space (btree opaque layout) and one index tuple."""
    page = Page.initialized(special_size=16)
    page.data[BLCKSZ - 16:] = struct.pack("<IIIHH", 0, 7, 0, btpo_flags, page_id_or_cycle)
    item = struct.pack("<HHHH", 0, 3, 5, 16) + bytes(range(1, 9))  # t_tid (3,5), t_info: size 16
    assert page.add_item(item) == 1
    return page.to_bytes()


def test_inspect_index_pages(capsys, tmp_path):
    btree = tmp_path / "btree.page"
    btree.write_bytes(_index_page(0, 0x0003))
    code, out, _ = run(capsys, "inspect", btree, "--json")
    page = json.loads(out)["page"]
    assert code == 0 and page["kind"] == "btree" and page["problem"] is None
    assert page["special"]["btpo_flag_names"] == ["LEAF", "ROOT"] and page["special"]["btpo_next"] == 7
    (tup,) = page["tuples"]
    assert tup["t_tid"] == [3, 5] and tup["size"] == 16 and tup["data"] == bytes(range(1, 9)).hex()
    code, text, _ = run(capsys, "inspect", btree)
    assert "special (btree): prev 0, next 7, level 0, flags 0x0003 (LEAF|ROOT)" in text
    assert "lp 1: NORMAL off 8160 len 16 | tid (3,5) size 16" in text
    gist = tmp_path / "gist.page"
    gist.write_bytes(_index_page(0xFF81, 0x0001))
    code, out, _ = run(capsys, "inspect", gist, "--json")
    assert json.loads(out)["page"]["kind"] == "gist"
