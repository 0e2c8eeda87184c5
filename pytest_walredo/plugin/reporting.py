"""Failure artifacts for walredo tests: the reporting plugin (registered as ``walredo-reporting``).

When the call phase of a *walredo test* fails, :class:`WalredoReporting` completes the test's
:class:`~.example.FailingExample` (the one a recorder handed over with
:func:`~.example.record_failure`, or an empty one) with what the run left: the Hypothesis
seed and ``@reproduce_failure`` line, each process's stderr tail and exit status, the
``.walredo`` dumps the test's clients wrote. It passes the record to the artifacts writer
(:func:`~.artifacts.write_failure_artifacts`) and the written files to the Allure attacher
(:mod:`.allure`): one record, one way.

A walredo test is one that uses the ``walredo_factory`` fixture (``walredo`` and
``walredo_process`` do), carries the ``walredo`` marker, or recorded a failing example.

The failed report gets a ``walredo failing example`` section (the recorded example as text)
and a ``walredo_example`` user property (its JSON summary) when one was recorded, a
``walredo artifacts`` section naming the directory and the files (shown under the failure),
and a ``walredo_artifacts`` user property (in junit XML); the terminal summary lists every
failed test's artifact index. With allure-pytest active (``--alluredir``) every file is
attached to the test's result; without Allure the files are still written. All of this also
works under xdist: files are written by the worker, the listing travels with the report.

Invariant: nothing here turns a failing test into an error or hides its failure; problems
gathering artifacts are logged and noted in the section.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

from ..process import SyncWalredoClient, WalredoClient
from . import allure
from .artifacts import FailureArtifacts, write_failure_artifacts
from .capture import CaptureDumper, TestCapture
from .example import FAILING_EXAMPLE_KEY, FailingExample, HypothesisInfo, ProcessInfo
from .managed import ManagedClient
from .runstate import CAPTURE_KEY, SETTINGS_KEY, allure_active, dump_dir_for_test, finish_dump_sessions

__all__ = ["ARTIFACTS_PROPERTY", "EXAMPLE_PROPERTY", "SECTION", "WalredoReporting", "hypothesis_info"]

log = logging.getLogger("pytest_walredo.plugin.reporting")

SECTION = "walredo artifacts"
"""Title of the report section listing a failed test's artifacts."""
EXAMPLE_SECTION = "walredo failing example"
"""Title of the report section showing the recorded failing example."""
MAX_LISTED_CLIENT_DUMPS = 20
"""Client-written dumps named in the report section (the newest); the index has the count."""
ARTIFACTS_PROPERTY = "walredo_artifacts"
"""User property (junit XML) holding the path of a failed test's artifact index file."""
EXAMPLE_PROPERTY = "walredo_example"
"""User property holding the JSON summary of the recorded failing example."""

_Client = WalredoClient | SyncWalredoClient


# ------------------------------------------------------------------------------------------
# What the run left: processes, dumps, the Hypothesis seed
# ------------------------------------------------------------------------------------------


def _client_dumps(clients: Iterable[_Client]) -> list[Path]:
    """Every dump file the given clients' dumpers wrote (and kept: a fixture's dumper drops
    those of Hypothesis examples that do not count), oldest first, each once."""
    out: list[Path] = []
    for c in clients:
        inner = c.client if isinstance(c, SyncWalredoClient) else c
        d = inner.dumper
        if d is not None:
            out.extend(p for p in (d.existing if isinstance(d, CaptureDumper) else d.written) if p not in out)
    return out


def _client_processes(clients: Iterable[_Client]) -> list[ProcessInfo]:
    """:class:`~.example.ProcessInfo` of every process behind the given clients (for the
    fixtures' clients, also the processes they replaced after failures)."""
    out = []
    for c in clients:
        inner = c.client if isinstance(c, SyncWalredoClient) else c
        if isinstance(inner, ManagedClient):
            out.extend(inner.process_infos())
            continue
        process = c.process
        if process is None:
            continue
        try:
            code = process.poll()
            tail = process.stderr_tail()
        except Exception as exc:  # never let a dead process's bookkeeping hide the failure
            code, tail = None, f"(stderr unavailable: {exc})"
        out.append(ProcessInfo(process.pid, code, tail))
    return out


_REPRODUCE = re.compile(r"@reproduce_failure\((?:[^()]|\([^()]*\))*\)")


def _exception_notes(exc: BaseException | None) -> list[str]:
    """Every ``__notes__`` entry of ``exc``, its causes and (for groups) its sub-exceptions."""
    out: list[str] = []
    seen: set[int] = set()
    todo = [exc] if exc is not None else []
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out.extend(str(n) for n in getattr(e, "__notes__", ()) or ())
        todo.extend(getattr(e, "exceptions", ()) or ())
        todo.append(e.__cause__)  # type: ignore[arg-type]
        todo.append(e.__context__)  # type: ignore[arg-type]
    return out


def hypothesis_info(item: pytest.Item, exc: BaseException | None, report_text: str = "") -> HypothesisInfo | None:
    """The seed and reproduction line of a failed Hypothesis test ``item``; None if not one.

    Hypothesis has no public API for the seed a run drew, so this reads the attributes its
    ``@given`` wrapper sets (``_hypothesis_internal_use_seed`` for ``@seed``,
    ``_hypothesis_internal_use_generated_seed`` for a drawn one) and falls back gracefully
    when a Hypothesis version does not have them. The ``@reproduce_failure`` line and the
    falsifying example come from the exception's notes and the report text.
    """
    func = getattr(item, "obj", None)
    if not getattr(func, "is_hypothesis_test", False):
        return None
    settings = getattr(func, "_hypothesis_internal_use_settings", None)
    print_blob = bool(getattr(settings, "print_blob", True))
    seed: int | None = getattr(func, "_hypothesis_internal_use_seed", None)
    source = "@seed"
    if seed is None and settings is not None and getattr(settings, "derandomize", False):
        source = "derandomize"
    elif seed is None:
        try:
            from hypothesis import core
        except ImportError:  # pragma: no cover - hypothesis is a dependency
            core = None  # type: ignore[assignment]
        forced = getattr(core, "global_force_seed", None)
        if forced is not None:
            seed, source = forced, "--hypothesis-seed"
        else:
            seed, source = getattr(func, "_hypothesis_internal_use_generated_seed", None), "generated"
            if seed is None:
                source = "unknown (the database or an explicit example supplied the failure)"
    notes = _exception_notes(exc)
    texts = [*notes, report_text]
    repro = next((m.group(0) for t in texts for m in [_REPRODUCE.search(t)] if m), None)
    # The falsifying example and what follows it (``Draw 1: ...`` lines of st.data()).
    start = next((i for i, n in enumerate(notes) if n.lstrip().startswith("Falsifying")), None)
    falsifying = None
    if start is not None:
        falsifying = "\n".join(n for n in notes[start:] if "@reproduce_failure" not in n)
    if falsifying is None:
        m = re.search(r"^Falsifying example:.*?(?=^\S|\Z)", report_text, re.M | re.S)
        falsifying = m.group(0) if m else None
    return HypothesisInfo(seed, source, repro, falsifying, print_blob)


# ------------------------------------------------------------------------------------------
# The plugin object
# ------------------------------------------------------------------------------------------


class WalredoReporting:
    """The pytest plugin object; register one per session (``walredo-reporting``)."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []
        """(nodeid, artifact index path) of every failed walredo test, as reports arrive."""

    # -- workers (or the only process): write and attach ------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when != "call" or not report.failed:
            return
        try:
            self._report_failure(item, call, report)
        except Exception as exc:  # the invariant: never hide the test failure
            log.exception("writing the walredo failure artifacts of %s failed", item.nodeid)
            report.sections.append((SECTION, f"could not write the failure artifacts: {exc}"))

    def _report_failure(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        recorded = item.stash.get(FAILING_EXAMPLE_KEY, None)
        factory = getattr(item, "funcargs", {}).get("walredo_factory")
        if recorded is None and factory is None and item.get_closest_marker("walredo") is None:
            return
        capture = item.stash.get(CAPTURE_KEY, None)
        if recorded is None and isinstance(capture, TestCapture):
            recorded = _captured_example(capture)
            if recorded is not None:
                recorded.prop = item.name
        settings = item.config.stash[SETTINGS_KEY]
        clients: list[_Client] = factory.clients if factory is not None else []
        directory = Path(factory.dump_dir) if factory is not None else dump_dir_for_test(
            item.config, settings, item.nodeid)
        exc = call.excinfo.value if call.excinfo is not None else None
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "") or "failed"
        outcome = crash.strip().splitlines()[0] if crash.strip() else "failed"

        example = recorded if recorded is not None else FailingExample()
        example.seed = hypothesis_info(item, exc, report.longreprtext)
        example.processes = _client_processes(clients)
        example.process_dumps = _client_dumps(clients)
        if example.requests:
            report.sections.append((EXAMPLE_SECTION, example.render()))
            report.user_properties.append((EXAMPLE_PROPERTY, json.dumps(example.summary())))

        written = write_failure_artifacts(directory, example, test_id=item.nodeid, outcome=outcome,
                                          pg_version=settings.pg_version, flavour=settings.flavour,
                                          walredo_bin=settings.bin)
        report.sections.append((SECTION, _listing(written, example.process_dumps)))
        report.user_properties.append((ARTIFACTS_PROPERTY, str(written.index)))
        if allure_active(item.config):
            allure.attach(written.artifacts)

    # -- controller (or the only process): summary ------------------------------------------

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        settings = config.stash.get(SETTINGS_KEY, None)
        if settings is not None and not hasattr(config, "workerinput"):
            finish_dump_sessions(config, settings)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or not report.failed:
            return
        for key, value in report.user_properties:
            if key == ARTIFACTS_PROPERTY:
                self.failures.append((report.nodeid, str(value)))

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if not self.failures or hasattr(config, "workerinput"):
            return
        terminalreporter.section("walredo failure artifacts")
        settings = config.stash.get(SETTINGS_KEY, None)
        session = finish_dump_sessions(config, settings) if settings is not None else None
        if session is not None and settings is not None:
            terminalreporter.write_line(f"this session's folder: {session} (the newest {settings.dump_keep} "
                                        f"sessions are kept; --walredo-dump-keep)")
        for nodeid, index in self.failures:
            terminalreporter.write_line(f"{nodeid}")
            terminalreporter.write_line(f"  {Path(index).parent}  (index: {Path(index).name})")


def _captured_example(capture: TestCapture) -> FailingExample | None:
    """What the fixtures' clients recorded, once the failing request's history is known."""
    final = capture.final_example()
    if final is None or not final.exchanges:
        return None
    for client in capture.clients:
        try:
            client.check_alone(final)
        except Exception:  # the check is a refinement; never let it hide the failure
            log.exception("checking whether the failing request needs earlier calls failed")
    return capture.failing_example()


def _listing(written: FailureArtifacts, client_dumps: list[Path]) -> str:
    """The ``walredo artifacts`` report section: the directory, the files, the next steps."""
    dumped = set(client_dumps)
    lines = [f"failure artifacts in {written.directory}:"]
    lines += [f"  {a.name}" for a in written.artifacts if a.path not in dumped]
    if len(client_dumps) > MAX_LISTED_CLIENT_DUMPS:
        lines.append(f"  ... {len(client_dumps) - MAX_LISTED_CLIENT_DUMPS} older dump(s) written by the client")
    lines += [f"  {p.name} (written by the client)" for p in client_dumps[-MAX_LISTED_CLIENT_DUMPS:]]
    if written.next_steps:
        lines.append(f"next steps (cd {written.directory}):")
        lines += written.next_steps[1:]
    return "\n".join(lines)
