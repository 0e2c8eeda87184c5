"""Issue 14's bar for GIN: the reference walredo reproduces every GIN request cut from fresh real
PostgreSQL 15 WAL of the built-in ``gin`` workload, in the vanilla flavour the server wrote and,
since GIN records have the same layout in both flavours, in Neon's; and every GIN record of
that WAL decodes, is described as pg_waldump 15 describes it and rebuilds byte for byte.

One corpus build (wal_compression off) is shared by the tests; the compressed-image variants
and the 14, 16 and 17 servers are checked with ``corpus build --workload gin`` (see
docs/WAL_MODEL.md for the numbers).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_corpus_heap_btree import replay_all_matched

from pytest_walredo.corpus.builder import BuildOptions, BuildReport, build_corpus
from pytest_walredo.corpus.folder import load_corpus
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.judge import model_unsupported
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.pg.rmgr import build, describe_record, parse
from pytest_walredo.pg.rmgr.ids import RM_GIN_ID
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.waldump import run_waldump
from pytest_walredo.pg.walsegment import XLOG_BLCKSZ, read_segment
from pytest_walredo.pg.xlogrecord import decode_record, encode_record

pytestmark = [
    pytest.mark.needs_postgres,
    pytest.mark.skipif(not (DEFAULT_BIN_DIR / "postgres").exists(), reason=f"{DEFAULT_BIN_DIR} is absent"),
]

# What the gin workload reaches on PostgreSQL 15 as entries of their own. SPLIT and VACUUM_PAGE
# log their pages as full-page images that redo restores, so they show up as the first record
# of later entries; SPLIT also as an entry of the child a non-leaf split completes.
KINDS = {"Gin/CREATE_PTREE", "Gin/INSERT", "Gin/SPLIT", "Gin/VACUUM_DATA_LEAF_PAGE", "Gin/DELETE_PAGE",
         "Gin/UPDATE_META_PAGE", "Gin/INSERT_LISTPAGE", "Gin/DELETE_LISTPAGE"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuildReport, list[Entry]]]:
    out = tmp_path_factory.mktemp("gin") / "pg15"
    report = build_corpus(BuildOptions(out, workloads=("gin",), per_kind=20, keep_server=True))
    try:
        yield report, [e for e in load_corpus(out) if e.meta.rmgr == "Gin"]
    finally:
        if report.wal_dir is not None:
            shutil.rmtree(report.wal_dir.parent.parent, ignore_errors=True)


def test_reference_reproduces_every_gin_entry(built: tuple[BuildReport, list[Entry]], tmp_path: Path) -> None:
    _, entries = built
    kinds = Counter(e.meta.kind for e in entries)
    assert KINDS <= set(kinds), sorted(KINDS - set(kinds))
    assert all(model_unsupported(e) is None for e in entries)
    # a split's pages come back from its images: later entries start with the split record
    firsts = [decode_record(e.decoded_request().records[0][1], 15) for e in entries]
    assert any(r.rmid == RM_GIN_ID and r.info & 0xF0 == 0x30 for r in firsts)
    replay_all_matched(entries, tmp_path / "vanilla")


def test_reference_reproduces_every_gin_entry_as_neon(built: tuple[BuildReport, list[Entry]],
                                                        tmp_path: Path) -> None:
    _, entries = built
    neon = [dataclasses.replace(e, meta=dataclasses.replace(e.meta, flavour=Flavour.NEON)) for e in entries]
    replay_all_matched(neon, tmp_path / "neon")


def test_every_real_gin_record_agrees_with_pg_waldump(built: tuple[BuildReport, list[Entry]]) -> None:
    report, _ = built
    assert report.wal_dir is not None
    names: Counter[str] = Counter()
    for path in sorted(p for p in report.wal_dir.iterdir() if len(p.name) == 24):
        data = path.read_bytes()
        if not any(data[:XLOG_BLCKSZ]):
            continue  # preallocated, never written
        gin = [r for r in read_segment(data, pg_version=15)[0] if r.raw[17] == RM_GIN_ID]
        if not gin:
            continue
        result = run_waldump(path, binary=str(DEFAULT_BIN_DIR / "pg_waldump"))
        theirs = {r.lsn: r for r in result.records}
        for rp in gin:
            rec = decode_record(rp.raw, 15)
            d = describe_record(rec, 15, Flavour.VANILLA)
            got = theirs[rp.start]
            assert (got.name, got.desc) == (d.name, d.desc), f"{rp.start:X}: {result.command_line}"
            body = parse(rec, 15, Flavour.VANILLA)
            again = build(body, rec.blocks, pg_version=15, xid=rec.xid, prev=rec.prev, origin=rec.origin,
                          toplevel_xid=rec.toplevel_xid, xl_info_low=rec.info & 0x0F)
            assert encode_record(again) == rp.raw, f"{rp.start:X} {d.name} does not rebuild"
            names[d.name] += 1
    print(sorted(names.items()))
    assert set(names) == {"CREATE_PTREE", "INSERT", "SPLIT", "VACUUM_PAGE", "VACUUM_DATA_LEAF_PAGE", "DELETE_PAGE",
                          "UPDATE_META_PAGE", "INSERT_LISTPAGE", "DELETE_LISTPAGE"}
