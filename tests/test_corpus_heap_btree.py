"""Issue 11's bar: the reference walredo (PostgreSQL 15, vanilla) reproduces every heap, heap2 and
btree request cut from fresh real PostgreSQL 15 WAL, with and without compressed page images.

A corpus of the built-in ``heap`` and ``btree`` workloads is built from a throwaway server (the
expected pages are the server's own consistency images), once per ``wal_compression`` setting,
and every entry goes through the reference walredo process: every one must match under its
mask. None may be ``unsupported``: the model implements every record of these rmgrs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from test_corpus_build import EXPECTED_KINDS

from pytest_walredo.corpus.builder import BuildOptions, build_corpus
from pytest_walredo.corpus.folder import Entry, load_corpus
from pytest_walredo.corpus.judge import Verdict, kind_table
from pytest_walredo.corpus.replay import reference_for, replay_entries
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent"),
]

# What the two workloads reach on PostgreSQL 15 every time (records with a page to check).
KINDS = {k for k in EXPECTED_KINDS if k.startswith(("Heap", "Btree"))}


@pytest.mark.parametrize("compression", ["off", "pglz", "lz4", "zstd"])
def test_reference_reproduces_every_heap_and_btree_entry(tmp_path: Path, compression: str) -> None:
    out = tmp_path / "corpus"
    build_corpus(BuildOptions(out, workloads=("heap", "btree"), per_kind=4, wal_compression=compression))
    entries = load_corpus(out)
    kinds = Counter(e.meta.kind for e in entries)
    assert KINDS <= set(kinds), sorted(KINDS - set(kinds))
    replay_all_matched(entries, tmp_path)


def replay_all_matched(entries: list[Entry], tmp_path: Path) -> None:
    """Every entry through the reference walredo process: all must match under their masks
    (prints the per-kind table; names the first 10 that did not)."""
    results = replay_entries(entries, reference_for(entries, tmp_path), timeout=30)
    table = kind_table(results)
    print(table)
    wrong = [r for r in results if r.verdict is not Verdict.MATCHED]
    assert not wrong, f"{len(wrong)} of {len(results)} entries not matched:\n{table}" + "\n".join(
        f"{r.name}: {r.verdict.value} {r.detail}" for r in wrong[:10])
