"""The clean reference walredo passes the whole conformance suite; the suite's pieces (profiles,
pool, recorder) behave as documented."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import settings

from pytest_walredo.conformance.pool import has_counted_faults
from pytest_walredo.conformance.recorder import ExampleRecorder
from pytest_walredo.plugin.hypothesis_profiles import load_profile, resolve_profile_name
from pytest_walredo.protocol import RedoRequest, RelTag


def test_reference_passes_the_conformance_suite(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--basetemp",
         str(tmp_path / "bt"), "--pyargs", "pytest_walredo.conformance"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last, last
    # the shipped corpus of the default version (PostgreSQL 17) was judged, entry by entry
    assert "= walredo verdicts =" in proc.stdout and "Heap/INSERT " in proc.stdout


def test_profile_names():
    assert resolve_profile_name(None, {}) == "dev"
    assert resolve_profile_name(None, {"CI": "1"}) == "ci"
    assert resolve_profile_name("thorough", {}) == "thorough"
    with pytest.raises(ValueError, match="--walredo-hypothesis-profile value 'fast'"):
        resolve_profile_name("fast", {})


def test_load_profile_activates_it():
    before = settings.get_current_profile_name()
    try:
        assert load_profile("thorough") == "thorough"
        assert settings().max_examples == 400 and settings().deadline is None
        assert load_profile("ci") == "ci" and settings().derandomize
    finally:
        settings.load_profile(before)


def test_counted_faults_need_fresh_processes():
    assert has_counted_faults(("--fault=swap-responses:2",))
    assert not has_counted_faults(("--fault=no-lsn", "--pg-version", "17"))


def test_recorder_keeps_the_last_example_and_the_first_failure():
    rec = ExampleRecorder()
    starts = []
    rec.listeners.append(lambda: starts.append(1))
    with rec.example("p") as ex:
        ex.set_requests([None])
    with pytest.raises(AssertionError), rec.example("p") as ex:
        ex.set_requests([RedoRequest(RelTag(1, 2, 3), 0, None, ((16, b"x" * 24),)), None])
        raise AssertionError
    assert rec.current is not None
    s = rec.current.summary()
    assert (s["callers"], s["requests"], s["records"], s["first_failure_at"]) == (2, 1, 1, 2)
    assert len(starts) == 2
    assert "c1: ping" in rec.current.render()
