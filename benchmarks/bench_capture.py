"""What the fixtures' recording and relaunching cost: the plugin's managed client vs the plain one.

Not a test: prints two tables.

1. Cost per call, against ``stub.c`` (a do-nothing walredo compiled here with ``cc``, so the
   client is all that is measured), for 1 and 8 concurrent callers, as wall time and as CPU time
   of the benchmark process (median of ``--repeat`` interleaved runs): ``plain`` is
   :class:`pytest_walredo.process.WalredoClient` (the baseline of every ratio), ``managed`` is
   :class:`pytest_walredo.plugin.managed.ManagedClient` (every call recorded as an exchange of
   the current example, its bytes kept in the process's session stream). Operations as in
   ``bench_client.py``: ``ping`` and ``echo`` (``B``, ``P`` with an 8 KiB page, ``G``).
2. A relaunch: a managed client whose every call fails (the reference walredo with
   ``--fault=crash-after:0``), so every call starts a fresh process: the time per call with the
   spare process the managed client starts in the background, against launching one in the
   path of the call (the baseline).

    python benchmarks/bench_capture.py [--seconds S] [--calls N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench_client import ECHO, compile_stub, drive

from pytest_walredo.plugin.capture import TestCapture
from pytest_walredo.plugin.managed import ManagedClient
from pytest_walredo.process import LaunchConfig, WalredoClient, WalredoError, WalredoProcess
from pytest_walredo.target import reference_binary


async def _measure(client: WalredoClient, op: str, callers: int, seconds: float) -> tuple[float, float]:
    """(wall us/op, CPU us/op of this process: the client's own cost, which load on a shared
    machine disturbs less than wall time)."""
    await client.ping()
    call: Callable[[], Awaitable[bytes]] = client.ping if op == "ping" else (lambda: client.apply(ECHO))
    before = resource.getrusage(resource.RUSAGE_SELF)
    ops, wall = await drive(call, callers, seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall / ops * 1e6, cpu / ops * 1e6


def throughput_table(stub: Path, seconds: float, workdir: Path, repeat: int) -> list[str]:
    config = LaunchConfig(stub, workdir=workdir)

    async def run(kind: str, op: str, callers: int) -> tuple[float, float]:
        client: WalredoClient
        if kind == "plain":
            client = WalredoClient(WalredoProcess.launch(config), timeout=None)
        else:
            client = ManagedClient(lambda: WalredoProcess.launch(config), TestCapture("bench"),
                                   label="bench", timeout=None, dumper=None, hang_check=None)
        try:
            return await _measure(client, op, callers, seconds)
        finally:
            await client.aclose()

    lines = [f"{'op':<6} {'callers':>7} {'client':<8} {'wall us/op':>10} {'cpu us/op':>10} {'cpu vs plain':>12}"]
    for op in ("ping", "echo"):
        for callers in (1, 8):
            samples: dict[str, list[tuple[float, float]]] = {"plain": [], "managed": []}
            for _ in range(repeat):  # interleaved, so that a burst of load hits both
                for kind in samples:
                    samples[kind].append(asyncio.run(run(kind, op, callers)))
            med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                   for k, v in samples.items()}
            for kind, (wall, cpu) in med.items():
                lines.append(f"{op:<6} {callers:>7} {kind:<8} {wall:>10.1f} {cpu:>10.1f} "
                             f"{cpu / med['plain'][1]:>11.2f}x")
    return lines


def relaunch_table(calls: int, workdir: Path) -> list[str]:
    ref = reference_binary(workdir / "ref").with_faults(["crash-after:0"])
    config = LaunchConfig(ref.path, args=ref.args, workdir=workdir)

    def launch() -> WalredoProcess:
        return WalredoProcess.launch(config)

    async def with_spare() -> float:
        client = ManagedClient(launch, TestCapture("bench"), label="bench", timeout=10, dumper=None,
                               hang_check=None)
        start = time.perf_counter()
        try:
            for _ in range(calls):
                try:
                    await client.ping()
                except WalredoError:
                    pass
        finally:
            await client.aclose()
        return (time.perf_counter() - start) / calls

    async def launch_in_path() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            client = WalredoClient(launch(), timeout=10)
            try:
                await client.ping()
            except WalredoError:
                pass
            finally:
                await client.aclose()
        return (time.perf_counter() - start) / calls

    base = asyncio.run(launch_in_path())
    spare = asyncio.run(with_spare())
    return [f"{'a failing call, each on a fresh process':<44} {'ms/call':>8} {'vs baseline':>11}",
            f"{'launched in the path of the call (baseline)':<44} {base * 1000:>8.1f} {1.0:>10.2f}x",
            f"{'managed client, spare started in background':<44} {spare * 1000:>8.1f} {spare / base:>10.2f}x"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per throughput row (default 2)")
    parser.add_argument("--calls", type=int, default=20, help="failing calls in the relaunch table (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row, median shown (default 3)")
    args = parser.parse_args(argv)
    logging.getLogger("pytest_walredo").addHandler(logging.NullHandler())  # the relaunches' warnings
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        workdir = Path(tmp)
        stub = compile_stub(workdir)
        print("\n".join(throughput_table(stub, args.seconds, workdir, args.repeat)))
        print()
        print("\n".join(relaunch_table(args.calls, workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
