"""What judged each test, and the per-kind table of corpus verdicts: the plugin object registered
as ``walredo-verdicts``.

Tests report through two user properties, so that the verdicts travel from xdist workers to the
controller with the test reports:

- ``walredo_corpus`` (:data:`CORPUS_PROPERTY`): a corpus entry's verdict, JSON
  ``{"name", "kind", "verdict", "detail"}``; ``verdict`` is a
  :class:`~pytest_walredo.corpus.judge.Verdict` value or ``not-applicable`` (the entry is WAL of
  another version or flavour, see :func:`~pytest_walredo.corpus.judge.entry_applies`).
- ``walredo_oracle`` (:data:`ORACLE_PROPERTY`): what judged the test: ``model`` (the redo
  model's page), ``corpus`` (the page PostgreSQL logged), ``baseline`` (the baseline binary's
  answer), ``property`` (the property's own rule, e.g. determinism), joined with ``+``.

At the end of the run (the controller, or the only process) the terminal summary gets a
``walredo verdicts`` section: the per-kind table (matched / differing / failed / unsupported), the
entries that did not apply, and how many tests each oracle judged. With allure-pytest active the
same text is attached to the run (a global attachment).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from ..corpus.judge import EntryResult, Verdict, kind_table
from . import allure
from .runstate import allure_active, is_xdist_worker

__all__ = ["CORPUS_PROPERTY", "NOT_APPLICABLE", "ORACLE_PROPERTY", "WalredoVerdicts", "corpus_property"]

CORPUS_PROPERTY = "walredo_corpus"
ORACLE_PROPERTY = "walredo_oracle"
NOT_APPLICABLE = "not-applicable"
SECTION = "walredo verdicts"


def corpus_property(name: str, kind: str, verdict: Verdict | str, detail: str = "") -> tuple[str, str]:
    """The ``walredo_corpus`` user property of one entry's test."""
    value = verdict.value if isinstance(verdict, Verdict) else verdict
    return CORPUS_PROPERTY, json.dumps({"name": name, "kind": kind, "verdict": value, "detail": detail})


class WalredoVerdicts:
    """Collects the two properties from call-phase reports and prints the summary."""

    def __init__(self) -> None:
        self.results: list[EntryResult] = []
        self.not_applicable: list[tuple[str, str]] = []
        """(entry name, why) of the entries that do not apply to the walredo under test."""
        self.oracles: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == ORACLE_PROPERTY:
                for name in str(value).split("+"):
                    self.oracles[name] += 1
            elif key == CORPUS_PROPERTY:
                doc = json.loads(str(value))
                if doc["verdict"] == NOT_APPLICABLE:
                    self.not_applicable.append((doc["name"], doc["detail"]))
                else:
                    self.results.append(EntryResult(doc["name"], doc["kind"], Verdict(doc["verdict"]),
                                                    doc.get("detail", "")))

    def text(self) -> str:
        """The summary: the table, what did not apply, the oracles ("" when nothing to say)."""
        lines = []
        if self.results:
            lines.append(kind_table(self.results).rstrip("\n"))
        if self.not_applicable:
            lines.append(f"{len(self.not_applicable)} entries skipped, not of this walredo's version or "
                         f"flavour (e.g. {self.not_applicable[0][0]}: {self.not_applicable[0][1]})")
        if self.oracles:
            lines.append("tests judged by: " + ", ".join(f"{name} {n}" for name, n in sorted(self.oracles.items())))
        return "\n".join(lines) + "\n" if lines else ""

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if is_xdist_worker(config) or not self.text():
            return
        terminalreporter.section(SECTION)
        for line in self.text().splitlines():
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        config = session.config
        if is_xdist_worker(config) or not self.text() or not allure_active(config):
            return
        allure.attach_global_text("walredo verdicts: corpus entries per kind, oracles", self.text())
