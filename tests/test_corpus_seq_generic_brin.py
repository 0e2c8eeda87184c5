"""Issue 14's bar for BRIN, Sequence and Generic: the reference walredo (PostgreSQL 15, vanilla)
reproduces every request of these rmgrs cut from fresh real PostgreSQL 15 WAL, with and without
compressed page images.

One corpus of the built-in ``brin``, ``sequence`` and ``generic`` workloads is built per
``wal_compression`` setting (a module fixture shared by the tests), and every entry goes
through the reference walredo process: every one must match under its mask, and none may be
``unsupported``. The workloads reach every BRIN record (UPDATE and UPDATE+INIT too), sequence
LOG and bloom's generic deltas.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from test_corpus_heap_btree import replay_all_matched

from pytest_walredo.corpus.builder import BuildOptions, build_corpus
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.pg.xlogrecord import decode_record

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent"),
]

KINDS = {"BRIN/CREATE_INDEX", "BRIN/INSERT", "BRIN/INSERT+INIT", "BRIN/UPDATE", "BRIN/UPDATE+INIT",
         "BRIN/SAMEPAGE_UPDATE", "BRIN/REVMAP_EXTEND", "BRIN/DESUMMARIZE", "Sequence/LOG", "Generic/Generic"}


@pytest.fixture(scope="module", params=["off", "lz4"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    out = tmp_path_factory.mktemp(f"corpus-{request.param}-")  # corpus-METHOD-N
    build_corpus(BuildOptions(out, workloads=("brin", "sequence", "generic"), per_kind=6,
                              wal_compression=request.param))
    return out, load_corpus(out)


def _image_methods(entries: list[Entry]) -> Counter[tuple[str, str]]:
    """(rmgr, compression method) of every page image in the requests of these rmgrs' entries."""
    methods: Counter[tuple[str, str]] = Counter()
    for e in entries:
        rm = e.meta.kind.split("/")[0]
        if rm in ("BRIN", "Sequence", "Generic"):
            for _lsn, raw in e.decoded_request().records:
                methods.update((rm, b.image.compression.value)
                               for b in decode_record(raw, e.meta.pg_version).blocks if b.image is not None)
    return methods


def test_the_workloads_reach_every_kind(corpus: tuple[Path, list[Entry]]) -> None:
    kinds = Counter(e.meta.kind for e in corpus[1])
    assert KINDS <= set(kinds), sorted(KINDS - set(kinds))


def test_reference_reproduces_every_entry(corpus: tuple[Path, list[Entry]], tmp_path: Path) -> None:
    entries = corpus[1]
    method = corpus[0].name.split("-")[1]
    methods = _image_methods(entries)
    for rm in ("BRIN", "Sequence", "Generic"):  # the images these requests start from are compressed
        assert methods[(rm, method if method != "off" else "none")] > 0, methods
    replay_all_matched(entries, tmp_path)
