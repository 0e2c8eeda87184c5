"""The embedded reference walredo's two targets of issue 15, as ratios measured in one run.

Not a test: prints two tables.

Start-up: launch to the answer of the first ping, through the process layer as a test gets it
(``WalredoProcess.launch``: sandbox, shim, then one ``H`` written and its page read on the raw
pipes), then ``close()`` (not timed). Sides, alternating within every round:

- ``C stub``: ``stub.c``, a do-nothing C walredo (the baseline: what launching costs at all);
- ``reference``: the launcher ``target.reference_binary`` writes, which the shim server runs
  in-process (the reference imported once per runner, forked per launch);
- ``reference, exec``: the same launcher without its ``walredo-fork-server`` line, so it is
  exec'd and starts its own interpreter (how every launch went before);
- ``reference, no server``: one interpreter per shim as well (``sandbox.use_shim_server =
  False``, the fallback where the shim server cannot run).

Throughput: the entries of the shipped corpus of ``--pg-version`` (real WAL, cut by
``pytest-walredo corpus build``) that the redo model implements, all of them ``--repeat``
times in one stream, written by one thread while another reads the answers (pipelined: the
process always has work queued), requests answered per second. Against ``--walredo-bin`` when
given (the same stream, same launch path), else against the recorded figure of a real PG15
walredo on the project's VM (issue 15: ~65,000 requests/s). The ``in-process`` row is the
reference's state machine fed the same stream with no process or pipe: the Python floor.

Medians over ``--rounds``; the targets: start-up <= 10 ms, throughput >= 0.3x a real
walredo's.

    python benchmarks/bench_reference.py [--rounds 15] [--repeat 20] [--walredo-bin PATH]
    python benchmarks/bench_reference.py --profile   # cProfile of the in-process row only
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from common import PING, build

from pytest_walredo.corpus.default import load_shipped
from pytest_walredo.corpus.judge import model_unsupported
from pytest_walredo.pg.version import Flavour
from pytest_walredo.process import LaunchConfig, WalredoProcess, sandbox
from pytest_walredo.refserver.machine import WalredoMachine
from pytest_walredo.target import reference_binary

PAGE = 8192
REAL_PG15_RATE = 65_000.0
"""Requests/s of a real PG15 walredo on the project's 2-core VM (issue 15), used without
--walredo-bin."""


def _read_exactly(fd: int, n: int) -> None:
    got = 0
    while got < n:
        part = os.read(fd, min(1 << 20, n - got))
        if not part:
            raise RuntimeError(f"walredo closed stdout after {got} of {n} bytes")
        got += len(part)


def startup(config: LaunchConfig) -> float:
    """Seconds from launch to the first ping's answer."""
    t0 = time.perf_counter()
    proc = WalredoProcess.launch(config)
    try:
        os.write(proc.stdin_fd, PING)
        _read_exactly(proc.stdout_fd, PAGE)
        return time.perf_counter() - t0
    finally:
        proc.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(config: LaunchConfig, stream: bytes, answers: int) -> tuple[float, float]:
    """(requests answered per second, per CPU second of the walredo) for ``stream``
    (``answers`` pages), pipelined."""
    proc = WalredoProcess.launch(config)
    try:
        os.write(proc.stdin_fd, PING)
        _read_exactly(proc.stdout_fd, PAGE)  # started; not timed
        failed: list[BaseException] = []

        def write() -> None:
            try:
                view = memoryview(stream)
                while view:
                    view = view[os.write(proc.stdin_fd, view[: 1 << 20]):]
            except BaseException as exc:  # the reader reports a short answer stream
                failed.append(exc)

        writer = threading.Thread(target=write)
        cpu0 = _cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        writer.start()
        _read_exactly(proc.stdout_fd, answers * PAGE)
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds(proc.pid) - cpu0
        writer.join()
        if failed:
            raise failed[0]
        return answers / elapsed, answers / max(cpu, 1e-9)
    finally:
        proc.close()


def in_process(stream: bytes, answers: int, pg_version: int,
               flavour: Flavour) -> tuple[float, float]:
    """Requests per second (wall, CPU) of the reference's state machine alone (no process, no
    pipe)."""
    from pytest_walredo.refserver.server import Options, RefServer

    RefServer(Options(seccomp=False)).load_model()  # what the server does before the first A
    machine = WalredoMachine(pg_version=pg_version, flavour=flavour)
    t0, cpu0 = time.perf_counter(), time.process_time()
    machine.feed(stream)
    out = machine.take()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if len(out) != answers * PAGE:
        raise RuntimeError("the reference's machine did not answer every request")
    return answers / elapsed, answers / max(cpu, 1e-9)


def _median_table(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, float]:
    got: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            got[name].append(run())
    return {name: statistics.median(values) for name, values in got.items()}


def _median_pairs(rounds: int, sides: dict[str, Callable[[], tuple[float, float]]]
                  ) -> dict[str, tuple[float, float]]:
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            got[name].append(run())
    return {name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
            for name, values in got.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=20,
                        help="how many times the corpus is sent in one throughput run")
    parser.add_argument("--pg-version", type=int, default=15)
    parser.add_argument("--walredo-bin", type=Path)
    parser.add_argument("--walredo-lib-dir", type=Path)
    parser.add_argument("--profile", action="store_true",
                        help="print where the in-process row's time goes (cProfile) and stop")
    args = parser.parse_args(argv)
    if args.profile:
        import cProfile
        import pstats

        entries = [e for e in load_shipped(args.pg_version) if model_unsupported(e) is None]
        stream = b"".join(e.request for e in entries) * args.repeat
        profiler = cProfile.Profile()
        profiler.runcall(in_process, stream, len(entries) * args.repeat, args.pg_version,
                         entries[0].meta.flavour)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return 0
    with tempfile.TemporaryDirectory(prefix="walredo-bench-") as tmp:
        work = Path(tmp)
        entries = [e for e in load_shipped(args.pg_version) if model_unsupported(e) is None]
        flavour = entries[0].meta.flavour
        ref = reference_binary(work / "ref", args.pg_version, flavour)
        text = ref.path.read_text()
        exec_launcher = work / "ref-exec"
        exec_launcher.write_text("".join(line for line in text.splitlines(keepends=True)
                                         if "walredo-fork-server" not in line))
        exec_launcher.chmod(0o755)
        configs = {
            "C stub": LaunchConfig(build("stub.c", work), workdir=work),
            "reference": LaunchConfig(ref.path, args=ref.args, workdir=work),
            "reference, exec": LaunchConfig(exec_launcher, args=ref.args, workdir=work),
        }

        def no_server() -> float:
            sandbox.use_shim_server = False
            try:
                return startup(configs["reference, exec"])
            finally:
                sandbox.use_shim_server = True

        for config in configs.values():
            startup(config)  # start the shim server and import the reference once
        sides: dict[str, Callable[[], float]] = {
            name: (lambda c=config: startup(c)) for name, config in configs.items()}
        sides["reference, no server"] = no_server
        med = _median_table(args.rounds, sides)
        base = med["C stub"]
        print(f"start-up: launch to the first ping's answer, ms, median of {args.rounds} rounds\n")
        print(f"{'binary':<28} {'ms':>7} {'x C stub':>9}")
        for name, value in med.items():
            print(f"{name:<28} {value * 1e3:>7.1f} {value / base:>8.1f}x")
        print(f"(target: reference <= 10 ms; here {med['reference'] * 1e3:.1f} ms)\n")

        stream = b"".join(e.request for e in entries) * args.repeat
        answers = len(entries) * args.repeat
        tsides: dict[str, Callable[[], tuple[float, float]]] = {
            "reference": lambda: throughput(configs["reference"], stream, answers),
            "in-process": lambda: in_process(stream, answers, args.pg_version, flavour),
        }
        if args.walredo_bin is not None:
            real = LaunchConfig(args.walredo_bin, lib_dir=args.walredo_lib_dir, workdir=work)
            tsides[args.walredo_bin.name] = lambda: throughput(real, stream, answers)
        trounds = max(3, args.rounds // 3)
        tmed = _median_pairs(trounds, tsides)
        if args.walredo_bin is not None:
            real, what = tmed.pop(args.walredo_bin.name), f"{args.walredo_bin.name}, this run"
        else:
            real, what = (REAL_PG15_RATE, REAL_PG15_RATE), "real PG15 walredo, recorded"
        print(f"throughput: {len(entries)} PG{args.pg_version} corpus entries x {args.repeat}, "
              f"pipelined, median of {trounds} rounds; per wall second and per CPU second of "
              "the walredo (less sensitive to a loaded machine)\n")
        print(f"{'binary':<28} {'req/s':>9} {'x real':>7} {'req/CPU-s':>10} {'x real':>7}")
        print(f"{what:<28} {real[0]:>9.0f} {1.0:>6.2f}x {real[1]:>10.0f} {1.0:>6.2f}x")
        for name, (wall, cpu) in tmed.items():
            print(f"{name:<28} {wall:>9.0f} {wall / real[0]:>6.2f}x {cpu:>10.0f} "
                  f"{cpu / real[1]:>6.2f}x")
        print("(target: reference >= 0.30x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
