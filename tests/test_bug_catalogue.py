"""Every seeded bug of the catalogue is caught by the conformance suite, for the right reason,
with the default Hypothesis budget, and shrunk to at most 3 requests and 3 callers.

Each bug is hunted by running its conformance property, shrinking included, against the
reference walredo with the bug seeded (``python benchmarks/bug_table.py`` prints the same
results as a table). The hunts use the ``ci`` profile: the ``dev`` budget (40 examples) with
a fixed seed, so that this test gives the same answer on every run.
"""

from __future__ import annotations

import pytest

from pytest_walredo.testing.mutants import CATALOGUE, SeededBug, classify, hunt


@pytest.mark.parametrize("bug", CATALOGUE, ids=[b.name for b in CATALOGUE])
def test_seeded_bug_is_caught_and_shrunk(bug: SeededBug):
    result = hunt(bug, extra_args=("--walredo-hypothesis-profile", "ci"))
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
    assert classify("[abandoned] the answer(s) to request #0 have no owner left") == "abandoned"
    assert classify("something else") == "other"
