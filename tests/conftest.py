"""Fixtures shared by the project's tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_walredo.corpus.server import DEFAULT_BIN_DIR, PgInstall, PgServer, ServerError


@pytest.fixture(scope="session")
def pg15_install() -> PgInstall:
    """Debian's PostgreSQL 15 (skipped with the reason when it is absent, or when we are root
    and cannot run it as another user)."""
    try:
        install = PgInstall.find(DEFAULT_BIN_DIR)
    except ServerError as exc:
        pytest.skip(str(exc))
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot run as root")
    return install


@pytest.fixture(scope="session")
def initdb_cluster(pg15_install: PgInstall) -> Iterator[Path]:
    """A fresh PostgreSQL 15 cluster made with --data-checksums (by the corpus builder's
    throwaway server, as ``nobody`` when we are root), removed at the end of the session."""
    server = PgServer(pg15_install, initdb_args=["--data-checksums"], prefix="walredo-pgcluster-")
    try:
        yield server.initdb()
    except ServerError as exc:
        pytest.skip(str(exc))
    finally:
        server.cleanup()
