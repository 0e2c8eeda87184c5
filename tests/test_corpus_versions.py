"""The corpus builder on real PostgreSQL 14, 16 and 17 servers (fetched by
scripts/fetch_pg_servers.sh into .tools/pg/NN/bin, or named by WALREDO_PGNN_BIN; skipped with
the reason when absent): the WAL of each version decodes, its records are named as that
version's pg_waldump names them (where the server ships pg_waldump), and the redo model and the
reference walredo reproduce every entry of the kinds the model implements."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from test_corpus_build import check_names_against_pg_waldump

from pytest_walredo.corpus.builder import BuildOptions, build_corpus
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.judge import Verdict, model_answer, model_unsupported
from pytest_walredo.corpus.replay import reference_for, replay_entries
from pytest_walredo.pg.mask import masked_equal

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    14: {"Heap/INSERT", "Heap/HOT_UPDATE", "Heap2/PRUNE", "Heap2/VACUUM", "Heap2/FREEZE_PAGE", "Heap2/VISIBLE",
         "Btree/SPLIT_L", "Btree/DEDUP", "Sequence/LOG"},
    16: {"Heap/INSERT", "Heap/HOT_UPDATE", "Heap2/PRUNE", "Heap2/VACUUM", "Heap2/FREEZE_PAGE", "Heap2/VISIBLE",
         "Btree/SPLIT_L", "Btree/DEDUP", "Sequence/LOG"},
    17: {"Heap/INSERT", "Heap/HOT_UPDATE", "Heap2/PRUNE_ON_ACCESS", "Heap2/PRUNE_VACUUM_SCAN",
         "Heap2/PRUNE_VACUUM_CLEANUP", "Heap2/VISIBLE", "Btree/SPLIT_L", "Btree/DEDUP", "Sequence/LOG"},
}


def server_bin(version: int) -> Path:
    env = os.environ.get(f"WALREDO_PG{version}_BIN")
    path = Path(env) if env else ROOT / ".tools" / "pg" / str(version) / "bin"
    if not (path / "postgres").exists():
        pytest.skip(f"no PostgreSQL {version} server at {path} (run scripts/fetch_pg_servers.sh)")
    return path


@pytest.mark.needs_postgres
@pytest.mark.parametrize("version", [14, 16, 17])
def test_a_corpus_from_a_real_server_of_each_version(version: int, tmp_path: Path) -> None:
    pg_bin = server_bin(version)
    report = build_corpus(BuildOptions(tmp_path / "c", pg_bin, ("heap", "btree", "sequence"), per_kind=1,
                                       max_records=2, keep_server=True))
    try:
        assert report.pg_version == version
        if (pg_bin / "pg_waldump").exists():
            check_names_against_pg_waldump(report, pg_bin / "pg_waldump", version)
    finally:
        assert report.wal_dir is not None
        shutil.rmtree(report.wal_dir.parent.parent, ignore_errors=True)
    entries = load_corpus(tmp_path / "c")
    kinds = Counter(e.meta.kind for e in entries)
    assert EXPECTED[version] <= set(kinds), sorted(EXPECTED[version] - set(kinds))
    for e in entries:
        assert e.meta.pg_version == version and e.expected is not None
        if model_unsupported(e) is None:
            assert masked_equal(e.expected, model_answer(e), e.meta.mask, e.meta.blk), e.name
    results = replay_entries(entries, reference_for(entries, tmp_path), timeout=30)
    for e, r in zip(entries, results, strict=True):
        assert r.verdict is (Verdict.UNSUPPORTED if model_unsupported(e) else Verdict.MATCHED), (e.name, r)
    assert sum(r.verdict is Verdict.MATCHED for r in results) >= 10
