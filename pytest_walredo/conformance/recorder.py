"""What the current (and so, after shrinking, the final failing) example of a conformance
property did: its requests, expected and actual pages, and the interleaving timeline.

One :class:`ExampleRecorder` per test (fixture ``walredo_recorder``). Each property calls
:meth:`ExampleRecorder.example` at the start of every Hypothesis example, which resets the
record; Hypothesis replays the minimal failing example last, so when a test fails,
:attr:`ExampleRecorder.current` is that example. The suite's conftest then puts
:meth:`ExampleRecorder.render` into the failure report (section ``walredo failing example``) and
:meth:`ExampleRecorder.summary` into the test's ``user_properties`` as ``walredo_example``
(a JSON-able dict), where reporting tools (Allure attachments, the bug table) pick it up.

Usage inside a property::

    with walredo_recorder.example("determinism") as ex:
        ex.requests = [req]
        ex.expected = [first]
        ex.actual = [second]
        assert first == second
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_walredo.interleave import Schedule, Timeline
from pytest_walredo.protocol import RedoRequest

__all__ = ["ExampleRecord", "ExampleRecorder"]


@dataclass
class ExampleRecord:
    """One example. ``requests[i]`` is caller i's job (None = a ping); ``expected[i]`` /
    ``actual[i]`` its pages (None when it has none, e.g. an error: see ``notes``)."""

    prop: str
    requests: list[RedoRequest | None] = field(default_factory=list)
    expected: list[bytes | None] = field(default_factory=list)
    actual: list[bytes | None] = field(default_factory=list)
    timeline: Timeline | None = None
    schedule: Schedule | None = None
    notes: list[str] = field(default_factory=list)
    failed: bool = False

    @property
    def callers(self) -> int:
        return len(self.requests)

    @property
    def request_count(self) -> int:
        return sum(1 for r in self.requests if r is not None)

    @property
    def record_count(self) -> int:
        return sum(len(r.records) for r in self.requests if r is not None)


class ExampleRecorder:
    """Per-test recorder of the current example (see the module docstring).

    ``examples``: examples started so far; ``first_failure_at``: the number of the first
    example that failed (how many examples it took to find the bug), or None.
    """

    def __init__(self) -> None:
        self.current: ExampleRecord | None = None
        self.examples = 0
        self.first_failure_at: int | None = None
        self.listeners: list[Callable[[], None]] = []
        """Called at the start of every example (the process pool uses it)."""

    @contextlib.contextmanager
    def example(self, prop: str) -> Iterator[ExampleRecord]:
        """Start a new example of property ``prop``; mark it failed if the block raises."""
        self.examples += 1
        self.current = rec = ExampleRecord(prop)
        for listener in self.listeners:
            listener()
        try:
            yield rec
        except BaseException:
            rec.failed = True
            if self.first_failure_at is None:
                self.first_failure_at = self.examples
            raise

    def summary(self) -> dict[str, Any]:
        """A JSON-able description of the current example."""
        rec = self.current
        if rec is None:
            return {"examples": self.examples}
        return {
            "property": rec.prop,
            "failed": rec.failed,
            "examples": self.examples,
            "first_failure_at": self.first_failure_at,
            "callers": rec.callers,
            "requests": rec.request_count,
            "records": rec.record_count,
            "jobs": [r.describe() if r is not None else "ping" for r in rec.requests],
            "expected_differs": [
                (e is not None and a is not None and e != a)
                for e, a in zip(rec.expected, rec.actual, strict=False)
            ],
            "timeline": rec.timeline.lines() if rec.timeline is not None else None,
            "schedule": str(rec.schedule) if rec.schedule is not None else None,
            "notes": list(rec.notes),
        }

    def render(self) -> str:
        """The current example as short readable text (jobs, notes, timeline)."""
        s = self.summary()
        if "property" not in s:
            return "no example recorded"
        lines = [f"property {s['property']}: {s['callers']} caller(s), {s['requests']} request(s), "
                 f"{s['records']} record(s); first failure after {s['first_failure_at']} example(s)"]
        lines += [f"  c{i}: {job}" for i, job in enumerate(s["jobs"])]
        lines += [f"  note: {n}" for n in s["notes"]]
        if s["timeline"]:
            lines.append(f"timeline ({s['schedule']}):")
            lines += [f"  {t}" for t in s["timeline"]]
        return "\n".join(lines)
