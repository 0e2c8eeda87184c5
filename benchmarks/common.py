"""What the benchmark scripts share: building the C programs, the C driver, runs through our
client, and the binaries to run against. Not a test; imported by ``bench_*.py``.

Every number these scripts print is a rate measured in the same run as the baseline it is
compared with, under the same conditions: rounds alternate the sides of each ratio, and the
tables show medians over the rounds (the machines we run on are small and shared).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_walredo.process import LaunchConfig, WalredoClient, WalredoProcess, refserver_config
from pytest_walredo.protocol import Ping

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PING = Ping().encode()


def build(source: str, directory: Path, *, defines: tuple[str, ...] = (),
          name: str | None = None) -> Path:
    """Compile ``benchmarks/<source>`` with the system C compiler; exit with one line if there
    is none."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        sys.exit(f"no C compiler (cc/gcc/clang) on PATH to build benchmarks/{source}")
    out = directory / (name or Path(source).stem)
    subprocess.run([cc, "-O2", *(f"-D{d}" for d in defines), "-o", str(out), str(HERE / source)],
                   check=True)
    return out


@dataclass(frozen=True)
class Target:
    """A walredo binary to benchmark: how our client launches it, and the argv and environment
    the C driver starts it with (the same program, arguments and library path)."""

    name: str
    config: LaunchConfig
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def stub_target(stub: Path, workdir: Path) -> Target:
    return Target("C stub", LaunchConfig(binary=stub, workdir=workdir), (str(stub), "--wal-redo"))


def reference_target(workdir: Path, pg_version: int | None = None) -> Target:
    """The reference walredo of this checkout (``PYTHONPATH`` points at it)."""
    env = {"PYTHONPATH": str(ROOT)}
    config = refserver_config(workdir, pg_version=pg_version, extra_env=env)
    argv = (sys.executable, "-m", "pytest_walredo.refserver", "--wal-redo",
            *(("--pg-version", str(pg_version)) if pg_version is not None else ()))
    return Target("reference", config, argv, env)


def binary_target(path: Path, lib_dir: Path | None, workdir: Path) -> Target:
    lib = lib_dir if lib_dir is not None else path.resolve().parent.parent / "lib"
    env = {"LD_LIBRARY_PATH": str(lib), "DYLD_LIBRARY_PATH": str(lib)}
    return Target(path.name, LaunchConfig(binary=path, lib_dir=lib, workdir=workdir),
                  (str(path), "--wal-redo"), env)


def c_driver(driver: Path, request_file: Path, depth: int, seconds: float,
             target: Target) -> tuple[int, float]:
    """(answers, seconds) of ``driver.c`` keeping ``depth`` requests in flight."""
    env = {**os.environ, **target.env}
    out = subprocess.run([str(driver), str(request_file), str(depth), str(seconds), "--",
                          *target.argv], capture_output=True, text=True, env=env, check=True)
    answers, ns, _hash = out.stdout.split()
    return int(answers), int(ns) / 1e9


def run_loop(coro: Awaitable[tuple[int, float]], loop: str = "asyncio") -> tuple[int, float]:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)  # type: ignore[no-any-return]
    return asyncio.run(coro)  # type: ignore[arg-type]


async def drive(call: Callable[[], Awaitable[object]], callers: int,
                seconds: float) -> tuple[int, float]:
    """``callers`` concurrent loops of ``call`` for ``seconds``: (calls made, seconds taken)."""
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> int:
        # at least one call each: on a loaded machine a worker may first run after the
        # deadline, and a run of no answers has no time per answer
        n = 0
        while True:
            await call()
            n += 1
            if time.perf_counter() >= deadline:
                return n

    counts = await asyncio.gather(*(worker() for _ in range(callers)))
    return sum(counts), time.perf_counter() - start


def compile_stub(directory: Path) -> Path:
    """``stub.c`` built in ``directory``."""
    return build("stub.c", directory)


async def client_run(target: Target, request: bytes, callers: int, seconds: float, *,
                     hang_check: float | None, timeout: float | None = 10.0,
                     expect: bytes | None = None) -> tuple[int, float]:
    """(answers, seconds) of ``callers`` tasks sending ``request`` through one client."""
    client = WalredoClient(WalredoProcess.launch(target.config), timeout=timeout,
                           hang_check=hang_check)
    try:
        await client.ping()  # start-up, not timed
        call: Callable[[], Awaitable[bytes]]
        if request == PING:
            call = client.ping
        else:
            first = await client.apply_raw(request)
            if expect is not None and first != expect:
                raise RuntimeError(f"{target.name} did not answer the expected page")
            call = lambda: client.apply_raw(request)  # noqa: E731
        return await drive(call, callers, seconds)
    finally:
        await client.aclose()


async def asyncio_floor(target: Target, seconds: float) -> tuple[int, float]:
    """The least any asyncio client can do per ping: write, wait on the event loop for the
    stdout fd, read, hand the page to the waiting task. No client, no checks: the event
    loop's own cost, the floor under our client's one-caller round trip."""
    proc = subprocess.Popen(target.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, **target.env})
    assert proc.stdin is not None and proc.stdout is not None
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
    os.set_blocking(rfd, False)
    buf = bytearray(1 << 16)
    view = memoryview(buf)
    loop = asyncio.get_running_loop()
    got = 0
    waiter: asyncio.Future[bytes] | None = None

    def readable() -> None:
        nonlocal got, waiter
        got += os.readv(rfd, [view[got:]])
        if got >= 8192 and waiter is not None:
            got = 0
            waiter.set_result(bytes(view[:8192]))
            waiter = None

    try:
        loop.add_reader(rfd, readable)
        n = -1  # the first ping waits for start-up: the clock starts after it
        start = deadline = 0.0
        while True:
            waiter = loop.create_future()
            os.write(wfd, PING)
            await waiter
            n += 1
            if n == 0:
                start = time.perf_counter()
                deadline = start + seconds
            elif time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        loop.remove_reader(rfd)
        return n, elapsed
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait()
        proc.stdout.close()
