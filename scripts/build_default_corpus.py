#!/usr/bin/env python3
"""Rebuild the corpus shipped with the package from real PostgreSQL WAL.

    python scripts/build_default_corpus.py [--pg-bin DIR]

Writes pytest_walredo/corpus/data/pgNN/ (replacing it) and pgNN.manifest.json, NN being the
server's major version (Debian's PostgreSQL 15 by default). The entries differ from run to run
(real WAL does); tests/test_corpus_default.py checks that the manifest matches the code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_walredo.corpus.builder import BuildOptions, build_corpus  # noqa: E402
from pytest_walredo.corpus.default import (  # noqa: E402
    BUILDER_VERSION,
    default_corpus_dir,
    manifest_path,
    workloads_hash,
)

PER_KIND = 2
MAX_RECORDS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-bin", type=Path, help="PostgreSQL bin/ folder (default Debian's 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="walredo-default-corpus-") as tmp:
        out = Path(tmp) / "corpus"
        report = build_corpus(BuildOptions(out, args.pg_bin, per_kind=PER_KIND, max_records=MAX_RECORDS),
                              lambda m: print(m, file=sys.stderr))
        target = default_corpus_dir(report.pg_version)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(out, target)
    manifest = {
        "builder_version": BUILDER_VERSION,
        "workloads_sha256": workloads_hash(),
        "server": report.server,
        "flavour": report.flavour.value,
        "options": {"per_kind": PER_KIND, "max_records": MAX_RECORDS, "wal_compression": "off"},
        "workloads": report.workloads,
        "skipped": [f"{n}: {why}" for n, why in report.skipped],
        "entries": len(report.entries),
        "kinds": dict(sorted(Counter(e.meta.kind for e in report.entries).items())),
    }
    manifest_path(report.pg_version).write_text(json.dumps(manifest, indent=1) + "\n")
    print(report.render())
    print(f"wrote {len(report.entries)} entries into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
