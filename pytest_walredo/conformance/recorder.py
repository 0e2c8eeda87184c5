"""What the current (and so, after shrinking, the final failing) example of a conformance
property did: its requests, expected and actual pages, and the interleaving timeline.

One :class:`ExampleRecorder` per test (fixture ``walredo_recorder``). Each property calls
:meth:`ExampleRecorder.example` at the start of every Hypothesis example, which starts a new
:class:`~pytest_walredo.plugin.example.FailingExample`; when the example fails, the recorder
hands it to the plugin with :func:`~pytest_walredo.plugin.example.record_failure`. Hypothesis
replays the minimal failing example last, so when a test fails the plugin holds that example,
and its reporting writes it out (the ``walredo failing example`` report section, the
``walredo_example`` user property, ``.walredo`` files, decodes, page diffs, Allure).

Usage inside a property::

    with walredo_recorder.example("determinism") as ex:
        ex.set_requests([req, req])
        first, second = pool.apply(req), pool.apply(req)
        ex.set_pages(expected=[first, first], actual=[first, second])
        assert first == second
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from pytest_walredo.plugin.example import FailingExample, record_failure

__all__ = ["ExampleRecorder"]


class ExampleRecorder:
    """Per-test recorder of the current example (see the module docstring).

    ``examples``: examples started so far; ``first_failure_at``: the number of the first
    example that failed (how many examples it took to find the bug), or None; ``first``: that
    example, handed over with every later failing one as its ``first``. ``node``: the
    test whose failing example this is (None: keep it only in :attr:`current`).
    """

    def __init__(self, node: pytest.Item | None = None) -> None:
        self.node = node
        self.current: FailingExample | None = None
        self.examples = 0
        self.first_failure_at: int | None = None
        self.first: FailingExample | None = None
        """The first example that failed."""
        self.listeners: list[Callable[[], None]] = []
        """Called at the start of every example (the process pool uses it)."""

    @contextlib.contextmanager
    def example(self, prop: str) -> Iterator[FailingExample]:
        """Start a new example of property ``prop``; if the block raises, record it as the
        test's failing example."""
        self.examples += 1
        self.current = ex = FailingExample(prop=prop)
        for listener in self.listeners:
            listener()
        try:
            yield ex
        except BaseException:
            if self.first_failure_at is None:
                self.first_failure_at = self.examples
                self.first = ex
            ex.examples, ex.first_failure_at = self.examples, self.first_failure_at
            if self.first is not None and self.first is not ex:
                # the first failing example (before shrinking) is written beside the final one
                ex.first = self.first
                self.first.first_failure_at = self.first_failure_at
            if self.node is not None:
                record_failure(self.node, ex)
            raise
