"""Throughput of pings and short requests: our client vs raw pipes, reference server vs a C stub.

Not a test: prints a table. Four scenarios, each for 1, 8 and 64 concurrent callers:

- ``raw -> C stub``: a tight Python loop with ``os.read``/``os.write`` (write a batch of
  ``callers`` requests, read their answers) against ``stub.c``, a do-nothing walredo compiled here with the
  system ``cc``. This is the floor: pipe + syscall cost only. Every ratio is against this row.
- ``raw -> ref server``: the same loop against ``python -m pytest_walredo.refserver`` (seccomp
  on): the cost of the reference server.
- ``client -> C stub``: :class:`pytest_walredo.process.WalredoClient` with ``callers`` asyncio
  tasks against the stub: the cost of our client.
- ``client+hc -> C stub``: the client with the plugin's default ``hang_check`` (0.2 s): what
  the timer armed around every answer read costs.
- ``client -> ref server``: both together, as the conformance suite uses them.

Operations: ``ping`` (``H``) and ``echo`` (``B``, ``P`` with an 8 KiB page, ``G``; the stub skips
the payloads and answers zeros, the reference server returns the page). ``us/op`` is wall time
divided by completed operations (inverse throughput, not latency). Each row runs for
``--seconds`` (default 2; ``--quick``: 0.4).

    python benchmarks/bench_client.py [--quick] [--seconds S] [--callers 1,8,64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_walredo.process import LaunchConfig, WalredoClient, WalredoProcess, refserver_config
from pytest_walredo.protocol import BLCKSZ, BufferTag, Ping, RedoRequest, RelTag

STUB_SOURCE = Path(__file__).with_name("stub.c")
REF_ARGV = [sys.executable, "-m", "pytest_walredo.refserver", "--wal-redo"]
TAG = BufferTag(RelTag(1663, 5, 16384), 0)
PAGE = bytes(range(256)) * (BLCKSZ // 256)
ECHO = RedoRequest(TAG.rel, TAG.blknum, PAGE)
OPS: dict[str, bytes] = {"ping": Ping().encode(), "echo": ECHO.encode()}


@dataclass
class Row:
    scenario: str
    op: str
    callers: int
    ops: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def us(self) -> float:
        return self.seconds / self.ops * 1e6


def compile_stub(directory: Path) -> Path:
    """Build stub.c with the system compiler; exit with one line if there is none."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        sys.exit("bench_client: no C compiler (cc/gcc/clang) on PATH to build benchmarks/stub.c")
    out = directory / "walredo-stub"
    subprocess.run([cc, "-O2", "-o", str(out), str(STUB_SOURCE)], check=True)
    return out


# --------------------------------------------------------------------------------------------
# raw pipes
# --------------------------------------------------------------------------------------------


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        data = os.read(fd, n - got)
        if not data:
            raise RuntimeError("server closed its stdout")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def raw_run(argv: list[str], op: str, depth: int, seconds: float) -> Row:
    """Write a batch of ``depth`` requests, read their ``depth`` answers, repeat for ``seconds``.

    ``select`` interleaves writing and reading inside a batch, so a batch larger than the pipe
    (64 echo requests are 527 KB) cannot deadlock against a server blocked on its own write.
    """
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
    try:
        os.write(wfd, OPS["ping"])  # warm-up: wait for start-up outside the timed part
        _read_exactly(rfd, BLCKSZ)
        os.set_blocking(wfd, False)
        batch = OPS[op] * depth
        want = depth * BLCKSZ
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            view = memoryview(batch)
            got = 0
            while got < want:
                if view:
                    try:
                        view = view[os.write(wfd, view):]
                    except BlockingIOError:
                        pass
                if view:
                    readable = select.select([rfd], [wfd], [])[0]
                    if not readable:
                        continue
                data = os.read(rfd, want - got)
                if not data:
                    raise RuntimeError(f"{argv[0]} closed its stdout")
                got += len(data)
            done += depth
        elapsed = time.perf_counter() - start
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    return Row("", op, depth, done, elapsed)


def startup_ms(argv: list[str], runs: int = 5) -> float:
    """Median time from spawn to the first ping answer."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None
        os.write(proc.stdin.fileno(), OPS["ping"])
        _read_exactly(proc.stdout.fileno(), BLCKSZ)
        times.append((time.perf_counter() - t0) * 1000)
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    return statistics.median(times)


# --------------------------------------------------------------------------------------------
# our client
# --------------------------------------------------------------------------------------------


async def _client_run(config: LaunchConfig, op: str, callers: int, seconds: float,
                      expect_echo: bool, hang_check: float | None) -> Row:
    client = WalredoClient(WalredoProcess.launch(config), timeout=None, hang_check=hang_check)
    try:
        await client.ping()  # start-up, outside the timed part
        call: Callable[[], Awaitable[bytes]]
        if op == "ping":
            call = client.ping
        else:
            page = await client.apply(ECHO)
            if expect_echo and page != PAGE:
                raise RuntimeError("the reference server did not echo the pushed page")
            call = lambda: client.apply(ECHO)  # noqa: E731
        ops, elapsed = await drive(call, callers, seconds)
    finally:
        await client.aclose()
    return Row("", op, callers, ops, elapsed)


async def drive(call: Callable[[], Awaitable[object]], callers: int, seconds: float) -> tuple[int, float]:
    """``callers`` concurrent loops of ``call`` for ``seconds``: (calls made, seconds taken)."""
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> int:
        n = 0
        while time.perf_counter() < deadline:
            await call()
            n += 1
        return n

    counts = await asyncio.gather(*(worker() for _ in range(callers)))
    return sum(counts), time.perf_counter() - start


def client_run(config: LaunchConfig, op: str, callers: int, seconds: float,
               expect_echo: bool, hang_check: float | None = None) -> Row:
    return asyncio.run(_client_run(config, op, callers, seconds, expect_echo, hang_check))


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.4 s per row")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per row (default 2)")
    parser.add_argument("--callers", default="1,8,64", help="comma-separated caller counts")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.4 if args.quick else 2.0)
    callers = [int(c) for c in args.callers.split(",")]

    with tempfile.TemporaryDirectory(prefix="walredo-bench-") as tmp:
        stub = compile_stub(Path(tmp))
        stub_cfg = LaunchConfig(binary=stub, workdir=Path(tmp))
        ref_cfg = refserver_config(Path(tmp))
        scenarios: list[tuple[str, Callable[[str, int], Row]]] = [
            ("raw -> C stub", lambda op, c: raw_run([str(stub), "--wal-redo"], op, c, seconds)),
            ("raw -> ref server", lambda op, c: raw_run(REF_ARGV, op, c, seconds)),
            ("client -> C stub", lambda op, c: client_run(stub_cfg, op, c, seconds, False)),
            ("client+hc -> C stub", lambda op, c: client_run(stub_cfg, op, c, seconds, False, 0.2)),
            ("client -> ref server", lambda op, c: client_run(ref_cfg, op, c, seconds, True)),
        ]
        print(f"start-up to first ping (median of 5): C stub "
              f"{startup_ms([str(stub), '--wal-redo']):.1f} ms, ref server (seccomp on) "
              f"{startup_ms(REF_ARGV):.1f} ms, ref server --disable-seccomp "
              f"{startup_ms([*REF_ARGV, '--disable-seccomp']):.1f} ms")
        print(f"{seconds:g} s per row; us/op = wall time / operations; 'vs raw' = us/op divided "
              "by the raw -> C stub row's\n")
        header = f"{'scenario':<22} {'op':<5} {'callers':>7} {'ops/s':>10} {'us/op':>9} {'vs raw':>8}"
        print(header)
        print("-" * len(header))
        baseline: dict[tuple[str, int], Row] = {}
        for op in OPS:
            for c in callers:
                for name, fn in scenarios:
                    row = fn(op, c)
                    row.scenario = name
                    if name == "raw -> C stub":
                        baseline[(op, c)] = row
                    ratio = row.us / baseline[(op, c)].us
                    print(f"{name:<22} {op:<5} {c:>7} {row.rate:>10,.0f} {row.us:>9.1f} "
                          f"{ratio:>7.1f}x", flush=True)
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
