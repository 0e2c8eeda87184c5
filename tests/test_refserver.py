"""The reference walredo server, driven as a subprocess over raw pipes.

Each test checks one behaviour from ``shared/walredo-behaviour.md`` (or a documented difference):
answers, errors and their exit codes, EOF, the seccomp sandbox, and redo of full-page images.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

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

ZERO = bytes(BLCKSZ)
REL = RelTag(1663, 13010, 16384)
TAG = BufferTag(REL, 7)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_walredo.refserver", *args]


def run(stream: bytes, *args: str, wal_redo: bool = True) -> tuple[bytes, str, int]:
    """Feed ``stream`` then EOF; return (stdout, stderr, exit status)."""
    argv = command("--wal-redo", *args) if wal_redo else command(*args)
    proc = subprocess.run(argv, input=stream, capture_output=True, timeout=120, cwd="/")
    return proc.stdout, proc.stderr.decode("utf-8", "replace"), proc.returncode


def frame(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack(">I", len(payload) + 4) + payload


def echo(tag: BufferTag, page: bytes) -> bytes:
    return encode_messages([BeginRedoForBlock(tag), PushPage(tag, page), GetPage(tag)])


EOF_LINE = "LOG:  received EOF on stdin, shutting down\n"

# --------------------------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------------------------


def test_ping_answers_zero_page_and_eof_exits_cleanly() -> None:
    out, err, rc = run(Ping().encode() * 3)
    assert out == ZERO * 3
    assert err == EOF_LINE  # nothing at start-up, one LOG line at EOF
    assert rc == 0


def test_empty_input_is_a_clean_shutdown_with_no_output() -> None:
    out, err, rc = run(b"")
    assert (out, err, rc) == (b"", EOF_LINE, 0)


def test_push_then_get_echoes_random_pages_over_several_cycles() -> None:
    rng = random.Random(1234)
    pages = [rng.randbytes(BLCKSZ) for _ in range(6)]
    tags = [BufferTag(RelTag(rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**32),
                             rng.randrange(4)), rng.randrange(2**32)) for _ in pages]
    stream = b"".join(echo(t, p) for t, p in zip(tags, pages, strict=True))
    out, err, rc = run(stream)
    assert rc == 0, err
    assert out == b"".join(pages)


def test_get_of_an_uninitialized_block_is_all_zeros() -> None:
    out, _, rc = run(encode_messages([BeginRedoForBlock(TAG), GetPage(TAG)]))
    assert (out, rc) == (ZERO, 0)


def test_a_get_forgets_the_page_so_the_next_cycle_starts_empty() -> None:
    page = os.urandom(BLCKSZ)
    stream = echo(TAG, page) + encode_messages([BeginRedoForBlock(TAG), GetPage(TAG)])
    out, _, rc = run(stream)
    assert (out, rc) == (page + ZERO, 0)


def test_only_get_and_ping_produce_output() -> None:
    page = os.urandom(BLCKSZ)
    stream = encode_messages([BeginRedoForBlock(TAG), PushPage(TAG, page), BeginRedoForBlock(TAG),
                              PushPage(TAG, page)])
    out, err, rc = run(stream)
    assert (out, err, rc) == (b"", EOF_LINE, 0)
    out, _, rc = run(stream + GetPage(TAG).encode() + Ping().encode())
    assert (out, rc) == (page + ZERO, 0)


def test_tenant_shard_id_pg_version_and_flavour_are_accepted() -> None:
    out, err, rc = run(Ping().encode(), "--tenant-shard-id", "abc-0001", "--pg-version", "14",
                       "--flavour", "vanilla", "--disable-seccomp")
    assert (out, err, rc) == (ZERO, EOF_LINE, 0)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "wal_redo", "needle"),
    [
        ((), False, "--wal-redo must be the first argument"),
        (("--disable-seccomp", "--wal-redo"), False, "--wal-redo must be the first argument"),
        (("--pg-version", "13"), True, "--pg-version '13'"),
        (("--flavour", "oracle"), True, "--flavour 'oracle'"),
        (("--bogus",), True, "unknown argument '--bogus'"),
        (("--pg-version",), True, "--pg-version needs a value"),
        (("--fault=explode:1",), True, "--fault=explode:1"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv: tuple[str, ...], wal_redo: bool,
                                                needle: str) -> None:
    out, err, rc = run(Ping().encode(), *argv, wal_redo=wal_redo)
    assert rc == 2
    assert out == b""
    assert err.count("\n") == 1 and needle in err, err


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

B_PAYLOAD = TAG.encode()


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (frame(b"Z", b""), "invalid frontend message type 90"),
        (frame(b"\x80", b""), "invalid frontend message type -128"),  # signed char, as on x86_64
        (b"B" + struct.pack(">I", 3), "invalid message length"),
        (b"B" + struct.pack(">I", 1 << 31), "invalid message length"),
        (b"B\x00\x00", "unexpected EOF"),
        (b"B" + struct.pack(">I", 21) + B_PAYLOAD[:5], "unexpected EOF"),
        (frame(b"B", B_PAYLOAD[:10]), "insufficient data left in message"),
        (frame(b"G", B_PAYLOAD[:16]), "insufficient data left in message"),
        (frame(b"P", B_PAYLOAD + bytes(100)), "insufficient data left in message"),
        (frame(b"A", bytes(4)), "insufficient data left in message"),
        (frame(b"A", bytes(8) + bytes(10)), "insufficient data left in message"),
        (frame(b"A", bytes(8) + bytes(24)), "mismatch between record (0) and message size (24)"),
        (frame(b"A", bytes(8) + struct.pack("<I", 0xFFFFFFFF) + bytes(30)),
         "mismatch between record (-1) and message size (34)"),
        (frame(b"B", B_PAYLOAD + b"x"), "invalid message format"),  # documented difference
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_errors_print_one_fatal_line_and_exit_1(stream: bytes, message: str) -> None:
    out, err, rc = run(stream)
    assert (out, err, rc) == (b"", f"FATAL:  {message}\n", 1)


def test_tag_0xff_is_taken_as_end_of_input_like_the_real_process() -> None:
    out, err, rc = run(Ping().encode() + frame(b"\xff", b"") + Ping().encode())
    assert (out, err, rc) == (ZERO, EOF_LINE, 0)


def test_answers_before_an_error_still_arrive() -> None:
    page = os.urandom(BLCKSZ)
    stream = Ping().encode() + echo(TAG, page) + frame(b"Z", b"") + Ping().encode()
    out, err, rc = run(stream)
    assert out == ZERO + page
    assert (err, rc) == ("FATAL:  invalid frontend message type 90\n", 1)


def test_answers_before_an_error_arrive_even_when_sent_in_separate_writes() -> None:
    proc = subprocess.Popen(command("--wal-redo"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(Ping().encode())
    proc.stdin.flush()
    first = proc.stdout.read(BLCKSZ)
    out, err = proc.communicate(b"B\x00\x00\x00\x02", timeout=120)
    assert first == ZERO and out == b""
    assert (err.decode(), proc.returncode) == ("FATAL:  invalid message length\n", 1)


# --------------------------------------------------------------------------------------------
# sandbox
# --------------------------------------------------------------------------------------------


def _status_field(pid: int, name: str) -> str | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def _wait_for_seccomp(proc: subprocess.Popen[bytes], want: str) -> str | None:
    """Poll /proc until the field reads ``want`` or the process has had 60 s to start."""
    deadline = time.monotonic() + 60
    seen = None
    while time.monotonic() < deadline and proc.poll() is None:
        seen = _status_field(proc.pid, "Seccomp")
        if seen == want:
            break
        time.sleep(0.01)
    return seen


def test_seccomp_filter_is_on_before_the_first_request() -> None:
    proc = subprocess.Popen(command("--wal-redo"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # nothing has been written to stdin yet
        assert _wait_for_seccomp(proc, "2") == "2"
        assert _status_field(proc.pid, "NoNewPrivs") == "1"
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{proc.pid}/fd")) == [0, 1, 2]
        out, err = proc.communicate(Ping().encode(), timeout=120)
        assert (out, err.decode(), proc.returncode) == (ZERO, EOF_LINE, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_disable_seccomp_leaves_the_process_unfiltered() -> None:
    proc = subprocess.Popen(command("--wal-redo", "--disable-seccomp"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(Ping().encode())
        proc.stdin.flush()
        assert proc.stdout.read(BLCKSZ) == ZERO  # past start-up, inside the request loop
        assert _status_field(proc.pid, "Seccomp") == "0"
        proc.communicate(b"", timeout=120)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("args", "outcome"), [((), b"probe-open: errno 1"),
                                                (("--disable-seccomp",), b"probe-open: ok")])
def test_sandbox_forbids_opening_files(args: tuple[str, ...], outcome: bytes) -> None:
    out, err, rc = run(Ping().encode(), "--fault=probe-open", *args)
    assert rc == 0, err
    assert out == outcome.ljust(BLCKSZ, b"\0")


def test_works_from_any_directory_and_writes_no_files(tmp_path: Path) -> None:
    proc = subprocess.run(command("--wal-redo"), input=Ping().encode(), capture_output=True,
                          cwd=tmp_path, timeout=120)
    assert (proc.stdout, proc.returncode) == (ZERO, 0)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# redo (needs the PostgreSQL model)
# --------------------------------------------------------------------------------------------


def _heap_page(rng: random.Random, lsn: int = 0x1_0000_0000) -> bytes:
    """A page with a standard header (pd_lower 64, pd_upper 7000) and random tuple bytes."""
    page = bytearray(BLCKSZ)
    struct.pack_into("<IIHHHHHHI", page, 0, lsn >> 32, lsn & 0xFFFFFFFF, 0, 0, 64, 7000, BLCKSZ,
                     0x2004, 0)
    page[24:64] = rng.randbytes(40)
    page[7000:] = rng.randbytes(BLCKSZ - 7000)
    return bytes(page)


def _fpi_record(page: bytes, pg_version: int, *, hole: bool, apply: bool = True,
                tag: BufferTag = TAG) -> bytes:
    from pytest_walredo.pg import xlogrecord as xr

    image = xr.ImageRef.from_page(page, pg_version, hole=hole, apply=apply)
    rel = (tag.rel.spcnode, tag.rel.dbnode, tag.rel.relnode)
    block = xr.make_block(0, rel, tag.blknum, forknum=tag.rel.forknum, image=image)
    return xr.make_record(rmid=0, info=0xB0, blocks=[block]).encode()


def _redo(records: list[tuple[int, bytes]], *args: str, base: bytes | None = None,
          tag: BufferTag = TAG) -> tuple[bytes, str, int]:
    msgs: list = [BeginRedoForBlock(tag)]
    if base is not None:
        msgs.append(PushPage(tag, base))
    msgs += [ApplyRecord(lsn, rec) for lsn, rec in records]
    msgs.append(GetPage(tag))
    return run(encode_messages(msgs), *args)


@pytest.mark.parametrize("pg_version", [14, 15, 16, 17])
@pytest.mark.parametrize("hole", [True, False])
def test_full_page_image_is_restored_with_pd_lsn_set(pg_version: int, hole: bool) -> None:
    page = _heap_page(random.Random(pg_version * 2 + hole))
    end_lsn = 0x2_0000_1234  # not 8-aligned: pd_lsn takes it exactly
    out, err, rc = _redo([(end_lsn, _fpi_record(page, pg_version, hole=hole))],
                         "--pg-version", str(pg_version))
    assert rc == 0, err
    assert out == struct.pack("<II", end_lsn >> 32, end_lsn & 0xFFFFFFFF) + page[8:]


def test_full_page_image_for_another_block_leaves_ours_alone() -> None:
    page = _heap_page(random.Random(5))
    other = BufferTag(REL, TAG.blknum + 1)
    base = os.urandom(BLCKSZ)
    out, err, rc = _redo([(0x100, _fpi_record(page, 17, hole=True, tag=other))], base=base)
    assert (out, rc) == (base, 0), err


def test_redo_error_prints_fatal_and_context_and_no_answer() -> None:
    page = _heap_page(random.Random(6))
    rec = _fpi_record(page, 17, hole=True, apply=False)
    stream = Ping().encode() + encode_messages(
        [BeginRedoForBlock(TAG), ApplyRecord(0x1000, rec), GetPage(TAG)])
    out, err, rc = run(stream)
    assert out == ZERO  # the ping before the failing request
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("FATAL:  unexpected XLogReadBufferForRedo result")
    assert lines[1].startswith("CONTEXT:  WAL redo at ")


def test_unknown_resource_manager_is_a_clean_fatal_naming_it() -> None:
    from pytest_walredo.pg import xlogrecord as xr

    rec = xr.make_record(rmid=77, info=0, main_data=b"xyz").encode()
    out, err, rc = _redo([(0x1000, rec)])
    assert (out, rc) == (b"", 1)
    assert err.startswith("FATAL:  ") and "77" in err.splitlines()[0], err


@pytest.mark.needs_vectors
def test_short_v14_vector_gives_the_recorded_page(vectors_dir: Path) -> None:
    stream = (vectors_dir / "short_v14.walredo").read_bytes()
    expected = (vectors_dir / "short_v14_redo.page").read_bytes()
    out, err, rc = run(stream, "--pg-version", "14", "--flavour", "neon")
    assert rc == 0, err
    assert out == expected


@pytest.mark.needs_vectors
def test_bench_medium_vector_builds_a_page_of_226_tuples(vectors_dir: Path) -> None:
    stream = (vectors_dir / "bench_medium_v14.walredo").read_bytes()
    out, err, rc = run(stream, "--pg-version", "14", "--flavour", "neon")
    assert rc == 0, err
    assert len(out) == BLCKSZ
    pd_lower = struct.unpack_from("<H", out, 12)[0]
    assert (pd_lower - 24) // 4 == 226


@pytest.mark.needs_vectors
def test_pipelined_vectors_and_pings_answer_in_order(vectors_dir: Path) -> None:
    # many requests in one write: the server batches their answers, order must hold
    short = (vectors_dir / "short_v14.walredo").read_bytes()
    expected = (vectors_dir / "short_v14_redo.page").read_bytes()
    page = os.urandom(BLCKSZ)
    stream = (short + Ping().encode() + echo(TAG, page)) * 20
    out, err, rc = run(stream, "--pg-version", "14", "--flavour", "neon")
    assert rc == 0, err
    assert out == (expected + ZERO + page) * 20


# --------------------------------------------------------------------------------------------
# error mapping from the model, in-process with a stand-in model
# --------------------------------------------------------------------------------------------


class _StandInRedoError(Exception):
    def __init__(self, message: str, context: str | None) -> None:
        super().__init__(message)
        self.context = context


def _serve_in_process(stream: bytes, redo) -> tuple[bytes, str, int]:  # type: ignore[no-untyped-def]
    """Run RefServer.serve() on pipes with ``redo`` as the model (stream and answers < 64 KiB)."""
    from pytest_walredo.refserver.server import Options, RefServer

    fds = [os.pipe() for _ in range(3)]
    (r_in, w_in), (r_out, w_out), (r_err, w_err) = fds
    os.write(w_in, stream)
    os.close(w_in)
    server = RefServer(Options(seccomp=False), rfd=r_in, wfd=w_out, efd=w_err)
    server._redo = redo
    server._redo_error = _StandInRedoError
    status = server.serve()
    for fd in (r_in, w_out, w_err):
        os.close(fd)
    out, err = os.read(r_out, 1 << 16), os.read(r_err, 1 << 16)
    os.close(r_out)
    os.close(r_err)
    return out, err.decode(), status


def _one_record_stream() -> bytes:
    record = struct.pack("<IIQBBHI", 24, 0, 0, 0, 0, 0, 0)
    return Ping().encode() + encode_messages(
        [BeginRedoForBlock(TAG), ApplyRecord(0x2_0000_0010, record), GetPage(TAG)])


def test_model_error_becomes_fatal_with_context_line() -> None:
    def redo(page, **kw):  # type: ignore[no-untyped-def]
        raise _StandInRedoError("invalid xl_info", "WAL redo at 2/10 for Heap/INSERT: off 1")

    out, err, status = _serve_in_process(_one_record_stream(), redo)
    assert (out, status) == (ZERO, 1)
    assert err == "FATAL:  invalid xl_info\nCONTEXT:  WAL redo at 2/10 for Heap/INSERT: off 1\n"


def test_model_bug_is_a_fatal_naming_the_exception_and_line() -> None:
    def redo(page, **kw):  # type: ignore[no-untyped-def]
        return {}["missing"]

    out, err, status = _serve_in_process(_one_record_stream(), redo)
    assert (out, status) == (ZERO, 1)
    assert err.startswith("FATAL:  reference redo model failed: KeyError: 'missing' (at ")
    assert "test_refserver.py" in err and err.count("\n") == 1


def test_model_gets_the_b_block_and_the_records_lsn() -> None:
    seen: dict = {}

    def redo(page, **kw):  # type: ignore[no-untyped-def]
        seen.update(kw, page=page)
        return b"\x07" * BLCKSZ

    out, err, status = _serve_in_process(_one_record_stream(), redo)
    assert (out, err, status) == (ZERO + b"\x07" * BLCKSZ, EOF_LINE, 0)
    assert seen["page"] is None
    assert (seen["spcnode"], seen["dbnode"], seen["relnode"], seen["forknum"], seen["blkno"]) == (
        REL.spcnode, REL.dbnode, REL.relnode, REL.forknum, TAG.blknum)
    assert seen["end_lsn"] == 0x2_0000_0010 and seen["pg_version"] == 17


def test_a_model_that_cannot_load_is_a_fatal_at_the_first_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_walredo.refserver import server as server_module
    from pytest_walredo.refserver.server import Options, RefServer

    monkeypatch.setitem(sys.modules, "pytest_walredo.pg.redo", None)  # import now fails
    monkeypatch.setattr(server_module, "_loaded", None)  # as in a fresh process
    monkeypatch.setattr(server_module, "_load_error", None)  # and forgotten after the test
    server = RefServer(Options(seccomp=False))
    server.preload()  # keeps the failure for later instead of dying at start-up
    fds = [os.pipe() for _ in range(3)]
    (r_in, w_in), (r_out, w_out), (r_err, w_err) = fds
    os.write(w_in, _one_record_stream())
    os.close(w_in)
    server.rfd, server.wfd, server.efd = r_in, w_out, w_err
    assert server.serve() == 1
    for fd in (r_in, w_out, w_err):
        os.close(fd)
    assert os.read(r_out, 1 << 16) == ZERO  # the ping before the record was answered
    err = os.read(r_err, 1 << 16).decode()
    assert err.startswith("FATAL:  reference redo model (pytest_walredo.pg.redo) cannot be loaded:")
    assert err.count("\n") == 1
    os.close(r_out)
    os.close(r_err)
