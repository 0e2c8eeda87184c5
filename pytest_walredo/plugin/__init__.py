"""The pytest plugin (entry point ``walredo``): options, fixtures and hooks.

Fixtures
--------
``walredo_settings`` (session)
    the resolved :class:`~pytest_walredo.plugin.settings.WalredoSettings`.
``walredo_bin`` (session)
    the :class:`~pytest_walredo.target.WalredoBinary` under test: ``--walredo-bin`` or the
    embedded reference walredo.
``walredo_baseline_bin`` (session)
    the ``--walredo-baseline-bin`` :class:`~pytest_walredo.target.WalredoBinary` (differential
    mode), or None.
``walredo_process`` (function)
    a sandboxed walredo process for the test, as an async
    :class:`~pytest_walredo.process.WalredoClient` (a :class:`~.managed.ManagedClient`).
``walredo`` (function)
    the same as a blocking :class:`~pytest_walredo.process.SyncWalredoClient`.
``walredo_factory`` (function)
    ``walredo_factory(faults=(), args=(), sync=False, ...)`` starts more processes; all of them
    are killed and reaped when the test ends.

Every process a fixture starts gets its own working directory under the test's ``tmp_path``.
Every client records the test's calls (:mod:`.capture`) and, after a failed call, runs the next
one on a fresh process (:mod:`.managed`); when the test fails, the reporting plugin
(:mod:`.reporting`) writes the failing example's requests and the other failure artifacts into
the test's dump directory and, with allure-pytest active (``--alluredir``), attaches them to the
test's result.

Modules: :mod:`.settings` (options), :mod:`.runstate` (stash keys, dump folders),
:mod:`.factories`, :mod:`.managed` (the fixtures' clients), :mod:`.capture` (calls per
example), :mod:`.hypothesis_profiles`, :mod:`.example` (the failing example record),
:mod:`.reporting`, :mod:`.artifacts`, :mod:`.entries` (requests as corpus entries),
:mod:`.allure`, :mod:`.corpora` (the session's corpus entries), :mod:`.verdicts` (the per-kind
corpus table and which oracle judged each test, in the terminal summary and Allure).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..target import BinaryError, WalredoBinary, reference_binary, user_binary
from .capture import TestCapture, active_capture
from .corpora import session_corpus
from .factories import WalredoFactory, probe_binary
from .hypothesis_profiles import load_profile
from .managed import ManagedClient, ManagedSyncClient
from .reporting import WalredoReporting
from .runstate import (
    BASELINE_KEY,
    BINARY_KEY,
    CAPTURE_KEY,
    PROFILE_KEY,
    SETTINGS_KEY,
    START_KEY,
    WORKER_SESSION,
    dump_dir_for_test,
    dump_root,
    is_xdist_worker,
)
from .settings import OPTIONS, SettingError, WalredoSettings, resolve_settings
from .verdicts import WalredoVerdicts

__all__ = ["walredo", "walredo_baseline_bin", "walredo_bin", "walredo_factory", "walredo_process",
           "walredo_settings"]

log = logging.getLogger("pytest_walredo.plugin")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("walredo", "walredo process under test (pytest-walredo)")
    for opt in OPTIONS:
        kwargs: dict[str, object] = {"dest": opt.key, "default": None}
        if opt.is_flag:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = opt.metavar
        if opt.multi:
            kwargs.update(nargs="+", action="extend")
        group.addoption(
            opt.flag,
            help=f"{opt.help}. Also ${opt.env} or ini {opt.key}.",
            **kwargs,
        )
        parser.addini(opt.key, f"{opt.help} (overridden by {opt.flag} and ${opt.env})",
                      type="bool" if opt.is_flag else "string", default=None)


def _ini(config: pytest.Config, key: str) -> object:
    try:
        return config.getini(key)
    except ValueError:
        return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "walredo: the test drives a walredo process")
    try:
        settings = resolve_settings(lambda k: config.getoption(k), lambda k: _ini(config, k))
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    config.stash[START_KEY] = time.time()
    _load_hypothesis_profile(config, settings)
    config.pluginmanager.register(WalredoReporting(), "walredo-reporting")
    config.pluginmanager.register(WalredoVerdicts(), "walredo-verdicts")
    if is_xdist_worker(config) or config.option.help:
        return
    # A bad --walredo-bin, baseline or corpus is one error at session start, not a traceback in
    # every test.
    for source in settings.corpus or ():
        if not source.exists():
            raise pytest.UsageError(f"--walredo-corpus {source}: no such corpus folder or archive")
    if settings.corpus:
        session_corpus(config)  # every entry read and checked now: a bad one is one usage error
    for key, path, lib_dir, flag in ((BINARY_KEY, settings.bin, settings.lib_dir, "--walredo-bin"),
                                     (BASELINE_KEY, settings.baseline_bin, settings.baseline_lib_dir,
                                      "--walredo-baseline-bin")):
        if path is None:
            continue
        try:
            binary = user_binary(path, lib_dir, settings.pg_version, settings.flavour, flag=flag)
            probe_binary(binary, timeout=min(settings.timeout, 10.0), limits=launch_limits(settings), flag=flag,
                         hang_check=settings.hang_check)
        except BinaryError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[key] = binary


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: workers write into this session's dump folder too."""
    settings = node.config.stash.get(SETTINGS_KEY, None)
    if settings is not None and settings.dump_dir is None:
        node.workerinput[WORKER_SESSION] = str(dump_root(node.config, settings))


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    """``assert got == want`` on 8192-byte pages, one of them a page a walredo process answered
    in this test: remember the other as the expected page (saved with the failure) and explain
    the difference field by field instead of byte by byte."""
    if op != "==":
        return None
    capture = active_capture()
    exchange = capture.compared_pages(left, right) if capture is not None else None
    if exchange is None or exchange.expected is None or exchange.answer is None:
        return None
    from ..render.pagediff import diff_pages, render_diff

    side = "left" if exchange.answer == left else "right"
    text = render_diff(diff_pages(exchange.expected, exchange.answer), "expected", "answer").splitlines()
    return [f"the walredo answer ({side}) to {exchange.describe()} is not the expected page: "
            f"{text[0] if text else 'pages differ'}", *text[1:MAX_EXPLAINED_LINES],
            *(["  ... (the whole diff is in the failure artifacts)"] if len(text) > MAX_EXPLAINED_LINES else [])]


MAX_EXPLAINED_LINES = 25
"""Lines of page diff shown in a failed page comparison."""


def launch_limits(settings: WalredoSettings) -> dict[str, object]:
    """The resource-limit fields of :class:`~pytest_walredo.process.LaunchConfig` the settings
    ask for."""
    return {"rlimit_as": settings.rlimit_as, "rlimit_cpu": settings.rlimit_cpu,
            "core_dumps": settings.core_dumps, "no_new_privs": settings.no_new_privs}


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return []
    from ..process import LaunchConfig

    limits = LaunchConfig(Path("walredo"), **launch_limits(settings)).limits_summary()  # type: ignore[arg-type]
    binary = settings.bin if settings.bin is not None else "embedded reference walredo"
    lines = [f"walredo: {binary}; limits: {limits}; every process it starts is killed at teardown"]
    if settings.baseline_bin is not None:
        lines.append(f"walredo baseline: {settings.baseline_bin} (pages compared with mask "
                     f"{settings.baseline_mask}): every request of the conformance suite runs on both")
    return lines


def _load_hypothesis_profile(config: pytest.Config, settings: WalredoSettings) -> None:
    """Make the chosen walredo profile Hypothesis's active one for every test of the session.

    Hypothesis's own ``--hypothesis-profile`` wins when it is given and no walredo profile was
    chosen explicitly (flag, environment or ini)."""
    if settings.hypothesis_profile is None and config.getoption("hypothesis_profile", None):
        return
    config.stash[PROFILE_KEY] = load_profile(settings.hypothesis_profile)


@pytest.fixture(scope="session")
def walredo_settings(pytestconfig: pytest.Config) -> WalredoSettings:
    """The resolved walredo settings (flags, environment, ini, defaults)."""
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def walredo_bin(
    pytestconfig: pytest.Config,
    walredo_settings: WalredoSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> WalredoBinary:
    """The walredo binary under test: ``--walredo-bin`` or the embedded reference walredo."""
    s = walredo_settings
    if s.bin is None:
        return reference_binary(tmp_path_factory.mktemp("walredo-ref"), s.pg_version, s.flavour)
    if BINARY_KEY in pytestconfig.stash:
        return pytestconfig.stash[BINARY_KEY]
    try:  # an xdist worker: the controller already probed it
        return user_binary(s.bin, s.lib_dir, s.pg_version, s.flavour)
    except BinaryError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def walredo_baseline_bin(pytestconfig: pytest.Config, walredo_settings: WalredoSettings) -> WalredoBinary | None:
    """The baseline binary of differential mode (``--walredo-baseline-bin``), or None."""
    s = walredo_settings
    if s.baseline_bin is None:
        return None
    if BASELINE_KEY in pytestconfig.stash:
        return pytestconfig.stash[BASELINE_KEY]
    try:  # an xdist worker: the controller already probed it
        return user_binary(s.baseline_bin, s.baseline_lib_dir, s.pg_version, s.flavour,
                           flag="--walredo-baseline-bin")
    except BinaryError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def walredo_factory(
    request: pytest.FixtureRequest,
    walredo_bin: WalredoBinary,
    walredo_settings: WalredoSettings,
    tmp_path: Path,
) -> Iterator[WalredoFactory]:
    """Start walredo processes for this test: ``walredo_factory(faults=..., sync=...)``.

    Every process it started is killed and reaped when the test ends, passed or failed.
    """
    capture = TestCapture(request.node.nodeid)
    factory = WalredoFactory(
        walredo_bin,
        timeout=walredo_settings.timeout,
        hang_check=walredo_settings.hang_check,
        workdir_root=tmp_path,
        dump_dir=dump_dir_for_test(request.config, walredo_settings, request.node.nodeid),
        limits=launch_limits(walredo_settings),
        capture=capture,
    )
    request.node.stash[CAPTURE_KEY] = capture
    capture.activate()
    try:
        yield factory
    finally:
        capture.deactivate()
        # Report the sandbox state the pageserver relies on: seccomp after the first request.
        for pid, mode in factory.seccomp_report():
            request.node.user_properties.append(("walredo_seccomp_mode", mode))
            log.info("walredo pid %d ran with seccomp mode %s after its first request", pid, mode)
        factory.close_all()


@pytest.fixture
def walredo_process(walredo_factory: WalredoFactory) -> ManagedClient:
    """A sandboxed walredo process for this test, driven by the async pipelined client
    (``await walredo_process.apply(req)``, ``await walredo_process.expect(req, page)``).
    After a failed call, the next call runs on a fresh process."""
    return walredo_factory(label="walredo_process")


@pytest.fixture
def walredo(walredo_factory: WalredoFactory) -> ManagedSyncClient:
    """A sandboxed walredo process for this test, driven by the blocking client
    (``walredo.apply(req)``, ``walredo.expect(req, page)``). After a failed call, the next call
    runs on a fresh process."""
    return walredo_factory(sync=True, label="walredo")
