"""Fixtures shared by the project's tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from pytest_walredo.corpus.server import DEFAULT_BIN_DIR, PgInstall, PgServer, ServerError

MUTATION_EXAMPLES_ENV = "WALREDO_MUTATION_EXAMPLES"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``$WALREDO_MUTATION_EXAMPLES=N`` (set by scripts/mutation.py), every property test
    runs at most N examples, derandomized and without shrinking.

    Mutation testing runs a module's tests once per mutant: a round trip of 150 examples costs
    seconds each time, and a failing example only has to be found, not shrunk. A Hypothesis
    profile cannot do this: a test's own ``@settings(max_examples=...)`` wins over any profile.
    So the cap replaces each test's settings object, which Hypothesis reads from the test
    function when the test runs (``_hypothesis_internal_use_settings``; there is no public
    hook for it)."""
    cap = os.environ.get(MUTATION_EXAMPLES_ENV)
    if not cap:
        return
    try:
        limit = int(cap)
    except ValueError:
        raise pytest.UsageError(f"${MUTATION_EXAMPLES_ENV} must be a whole number, got {cap!r}") from None
    seen: set[int] = set()
    for item in items:
        test = getattr(item, "obj", None)
        current = getattr(test, "_hypothesis_internal_use_settings", None)
        if current is None or id(test) in seen:
            continue
        seen.add(id(test))
        test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
            current, max_examples=min(current.max_examples, limit), derandomize=True,
            database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])


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
