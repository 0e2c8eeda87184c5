"""Per-run state the plugin's pieces share: stash keys and where a test's dumps go.

Kept apart from ``plugin.py`` so that the reporting plugin object (``reporting.py``) can use it
without importing the plugin module that registers it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from ..target import WalredoBinary
from .settings import WalredoSettings

__all__ = [
    "BASELINE_KEY",
    "BINARY_KEY",
    "CAPTURE_KEY",
    "DUMP_FOLDER",
    "DUMP_SESSION_KEY",
    "PROFILE_KEY",
    "SETTINGS_KEY",
    "START_KEY",
    "WORKER_SESSION",
    "allure_active",
    "dump_dir_for_test",
    "dump_root",
    "finish_dump_sessions",
    "is_xdist_worker",
]

SETTINGS_KEY = pytest.StashKey[WalredoSettings]()
BINARY_KEY = pytest.StashKey[WalredoBinary]()
BASELINE_KEY = pytest.StashKey[WalredoBinary]()
"""The probed ``--walredo-baseline-bin`` (set on the controller, or the only process)."""
PROFILE_KEY = pytest.StashKey[str]()
"""The Hypothesis profile the plugin loaded for the session (absent: Hypothesis's own choice)."""
START_KEY = pytest.StashKey[float]()
CAPTURE_KEY = pytest.StashKey[object]()
"""The test's :class:`~.capture.TestCapture` (on the item, while its walredo_factory is up)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def allure_active(config: pytest.Config) -> bool:
    """True when allure-pytest is loaded and writing results (``--alluredir``)."""
    return bool(getattr(config.option, "allure_report_dir", None)) and config.pluginmanager.hasplugin(
        "allure_pytest"
    )


DUMP_FOLDER = ".walredo-dumps"
"""The default home of failure artifacts, in the rootdir, like ``.pytest_cache``: it outlives
pytest's temporary folders (which keep only the last 3 runs of *any* pytest on the machine)."""
DUMP_SESSION_KEY = pytest.StashKey[Path]()
"""This session's folder under :data:`DUMP_FOLDER` (absent with ``--walredo-dump-dir``)."""
WORKER_SESSION = "walredo_dump_session"
"""The ``workerinput`` key through which xdist workers learn the controller's session folder."""
_SESSION_NAME = re.compile(r"^\d{8}-\d{6}-\d+$")
_GITIGNORE = "# Created by pytest-walredo: failure artifacts of the last test sessions.\n*\n"


def dump_root(config: pytest.Config, settings: WalredoSettings) -> Path:
    """``--walredo-dump-dir``, else this session's folder in ``<rootdir>/.walredo-dumps``
    (``YYYYmmdd-HHMMSS-PID``; xdist workers use the controller's; ``<basetemp>/walredo-dumps``
    when the rootdir is not writable)."""
    if settings.dump_dir is not None:
        return settings.dump_dir.resolve()
    path = config.stash.get(DUMP_SESSION_KEY, None)
    if path is None:
        given = getattr(config, "workerinput", {}).get(WORKER_SESSION)
        if given:
            path = Path(given)
        elif os.access(config.rootpath, os.W_OK):
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            path = Path(config.rootpath) / DUMP_FOLDER / name
        else:  # a read-only checkout: pytest's temporary folder, as before
            path = config._tmp_path_factory.getbasetemp() / "walredo-dumps"  # type: ignore[attr-defined]
        config.stash[DUMP_SESSION_KEY] = path
    return path


def _session_running(name: str) -> bool:
    """Whether the pytest process that named a session folder (``...-PID``) still runs. A PID
    reused by another process keeps the folder a little longer, which is the safe mistake."""
    pid = int(name.rsplit("-", 1)[1])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def finish_dump_sessions(config: pytest.Config, settings: WalredoSettings) -> Path | None:
    """At the end of the run (controller only): when this session wrote into the default
    folder, mark the folder ignored by git and keep only its newest ``dump_keep`` sessions.
    Returns this session's folder if it exists."""
    path = config.stash.get(DUMP_SESSION_KEY, None)
    if settings.dump_dir is not None or path is None or not path.is_dir():
        return None
    root = path.parent
    try:
        ignore = root / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="utf-8")
        sessions = sorted(p for p in root.iterdir() if p.is_dir() and _SESSION_NAME.match(p.name))
        for old in sessions[:-settings.dump_keep]:
            # Invariant: a session still running (another pytest in this checkout) keeps its
            # folder, however many sessions came after it.
            if old != path and not _session_running(old.name):
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        import logging

        logging.getLogger("pytest_walredo.plugin").warning("could not tidy %s: %s", root, exc)
    return path


def dump_dir_for_test(config: pytest.Config, settings: WalredoSettings, nodeid: str) -> Path:
    """The folder of one test's dumps and failure artifacts, named after its node id."""
    name = _UNSAFE.sub("_", nodeid).strip("_")[-120:] or "test"
    return dump_root(config, settings) / name
