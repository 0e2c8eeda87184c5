"""Fixtures and report hooks of the conformance suite (see ``__init__``).

Fixtures: ``walredo_pool`` (a :class:`~.pool.ProcessPool` for the test), ``walredo_recorder``
(an :class:`~.recorder.ExampleRecorder`), ``pg_version`` and ``flavour`` (of the binary under
test). When a test fails, the recorder has handed its failing example to the plugin, whose
reporting shows it (section ``walredo failing example``, user property ``walredo_example``)
and writes it out with the other failure artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_walredo.conformance.pool import ProcessPool
from pytest_walredo.conformance.recorder import ExampleRecorder
from pytest_walredo.conformance.variant import registered_variant
from pytest_walredo.pg.version import Flavour


def pytest_configure(config: pytest.Config) -> None:
    # The plugin has loaded the session's Hypothesis profile; a seeded-bug hunt runs a variant
    # of it.
    variant = registered_variant(config)
    if variant is not None and variant.hunt:
        # A seeded-bug hunt measures how many examples the profile needs and how small the
        # shrunk example gets: no replay of failures saved by an earlier hunt, and no explain
        # phase (it only annotates the final report, and re-running the shrunk example with
        # every part varied costs as much as the hunt itself).
        from hypothesis import Phase, settings

        chosen = settings.get_current_profile_name()
        base = settings.get_profile(chosen)
        settings.register_profile(f"{chosen}-hunt", base, database=None,
                                  phases=[p for p in base.phases if p is not Phase.explain])
        settings.load_profile(f"{chosen}-hunt")


@pytest.fixture
def pg_version(walredo_bin: Any) -> int:
    """The PostgreSQL major version whose WAL the binary under test replays."""
    return int(walredo_bin.pg_version)


@pytest.fixture
def flavour(walredo_bin: Any) -> Flavour:
    """The WAL flavour (neon or vanilla) of the binary under test."""
    return Flavour(walredo_bin.flavour)


@pytest.fixture
def walredo_recorder(request: pytest.FixtureRequest) -> ExampleRecorder:
    """Records the current example of the test's property (see :mod:`.recorder`)."""
    return ExampleRecorder(request.node)


@pytest.fixture
def walredo_pool(request: pytest.FixtureRequest, walredo_factory: Any,
                 walredo_recorder: ExampleRecorder) -> Iterator[ProcessPool]:
    """Live clients for this test, reused across examples and relaunched after failures."""
    variant = registered_variant(request.config)
    if variant is None:
        pool = ProcessPool(walredo_factory)
    else:
        pool = ProcessPool(walredo_factory, client_class=variant.client_class, faults=variant.faults)
    walredo_recorder.listeners.append(pool.new_example)
    try:
        yield pool
    finally:
        pool.close()
