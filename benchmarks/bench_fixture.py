"""What a walredo fixture costs per test, against a bare spawn of the same binary.

Not a test: prints a table. Per binary (the C stub and the reference walredo), each round
measures, one after the other:

- ``bare``: ``subprocess.Popen`` of the binary, one ping written and its answer read,
  SIGKILL and reap: the least any harness pays;
- ``fixture``: what the ``walredo`` fixture does: :meth:`WalredoProcess.launch` (sandbox,
  supervising shim, stderr reader), a :class:`SyncWalredoClient`, one ping, ``close()`` (kill
  the tree, reap, collect stderr), split into launch / first ping / close;
- ``fixture, no shim server``: the same with one interpreter started per shim (as before
  the shim server; also what runs where the server cannot).

Medians of ``--rounds``; the target of issue 15 is fixture <= 1.5x bare.

    python benchmarks/bench_fixture.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PING, Target, build, reference_target, stub_target

from pytest_walredo.process import SyncWalredoClient, WalredoProcess, sandbox


def bare(target: Target) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(target.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, **target.env})
    assert proc.stdin is not None and proc.stdout is not None
    os.write(proc.stdin.fileno(), PING)
    got = 0
    while got < 8192:
        got += len(os.read(proc.stdout.fileno(), 8192 - got))
    proc.kill()
    proc.wait()
    elapsed = time.perf_counter() - t0
    proc.stdin.close()
    proc.stdout.close()
    return elapsed


def fixture(target: Target) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    process = WalredoProcess.launch(target.config)
    t1 = time.perf_counter()
    client = SyncWalredoClient(process, timeout=10, hang_check=0.2)
    client.ping()
    t2 = time.perf_counter()
    client.close()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="walredo-bench-") as tmp:
        work = Path(tmp)
        targets = [stub_target(build("stub.c", work), work)]
        if not args.no_reference:
            targets.append(reference_target(work))
        print(f"ms per test, median of {args.rounds} rounds (columns alternate within a round)\n")
        header = (f"{'binary':<10} {'bare':>6} {'fixture':>8} {'launch':>7} {'ping':>6} "
                  f"{'close':>6} {'ratio':>6}   {'no server':>9} {'ratio':>6}")
        print(header)
        print("-" * len(header))
        for target in targets:
            WalredoProcess.launch(target.config).close()  # start the shim server, warm up
            b: list[float] = []
            f: list[tuple[float, float, float]] = []
            old: list[float] = []
            for _ in range(args.rounds):
                b.append(bare(target))
                f.append(fixture(target))
                sandbox.use_shim_server = False  # one interpreter per shim, as before
                old.append(sum(fixture(target)))
                sandbox.use_shim_server = True
            med = statistics.median
            bare_ms = med(b) * 1000
            parts = [med(p[i] for p in f) * 1000 for i in range(3)]
            total = med(sum(p) for p in f) * 1000
            old_ms = med(old) * 1000
            print(f"{target.name:<10} {bare_ms:>6.1f} {total:>8.1f} {parts[0]:>7.1f} "
                  f"{parts[1]:>6.1f} {parts[2]:>6.1f} {total / bare_ms:>5.2f}x   {old_ms:>9.1f} "
                  f"{old_ms / bare_ms:>5.2f}x   (target <= 1.5x)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
