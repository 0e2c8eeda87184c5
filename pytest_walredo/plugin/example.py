"""The failing example of a test: one typed record that flows one way.

A recorder fills a :class:`FailingExample` while the test runs and hands it over with
:func:`record_failure` (the last call wins: record every Hypothesis example that fails and the
final, shrunk one is what remains); when the test fails, the reporting plugin
(:mod:`.reporting`) completes it with what the run left (the Hypothesis seed, each process's
stderr tail, the dumps the clients wrote) and passes it to the artifacts writer
(:func:`.artifacts.write_failure_artifacts`), whose files the Allure attacher (:mod:`.allure`)
attaches. The conformance suite's recorder (``walredo_recorder``) and a user's own test use the
same record::

    from pytest_walredo import ExampleRequest, FailingExample, record_failure

    def test_mine(request, walredo):
        page = walredo.apply(req)
        record_failure(request.node, FailingExample([ExampleRequest(req, expected, page)]))
        assert page == expected
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..protocol import RedoRequest

__all__ = [
    "FAILING_EXAMPLE_KEY",
    "ExampleRequest",
    "FailingExample",
    "HypothesisInfo",
    "ProcessInfo",
    "SessionRef",
    "record_failure",
]


@dataclass(frozen=True)
class SessionRef:
    """Everything one process received since it was launched, up to and including one call of
    the example: ``stream`` (the bytes, in pipe order), ``offset`` (where that call starts in
    it), ``index`` (its number among the stream's calls: requests and pings, from 0), ``pid``,
    and ``needs_history``: whether the call fails only after the earlier ones (None: unknown)."""

    stream: bytes
    offset: int
    index: int
    pid: int | None = None
    needs_history: bool | None = None


@dataclass
class ExampleRequest:
    """One caller's job in the example and what came of it.

    ``request`` is the request, its exact encoded bytes (for malformed input that no
    :class:`RedoRequest` can express), or None for a ping. ``expected`` is the page the oracle
    wanted, ``actual`` the page the process answered, ``error`` the error raised instead of a
    page; any may be None.
    """

    request: RedoRequest | bytes | None
    expected: bytes | None = None
    actual: bytes | None = None
    error: str | None = None
    caller: int | None = None
    """The caller (interleaving participant) that sent it, when several did."""
    failure: str | None = None
    """How it failed at the process level: ``crash``, ``timeout`` or ``poisoned`` (None: it
    was answered, or ``error`` says something else)."""
    session: SessionRef | None = None
    """The stream its process received up to it, when earlier calls went to the same process."""
    dump: Path | None = None
    """The ``.walredo`` file the client already wrote for it (reused, not written twice)."""

    def encoded(self) -> bytes | None:
        """The bytes written to the process's stdin for this request (None for a ping)."""
        if self.request is None:
            return None
        if isinstance(self.request, RedoRequest):
            return self.request.encode()
        return bytes(self.request)

    def describe(self) -> str:
        if self.request is None:
            return "ping"
        if isinstance(self.request, RedoRequest):
            return self.request.describe()
        return f"{len(self.request)} raw bytes"


@dataclass(frozen=True)
class HypothesisInfo:
    """How to get the failing example of a Hypothesis test back."""

    seed: int | None
    seed_source: str
    """``@seed``, ``--hypothesis-seed``, ``derandomize`` or ``generated`` (drawn for this run)."""
    reproduce_failure: str | None
    """The ``@reproduce_failure('version', b'...')`` decorator, when Hypothesis printed it."""
    falsifying_example: str | None
    print_blob: bool

    def text(self) -> str:
        """The ``.hypothesis.txt`` content: seed, reproduction line, falsifying example."""
        lines = []
        if self.seed is not None:
            lines.append(f"seed: {self.seed} ({self.seed_source})")
            if self.seed_source in ("generated", "--hypothesis-seed"):
                lines.append(f"  rerun with: pytest --hypothesis-seed={self.seed} (or add @seed({self.seed}))")
        else:
            lines.append(f"seed: none ({self.seed_source})")
        if self.reproduce_failure:
            lines.append(f"reproduce with the decorator: {self.reproduce_failure}")
        elif not self.print_blob:
            lines.append("no @reproduce_failure line: the test's Hypothesis settings have print_blob=False")
        else:
            lines.append("no @reproduce_failure line was printed for this failure")
        if self.falsifying_example:
            lines.append("")
            lines.append(self.falsifying_example.strip())
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ProcessInfo:
    """A walredo process the test used: its pid, exit status (None = running) and stderr tail."""

    pid: int
    returncode: int | None
    stderr_tail: str
    ended: str | None = None
    """Why the harness replaced it during the test (the failure that poisoned its client)."""

    def describe(self) -> str:
        """``walredo pid N exited with status 1: FATAL: ...`` (status, signal, FATAL line)."""
        from ..process.errors import describe_returncode, stderr_summary

        said = stderr_summary(self.stderr_tail)
        return f"walredo pid {self.pid} {describe_returncode(self.returncode)}" + (f": {said}" if said else "")


@dataclass
class FailingExample:
    """The final failing example of one test.

    Filled by the recorder: ``requests`` (caller ``i``'s job is ``requests[i]``), the
    interleaving ``timeline`` (one event per line) and ``schedule``, ``notes`` (the oracle's
    verdict...), ``oracle`` (what gave the expected pages: ``model``, ``corpus``, ``baseline``),
    ``stderr_tail`` (what the recorder captured), and how long the search took
    (``examples`` run, ``first_failure_at``: the example that failed first).

    Completed by the reporting plugin when the test fails: ``seed``, ``processes`` (every
    process the test's clients started) and ``process_dumps`` (``.walredo`` files the clients
    wrote for requests that failed at the process level). ``first``: the first failing example,
    written too when it differs from this final one.
    """

    requests: list[ExampleRequest] = field(default_factory=list)
    prop: str | None = None
    timeline: list[str] = field(default_factory=list)
    schedule: str | None = None
    notes: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    examples: int | None = None
    first_failure_at: int | None = None
    seed: HypothesisInfo | None = None
    processes: list[ProcessInfo] = field(default_factory=list)
    process_dumps: list[Path] = field(default_factory=list)
    oracle: str | None = None
    first: FailingExample | None = None
    """The first failing example Hypothesis found (before shrinking), when it is not this one."""

    # -- filling it in, caller by caller ---------------------------------------------------------

    def set_requests(self, jobs: Iterable[RedoRequest | bytes | None]) -> None:
        """One :class:`ExampleRequest` per caller's job (None: a ping)."""
        jobs = list(jobs)
        many = len(jobs) > 1
        self.requests = [ExampleRequest(j, caller=i if many else None) for i, j in enumerate(jobs)]

    def set_pages(self, *, expected: Sequence[bytes | None] | None = None,
                  actual: Sequence[bytes | None] | None = None) -> None:
        """The expected and/or actual page of each caller, in caller order."""
        for pages, attr in ((expected, "expected"), (actual, "actual")):
            if pages is None:
                continue
            for r, page in zip(self.requests, pages, strict=False):
                setattr(r, attr, page)

    # -- reading it ------------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        return sum(1 for r in self.requests if r.request is not None)

    @property
    def record_count(self) -> int:
        return sum(len(r.request.records) for r in self.requests if isinstance(r.request, RedoRequest))

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (the ``walredo_example`` user property of a failed test)."""
        return {
            "property": self.prop,
            "examples": self.examples,
            "first_failure_at": self.first_failure_at,
            "callers": len(self.requests),
            "requests": self.request_count,
            "records": self.record_count,
            "jobs": [r.describe() for r in self.requests],
            "expected_differs": [r.expected is not None and r.actual is not None and r.expected != r.actual
                                 for r in self.requests],
            "timeline": list(self.timeline) or None,
            "schedule": self.schedule,
            "notes": list(self.notes),
            "oracle": self.oracle,
        }

    def render(self) -> str:
        """The example as short readable text (jobs, notes, timeline): the ``walredo failing
        example`` section of a failed test's report."""
        found = (f"; first failure after {self.first_failure_at} example(s)"
                 if self.first_failure_at is not None else "")
        lines = [f"property {self.prop or '?'}: {len(self.requests)} caller(s), {self.request_count} "
                 f"request(s), {self.record_count} record(s){found}"]
        if self.oracle:
            lines[0] += f"; expected pages from the {self.oracle}"
        lines += [f"  c{i}: {r.describe()}" for i, r in enumerate(self.requests)]
        lines += [f"  note: {n}" for n in self.notes]
        if self.timeline:
            lines.append(f"timeline ({self.schedule}):" if self.schedule else "timeline:")
            lines += [f"  {t}" for t in self.timeline]
        return "\n".join(lines)


FAILING_EXAMPLE_KEY = pytest.StashKey[FailingExample]()


def record_failure(node: pytest.Item, example: FailingExample) -> None:
    """Remember ``example`` as the failing example of test ``node`` (replacing an earlier one)."""
    node.stash[FAILING_EXAMPLE_KEY] = example
