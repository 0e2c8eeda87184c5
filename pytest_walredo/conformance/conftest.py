"""Fixtures and report hooks of the conformance suite (see ``__init__``).

Fixtures: ``walredo_pool`` (a :class:`~.pool.ProcessPool` for the test, judged by the session's
oracle), ``walredo_oracle`` (the session's :class:`~.oracle.Oracle`: the redo model, or the
``--walredo-baseline-bin`` binary), ``walredo_recorder`` (an :class:`~.recorder.ExampleRecorder`),
``pg_version`` and ``flavour`` (of the binary under test). When a test fails, the recorder has
handed its failing example to the plugin, whose reporting shows it (section ``walredo failing
example``, user property ``walredo_example``) and writes it out with the other failure
artifacts. Every test's report says what judged it (user property ``walredo_oracle``, an Allure
label), which the plugin counts in its summary.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from pytest_walredo.conformance.oracle import BaselineOracle, ModelOracle, Oracle
from pytest_walredo.conformance.pool import ProcessPool
from pytest_walredo.conformance.recorder import ExampleRecorder
from pytest_walredo.conformance.variant import registered_variant
from pytest_walredo.corpus.judge import entry_applies
from pytest_walredo.pg.version import Flavour
from pytest_walredo.plugin import allure
from pytest_walredo.plugin.corpora import session_corpus
from pytest_walredo.plugin.runstate import allure_active
from pytest_walredo.plugin.verdicts import ORACLE_PROPERTY


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


@pytest.fixture(scope="session")
def walredo_oracle(request: pytest.FixtureRequest, walredo_bin: Any, walredo_baseline_bin: Any,
                   walredo_settings: Any) -> Oracle:
    """The session's oracle: the ``--walredo-baseline-bin`` binary (whose model-agreement
    property also draws the session corpus's requests that apply to the binary under test),
    else the redo model."""
    if walredo_baseline_bin is None:
        return ModelOracle()
    entries = [e for e in session_corpus(request.config).entries
               if entry_applies(e, walredo_bin.pg_version, walredo_bin.flavour) is None]
    return BaselineOracle(walredo_baseline_bin, walredo_settings.baseline_mask, entries)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Say what judged each test that ran: the oracles its pool used, else its own rule."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call" or report.skipped:
        return
    pool = getattr(item, "funcargs", {}).get("walredo_pool")
    label = "+".join(sorted(pool.oracles)) if pool is not None and pool.oracles else "property"
    report.user_properties.append((ORACLE_PROPERTY, label))
    if allure_active(item.config):
        allure.label("walredo oracle", label)


@pytest.fixture
def walredo_pool(request: pytest.FixtureRequest, walredo_factory: Any, walredo_oracle: Oracle,
                 walredo_recorder: ExampleRecorder) -> Iterator[ProcessPool]:
    """Live clients for this test, reused across examples and relaunched after failures; every
    request it sends goes past the session's oracle."""
    variant = registered_variant(request.config)
    if variant is None:
        pool = ProcessPool(walredo_factory)
    else:
        pool = ProcessPool(walredo_factory, client_class=variant.client_class, faults=variant.faults)
    pool.judge = walredo_oracle.bind(pool)
    pool.current_example = lambda: walredo_recorder.current
    walredo_recorder.listeners.append(pool.new_example)
    try:
        yield pool
    finally:
        pool.close()
