"""The corpora shipped with the package: current (each manifest matches the builder version, the
workload SQL and its own entries), valid, small (tar.xz archives read in memory), real WAL of
every built-in workload, and reproduced by the redo model for every kind the model implements."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pytest_walredo.corpus.builder import BUILTIN_WORKLOADS
from pytest_walredo.corpus.default import (
    BUILDER_VERSION,
    load_shipped,
    read_manifest,
    shipped_corpus,
    shipped_versions,
    staleness,
    workloads_hash,
)
from pytest_walredo.corpus.judge import model_answer, model_unsupported
from pytest_walredo.pg.mask import masked_equal

REBUILD = "rebuild it: python scripts/build_default_corpus.py"
SHIPPED = shipped_versions()


def test_every_supported_version_has_a_shipped_corpus() -> None:
    assert SHIPPED == [14, 15, 16, 17]
    data = shipped_corpus(15).parent
    assert sorted(p.name for p in data.iterdir() if p.name != "__pycache__") == [
        f"pg{v}.{ext}" for v in SHIPPED for ext in ("manifest.json", "tar.xz")]


@pytest.mark.parametrize("version", SHIPPED)
def test_the_shipped_corpora_are_current(version: int) -> None:
    assert staleness(version) == [], REBUILD
    doc = read_manifest(version)
    assert doc["builder_version"] == BUILDER_VERSION and doc["workloads_sha256"] == workloads_hash()
    assert f"PostgreSQL) {version}." in doc["server"]
    assert doc["workloads"] == list(BUILTIN_WORKLOADS), doc["skipped"]


def test_staleness_notices_a_changed_manifest(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest_walredo.corpus.default as default

    doc = read_manifest(15)
    doc["workloads_sha256"] = "0" * 64
    doc["kinds"] = {**doc["kinds"], "Heap/INSERT": 99}
    (tmp_path / "pg15.tar.xz").symlink_to(shipped_corpus(15))
    (tmp_path / "pg15.manifest.json").write_text(json.dumps(doc))
    monkeypatch.setattr(default, "_data", lambda: tmp_path)
    why = staleness(15)
    assert any("workload SQL files changed" in w for w in why) and any("entries per kind" in w for w in why)
    assert staleness(14) == [f"{tmp_path / 'pg14.manifest.json'} is missing"]


def test_the_shipped_corpora_are_small() -> None:
    sizes = {v: shipped_corpus(v).stat().st_size for v in SHIPPED}
    assert sum(sizes.values()) < 1_000_000, sizes
    raw = {v: sum(len(e.request) + len(e.expected or b"") for e in load_shipped(v)) for v in SHIPPED}
    assert all(raw[v] > 10 * sizes[v] for v in SHIPPED), (raw, sizes)


@pytest.mark.parametrize("version", SHIPPED)
def test_the_shipped_corpora_are_real_wal_of_every_rmgr(version: int) -> None:
    entries = load_shipped(version)
    rmgrs = Counter(e.meta.rmgr for e in entries)
    assert set(rmgrs) == {"Heap", "Heap2", "Btree", "Hash", "Gin", "Gist", "SPGist", "BRIN", "Sequence", "Generic"}
    assert all(e.expected is not None and e.meta.pg_version == version and "workload" in e.meta.source
               for e in entries)


@pytest.mark.parametrize("version", SHIPPED)
def test_the_model_reproduces_every_shipped_entry_it_implements(version: int) -> None:
    checked = 0
    for e in load_shipped(version):
        if model_unsupported(e) is None:
            assert e.expected is not None
            assert masked_equal(e.expected, model_answer(e), e.meta.mask, e.meta.blk), e.name
            checked += 1
    assert checked >= 15


# ------------------------------------------------------------------------------------------
# Which entries apply to which walredo (corpus.judge.entry_applies): one rule, checked on the
# shipped corpora against the model of both flavours
# ------------------------------------------------------------------------------------------


def test_the_flavour_dependent_layouts() -> None:
    from pytest_walredo.pg.rmgr import flavour_dependent_layout as dep

    heap_ops = {"INSERT": 0x00, "DELETE": 0x10, "UPDATE": 0x20, "HOT_UPDATE": 0x40, "LOCK": 0x60}
    for v in (14, 15):
        assert all(dep(10, op, v) and dep(10, op | 0x80, v) for op in heap_ops.values())
        assert not dep(10, 0x30, v) and not dep(10, 0x50, v) and not dep(10, 0x70, v)  # TRUNCATE, CONFIRM, INPLACE
        assert dep(9, 0x50, v) and dep(9, 0xD0, v) and not dep(9, 0x40, v)  # MULTI_INSERT(+INIT); VISIBLE
    for v in (16, 17):
        assert not any(dep(10, op, v) for op in heap_ops.values()) and not dep(9, 0x50, v)
        assert dep(134, 0x00, v)
    assert not any(dep(rmid, 0x00, v) for rmid in (0, 11, 12, 13, 15, 16, 17, 20) for v in (14, 15, 16, 17))


@pytest.mark.parametrize("version", SHIPPED)
def test_entries_replay_alike_on_both_flavours_exactly_when_they_apply_to_both(version: int) -> None:
    """The rule lets a vanilla entry through to a Neon walredo exactly when the model of the Neon
    flavour reads its records as vanilla's does: it then gives the same page under the mask."""
    from dataclasses import replace

    from pytest_walredo.corpus.judge import entry_applies
    from pytest_walredo.pg.redo import RedoError
    from pytest_walredo.pg.version import Flavour

    crossed = refused = 0
    for e in load_shipped(version):
        assert e.meta.flavour is Flavour.VANILLA
        assert entry_applies(e, version, Flavour.VANILLA) is None
        other = 14 if version != 14 else 15
        assert entry_applies(e, other, Flavour.VANILLA) == (
            f"the entry is PostgreSQL {version} WAL, the walredo replays PostgreSQL {other}")
        why = entry_applies(e, version, Flavour.NEON)
        if model_unsupported(e) is not None:
            continue
        as_neon = replace(e, meta=replace(e.meta, flavour=Flavour.NEON))
        try:
            same = masked_equal(e.expected or b"", model_answer(as_neon), e.meta.mask, e.meta.blk)
        except RedoError:
            same = False
        if why is None:
            assert same, e.name
            crossed += 1
        else:
            assert "is laid out differently for a neon walredo" in why and e.meta.rmgr in ("Heap", "Heap2")
            assert version <= 15 and not same, e.name
            refused += 1
    assert crossed >= 5
    assert (refused > 0) == (version <= 15)


def test_request_masks() -> None:
    from pytest_walredo.corpus.judge import request_mask

    rules = {e.meta.kind: request_mask(e.decoded_request(), 15) for e in load_shipped(15)}
    assert rules["Heap/INSERT"] == "Heap" and rules["Btree/SPLIT_L"] == "Btree" and rules["Gin/INSERT"] == "Gin"
    assert all(rules[e.meta.kind] == e.meta.mask for e in load_shipped(15))
    from pytest_walredo.protocol import RedoRequest, RelTag

    assert request_mask(RedoRequest(RelTag(1, 2, 3), 0, bytes(8192), ()), 15) == "none"
