"""Print the seeded-bug table: for each bug of the catalogue, whether the conformance suite
caught it (and for the right reason), how many examples it needed, and the size of the shrunk
example (callers, requests, records).

    python benchmarks/bug_table.py [BUG ...]

Runs each bug's conformance test in this process against the reference walredo with the bug
seeded (see ``pytest_walredo.testing.mutants.CATALOGUE``), with the Hypothesis profile the
environment selects (``dev`` unless ``$CI`` / ``$WALREDO_HYPOTHESIS_PROFILE`` say otherwise).
About a minute for the whole catalogue on 2 cores, mostly spent shrinking: hangs are seen by the
hang check as soon as the process sits idle, so they cost no request timeout.
"""

from __future__ import annotations

import sys
import time

from pytest_walredo.testing.mutants import CATALOGUE, hunt


def main(argv: list[str]) -> int:
    wanted = set(argv)
    unknown = wanted - {b.name for b in CATALOGUE}
    if unknown:
        print(f"bug_table: unknown bug(s) {sorted(unknown)}; known: {[b.name for b in CATALOGUE]}",
              file=sys.stderr)
        return 2
    header = f"{'bug':20} {'caught':7} {'reason':11} {'right':6} {'examples':>8} {'callers':>7} " \
             f"{'requests':>8} {'records':>7} {'seconds':>7}"
    print(header)
    print("-" * len(header))
    missed = 0
    for bug in CATALOGUE:
        if wanted and bug.name not in wanted:
            continue
        start = time.monotonic()
        r = hunt(bug)
        secs = time.monotonic() - start
        missed += not r.right_reason

        def cell(v: object) -> str:
            return "-" if v is None else str(v)

        print(f"{bug.name:20} {'yes' if r.caught else 'NO':7} {cell(r.reason):11} "
              f"{'yes' if r.right_reason else 'NO':6} {cell(r.examples):>8} {cell(r.callers):>7} "
              f"{cell(r.requests):>8} {cell(r.records):>7} {secs:7.1f}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
