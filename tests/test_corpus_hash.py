"""Issue 14's bar for hash: the reference walredo (PostgreSQL 15, vanilla) reproduces every hash
request cut from fresh real PostgreSQL 15 WAL of the built-in ``hash`` workload.

One corpus is built (with ``wal_compression = lz4``, so the SPLIT_PAGE images the model applies
are compressed ones; the other settings and servers are checked with ``corpus check``, see
docs/WAL_MODEL.md) and shared by the tests of this module. No entry may be ``unsupported``:
the model implements every hash record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_corpus_heap_btree import replay_all_matched

from pytest_walredo.corpus.builder import BuildOptions, build_corpus
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.pg.rmgr.ids import RM_HASH_ID
from pytest_walredo.pg.rmgr.names import record_name
from pytest_walredo.pg.xlogrecord import decode_record

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent"),
]

# Hash records the workload writes on PostgreSQL 15 that carry a consistency image to check.
# SPLIT_PAGE is not among them: its only block is an image that redo applies, so it cannot be
# an entry's last record; it is the first record of later entries' chains instead.
KINDS = {f"Hash/{k}" for k in ("INIT_META_PAGE", "INIT_BITMAP_PAGE", "INSERT", "ADD_OVFL_PAGE",
                               "SPLIT_ALLOCATE_PAGE", "SPLIT_COMPLETE", "MOVE_PAGE_CONTENTS", "SQUEEZE_PAGE",
                               "DELETE", "SPLIT_CLEANUP", "UPDATE_META_PAGE", "VACUUM_ONE_PAGE")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Entry]]]:
    out = tmp_path_factory.mktemp("hash") / "corpus"
    build_corpus(BuildOptions(out, workloads=("hash",), per_kind=8, wal_compression="lz4"))
    yield out.parent, load_corpus(out)


def test_the_workload_reaches_every_hash_record(corpus: tuple[Path, list[Entry]]) -> None:
    _tmp, entries = corpus
    kinds = Counter(e.meta.kind for e in entries)
    assert KINDS <= set(kinds), sorted(KINDS - set(kinds))
    in_chains: Counter[str | None] = Counter()
    for e in entries:
        for _lsn, raw in e.decoded_request().records:
            rec = decode_record(raw, e.meta.pg_version)
            if rec.rmid == RM_HASH_ID:
                in_chains[record_name(rec.rmid, rec.info, e.meta.pg_version)] += 1
    assert in_chains["SPLIT_PAGE"] > 0, in_chains


def test_reference_reproduces_every_hash_entry(corpus: tuple[Path, list[Entry]]) -> None:
    tmp, entries = corpus
    replay_all_matched(entries, tmp)
