"""Neon's ``bench_walredo`` shapes through our client: time per request, like criterion's table.

Not a test: prints a table. Shapes as in Neon's ``pageserver/benches/bench_walredo.rs``:
``ping`` (``H``), ``short`` (Neon's 2-record input, ``short_v14.walredo``) and ``medium``
(227 records, ``bench_medium_v14.walredo``), both from the test vectors folder
(``WALREDO_VECTORS_DIR``, default ``../shared/vectors``). Each runs with 1, 2, 4, ..., 128
callers sharing one process, against the reference walredo (``--pg-version 14``, whose WAL
the vectors are), the do-nothing C stub (``stub.c``: the cost of our client and the pipe
alone) and, with ``--walredo-bin PATH`` (and ``--walredo-lib-dir DIR``), your binary.

A cell is wall time divided by requests answered (Neon's table reports the same: time per
request at that concurrency), median of ``--rounds`` runs; next to it, in brackets, the same
through ``driver.c`` (C, same binary, same number of requests in flight): what the binary
and the pipe allow without our client. Neon's published numbers (im4gn.2xlarge, their Rust
client and a real walredo) are printed for the one-caller rows.

    python benchmarks/bench_walredo.py [--quick] [--walredo-bin PATH] [--callers 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import (
    PING,
    ROOT,
    Target,
    binary_target,
    build,
    c_driver,
    client_run,
    reference_target,
    run_loop,
    stub_target,
)

NEON_US = {"ping": 21.9, "short": 32.1, "medium": 138.6}
"""Neon's bench_walredo, one requester, on im4gn.2xlarge (microseconds per request)."""


def vectors_dir() -> Path:
    return Path(os.environ.get("WALREDO_VECTORS_DIR", ROOT.parent / "shared" / "vectors"))


def shapes() -> dict[str, tuple[bytes, bytes | None]]:
    """name -> (request bytes, the expected page when known)."""
    folder = vectors_dir()
    short, medium = folder / "short_v14.walredo", folder / "bench_medium_v14.walredo"
    if not short.is_file() or not medium.is_file():
        sys.exit(f"bench_walredo: Neon's vectors are not in {folder} (set WALREDO_VECTORS_DIR)")
    expected = folder / "short_v14_redo.page"
    return {"ping": (PING, None),
            "short": (short.read_bytes(), expected.read_bytes() if expected.is_file() else None),
            "medium": (medium.read_bytes(), None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.3 s per run, 1 round")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="runs per cell (default 3)")
    parser.add_argument("--callers", default="1,2,4,8,16,32,64,128")
    parser.add_argument("--walredo-bin", type=Path, default=None, help="your walredo binary")
    parser.add_argument("--walredo-lib-dir", type=Path, default=None)
    parser.add_argument("--no-driver", action="store_true", help="skip the C driver columns")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.3 if args.quick else 1.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    callers = [int(c) for c in args.callers.split(",")]
    inputs = shapes()

    with tempfile.TemporaryDirectory(prefix="walredo-bench-") as tmp:
        work = Path(tmp)
        stub, driver = build("stub.c", work), build("driver.c", work)
        targets: list[tuple[Target, bool]] = [(reference_target(work, pg_version=14), True),
                                              (stub_target(stub, work), False)]
        if args.walredo_bin is not None:
            targets.append((binary_target(args.walredo_bin, args.walredo_lib_dir, work), True))
        files = {}
        for name, (data, _) in inputs.items():
            files[name] = work / f"{name}.walredo"
            files[name].write_bytes(data)

        print(f"us per request, median of {rounds} run(s) of {seconds:g} s; [C driver on the "
              "same binary]; Neon: their bench_walredo, 1 requester, im4gn.2xlarge\n")
        names = [t.name for t, _ in targets]
        header = f"{'shape/callers':<14} {'Neon':>6} " + " ".join(f"{n:>22}" for n in names)
        print(header)
        print("-" * len(header))
        for shape, (data, expected) in inputs.items():
            for n in callers:
                cells = []
                for target, checks in targets:
                    want = expected if checks else None
                    ours = [_us(run_loop(client_run(target, data, n, seconds, hang_check=0.2,
                                                    expect=want))) for _ in range(rounds)]
                    cell = f"{statistics.median(ours):8.1f}"
                    if not args.no_driver:
                        theirs = [_us(c_driver(driver, files[shape], n, seconds, target))
                                  for _ in range(rounds)]
                        cell += f" [{statistics.median(theirs):8.1f}]"
                    cells.append(f"{cell:>22}")
                neon = f"{NEON_US[shape]:6.1f}" if n == 1 else f"{'':>6}"
                print(f"{shape + '/' + str(n):<14} {neon} " + " ".join(cells), flush=True)
    return 0


def _us(run: tuple[int, float]) -> float:
    ops, secs = run
    return secs / ops * 1e6


if __name__ == "__main__":
    sys.exit(main())
