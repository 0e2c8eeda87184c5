"""The triage tools on hostile input: devices, FIFOs, huge files are refused in one sentence
before anything is read; a file decoded under the wrong PostgreSQL version says which one
decodes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_walredo.protocol import RedoRequest, RelTag
from pytest_walredo.triage.cli import main
from pytest_walredo.triage.inspect import MAX_INPUT_BYTES

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "a.page"
    path.write_bytes(bytes(8192))
    return path


def test_diff_against_dev_zero_is_refused(capsys, page) -> None:
    code, _, err = run(capsys, "diff", page, "/dev/zero")
    one_line_error(code, err, "page B /dev/zero", "is a character device, not a regular file")


@pytest.mark.parametrize("command", ["inspect", "replay", "shrink"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(command: str, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.walredo"
    os.mkfifo(fifo)
    argv = [command, str(fifo)] + (["--until", "crash"] if command == "shrink" else [])
    # a subprocess with a timeout: a tool that opened the FIFO for reading would wait forever
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "pytest_walredo.triage.cli", *argv], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "pipe.walredo: is a FIFO, not a regular file" in proc.stderr


def test_a_file_above_the_limit_is_refused_before_reading(capsys, tmp_path: Path, page) -> None:
    big = tmp_path / "big.walredo"
    with big.open("wb") as f:  # sparse: no disk space used
        f.truncate(MAX_INPUT_BYTES + 1)
    code, _, err = run(capsys, "inspect", big)
    one_line_error(code, err, "big.walredo", f"is {MAX_INPUT_BYTES + 1} bytes, more than the 256 MiB")
    code, _, err = run(capsys, "diff", page, big)
    one_line_error(code, err, "page B", f"big.walredo is {MAX_INPUT_BYTES + 1} bytes; a page file is exactly 8192")


def test_a_directory_as_a_page(capsys, tmp_path: Path, page) -> None:
    code, _, err = run(capsys, "diff", page, tmp_path)
    one_line_error(code, err, "page B", "is a directory, not a file")


def test_an_unreadable_file(capsys, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "secret.walredo"
    path.write_bytes(RedoRequest(RelTag(1663, 5, 16384), 0, None, ()).encode())
    path.chmod(0)
    code, _, err = run(capsys, "inspect", path)
    one_line_error(code, err, "secret.walredo", "permission denied")


@pytest.mark.needs_vectors
def test_a_record_of_another_version_names_the_version_that_decodes_it(capsys, vectors_dir: Path) -> None:
    short = vectors_dir / "short_v14.walredo"  # PostgreSQL 14 WAL; the tools default to 17
    code, out, _ = run(capsys, "inspect", short)
    assert code == 0
    assert ("WAL record does not decode as PostgreSQL 17 WAL: XLogRecord block id at byte offset 51: "
            "out-of-order block id 0 after block id 0; it decodes as PostgreSQL 14 WAL (--pg-version 14)") in out
    code, out, _ = run(capsys, "inspect", short, "--json")
    assert json.loads(out)["messages"][1]["record"]["decodes_as"] == [14]
    code, out, _ = run(capsys, "replay", short)
    assert "note: record #1 does not decode as PostgreSQL 17 WAL" in out
    assert "it decodes as PostgreSQL 14 WAL (--pg-version 14)" in out
    code, out, _ = run(capsys, "replay", short, "--pg-version", "14")
    assert code == 0 and "note:" not in out
    code, out, _ = run(capsys, "shrink", short, "--until", "differs")
    assert code == 1 and "nothing to shrink" in out
    assert out.startswith("note: record #1 does not decode as PostgreSQL 17 WAL")
