"""``pytest-walredo corpus build`` and ``corpus check``: the command-line face of
:mod:`pytest_walredo.corpus` (errors become one line naming the flag or file)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from pytest_walredo.corpus.judge import Verdict
from pytest_walredo.triage import TriageError

__all__ = ["run_corpus_command"]


def _build(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.corpus.builder import BuildError, BuildOptions, build_corpus
    from pytest_walredo.corpus.server import ServerError

    options = BuildOptions(args.outdir, args.pg_bin, tuple(args.workload), args.per_kind,
                           args.wal_compression, args.max_records, args.flavour)
    try:
        report = build_corpus(options, lambda m: print(m, file=sys.stderr))
    except (BuildError, ServerError) as exc:
        raise TriageError(str(exc)) from None
    out.write(report.render())
    out.write(f"wrote {len(report.entries)} entries into {args.outdir}\n")
    return 0


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.corpus.folder import load_corpus
    from pytest_walredo.corpus.format import CorpusError
    from pytest_walredo.corpus.judge import kind_table
    from pytest_walredo.corpus.replay import replay_entries
    from pytest_walredo.triage.replay import resolve_binary

    if (args.dir is None) == (args.shipped is None):
        raise TriageError("give either a corpus folder DIR or --shipped N")
    if args.shipped is not None:
        from pytest_walredo.corpus.default import shipped_corpus

        args.dir = shipped_corpus(args.shipped)
    try:
        entries = load_corpus(args.dir)
    except CorpusError as exc:
        raise TriageError(str(exc)) from None
    if not entries:
        raise TriageError(f"{args.dir}: holds no corpus entries")
    versions = sorted({(e.meta.pg_version, e.meta.flavour.value) for e in entries})
    if len(versions) > 1:
        raise TriageError(f"{args.dir}: mixes versions/flavours {versions}; check one at a time")
    pg_version, flavour = entries[0].meta.pg_version, entries[0].meta.flavour
    with tempfile.TemporaryDirectory(prefix="walredo-corpus-check-") as tmp:
        binary = resolve_binary(args.walredo_bin, args.lib_dir, args.ref_fault, pg_version, flavour, Path(tmp))
        results = replay_entries(entries, binary, timeout=args.timeout)
    bad = [r for r in results if r.verdict in (Verdict.DIFFERING, Verdict.FAILED)]
    if args.json:
        json.dump({"dir": str(args.dir), "walredo": str(binary), "results": [
            {"name": r.name, "kind": r.kind, "verdict": r.verdict.value, "detail": r.detail} for r in results]},
            out, indent=2)
        out.write("\n")
    else:
        out.write(f"corpus {args.dir}: {len(entries)} entries (PostgreSQL {pg_version}, {flavour.value}) "
                  f"through {binary}\n")
        out.write(kind_table(results))
        for r in bad:
            out.write(f"{r.verdict.value}: {r.name}: {r.detail}\n")
    return 1 if bad else 0


def run_corpus_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.corpus_command == "build":
        return _build(args, out)
    if args.corpus_command == "check":
        return _check(args, out)
    raise TriageError("an action is required: build or check (see pytest-walredo corpus --help)")
