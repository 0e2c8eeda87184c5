"""The reference server's seeded bugs (``--fault=SPEC``), each driven over raw pipes.

Every request below is a ``B, P(page_i), G`` echo with its own random page, so the answer stream
shows exactly which answer was dropped, doubled, swapped, cut or replaced.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys

import pytest

from pytest_walredo.protocol import (
    BLCKSZ,
    ApplyRecord,
    BeginRedoForBlock,
    BufferTag,
    GetPage,
    Ping,
    PushPage,
    RelTag,
    encode_messages,
)
from pytest_walredo.refserver.faults import FaultPlan, FaultSpecError, garbage, parse_faults

ZERO = bytes(BLCKSZ)
EOF_LINE = "LOG:  received EOF on stdin, shutting down\n"


def run(stream: bytes, *args: str) -> tuple[bytes, str, int]:
    argv = [sys.executable, "-m", "pytest_walredo.refserver", "--wal-redo", *args]
    proc = subprocess.run(argv, input=stream, capture_output=True, timeout=120)
    return proc.stdout, proc.stderr.decode("utf-8", "replace"), proc.returncode


def tag(i: int) -> BufferTag:
    return BufferTag(RelTag(1663, 5, 16384 + i), i)


def requests(n: int, seed: int = 7) -> tuple[bytes, list[bytes]]:
    """``n`` echo requests and the page each one must answer."""
    rng = random.Random(seed)
    pages = [rng.randbytes(BLCKSZ) for _ in range(n)]
    stream = b"".join(
        encode_messages([BeginRedoForBlock(tag(i)), PushPage(tag(i), p), GetPage(tag(i))])
        for i, p in enumerate(pages)
    )
    return stream, pages


def test_without_faults_every_page_comes_back_in_order() -> None:
    stream, p = requests(4)
    assert run(stream) == (b"".join(p), EOF_LINE, 0)


def test_crash_after_n_answers_then_fatal_exit_1() -> None:
    stream, p = requests(4)
    assert run(stream, "--fault=crash-after:2") == (
        p[0] + p[1], "FATAL:  fault injected: crash-after:2\n", 1)


def test_crash_after_zero_dies_before_reading() -> None:
    stream, _ = requests(1)
    assert run(stream, "--fault=crash-after:0") == (b"", "FATAL:  fault injected: crash-after:0\n", 1)


def test_answers_are_counted_over_get_and_ping() -> None:
    stream, p = requests(2)
    out, err, rc = run(Ping().encode() + stream, "--fault=crash-after:2")
    assert (out, rc) == (ZERO + p[0], 1), err


def test_hang_after_n_answers_keeps_reading_and_answers_nothing() -> None:
    # 20 requests (about 160 KiB, more than a pipe buffer): if the hung server stopped reading,
    # the write would block and the run would time out instead of reaching EOF.
    stream, p = requests(20)
    assert run(stream, "--fault=hang-after:2") == (p[0] + p[1], EOF_LINE, 0)


def test_short_page_cuts_the_nth_answer_then_exits() -> None:
    stream, p = requests(4)
    assert run(stream, "--fault=short-page:2") == (
        p[0] + p[1][: BLCKSZ // 2], "FATAL:  fault injected: short-page:2\n", 1)


def test_garbage_page_replaces_the_nth_answer_deterministically() -> None:
    stream, p = requests(3)
    first = run(stream, "--fault=garbage-page:2")
    assert first == (p[0] + garbage(2) + p[2], EOF_LINE, 0)
    assert run(stream, "--fault=garbage-page:2") == first
    assert garbage(2) != garbage(3) and len(set(garbage(2))) > 200  # looks random, not zeros


def test_swap_responses_exchanges_n_and_n_plus_1() -> None:
    stream, p = requests(4)
    assert run(stream, "--fault=swap-responses:2") == (p[0] + p[2] + p[1] + p[3], EOF_LINE, 0)


def test_swap_of_the_last_answer_is_written_at_eof() -> None:
    stream, p = requests(2)
    assert run(stream, "--fault=swap-responses:2") == (p[0] + p[1], EOF_LINE, 0)


def test_drop_response_never_writes_the_nth_answer() -> None:
    stream, p = requests(4)
    assert run(stream, "--fault=drop-response:2") == (p[0] + p[2] + p[3], EOF_LINE, 0)


def test_duplicate_response_writes_the_nth_answer_twice() -> None:
    stream, p = requests(3)
    assert run(stream, "--fault=duplicate-response:2") == (p[0] + p[1] + p[1] + p[2], EOF_LINE, 0)


def test_ignore_records_returns_the_base_image() -> None:
    base = random.Random(3).randbytes(BLCKSZ)
    # a well-framed record (xl_tot_len matches) for an unknown rmgr: fatal unless ignored
    record = struct.pack("<IIQBBHI", 24, 0, 0, 0, 250, 0, 0)
    t = tag(0)
    stream = encode_messages([BeginRedoForBlock(t), PushPage(t, base), ApplyRecord(0x10, record),
                              GetPage(t)])
    assert run(stream, "--fault=ignore-records") == (base, EOF_LINE, 0)


def test_ignore_records_still_checks_the_framing() -> None:
    t = tag(0)
    stream = encode_messages([BeginRedoForBlock(t), ApplyRecord(0x10, bytes(24)), GetPage(t)])
    assert run(stream, "--fault=ignore-records") == (
        b"", "FATAL:  mismatch between record (0) and message size (24)\n", 1)


@pytest.mark.parametrize(("spec", "keep"), [("truncate-page", BLCKSZ // 2),
                                            ("truncate-page:100", 100)])
def test_truncate_page_cuts_every_answer(spec: str, keep: int) -> None:
    stream, p = requests(3)
    out, err, rc = run(Ping().encode() + stream, f"--fault={spec}")
    assert (out, err, rc) == (ZERO[:keep] + b"".join(x[:keep] for x in p), EOF_LINE, 0)


def test_corrupt_byte_flips_one_byte_of_each_get_answer_not_pings() -> None:
    stream, p = requests(2)
    out, _, rc = run(Ping().encode() + stream, "--fault=corrupt-byte:100")
    flipped = [x[:100] + bytes([x[100] ^ 0xFF]) + x[101:] for x in p]
    assert (out, rc) == (ZERO + b"".join(flipped), 0)


def test_several_faults_combine() -> None:
    stream, p = requests(3)
    out, _, rc = run(stream, "--fault=corrupt-byte:0", "--fault=duplicate-response:1")
    flipped = [bytes([x[0] ^ 0xFF]) + x[1:] for x in p]
    assert (out, rc) == (flipped[0] * 2 + flipped[1] + flipped[2], 0)


def test_no_lsn_keeps_the_old_pd_lsn_after_redo() -> None:
    from pytest_walredo.pg import xlogrecord as xr

    rng = random.Random(11)
    page = bytearray(BLCKSZ)
    struct.pack_into("<IIHHHHHHI", page, 0, 0, 0x500, 0, 0, 64, 7000, BLCKSZ, 0x2004, 0)
    page[7000:] = rng.randbytes(BLCKSZ - 7000)
    t = tag(0)
    image = xr.ImageRef.from_page(bytes(page), 17)
    rec = xr.make_record(rmid=0, info=0xB0, blocks=[
        xr.make_block(0, (t.rel.spcnode, t.rel.dbnode, t.rel.relnode), t.blknum, image=image)
    ]).encode()
    base = bytearray(BLCKSZ)
    base[:8] = struct.pack("<II", 0, 0x400)
    stream = encode_messages([BeginRedoForBlock(t), PushPage(t, bytes(base)),
                              ApplyRecord(0x9000, rec), GetPage(t)])
    out, err, rc = run(stream, "--fault=no-lsn")
    assert rc == 0, err
    assert out == bytes(base[:8]) + bytes(page[8:])
    out, err, rc = run(stream)  # without the fault pd_lsn is the record's end LSN
    assert (out[:8], rc) == (struct.pack("<II", 0, 0x9000), 0), err


# --------------------------------------------------------------------------------------------
# spec parsing (in-process: no server needed)
# --------------------------------------------------------------------------------------------


def test_parse_builds_the_plan() -> None:
    plan = parse_faults(["crash-after:3", "corrupt-byte:8191", "no-lsn", "truncate-page"])
    assert plan == FaultPlan(crash_after=3, corrupt_byte=8191, no_lsn=True, truncate_page=4096,
                             specs=("crash-after:3", "corrupt-byte:8191", "no-lsn",
                                    "truncate-page"))
    assert parse_faults([]) == FaultPlan()
    assert not parse_faults(["ignore-records"]).shapes_answers


@pytest.mark.parametrize(
    "spec",
    ["bogus", "crash-after", "crash-after:x", "crash-after:-1", "short-page:0", "drop-response:",
     "corrupt-byte:8192", "corrupt-byte", "no-lsn:3", "truncate-page:8192", "garbage-page:1.5"],
)
def test_bad_specs_are_one_line_errors_naming_them(spec: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults([spec])
    assert f"--fault={spec}" in str(info.value) and "\n" not in str(info.value)


def test_a_fault_given_twice_is_an_error() -> None:
    with pytest.raises(FaultSpecError, match="given twice"):
        parse_faults(["drop-response:1", "drop-response:2"])


def test_bad_spec_on_the_command_line_exits_2_naming_it() -> None:
    out, err, rc = run(Ping().encode(), "--fault=hang-after:soon")
    assert (out, rc) == (b"", 2)
    assert err.count("\n") == 1 and "--fault=hang-after:soon" in err
