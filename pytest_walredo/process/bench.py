"""Micro-benchmark of the process layer: ``python -m pytest_walredo.process.bench``.

Prints a table (no assertions) of launch-to-first-answer time, sequential ping round trips and
pipelined throughput of pings and of echo requests (``B``, ``P`` with an 8 KiB page, ``G``)
through :class:`~pytest_walredo.process.WalredoClient`, for each server given:

- ``memory``: the in-memory transport (client overhead alone, no process),
- ``fake``: ``pytest_walredo.process.fake`` (a Python process doing almost nothing),
- ``refserver``: the reference walredo,
- ``PATH``: a real ``postgres`` binary.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from ..protocol import BLCKSZ, RedoRequest, RelTag
from .client import Transport, WalredoClient
from .fake import fake_config
from .memory import MemoryTransport
from .sandbox import LaunchConfig, WalredoProcess, refserver_config


def _config(server: str, workdir: Path) -> LaunchConfig:
    if server == "fake":
        return fake_config(workdir)
    if server == "refserver":
        return refserver_config(workdir)
    return LaunchConfig(Path(server), workdir=workdir)


async def _measure(target: WalredoProcess | Transport, n: int, depth: int) -> dict[str, float]:
    client = WalredoClient(target, timeout=120)
    out: dict[str, float] = {}
    t = time.perf_counter()
    await client.ping()
    out["first ping ms"] = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    for _ in range(n // 10):
        await client.ping()
    out["ping RTT us"] = (time.perf_counter() - t) / (n // 10) * 1e6

    async def worker(make: object, count: int) -> None:
        for _ in range(count):
            await make()  # type: ignore[operator]

    t = time.perf_counter()
    await asyncio.gather(*(worker(client.ping, n // depth) for _ in range(depth)))
    out[f"pings/s x{depth}"] = (n // depth * depth) / (time.perf_counter() - t)

    req = RedoRequest(RelTag(1663, 1, 2), 0, os.urandom(BLCKSZ))
    t = time.perf_counter()
    await asyncio.gather(*(worker(lambda: client.apply(req), n // depth) for _ in range(depth)))
    out[f"echo req/s x{depth}"] = (n // depth * depth) / (time.perf_counter() - t)
    await client.aclose()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m pytest_walredo.process.bench")
    p.add_argument("servers", nargs="*", default=["memory", "fake", "refserver"])
    p.add_argument("-n", type=int, default=20000, help="requests per pipelined measurement")
    p.add_argument("--depth", type=int, default=32, help="concurrent callers")
    opts = p.parse_args(argv)
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for server in opts.servers:
            if server == "memory":
                rows.append((server, asyncio.run(_measure(MemoryTransport(), opts.n, opts.depth))))
                continue
            t = time.perf_counter()
            proc = WalredoProcess.launch(_config(server, Path(tmp)))
            launch_ms = (time.perf_counter() - t) * 1e3
            try:
                result = asyncio.run(_measure(proc, opts.n, opts.depth))
            finally:
                proc.close()
            result["first ping ms"] += launch_ms
            rows.append((server, result))
    cols = list(rows[0][1]) if rows else []
    print(f"{'server':<12}" + "".join(f"{c:>18}" for c in cols))
    for name, result in rows:
        print(f"{Path(name).name:<12}" + "".join(f"{result[c]:>18,.1f}" for c in cols))


if __name__ == "__main__":
    main()
