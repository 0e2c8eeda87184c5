"""Examples per second of the conformance suite, per test, and where the time goes.

Not a test: prints a table. Runs the property tests of ``pytest_walredo.conformance`` (the
``ci`` profile: 40 examples, fixed seed) in this process against

- ``echo``: ``stub.c`` built with ``-DECHO_ALWAYS`` (answers ``G`` with the pushed page): a
  binary that costs next to nothing and is right for every property that compares a process
  with itself or with the pushed page, so what remains is the suite's own cost;
- ``reference``: the embedded reference walredo (its redo in Python costs time too).

Per test: examples run (bodies entered), wall time of the test and examples/s; the time
split into ``draw`` (outside the example bodies: Hypothesis generating examples, i.e. our
strategies including the redo model they run to keep records coherent, and its engine),
``walredo`` (inside the pool's event loop: our client and the binary), ``launch`` (starting
and closing processes) and ``other`` (the rest of the bodies: ``model_page``, draws made
inside a body, the recorder, the comparisons).

A second table shows why drawing costs what it does: for ``redo_requests`` (2-5 records, each
version, vanilla) the CPU time per example, the number of Hypothesis draws per example, and
Hypothesis's own cost per draw on this machine (a composite drawing 200 booleans against one
drawing 20, per extra draw), so ``draws x cost`` is the share of drawing that is Hypothesis's
bookkeeping however fast our strategies and model are.

    python benchmarks/bench_conformance.py [--repeat 3] [--no-reference] [--no-drawing]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from common import build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest_walredo.strategies as ws
from pytest_walredo.conformance import pool as pool_module
from pytest_walredo.conformance import recorder as recorder_module

ECHO_TESTS = ("test_ping_answers_8192_bytes or test_getpage_answers_the_pushed_image or "
              "test_same_request_twice_gives_the_same_page or test_split_invariance or "
              "test_each_caller_gets_its_own_page")
ALL_TESTS = ECHO_TESTS + " or test_full_page_image_is_restored_with_its_lsn or " \
    "test_pages_agree_with_the_model"


class Timing:
    """Per test: call time, examples, and the split of the call time."""

    def __init__(self) -> None:
        self.call: dict[str, float] = {}
        self.examples: dict[str, int] = defaultdict(int)
        self.parts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.current: str | None = None
        self.failed: list[str] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        self.current = item.name
        start = time.perf_counter()
        yield
        self.call[item.name] = time.perf_counter() - start
        self.current = None

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            self.failed.append(report.nodeid)

    def add(self, part: str, seconds: float) -> None:
        if self.current is not None:
            self.parts[self.current][part] += seconds


@contextlib.contextmanager
def instrumented(timing: Timing) -> Any:
    """Time the pool's event-loop runs (client + binary), its launches and closes, and the
    examples' bodies (every property runs its example inside ``recorder.example``)."""
    cls = pool_module.ProcessPool
    saved = {name: getattr(cls, name) for name in ("run", "_launch", "discard")}
    saved_example = recorder_module.ExampleRecorder.example

    def wrap(name: str, part: str) -> Any:
        inner = saved[name]

        def timed(self: Any, *a: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(self, *a, **kw)
            finally:
                timing.add(part, time.perf_counter() - start)

        return timed

    @contextlib.contextmanager
    def example(self: Any, prop: str) -> Any:
        if timing.current is not None:
            timing.examples[timing.current] += 1
        start = time.perf_counter()
        try:
            with saved_example(self, prop) as record:
                yield record
        finally:
            timing.add("body", time.perf_counter() - start)

    cls.run = wrap("run", "walredo")  # type: ignore[method-assign]
    for name in ("_launch", "discard"):
        setattr(cls, name, wrap(name, "launch"))
    recorder_module.ExampleRecorder.example = example  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(cls, name, fn)
        recorder_module.ExampleRecorder.example = saved_example  # type: ignore[method-assign]


def run_suite(selection: str, extra: list[str]) -> Timing:
    timing = Timing()
    with instrumented(timing), contextlib.redirect_stdout(io.StringIO()):
        pytest.main(["-p", "no:cacheprovider", "-q", "-p", "no:randomly",
                     "--walredo-hypothesis-profile", "ci", "--pyargs",
                     "pytest_walredo.conformance", "-k", selection, *extra], plugins=[timing])
    return timing


def _draw_only(strategy: Any, examples: int, counter: list[int] | None = None) -> Any:
    """A test that only draws ``examples`` values from ``strategy`` (derandomized), counting
    the examples run in ``counter[1]`` when given."""
    @settings(max_examples=examples, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw_only(value: Any) -> None:
        if counter is not None:
            counter[1] += 1

    return draw_only


def _cpu_per_example(strategy: Any, examples: int, repeat: int) -> float:
    """CPU seconds per example of a test that only draws from ``strategy`` (median)."""
    draw_only = _draw_only(strategy, examples)
    times = []
    for _ in range(repeat):
        start = time.process_time()
        draw_only()
        times.append((time.process_time() - start) / examples)
    return statistics.median(times)


def _booleans(n: int) -> Any:
    @st.composite
    def flips(draw: st.DrawFn) -> list[bool]:
        return [draw(st.booleans()) for _ in range(n)]
    return flips()


def _draws_per_example(strategy: Any, examples: int) -> float | None:
    """Hypothesis draws (nested ones included) per example. Counts through Hypothesis's internal
    ``ConjectureData.draw``: None when a Hypothesis release has moved it."""
    try:
        from hypothesis.internal.conjecture.data import ConjectureData
    except ImportError:
        return None
    inner = getattr(ConjectureData, "draw", None)
    if inner is None:
        return None
    count = [0, 0]

    def counting(self: Any, *a: Any, **kw: Any) -> Any:
        count[0] += 1
        return inner(self, *a, **kw)

    draw_only = _draw_only(strategy, examples, count)
    ConjectureData.draw = counting  # type: ignore[method-assign]
    try:
        draw_only()
    finally:
        ConjectureData.draw = inner  # type: ignore[method-assign]
    return count[0] / max(count[1], 1)


def drawing_table(repeat: int) -> None:
    examples = 200
    per_draw = ((_cpu_per_example(_booleans(200), examples, repeat)
                 - _cpu_per_example(_booleans(20), examples, repeat)) / 180)
    print(f"\ndrawing redo_requests (2-5 records, vanilla), {examples} examples, CPU time; "
          f"Hypothesis's cost per draw here: {per_draw * 1e6:.1f} us\n")
    header = f"{'version':<8} {'ms/example':>10} {'draws/example':>13} {'draws x cost':>12}"
    print(header)
    print("-" * len(header))
    for version in (14, 15, 16, 17):
        strategy = ws.redo_requests(pg_version=version, flavour="vanilla", min_records=2,
                                    max_records=5)
        cpu = _cpu_per_example(strategy, examples, repeat)
        draws = _draws_per_example(strategy, examples)
        share = f"{draws * per_draw / cpu:>12.0%}" if draws is not None else f"{'n/a':>12}"
        shown = f"{draws:>13.0f}" if draws is not None else f"{'n/a':>13}"
        print(f"{version:<8} {cpu * 1000:>10.2f} {shown} {share}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per binary (medians)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--no-drawing", action="store_true", help="leave out the drawing table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="walredo-bench-") as tmp:
        echo = build("stub.c", Path(tmp), defines=("ECHO_ALWAYS",), name="walredo-echo")
        runs = [("echo", ECHO_TESTS, ["--walredo-bin", str(echo)])]
        if not args.no_reference:
            runs.append(("reference", ALL_TESTS, []))
        print("per test: median of the runs; examples/s = examples / wall time of the test; "
              "time split in % of the wall time\n")
        header = (f"{'binary':<10} {'test':<46} {'examples':>8} {'seconds':>7} {'ex/s':>6} "
                  f"{'draw':>5} {'walredo':>7} {'launch':>6} {'other':>5}")
        print(header)
        print("-" * len(header))
        for name, selection, extra in runs:
            timings = [run_suite(selection, extra) for _ in range(args.repeat)]
            failed = sorted({f for t in timings for f in t.failed})
            if failed:
                print(f"{name}: failed: {', '.join(failed)}")
            for test in timings[0].call:
                med = statistics.median
                secs = med(t.call[test] for t in timings)
                examples = med(t.examples[test] for t in timings)
                share = {p: med(t.parts[test][p] / t.call[test] for t in timings)
                         for p in ("body", "walredo", "launch")}
                # Outside the bodies: Hypothesis drawing the examples (and its engine). The
                # pool launches inside a body (the first example's, and after a failure).
                draw = 1 - share["body"]
                other = share["body"] - share["walredo"] - share["launch"]
                print(f"{name:<10} {test:<46} {examples:>8.0f} {secs:>7.2f} "
                      f"{examples / secs:>6.0f} {draw:>5.0%} {share['walredo']:>7.0%} "
                      f"{share['launch']:>6.0%} {other:>5.0%}", flush=True)
    if not args.no_drawing:
        drawing_table(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
