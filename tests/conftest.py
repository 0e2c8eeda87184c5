"""Fixtures shared by the project's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

INITDB = Path("/usr/lib/postgresql/15/bin/initdb")


@pytest.fixture(scope="session")
def initdb_cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh PostgreSQL 15 cluster made with --data-checksums (initdb refuses to run as
    root, so it runs as ``nobody`` through runuser when we are root)."""
    if not INITDB.exists():
        pytest.skip(f"{INITDB} is absent")
    base = tmp_path_factory.mktemp("pgcluster")
    data = base / "data"
    cmd = [str(INITDB), "--data-checksums", "-A", "trust", "-U", "postgres", "--no-sync",
           "-D", str(data)]
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and runuser is absent, so initdb cannot run")
        os.chmod(base, 0o777)
        for parent in base.parents:  # nobody must be able to reach the directory
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
        cmd = [runuser, "-u", "nobody", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"initdb failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return data
