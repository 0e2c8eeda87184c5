"""Failure artifacts for walredo tests: written to the dump directory and attached to Allure.

Registered by the plugin as ``walredo-reporting`` (an instance of :class:`WalredoReporting`).
When the call phase of a *walredo test* fails, it gathers what explains the failure and hands
it to :func:`pytest_walredo.plugin.artifacts.write_failure_artifacts`:

* the final failing example from a recorder (:class:`~pytest_walredo.plugin.artifacts.FailureRecord`,
  set with :func:`~pytest_walredo.plugin.artifacts.record_failure`, exposed by a fixture value with a
  ``failure_record()`` method, or the conformance suite's ``walredo_recorder``): one
  ``.walredo`` per request, its decode, the page diff;
* the ``.walredo`` dumps the test's walredo clients already wrote (decoded);
* each process's stderr tail and exit status;
* for Hypothesis tests, the seed and the ``@reproduce_failure`` line.

A walredo test is one that uses the ``walredo_factory`` fixture (``walredo`` and
``walredo_process`` do), carries the ``walredo`` marker, or left a failure record.

With allure-pytest active (``--alluredir``) every file is attached to the test's result
(``.walredo`` and pages as ``application/octet-stream``, the rest as text); the client's own
dumps are not attached again (the plugin attaches them as they are written). Without Allure the
files are still written. The failed report gets a ``walredo artifacts`` section naming the
directory and the files (shown under the failure), a ``walredo_artifacts`` user property (in
junit XML), and the terminal summary lists every failed test's artifact index. All of this also
works under xdist: files are written by the worker, the listing travels with the report.

Invariant: nothing here turns a failing test into an error or hides its failure; problems
gathering artifacts are logged and noted in the section.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .artifacts import (
    FAILURE_RECORD_KEY,
    Artifact,
    FailureArtifacts,
    FailureRecord,
    FailureRecordSource,
    client_dumps,
    client_processes,
    hypothesis_info,
    record_from_example,
    write_failure_artifacts,
)
from .runstate import SETTINGS_KEY, allure_active, dump_dir_for_test

__all__ = ["ARTIFACTS_PROPERTY", "SECTION", "WalredoReporting"]

log = logging.getLogger("pytest_walredo.plugin.reporting")

SECTION = "walredo artifacts"
"""Title of the report section listing a failed test's artifacts."""
MAX_LISTED_CLIENT_DUMPS = 20
"""Client-written dumps named in the report section (the newest); the index has the count."""
ARTIFACTS_PROPERTY = "walredo_artifacts"
"""User property (junit XML) holding the path of a failed test's artifact index file."""


def _find_record(item: pytest.Item) -> FailureRecord | None:
    record = item.stash.get(FAILURE_RECORD_KEY, None)
    if record is not None:
        return record
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, FailureRecordSource) and not isinstance(value, type):
            try:
                found = value.failure_record()
            except Exception:
                log.exception("failure_record() of %r failed", value)
                continue
            if found is not None:
                return found
    for value in getattr(item, "funcargs", {}).values():
        # The conformance suite's ExampleRecorder (duck-typed: see record_from_example).
        current = getattr(value, "current", None)
        if current is not None and all(hasattr(current, a) for a in ("prop", "requests", "expected", "actual")):
            return record_from_example(current)
    return None


def _attach(artifacts: list[Artifact]) -> None:
    import allure

    for a in artifacts:
        if a.mime.startswith("text/"):
            allure.attach.file(str(a.path), name=a.name, attachment_type=allure.attachment_type.TEXT)
        else:
            allure.attach.file(str(a.path), name=a.name, attachment_type=a.mime, extension=a.extension)


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
        record = _find_record(item)
        factory = getattr(item, "funcargs", {}).get("walredo_factory")
        if record is None and factory is None and item.get_closest_marker("walredo") is None:
            return
        settings = item.config.stash[SETTINGS_KEY]
        clients = factory.clients if factory is not None else []
        directory = Path(factory.dump_dir) if factory is not None else dump_dir_for_test(
            item.config, settings, item.nodeid)
        exc = call.excinfo.value if call.excinfo is not None else None
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "") or "failed"
        outcome = crash.strip().splitlines()[0] if crash.strip() else "failed"
        written: FailureArtifacts = write_failure_artifacts(
            directory,
            test_id=item.nodeid,
            outcome=outcome,
            pg_version=settings.pg_version,
            flavour=settings.flavour,
            record=record,
            process_dumps=client_dumps(clients),
            processes=client_processes(clients),
            hypothesis=hypothesis_info(item, exc, report.longreprtext),
            walredo_bin=settings.bin,
        )
        lines = [f"failure artifacts in {written.directory}:"]
        lines += [f"  {a.name}" for a in written.artifacts]
        by_client = client_dumps(clients)
        if len(by_client) > MAX_LISTED_CLIENT_DUMPS:
            lines.append(f"  ... {len(by_client) - MAX_LISTED_CLIENT_DUMPS} older dump(s) written by the client")
        lines += [f"  {p.name} (written by the client)" for p in by_client[-MAX_LISTED_CLIENT_DUMPS:]]
        if written.next_steps:
            lines.append(f"next steps (cd {written.directory}):")
            lines += written.next_steps[1:]
        report.sections.append((SECTION, "\n".join(lines)))
        report.user_properties.append((ARTIFACTS_PROPERTY, str(written.index)))
        if allure_active(item.config):
            _attach(written.artifacts)

    # -- controller (or the only process): summary ------------------------------------------

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
        for nodeid, index in self.failures:
            terminalreporter.write_line(f"{nodeid}")
            terminalreporter.write_line(f"  {Path(index).parent}  (index: {Path(index).name})")
