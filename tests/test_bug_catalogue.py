"""Every seeded bug of the catalogue is caught by the conformance suite, for the right reason,
with the default Hypothesis profile, and shrunk to at most 3 requests and 3 callers.

Slow by nature (each bug is hunted by running a conformance property, shrinking included,
against the reference walredo with the bug seeded); ``python benchmarks/bug_table.py``
prints the same results as a table.
"""

from __future__ import annotations

import pytest

from pytest_walredo.mutants import CATALOGUE, SeededBug, classify, hunt

# Hunts that pay a request timeout per example (lost, swapped or misnumbered answers look like
# hangs over a real pipe) take minutes each and their example counts vary between runs. They run
# with ``pytest -m slow``; the default run keeps the quick hunts, and the client-side mutants are
# also hunted deterministically in the simulation (tests/test_interleave.py).
SLOW = {"swap-responses", "drop-response", "duplicate-response", "off-by-one", "no-poison", "early-release"}


@pytest.mark.parametrize(
    "bug",
    [pytest.param(b, marks=pytest.mark.slow) if b.name in SLOW else b for b in CATALOGUE],
    ids=[b.name for b in CATALOGUE],
)
def test_seeded_bug_is_caught_and_shrunk(bug: SeededBug):
    result = hunt(bug)
    assert result.caught, f"the conformance suite did not notice {bug.name}"
    assert result.right_reason, (
        f"{bug.name} was caught as {result.reason!r}, expected one of {bug.reasons}: {result.message}"
    )
    assert result.callers is not None and result.callers <= 3, result.example
    assert result.requests is not None and result.requests <= 3, result.example


def test_classify_reads_the_categories():
    assert classify("AssertionError: [wrong-page] caller c1 got ...") == "wrong-page"
    assert classify("E   pytest_walredo.process.errors.WalredoTimeout: walredo request #1") == "timeout"
    assert classify("WalredoProcessError: walredo process 12 exited with status 1") == "error"
    assert classify("something else") == "other"
