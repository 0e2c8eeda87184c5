"""Our client against the pipe's own speed: ratios to a C driver on the same binary.

Not a test: prints tables. For each binary (``stub.c``, a do-nothing walredo, and the
reference walredo), each operation (``ping``: ``H``; ``echo``: ``B``, ``P`` with an 8 KiB
page, ``G``) and 1, 8 and 64 callers, every round measures, one after the other:

- ``C driver``: ``driver.c`` (built here with ``cc``) keeping that many requests in flight on
  the same binary: the pipe's and the binary's own speed, the baseline of every ratio;
- ``client``: :class:`~pytest_walredo.process.WalredoClient` with that many asyncio tasks
  (the plugin's default timeout, hang check off);
- ``client+hc``: the same with the plugin's default hang check (0.2 s);
- ``uvloop``: the client (hang check on) on uvloop's event loop, when uvloop is installed;
- ``asyncio floor`` (1 caller, ping): write, wait on the event loop, read, wake the task, with
  no client at all: the least an asyncio client can cost per round trip.

``us/op`` is wall time divided by answers (for 1 caller: the round trip). The table shows the
median of ``--rounds`` rounds and the targets of issue 15: one caller's ping round trip at most
1.25x the C driver's, 8 and 64 callers at least 1/5 of its rate, the hang check costing at most
10%. ``--profile`` runs py-spy (``pip install py-spy``) over one client run instead.

    python benchmarks/bench_client.py [--quick] [--seconds S] [--rounds N] [--callers 1,8,64]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from common import (
    PING,
    Target,
    asyncio_floor,
    build,
    c_driver,
    client_run,
    compile_stub,
    drive,
    reference_target,
    run_loop,
    stub_target,
)

from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag

PAGE = bytes(range(256)) * (BLCKSZ // 256)
ECHO = RedoRequest(RelTag(1663, 5, 16384), 0, PAGE)
OPS: dict[str, bytes] = {"ping": PING, "echo": ECHO.encode()}
__all__ = ["ECHO", "OPS", "compile_stub", "drive", "main"]  # bench_capture.py uses the first ones
HC = 0.2


def run_column(column: str, target: Target, op: str, n: int, seconds: float, driver: Path,
               files: dict[str, Path]) -> float:
    """us/op of one run of ``column``."""
    request = OPS[op]
    expect = PAGE if (op == "echo" and target.name == "reference") else None
    if column == "C driver":
        ops, secs = c_driver(driver, files[op], n, seconds, target)
    elif column == "asyncio floor":
        ops, secs = run_loop(asyncio_floor(target, seconds))
    else:
        hc = None if column == "client" else HC
        ops, secs = run_loop(client_run(target, request, n, seconds, hang_check=hc, expect=expect),
                             "uvloop" if column == "uvloop" else "asyncio")
    return secs / ops * 1e6


def measure(targets: list[Target], driver: Path, files: dict[str, Path], callers: list[int],
            seconds: float, rounds: int, uv: bool) -> dict[tuple[str, str, int, str], list[float]]:
    """us/op samples keyed by (target, op, callers, column); the columns of a row alternate
    within each round."""
    samples: dict[tuple[str, str, int, str], list[float]] = defaultdict(list)
    for target in targets:
        for op in OPS:
            for n in callers:
                columns = ["C driver", "client", "client+hc"]
                if uv:
                    columns.append("uvloop")
                if n == 1 and op == "ping":
                    columns.append("asyncio floor")
                for _ in range(rounds):
                    for column in columns:
                        samples[(target.name, op, n, column)].append(
                            run_column(column, target, op, n, seconds, driver, files))
                _print_row(target.name, op, n, samples)
    return samples


COLUMNS = ("C driver", "client", "client+hc", "uvloop", "asyncio floor")


def _print_row(target: str, op: str, n: int,
               samples: dict[tuple[str, str, int, str], list[float]]) -> None:
    med = {c: statistics.median(samples[(target, op, n, c)]) for c in COLUMNS
           if samples.get((target, op, n, c))}
    cells = " ".join(f"{med[c]:>9.1f}" if c in med else f"{'-':>9}" for c in COLUMNS)
    base = med["C driver"]
    if n == 1:
        ratio = f"round trip {med['client+hc'] / base:.2f}x C (target <= 1.25x)"
    else:
        ratio = f"rate 1/{med['client+hc'] / base:.1f} of C (target >= 1/5)"
    hc = med["client+hc"] / med["client"] - 1
    print(f"{target:<10} {op:<5} {n:>7} {cells}   {ratio}; hang check {hc:+.0%} (target <= +10%)",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.3 s per run, 3 rounds")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    parser.add_argument("--callers", default="1,8,64", help="comma-separated caller counts")
    parser.add_argument("--no-reference", action="store_true", help="only the C stub")
    parser.add_argument("--profile", metavar="OP/CALLERS", default=None,
                        help="py-spy over one client run against the stub, e.g. ping/8")
    parser.add_argument("--client-only", metavar="OP/CALLERS", default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.3 if args.quick else 1.0)
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 5)
    callers = [int(c) for c in args.callers.split(",")]
    uv = importlib.util.find_spec("uvloop") is not None
    if args.profile:
        return _profile(args.profile, seconds * 5)

    with tempfile.TemporaryDirectory(prefix="walredo-bench-") as tmp:
        work = Path(tmp)
        stub, driver = build("stub.c", work), build("driver.c", work)
        files = {}
        for op, data in OPS.items():
            files[op] = work / f"{op}.req"
            files[op].write_bytes(data)
        targets = [stub_target(stub, work)]
        if not args.no_reference:
            targets.append(reference_target(work))
        if args.client_only:
            op, _, n = args.client_only.partition("/")
            ops, secs = run_loop(client_run(targets[0], OPS[op], int(n or 1), seconds,
                                            hang_check=HC))
            print(f"{op}/{n}: {secs / ops * 1e6:.1f} us/op")
            return 0
        print(f"us/op, median of {rounds} rounds of {seconds:g} s; client+hc: hang check every "
              f"{HC:g} s (the plugin's default); uvloop: client+hc on uvloop\n")
        cells = " ".join(f"{c:>9}" for c in ("C driver", "client", "client+hc", "uvloop", "floor"))
        header = f"{'binary':<10} {'op':<5} {'callers':>7} {cells}"
        print(header)
        print("-" * len(header))
        measure(targets, driver, files, callers, seconds, rounds, uv)
    return 0


def _profile(spec: str, seconds: float) -> int:
    """py-spy over one client run against the stub (``--client-only``), summed per frame:
    where the client's time goes."""
    import subprocess

    out = Path(tempfile.gettempdir()) / "walredo-client-profile.txt"
    subprocess.run(["py-spy", "record", "--gil", "-r", "1000", "-f", "raw", "-o", str(out), "--",
                    sys.executable, __file__, "--client-only", spec, "--seconds", str(seconds)],
                   check=True)
    totals: dict[str, int] = defaultdict(int)
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in set(stack.split(";")):
            totals[frame] += int(count)
    for frame, count in sorted(totals.items(), key=lambda kv: -kv[1])[:40]:
        print(f"{count * 100 / total:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
