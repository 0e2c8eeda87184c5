"""The corpora shipped with the package: ``corpus/data/pgNN.tar.xz`` (the entries, a corpus folder
``pgNN/`` packed by :func:`~pytest_walredo.corpus.folder.write_archive` and read in memory) and
``corpus/data/pgNN.manifest.json`` (how it was built).

Real WAL differs from run to run, so a corpus cannot be rebuilt byte for byte; instead the
manifest records what decides its contents: the builder's rules version
(:data:`BUILDER_VERSION`, raised whenever the cutting rules change), a hash of the built-in
workload SQL files, the build options and the entries per kind. A corpus is *current* when the
first two match this code and the archive holds exactly the entries the manifest lists
(:func:`staleness`). ``scripts/build_default_corpus.py`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_walredo.corpus.builder import BUILTIN_WORKLOADS, builtin_workload
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.format import Entry

__all__ = ["BUILDER_VERSION", "DEFAULT_VERSION", "load_shipped", "manifest_path", "read_manifest",
           "shipped_corpus", "shipped_versions", "staleness", "workloads_hash"]

BUILDER_VERSION = 1
"""Raise when the builder or cutter would cut different entries from the same WAL."""

DEFAULT_VERSION = 15


def _data() -> Path:
    return Path(str(resources.files("pytest_walredo.corpus") / "data"))


def shipped_corpus(pg_version: int = DEFAULT_VERSION) -> Path:
    """The archive of the shipped corpus of PostgreSQL ``pg_version`` (may not exist)."""
    return _data() / f"pg{pg_version}.tar.xz"


def shipped_versions() -> list[int]:
    """The PostgreSQL versions that have a shipped corpus."""
    return sorted(int(p.name[2:-len(".tar.xz")]) for p in _data().glob("pg*.tar.xz"))


@lru_cache(maxsize=4)
def load_shipped(pg_version: int = DEFAULT_VERSION) -> tuple[Entry, ...]:
    """The entries of the shipped corpus of ``pg_version`` (read once per process; entries are
    immutable). Raises :class:`~pytest_walredo.corpus.format.CorpusError` when there is none."""
    return tuple(load_corpus(shipped_corpus(pg_version)))


def manifest_path(pg_version: int = DEFAULT_VERSION) -> Path:
    return _data() / f"pg{pg_version}.manifest.json"


def workloads_hash() -> str:
    """SHA-256 over the built-in workloads' names and SQL text, in a fixed order."""
    h = hashlib.sha256()
    for name in BUILTIN_WORKLOADS:
        h.update(name.encode() + b"\0" + builtin_workload(name).read_bytes() + b"\0")
    return h.hexdigest()


def read_manifest(pg_version: int = DEFAULT_VERSION) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(manifest_path(pg_version).read_text())
    return doc


def staleness(pg_version: int = DEFAULT_VERSION) -> list[str]:
    """Why the shipped corpus of ``pg_version`` is not current (empty when it is)."""
    path = manifest_path(pg_version)
    if not path.exists():
        return [f"{path} is missing"]
    doc = read_manifest(pg_version)
    why = []
    if doc.get("builder_version") != BUILDER_VERSION:
        why.append(f"built with builder version {doc.get('builder_version')}, the code is at {BUILDER_VERSION}")
    if doc.get("workloads_sha256") != workloads_hash():
        why.append("the built-in workload SQL files changed since it was built")
    entries = load_corpus(shipped_corpus(pg_version))
    counts = dict(sorted(Counter(e.meta.kind for e in entries).items()))
    if counts != doc.get("kinds"):
        why.append(f"its entries per kind {counts} differ from the manifest's {doc.get('kinds')}")
    if any(e.meta.pg_version != pg_version for e in entries):
        why.append(f"it holds entries of a version other than {pg_version}")
    return why
