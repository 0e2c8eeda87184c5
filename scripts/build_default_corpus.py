#!/usr/bin/env python3
"""Rebuild the corpora shipped with the package from real PostgreSQL WAL.

    python scripts/build_default_corpus.py [--pg-bin DIR ...]

For each server (default: Debian's PostgreSQL 15, then the PostgreSQL 14, 16 and 17 servers
that scripts/fetch_pg_servers.sh put in .tools/pg/, when there) writes
pytest_walredo/corpus/data/pgNN.tar.xz (the corpus folder pgNN/ packed, replacing it) and
pgNN.manifest.json, NN being the server's major version. PostgreSQL 15 is the default corpus
(2 entries per kind); the others keep 1 per kind. `pytest-walredo corpus check FILE.tar.xz` and
`--walredo-corpus FILE.tar.xz` read such an archive as it is; `tar -xJf` unpacks it. The
entries differ from run to run (real WAL does); tests/test_corpus_default.py checks that each
manifest matches the code.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_walredo.corpus.builder import BuildOptions, build_corpus  # noqa: E402
from pytest_walredo.corpus.default import (  # noqa: E402
    BUILDER_VERSION,
    DEFAULT_VERSION,
    manifest_path,
    shipped_corpus,
    workloads_hash,
)
from pytest_walredo.corpus.folder import write_archive  # noqa: E402
from pytest_walredo.corpus.server import PgInstall  # noqa: E402

MAX_RECORDS = 2
SERVERS = [None, *(ROOT / ".tools" / "pg" / v / "bin" for v in ("14", "16", "17"))]


def build(pg_bin: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="walredo-default-corpus-") as tmp:
        out = Path(tmp) / "corpus"
        probe = PgInstall.find(pg_bin)
        per_kind = 2 if probe.version == DEFAULT_VERSION else 1
        report = build_corpus(BuildOptions(out, pg_bin, per_kind=per_kind, max_records=MAX_RECORDS),
                              lambda m: print(m, file=sys.stderr))
        named = out.with_name(f"pg{report.pg_version}")
        out.rename(named)
        target = write_archive(named, shipped_corpus(report.pg_version))
    manifest = {
        "builder_version": BUILDER_VERSION,
        "workloads_sha256": workloads_hash(),
        "server": report.server,
        "flavour": report.flavour.value,
        "options": {"per_kind": per_kind, "max_records": MAX_RECORDS, "wal_compression": "off"},
        "workloads": report.workloads,
        "skipped": [f"{n}: {why}" for n, why in report.skipped],
        "entries": len(report.entries),
        "kinds": dict(sorted(Counter(e.meta.kind for e in report.entries).items())),
    }
    manifest_path(report.pg_version).write_text(json.dumps(manifest, indent=1) + "\n")
    print(report.render())
    print(f"wrote {len(report.entries)} entries into {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-bin", type=Path, action="append",
                        help="PostgreSQL bin/ folder (repeatable; default: Debian's 15 and .tools/pg/*)")
    args = parser.parse_args()
    servers = args.pg_bin or [s for s in SERVERS if s is None or (s / "postgres").exists()]
    for pg_bin in servers:
        build(pg_bin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
