"""Per-run state the plugin's pieces share: stash keys and where a test's dumps go.

Kept apart from ``plugin.py`` so that the reporting plugin object (``reporting.py``) can use it
without importing the plugin module that registers it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..target import WalredoBinary
from .settings import WalredoSettings

__all__ = [
    "BASELINE_KEY",
    "BINARY_KEY",
    "PROFILE_KEY",
    "SETTINGS_KEY",
    "START_KEY",
    "allure_active",
    "dump_dir_for_test",
    "dump_root",
    "is_xdist_worker",
]

SETTINGS_KEY = pytest.StashKey[WalredoSettings]()
BINARY_KEY = pytest.StashKey[WalredoBinary]()
BASELINE_KEY = pytest.StashKey[WalredoBinary]()
"""The probed ``--walredo-baseline-bin`` (set on the controller, or the only process)."""
PROFILE_KEY = pytest.StashKey[str]()
"""The Hypothesis profile the plugin loaded for the session (absent: Hypothesis's own choice)."""
START_KEY = pytest.StashKey[float]()

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def allure_active(config: pytest.Config) -> bool:
    """True when allure-pytest is loaded and writing results (``--alluredir``)."""
    return bool(getattr(config.option, "allure_report_dir", None)) and config.pluginmanager.hasplugin(
        "allure_pytest"
    )


def dump_root(config: pytest.Config, settings: WalredoSettings) -> Path:
    """``--walredo-dump-dir``, else ``<basetemp>/walredo-dumps`` (the controller's under xdist)."""
    if settings.dump_dir is not None:
        return settings.dump_dir.resolve()
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    if is_xdist_worker(config):
        base = base.parent  # each worker's basetemp is a folder of the controller's
    return base / "walredo-dumps"


def dump_dir_for_test(config: pytest.Config, settings: WalredoSettings, nodeid: str) -> Path:
    """The folder of one test's dumps and failure artifacts, named after its node id."""
    name = _UNSAFE.sub("_", nodeid).strip("_")[-120:] or "test"
    return dump_root(config, settings) / name

