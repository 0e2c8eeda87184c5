"""A throwaway PostgreSQL server for collecting real WAL: initdb in a temporary folder, a unix
socket only (no TCP), SQL through psql, stopped and deleted afterwards.

PostgreSQL refuses to run as root; when we are root every server command runs as ``nobody``
through ``runuser`` and the temporary folder is made writable for it. The folder is a fresh
``tempfile.mkdtemp`` directory (not under pytest's basetemp, which a starting pytest session
resets to mode 0700, cutting a server running as another user off from its files).

:class:`PgInstall` finds and checks a PostgreSQL 14-17 ``bin/`` folder (``postgres``,
``initdb``, ``pg_ctl``; ``psql`` from the same folder, else another PostgreSQL's psql: any
recent libpq client talks to these servers).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_walredo.pg.version import SUPPORTED_VERSIONS

__all__ = ["DEFAULT_BIN_DIR", "PgInstall", "PgServer", "ServerError"]

DEFAULT_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "nobody"
_PSQL_FALLBACKS = (*(Path(f"/usr/lib/postgresql/{v}/bin/psql") for v in (17, 16, 15, 14)),)
_VERSION_RE = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


class ServerError(RuntimeError):
    """The server could not be found, started or used; one sentence naming what failed."""


def _tail(text: str, lines: int = 8) -> str:
    rows = [r for r in text.strip().splitlines() if r.strip()]
    return " | ".join(rows[-lines:])


@dataclass(frozen=True)
class PgInstall:
    """A PostgreSQL installation's ``bin/`` folder. ``version`` is the major version,
    ``full_version`` what ``postgres --version`` prints, ``lib_dir`` the extension library
    folder when found, ``neon_rmgr`` whether Neon's resource manager library is there."""

    bin_dir: Path
    version: int
    full_version: str
    psql: Path
    lib_dir: Path | None
    neon_rmgr: bool

    @classmethod
    def find(cls, bin_dir: Path | None = None) -> PgInstall:
        """Check ``bin_dir`` (default: Debian's PostgreSQL 15); raise :class:`ServerError`."""
        where = (Path(bin_dir) if bin_dir is not None else DEFAULT_BIN_DIR).absolute()
        flag = f"--pg-bin {where}" if bin_dir is not None else f"the default PostgreSQL {where}"
        if not where.is_dir():
            raise ServerError(f"{flag}: no such directory (install postgresql-15 or pass --pg-bin DIR)")
        for tool in ("postgres", "initdb", "pg_ctl"):
            if not os.access(where / tool, os.X_OK):
                raise ServerError(f"{flag}: {tool} is missing or not executable")
        try:
            out = subprocess.run([str(where / "postgres"), "--version"], capture_output=True, text=True,
                                 timeout=30, check=False).stdout
        except OSError as exc:
            raise ServerError(f"{flag}: postgres --version failed: {exc}") from None
        m = _VERSION_RE.search(out)
        if m is None:
            raise ServerError(f"{flag}: postgres --version printed {out.strip()!r}, not a PostgreSQL version")
        version = int(m.group(1))
        if version not in SUPPORTED_VERSIONS:
            raise ServerError(f"{flag}: PostgreSQL {version} is not supported; expected one of {SUPPORTED_VERSIONS}")
        psql = where / "psql"
        if not os.access(psql, os.X_OK):
            found = next((p for p in _PSQL_FALLBACKS if os.access(p, os.X_OK)), None)
            which = shutil.which("psql")
            psql = found or (Path(which) if which else psql)
            if not os.access(psql, os.X_OK):
                raise ServerError(f"{flag}: has no psql, and no other psql was found")
        real = where.resolve()
        lib_dir = next((d for d in (real.parent / "lib" / "postgresql", real.parent / "lib")
                        if (d / "plpgsql.so").exists()), None)
        neon = lib_dir is not None and (lib_dir / "neon_rmgr.so").exists()
        return cls(where, version, out.strip(), psql, lib_dir, neon)

    def has_extension_library(self, name: str) -> bool:
        return self.lib_dir is not None and (self.lib_dir / f"{name}.so").exists()


class PgServer:
    """One server: ``start()`` (initdb + pg_ctl start), :meth:`sql`, :meth:`run_file`,
    ``stop()`` (removes its folder unless ``keep``). A context manager.

    ``settings`` are appended to postgresql.conf (name -> value as written there, e.g.
    ``{"wal_level": "replica", "wal_consistency_checking": "'all'"}``).
    """

    def __init__(self, install: PgInstall, *, settings: Mapping[str, str] = (),  # type: ignore[assignment]
                 initdb_args: Sequence[str] = (), keep: bool = False, prefix: str = "walredo-pg-"):
        self.install = install
        self.settings = dict(settings)
        self.initdb_args = tuple(initdb_args)
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.root, 0o777)
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        os.chmod(self.socket_dir, 0o777)
        self.log_file = self.root / "server.log"
        self.running = False

    # -- running commands ----------------------------------------------------------------------
    def _argv(self, argv: Sequence[str | Path]) -> list[str]:
        cmd = [str(a) for a in argv]
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ServerError("running as root without runuser: PostgreSQL cannot run as root")
            cmd = [runuser, "-u", RUN_AS, "--", *cmd]
        return cmd

    def run(self, argv: Sequence[str | Path], *, timeout: float = 600, what: str | None = None) -> str:
        """Run a PostgreSQL command as the server's user; its stdout, or :class:`ServerError`."""
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        try:
            proc = subprocess.run(self._argv(argv), capture_output=True, text=True, timeout=timeout,
                                  cwd=self.root, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise ServerError(f"{what or Path(str(argv[0])).name} did not finish within {timeout:g} s") from None
        if proc.returncode != 0:
            raise ServerError(f"{what or Path(str(argv[0])).name} failed (exit status {proc.returncode}): "
                              f"{_tail(proc.stderr) or _tail(proc.stdout)}")
        return proc.stdout

    def _psql(self, *args: str | Path, db: str) -> list[str | Path]:
        return [self.install.psql, "-X", "-h", self.socket_dir, "-p", "5432", "-U", "postgres", "-d", db,
                "-v", "ON_ERROR_STOP=1", *args]

    def sql(self, query: str, *, db: str = "postgres") -> str:
        """Run one SQL command; its unaligned, tuples-only output without the final newline."""
        return self.run(self._psql("-Atq", "-c", query, db=db), what=f"SQL {query[:60]!r}").rstrip("\n")

    def run_file(self, path: Path, *, db: str = "postgres", what: str | None = None) -> None:
        """Run a SQL script (copied into the server's folder so its user can read it)."""
        copy = self.root / f"script-{os.getpid()}-{path.name}"
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o644)
        try:
            self.run(self._psql("-q", "-f", copy, db=db), what=what or str(path))
        finally:
            copy.unlink(missing_ok=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def initdb(self) -> Path:
        """Create the cluster (``initdb_args`` added); returns the data folder."""
        self.run([self.install.bin_dir / "initdb", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                  "--locale", "C", *self.initdb_args, "-D", self.data_dir], what="initdb")
        return self.data_dir

    def start(self) -> PgServer:
        """initdb (unless done), append ``settings`` to postgresql.conf, start the server."""
        bin_dir = self.install.bin_dir
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        base = {"listen_addresses": "''", "unix_socket_directories": f"'{self.socket_dir}'",
                "port": "5432", "fsync": "off"}
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            for name, value in {**base, **self.settings}.items():
                conf.write(f"{name} = {value}\n")
        try:
            self.run([bin_dir / "pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-w", "-t", "120",
                      "start"], what="pg_ctl start")
        except ServerError as exc:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise ServerError(f"PostgreSQL {self.install.version} at {bin_dir} did not start: "
                              f"{_tail(log, 4) or exc}") from None
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown); the data folder stays until :meth:`cleanup`."""
        if self.running:
            self.running = False
            self.run([self.install.bin_dir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop"],
                     what="pg_ctl stop")

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()
