"""Client-side mutants: deliberately broken variants of our own client, for the bug catalogue.

Each mutant is a mixin that overrides exactly one small step of
:class:`~pytest_walredo.process.WalredoClient` (the steps are separate methods for this
purpose) and goes in front of :class:`~pytest_walredo.interleave.ScheduledClient`, so the
conformance suite's interleaving property drives it like the real client. They exist to prove
that the suite notices each bug; nothing outside the project's own tests can select them:
there is no option or environment variable, only :func:`client_class` called by a test
that registers a :class:`SeededBugPlugin` with the pytest run.

=================  ===========================================================================
name               the bug
=================  ===========================================================================
``pop-front``      take the oldest unread-by-owner answer instead of answer #n, so a caller
                   that reaches stdout before an earlier one gets the earlier one's page
``off-by-one``     request numbers start at 1, so every caller waits for the answer after its
                   own
``no-poison``      cancelling a caller after its request number was assigned leaves the client
                   usable, so later callers wait for / take answers that are out of step, or
                   the abandoned answer stays buffered in the client for good
``early-release``  the stdin lock is released before the request is written, so another
                   caller's request can enter the pipe first while the numbers stay in order
=================  ===========================================================================
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..conformance.variant import SuiteVariant
from ..interleave import ScheduledClient
from ..process.client import Call

__all__ = ["CATALOGUE", "MUTANTS", "HuntResult", "SeededBug", "SeededBugPlugin", "classify",
           "client_class", "hunt"]


class PopFront:
    """``_take_response`` pops the front of the pending queue (the bug the pageserver had to
    avoid: see the take-semantics docstring in ``process/client.py``)."""

    def _take_response(self, request_no: int) -> bytes:
        pending = self._pending  # type: ignore[attr-defined]
        while pending and pending[0] is None:  # skip holes like the real trim would
            pending.popleft()
            self._n_processed += 1  # type: ignore[attr-defined]
        page = pending.popleft()
        self._n_processed += 1  # type: ignore[attr-defined]
        sched = getattr(self, "scheduler", None)
        if sched is not None:
            sched.note("take", request_no)
        return bytes(page)


class OffByOne:
    """Request numbers start at 1 instead of 0."""

    def _assign_request_number(self) -> int:
        self._n_requests += 1  # type: ignore[attr-defined]
        return self._n_requests  # type: ignore[attr-defined]


class NoPoison:
    """A cancellation after numbering does not poison the client."""

    def _poison_on_cancellation(self, call: Call, phase: str) -> None:
        return None


class EarlyRelease:
    """The stdin lock is released before the write instead of after it."""

    async def _write_request(self, call: Call) -> None:
        self._stdin_lock.release()  # type: ignore[attr-defined]
        await super()._write_request(call)  # type: ignore[misc]

    def _release_stdin_after_write(self) -> None:
        return None


MUTANTS: dict[str, type] = {
    "pop-front": PopFront,
    "off-by-one": OffByOne,
    "no-poison": NoPoison,
    "early-release": EarlyRelease,
}


def client_class(mutant: str | None) -> type[ScheduledClient]:
    """The scheduled client class with mutant ``mutant`` mixed in (None: the real client)."""
    if mutant is None:
        return ScheduledClient
    try:
        mixin = MUTANTS[mutant]
    except KeyError:
        raise ValueError(f"unknown client mutant {mutant!r}; known: {', '.join(MUTANTS)}") from None
    return type(f"Mutant_{mixin.__name__}", (mixin, ScheduledClient), {})


class SeededBugPlugin(SuiteVariant):
    """Register with ``pytest.main([...], plugins=[SeededBugPlugin(mutant="pop-front")])`` (or
    ``faults=["swap-responses:2"]``) to make the conformance suite hunt a seeded bug: its
    process pool then drives the mutant client and/or launches the process under test with
    these reference ``--fault=`` specs (a :class:`~pytest_walredo.conformance.variant.SuiteVariant`,
    which the suite finds among the run's plugins by type).
    """

    def __init__(self, *, mutant: str | None = None, faults: tuple[str, ...] = ()) -> None:
        super().__init__(client_class=client_class(mutant), faults=faults, hunt=True)
        self.mutant = mutant


# --------------------------------------------------------------------------------------------
# The seeded-bug catalogue and the hunt
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededBug:
    """One catalogue entry: a reference ``--fault`` or a client mutant, the conformance test
    expected to catch it, and the failure categories that count as the right reason."""

    name: str
    test: str
    reasons: tuple[str, ...]
    faults: tuple[str, ...] = ()
    mutant: str | None = None


_CONC = "test_concurrency.py::test_each_caller_gets_its_own_page"
CATALOGUE: tuple[SeededBug, ...] = (
    SeededBug("swap-responses", _CONC, ("wrong-page", "hang", "timeout"), faults=("swap-responses:1",)),
    SeededBug("drop-response", _CONC, ("wrong-page", "hang", "timeout"), faults=("drop-response:1",)),
    SeededBug("duplicate-response", _CONC, ("wrong-page", "error"), faults=("duplicate-response:1",)),
    SeededBug("ignore-records", "test_answers.py::test_pages_agree_with_the_model", ("wrong-page",),
              faults=("ignore-records",)),
    SeededBug("truncate-page", "test_answers.py::test_ping_answers_8192_bytes", ("hang", "timeout", "wrong-page"),
              faults=("truncate-page",)),
    SeededBug("no-lsn", "test_answers.py::test_full_page_image_is_restored_with_its_lsn", ("wrong-page",),
              faults=("no-lsn",)),
    SeededBug("corrupt-byte", "test_answers.py::test_getpage_answers_the_pushed_image", ("wrong-page",),
              faults=("corrupt-byte:100",)),
    SeededBug("crash-after", "test_answers.py::test_ping_answers_8192_bytes", ("error",),
              faults=("crash-after:1",)),
    SeededBug("hang-after", "test_answers.py::test_ping_answers_8192_bytes", ("hang", "timeout"),
              faults=("hang-after:1",)),
    SeededBug("pop-front", _CONC, ("wrong-page",), mutant="pop-front"),
    SeededBug("off-by-one", _CONC, ("wrong-page", "hang", "timeout"), mutant="off-by-one"),
    SeededBug("no-poison", _CONC, ("wrong-page", "hang", "abandoned", "timeout"), mutant="no-poison"),
    # Released early, two writes may also interleave piecewise on a full pipe: the process then
    # reads a torn stream and dies (error) or waits for bytes that never come (hang).
    SeededBug("early-release", _CONC, ("wrong-page", "hang", "timeout", "error"), mutant="early-release"),
)
"""Every seeded bug; :func:`hunt` runs the conformance test named by ``test`` against it."""


@dataclass
class HuntResult:
    """What the conformance suite made of one seeded bug."""

    bug: SeededBug
    caught: bool
    reason: str | None = None
    message: str = ""
    examples: int | None = None
    callers: int | None = None
    requests: int | None = None
    records: int | None = None
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def right_reason(self) -> bool:
        return self.caught and self.reason in self.bug.reasons


def classify(text: str) -> str:
    """The failure category of a conformance failure's report text."""
    for tag in ("wrong-page", "hang", "abandoned", "timeout"):
        if f"[{tag}]" in text:
            return tag
    if "WalredoHang" in text:
        return "hang"
    if "WalredoTimeout" in text:
        return "timeout"
    if "Walredo" in text and "Error" in text:
        return "error"
    if "[error]" in text:
        return "error"
    return "other"


class _Collector:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str, dict[str, Any]]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" and report.failed:
            example: dict[str, Any] = {}
            for key, value in report.user_properties:
                if key == "walredo_example":
                    example = json.loads(value)
            self.failures.append((report.nodeid, report.longreprtext, example))


def hunt(bug: SeededBug, *, timeout: float = 2.0, hang_check: float = 0.02,
         extra_args: Sequence[str] = ()) -> HuntResult:
    """Run ``bug.test`` of the conformance suite, in this process, against ``bug``.

    Uses the Hypothesis profile the environment selects (``dev`` by default) with no example
    database or explain phase. Hangs are found by the client's hang check, looking every
    ``hang_check`` seconds (finer than the plugin's default: a hunt meets hundreds of hanging
    examples) whether the process sits idle with every request consumed; the ``timeout`` (seconds per request) only bounds what the check cannot see, and is
    kept well above a loaded machine's round trip so that it never fires on a correct path.
    """
    import pytest

    collector = _Collector()
    args = ["-p", "no:cacheprovider", "-q", "--no-header", "-p", "no:randomly",
            "--walredo-timeout", str(timeout), "--walredo-hang-check", str(hang_check),
            "--pyargs", "pytest_walredo.conformance",
            "-k", bug.test.split("::")[-1], *extra_args]
    plugin = SeededBugPlugin(mutant=bug.mutant, faults=bug.faults)
    from hypothesis import settings

    # The inner run loads its own Hypothesis profile; the caller's stays in force afterwards.
    outer_profile = settings.get_current_profile_name()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            pytest.main(args, plugins=[plugin, collector])
    finally:
        settings.load_profile(outer_profile)
    if not collector.failures:
        return HuntResult(bug, False)
    _nodeid, text, example = collector.failures[0]
    return HuntResult(
        bug, True, classify(text), _first_line(text), example.get("first_failure_at"),
        example.get("callers"), example.get("requests"), example.get("records"), example,
    )


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("E ") and line[1:].strip():
            return line[1:].strip()[:200]
    return text.strip().splitlines()[-1][:200] if text.strip() else ""
