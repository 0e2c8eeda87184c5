"""Fixtures shared by the project's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

INITDB = Path("/usr/lib/postgresql/15/bin/initdb")


@pytest.fixture(scope="session")
def postgres_dir() -> Iterator[Callable[[str], Path]]:
    """Make directories that a PostgreSQL server running as another user (``nobody`` when we
    are root) can use; all are removed at the end of the session.

    Not under pytest's basetemp: every pytest session that starts (pytester runs, the
    bug-catalogue hunts, the other xdist worker's) resets ``/tmp/pytest-of-<user>`` to mode
    0700, which would cut the server off from its own data directory mid-test.
    """
    made: list[Path] = []

    def make(prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"walredo-{prefix}-"))
        os.chmod(path, 0o777)
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def initdb_cluster(postgres_dir: Callable[[str], Path]) -> Path:
    """A fresh PostgreSQL 15 cluster made with --data-checksums (initdb refuses to run as
    root, so it runs as ``nobody`` through runuser when we are root)."""
    if not INITDB.exists():
        pytest.skip(f"{INITDB} is absent")
    base = postgres_dir("pgcluster")
    data = base / "data"
    cmd = [str(INITDB), "--data-checksums", "-A", "trust", "-U", "postgres", "--no-sync",
           "-D", str(data)]
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and runuser is absent, so initdb cannot run")
        cmd = [runuser, "-u", "nobody", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"initdb failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return data
