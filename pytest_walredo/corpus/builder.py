"""``pytest-walredo corpus build``: run workloads on a throwaway PostgreSQL server and cut a
corpus out of the WAL it writes.

The server (:mod:`.server`) runs with ``wal_consistency_checking = 'all'`` (plus ``neon`` and
``shared_preload_libraries = 'neon_rmgr'`` when the installation has Neon's resource manager),
``full_page_writes = on``, autovacuum off, and ``wal_keep_size`` / ``max_wal_size`` /
``checkpoint_timeout`` large enough that no segment is recycled and no checkpoint interrupts the
run. The run starts on a fresh segment after a checkpoint; the segments are read with our own
reader and decoder (:mod:`pytest_walredo.pg.walstream`): a record that cannot be read is an
error naming its LSN. :mod:`.cutter` turns the records into entries, written in the corpus
format (:mod:`.format`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pytest_walredo.corpus.cutter import CutError, CutOptions, CutStats, cut_entries
from pytest_walredo.corpus.folder import write_entry
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.server import PgInstall, PgServer, ServerError
from pytest_walredo.lsn import parse_lsn
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.walsegment import SegmentReadError
from pytest_walredo.pg.walstream import iter_wal

__all__ = ["BUILTIN_WORKLOADS", "WAL_COMPRESSION", "BuildError", "BuildOptions", "BuildReport",
           "build_corpus", "builtin_workload", "resolve_workloads"]

BUILTIN_WORKLOADS = ("heap", "btree", "hash", "gin", "gist", "spgist", "brin", "sequence", "generic")
WAL_COMPRESSION = ("off", "pglz", "lz4", "zstd")
_SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
_REQUIRES_RE = re.compile(r"^--\s*requires-extension:\s*(\w+)\s*$", re.MULTILINE)


class BuildError(RuntimeError):
    """The corpus could not be built; one sentence naming the flag, file or step at fault."""


@dataclass(frozen=True)
class BuildOptions:
    outdir: Path
    pg_bin: Path | None = None
    workloads: tuple[str, ...] = ()
    per_kind: int = 3
    wal_compression: str = "off"
    max_records: int = 4
    flavour: str = "auto"
    keep_server: bool = False


@dataclass
class BuildReport:
    pg_version: int
    server: str
    flavour: Flavour
    workloads: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    stats: CutStats = field(default_factory=CutStats)
    wal_bytes: int = 0
    seconds: float = 0.0
    wal_dir: Path | None = None  # the server's pg_wal, kept with ``keep_server``
    start_lsn: int = 0

    def render(self) -> str:
        lines = [f"built {len(self.entries)} entries from {self.stats.records} records "
                 f"({self.wal_bytes / 1e6:.1f} MB of WAL) of {self.server} ({self.flavour.value}) "
                 f"in {self.seconds:.1f} s",
                 f"workloads: {', '.join(self.workloads) or '(none)'}"]
        lines += [f"skipped workload {name}: {why}" for name, why in self.skipped]
        lines.append(f"{'kind':32} {'kept':>5} {'seen':>7} {'no-op':>6}")
        seen: Mapping[str, int] = self.stats.candidates or {}
        kept: Mapping[str, int] = self.stats.kept or {}
        noop: Mapping[str, int] = self.stats.tests_nothing or {}
        for kind in sorted(seen):
            lines.append(f"{kind:32} {kept.get(kind, 0):>5} {seen[kind]:>7} {noop.get(kind, 0):>6}")
        lines.append("kept: entries written; seen: candidates in the WAL; no-op: candidates looked at and "
                     "dropped because they test nothing")
        return "\n".join(lines) + "\n"


def builtin_workload(name: str) -> Path:
    """The SQL file of built-in workload ``name`` (shipped in the package)."""
    return Path(str(resources.files("pytest_walredo.corpus") / "workloads" / f"{name}.sql"))


def resolve_workloads(specs: Sequence[str]) -> list[tuple[str, Path]]:
    """(name, SQL file) for each ``--workload`` (a built-in name or a .sql file); all built-ins
    when none is given."""
    out = []
    for spec in specs or BUILTIN_WORKLOADS:
        if spec in BUILTIN_WORKLOADS:
            out.append((spec, builtin_workload(spec)))
        elif spec == "regress":
            raise BuildError("--workload regress: PostgreSQL's regression SQL is not on this machine "
                             "(no source package); pass its .sql files with --workload FILE.sql")
        elif spec.endswith(".sql") and Path(spec).is_file():
            out.append((Path(spec).stem, Path(spec)))
        else:
            raise BuildError(f"--workload {spec}: not a built-in workload ({', '.join(BUILTIN_WORKLOADS)}) "
                             f"nor an existing .sql file")
    return out


def _settings(install: PgInstall, flavour: Flavour, compression: str) -> dict[str, str]:
    if install.version == 14:
        if compression in ("lz4", "zstd"):
            raise BuildError(f"--wal-compression {compression}: PostgreSQL 14 compresses WAL with pglz only")
        comp = "off" if compression == "off" else "on"
    else:
        comp = compression
    checking = "'all,neon'" if flavour is Flavour.NEON and install.neon_rmgr else "'all'"
    out = {
        "wal_level": "replica", "full_page_writes": "on", "autovacuum": "off",
        "wal_consistency_checking": checking, "wal_compression": comp,
        "wal_keep_size": "'64GB'", "max_wal_size": "'64GB'", "checkpoint_timeout": "'1d'",
        "max_wal_senders": "0", "log_min_messages": "warning",
    }
    if install.neon_rmgr and flavour is Flavour.NEON:
        out["shared_preload_libraries"] = "'neon_rmgr'"
    return out


def _segments(wal_dir: Path, first_segno: int, seg_size: int) -> Iterator[tuple[int, bytes]]:
    per_id = 0x100000000 // seg_size
    found = []
    for p in wal_dir.iterdir():
        if _SEGMENT_RE.match(p.name):
            segno = int(p.name[8:16], 16) * per_id + int(p.name[16:24], 16)
            if segno >= first_segno:
                found.append((segno, p))
    for segno, path in sorted(found):
        yield segno, path.read_bytes()


def build_corpus(options: BuildOptions, log: Callable[[str], None] = lambda _m: None) -> BuildReport:
    """Build a corpus into ``options.outdir`` (which must be absent or empty). Raises
    :class:`BuildError` (or :class:`~.server.ServerError`) with one sentence."""
    started = time.monotonic()
    if options.per_kind < 1:
        raise BuildError(f"--per-kind {options.per_kind}: must be at least 1")
    if options.max_records < 1:
        raise BuildError(f"--max-records {options.max_records}: must be at least 1")
    if options.wal_compression not in WAL_COMPRESSION:
        raise BuildError(f"--wal-compression {options.wal_compression}: expected one of {', '.join(WAL_COMPRESSION)}")
    out = Path(options.outdir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BuildError(f"{out}: exists and is not an empty directory")
    workloads = resolve_workloads(options.workloads)
    install = PgInstall.find(options.pg_bin)
    if options.flavour == "auto":
        flavour = Flavour.NEON if install.neon_rmgr else Flavour.VANILLA
    else:
        flavour = Flavour.parse(options.flavour)
    report = BuildReport(install.version, install.full_version, flavour)
    server = PgServer(install, settings=_settings(install, flavour, options.wal_compression),
                      keep=options.keep_server, prefix="walredo-corpus-")
    try:
        log(f"starting {install.full_version} from {install.bin_dir}")
        server.start()
        server.sql("CHECKPOINT")
        server.sql("SELECT pg_switch_wal()")
        start_lsn = parse_lsn(server.sql("SELECT pg_current_wal_insert_lsn()"))
        seg_size = int(server.sql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
        labels = []
        for name, path in workloads:
            needs = _REQUIRES_RE.findall(path.read_text())
            missing = [ext for ext in needs if server.sql(
                f"SELECT count(*) FROM pg_available_extensions WHERE name = '{ext}'") == "0"]
            if missing:
                report.skipped.append((name, f"extension {', '.join(missing)} is not installed"))
                log(f"skipping workload {name}: extension {', '.join(missing)} is not installed")
                continue
            labels.append((parse_lsn(server.sql("SELECT pg_current_wal_insert_lsn()")), name))
            log(f"running workload {name}")
            try:
                server.run_file(path, what=f"workload {name} ({path})")
            except ServerError as exc:
                raise BuildError(str(exc)) from None
            report.workloads.append(name)
        end_lsn = parse_lsn(server.sql("SELECT pg_current_wal_insert_lsn()"))
        report.wal_bytes = end_lsn - start_lsn
        server.stop()
        wal_dir = server.data_dir / "pg_wal"
        first = start_lsn // seg_size
        report.start_lsn = start_lsn
        if options.keep_server:
            report.wal_dir = wal_dir

        def records() -> Iterator[tuple[int, bytes]]:
            for w in iter_wal(_segments(wal_dir, first, seg_size), pg_version=install.version,
                              seg_size=seg_size):
                if w.start >= start_lsn:
                    # the primary stamps pages with the MAXALIGNed end of the record, and that
                    # is the LSN the pageserver hands to walredo
                    yield (w.end + 7) & ~7, w.raw

        cut = CutOptions(per_kind=options.per_kind, max_records=options.max_records,
                         source=f"{install.full_version.removeprefix('postgres ')} WAL, corpus builder",
                         labels=tuple(labels))
        log("cutting entries")
        try:
            entries, stats = cut_entries(records, pg_version=install.version, flavour=flavour, options=cut)
        except (CutError, SegmentReadError) as exc:
            raise BuildError(f"reading the WAL in {wal_dir}: {exc}") from None
        for e in entries:
            write_entry(out, e)
        report.entries, report.stats = entries, stats
    finally:
        try:
            server.stop()
        finally:
            server.cleanup()
    report.seconds = time.monotonic() - started
    return report
