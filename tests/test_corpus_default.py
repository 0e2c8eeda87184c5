"""The corpus shipped with the package: current (its manifest matches the builder version, the
workload SQL and its own entries), valid, small, real PostgreSQL 15 WAL of every built-in
workload, and reproduced by the redo model for every kind the model implements."""

from __future__ import annotations

import json
from collections import Counter

from pytest_walredo.corpus.builder import BUILTIN_WORKLOADS
from pytest_walredo.corpus.default import (
    BUILDER_VERSION,
    default_corpus_dir,
    manifest_path,
    read_manifest,
    staleness,
    workloads_hash,
)
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.judge import model_answer, model_unsupported
from pytest_walredo.pg.mask import masked_equal

REBUILD = "rebuild it: python scripts/build_default_corpus.py"


def test_the_shipped_corpus_is_current() -> None:
    assert staleness(15) == [], REBUILD
    doc = read_manifest(15)
    assert doc["builder_version"] == BUILDER_VERSION and doc["workloads_sha256"] == workloads_hash()
    assert doc["workloads"] == list(BUILTIN_WORKLOADS) and "15." in doc["server"]


def test_staleness_notices_a_changed_manifest(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest_walredo.corpus.default as default

    doc = read_manifest(15)
    doc["workloads_sha256"] = "0" * 64
    doc["kinds"] = {**doc["kinds"], "Heap/INSERT": 99}
    (tmp_path / "pg15").symlink_to(default_corpus_dir(15))
    (tmp_path / "pg15.manifest.json").write_text(json.dumps(doc))
    monkeypatch.setattr(default, "_data", lambda: tmp_path)
    why = staleness(15)
    assert any("workload SQL files changed" in w for w in why) and any("entries per kind" in w for w in why)
    assert staleness(14) == [f"{tmp_path / 'pg14.manifest.json'} is missing"]


def test_the_shipped_corpus_is_small_and_real() -> None:
    entries = load_corpus(default_corpus_dir(15))
    size = sum(p.stat().st_size for p in default_corpus_dir(15).iterdir()) + manifest_path(15).stat().st_size
    assert size < 5_000_000
    rmgrs = Counter(e.meta.rmgr for e in entries)
    assert set(rmgrs) == {"Heap", "Heap2", "Btree", "Hash", "Gin", "Gist", "SPGist", "BRIN", "Sequence", "Generic"}
    assert all(e.expected is not None and e.meta.pg_version == 15 and "workload" in e.meta.source for e in entries)


def test_the_model_reproduces_every_shipped_entry_it_implements() -> None:
    checked = 0
    for e in load_corpus(default_corpus_dir(15)):
        if model_unsupported(e) is None:
            assert e.expected is not None
            assert masked_equal(e.expected, model_answer(e), e.meta.mask, e.meta.blk), e.name
            checked += 1
    assert checked >= 25
