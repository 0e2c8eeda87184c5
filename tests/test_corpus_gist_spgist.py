"""Issue 14's bar for GiST and SP-GiST: the reference walredo (PostgreSQL 15, vanilla) reproduces
every GiST and SP-GiST request cut from fresh real PostgreSQL 15 WAL, with and without
compressed page images; and every GiST / SP-GiST record of that WAL is described as
pg_waldump 15 describes it and rebuilt byte for byte by our typed encoders.

One corpus build serves every test here (a module fixture): the built-in ``gist`` and ``spgist``
workloads, run with a checkpoint and ``wal_compression`` switched before each statement (off,
pglz, lz4, zstd in turn), so that the records carry images redo applies, stored every way.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_corpus_build import EXPECTED_KINDS
from test_corpus_heap_btree import replay_all_matched

from pytest_walredo.corpus.builder import BuildOptions, BuildReport, build_corpus, builtin_workload
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.pg.rmgr import build, describe_record, parse
from pytest_walredo.pg.rmgr.ids import RM_GIST_ID, RM_SPGIST_ID
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.waldump import run_waldump
from pytest_walredo.pg.walstream import iter_wal
from pytest_walredo.pg.xlogrecord import decode_record, encode_record

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent"),
]

WORKLOADS = ("gist", "spgist")
# what the workloads reach on PostgreSQL 15 every time (records with a page to check)
KINDS = {k for k in EXPECTED_KINDS if k.startswith(("Gist/", "SPGist/"))}
METHODS = ("off", "pglz", "lz4", "zstd")


def _mixed_compression(name: str, folder: Path) -> Path:
    """Built-in workload ``name`` with ``SET wal_compression`` (cycling) and a checkpoint before
    each statement but DELETE and VACUUM."""
    chunks = builtin_workload(name).read_text().split(";\n")
    statements = ["\n".join(ln for ln in c.splitlines() if not ln.startswith("--")).strip() for c in chunks]
    path = folder / f"{name}.sql"
    # a checkpoint first, so that the next change to each page logs an image redo applies; not
    # before a DELETE (no index page changes) and a VACUUM, which touches most index pages once:
    # with an image each, its records (e.g. SPGist VACUUM_LEAF) would test nothing and be dropped
    path.write_text("".join(f"SET wal_compression = {METHODS[i % len(METHODS)]};\n"
                            + ("" if stmt.upper().startswith(("VACUUM", "DELETE")) else "CHECKPOINT;\n") + f"{stmt.rstrip(';')};\n"
                            for i, stmt in enumerate(s for s in statements if s)))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuildReport, list[Entry]]]:
    folder = tmp_path_factory.mktemp("gist-spgist")
    sql = tuple(str(_mixed_compression(name, folder)) for name in WORKLOADS)
    report = build_corpus(BuildOptions(folder / "corpus", workloads=sql, per_kind=20, keep_server=True))
    try:
        yield report, load_corpus(folder / "corpus")
    finally:
        if report.wal_dir is not None:
            shutil.rmtree(report.wal_dir.parent.parent, ignore_errors=True)


def test_reference_reproduces_every_gist_and_spgist_entry(built: tuple[BuildReport, list[Entry]],
                                                          tmp_path: Path) -> None:
    _, all_entries = built
    entries = [e for e in all_entries if e.meta.rmgr in ("Gist", "SPGist")]
    kinds = Counter(e.meta.kind for e in entries)
    assert KINDS <= set(kinds), sorted(KINDS - set(kinds))
    stored: Counter[str] = Counter()
    applied: Counter[bool] = Counter()
    for e in entries:
        for _lsn, raw in e.decoded_request().records:
            for b in decode_record(raw, 15).blocks:
                if b.image is not None:
                    stored[b.image.compression.value] += 1
                    applied[b.image.is_compressed] += b.apply_image
    # images stored every way reach the walredo; those it applies, compressed and not
    assert set(stored) == {"none", "pglz", "lz4", "zstd"}, stored
    assert applied[True] and applied[False], applied
    replay_all_matched(entries, tmp_path)


def test_real_records_agree_with_pg_waldump_and_rebuild(built: tuple[BuildReport, list[Entry]]) -> None:
    report, _ = built
    assert report.wal_dir is not None
    segs = sorted(p for p in report.wal_dir.iterdir() if re.match(r"^[0-9A-F]{24}$", p.name))
    seg_size = segs[0].stat().st_size
    first = report.start_lsn // seg_size
    numbered = [(int(p.name[8:16], 16) * (2**32 // seg_size) + int(p.name[16:], 16), p) for p in segs]
    start_seg = next(p for n, p in numbered if n == first)
    theirs = {}
    for rmgr_name in ("Gist", "SPGist"):  # from the first segment of the run to the end of WAL
        result = run_waldump(numbered[-1][1].name, binary=str(DEFAULT_BIN_DIR / "pg_waldump"),
                             extra_args=("-p", str(report.wal_dir), "-r", rmgr_name, start_seg.name), timeout=300)
        theirs.update({r.lsn: r for r in result.records})
    ours: Counter[str] = Counter()
    for w in iter_wal(((n, p.read_bytes()) for n, p in numbered if n >= first), pg_version=15, seg_size=seg_size):
        rec = decode_record(w.raw, 15)
        if w.start < report.start_lsn or rec.rmid not in (RM_GIST_ID, RM_SPGIST_ID):
            continue
        d = describe_record(rec, 15, Flavour.VANILLA)
        got = theirs.get(w.start)
        assert got is not None, f"pg_waldump does not list {d} at {w.start:X}"
        assert (got.rmgr, got.name, got.desc) == (d.rmgr, d.name, d.desc), f"{w.start:X}"
        rebuilt = build(parse(rec, 15), rec.blocks, pg_version=15, xid=rec.xid, prev=rec.prev,
                        origin=rec.origin, toplevel_xid=rec.toplevel_xid, xl_info_low=rec.info & 0x0F)
        assert encode_record(rebuilt) == w.raw, f"typed rebuild of {d} at {w.start:X} differs"
        ours[f"{d.rmgr}/{d.name}"] += 1
    assert len(theirs) == sum(ours.values()), "pg_waldump lists records our reader did not find"
    assert KINDS <= set(ours), ours
