"""``pytest-walredo corpus build`` and ``corpus check``: results, exit statuses, and bad input as
one line naming the flag or file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_walredo.corpus.default import load_shipped, read_manifest, shipped_corpus
from pytest_walredo.corpus.folder import write_entry
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.triage.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err.strip()


def test_check_the_shipped_corpus_against_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(["corpus", "check", "--shipped", "15"], capsys)
    assert code == 0, out
    assert f"corpus {shipped_corpus(15)}: {read_manifest(15)['entries']} entries" in out
    assert "through reference walredo (PG15, vanilla)" in out
    heap = next(line for line in out.splitlines() if line.startswith("Heap/INSERT "))
    assert heap.split()[1:] == ["2", "0", "0", "0"]
    split = next(line for line in out.splitlines() if line.startswith("Btree/SPLIT_L "))
    assert split.split()[1:] == ["2", "0", "0", "0"]
    gin = next(line for line in out.splitlines() if line.startswith("Gin/INSERT "))
    assert int(gin.split()[1]) > 0 and gin.split()[2:] == ["0", "0", "0"]  # modelled: all matched


def test_check_finds_a_broken_walredo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    for e in [e for e in load_shipped(15) if e.meta.rmgr == "Heap"][:2]:
        write_entry(corpus, e)
    code, out, _err = run(["corpus", "check", str(corpus), "--ref-fault", "no-lsn", "--json"], capsys)
    assert code == 0  # pd_lsn is masked
    code, out, _err = run(["corpus", "check", str(corpus), "--ref-fault", "ignore-records"], capsys)
    assert code == 1 and "differing: " in out


def test_check_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run(["corpus", "check", str(tmp_path / "nope")], capsys)
    assert code == 2 and "not a corpus folder" in one_line(err)
    (tmp_path / "x.json").write_text("{}")
    code, _out, err = run(["corpus", "check", str(tmp_path)], capsys)
    assert code == 2 and f"{tmp_path}/x.walredo: missing" in one_line(err)
    (tmp_path / "x.walredo").write_bytes(b"")
    code, _out, err = run(["corpus", "check", str(tmp_path)], capsys)
    assert code == 2 and f"{tmp_path}/x.json: missing key(s) pg_version" in one_line(err)
    code, _out, err = run(["corpus"], capsys)
    assert code == 2 and "an action is required" in one_line(err)
    code, _out, err = run(["corpus", "check"], capsys)
    assert code == 2 and "give either a corpus folder DIR or --shipped N" in one_line(err)
    code, _out, err = run(["corpus", "check", "--shipped", "13"], capsys)
    assert code == 2 and "--shipped" in one_line(err)


def test_build_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run(["corpus", "build", str(tmp_path / "o"), "--pg-bin", str(tmp_path / "nobin")], capsys)
    assert code == 2 and f"--pg-bin {tmp_path / 'nobin'}: no such directory" in one_line(err)
    code, _out, err = run(["corpus", "build", str(tmp_path / "o"), "--workload", "nosuch"], capsys)
    assert code == 2 and "--workload nosuch: not a built-in workload" in one_line(err)
    code, _out, err = run(["corpus", "build", str(tmp_path / "o"), "--workload", "regress"], capsys)
    assert code == 2 and "regression SQL is not on this machine" in one_line(err)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    code, _out, err = run(["corpus", "build", str(tmp_path / "full")], capsys)
    assert code == 2 and "exists and is not an empty directory" in one_line(err)
    code, _out, err = run(["corpus", "build", str(tmp_path / "o"), "--per-kind", "0"], capsys)
    assert code == 2 and "--per-kind 0" in one_line(err)
    code, _out, err = run(["corpus", "build", str(tmp_path / "o"), "--wal-compression", "gzip"], capsys)
    assert code == 2 and "--wal-compression" in one_line(err)


@pytest.mark.needs_postgres
@pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent")
def test_build_a_custom_workload(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sql = tmp_path / "mine.sql"
    sql.write_text("CREATE TABLE mine (a int);\nINSERT INTO mine SELECT generate_series(1, 500);\n")
    code, out, err = run(["corpus", "build", str(tmp_path / "o"), "--workload", str(sql), "--per-kind", "1"],
                         capsys)
    assert code == 0, err
    assert "workloads: mine" in out and "Heap/INSERT " in out
    names = [p.name for p in (tmp_path / "o").iterdir()]
    assert any(n.startswith("Heap.INSERT.") and n.endswith(".walredo") for n in names)
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT * FROM no_such_table;\n")
    code, _out, err = run(["corpus", "build", str(tmp_path / "o2"), "--workload", str(bad)], capsys)
    last = err.splitlines()[-1]  # after the progress lines, the error: one line
    assert code == 2 and last.startswith("pytest-walredo corpus: workload bad (") and "no_such_table" in last
