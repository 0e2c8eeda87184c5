"""Soak the whole conformance suite against a correct walredo that floods its stderr, with the
hang check on, and print one row per run.

    python benchmarks/flood_soak.py [--runs 10] [--flood BYTES] [--one-line] [--hang-check S]

The binary is the reference walredo writing ``--flood`` bytes of stderr (100-byte lines, or one
endless line) before every batch of answers (``tests/hostile/flood_walredo.py``): it often
sleeps in a pipe *write* while a caller waits for an answer, which the hang check must not take
for a hang. The baseline, run first, is the same suite against the plain reference walredo;
the last column is each run's time over the baseline's. Exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOD_SCRIPT = ROOT / "tests" / "hostile" / "flood_walredo.py"


def launcher(directory: Path, flood: int, lines: bool) -> Path:
    path = directory / "flood-walredo"
    path.write_text(f"#!{sys.executable} -I\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                    f"FLOOD = {flood}\nLINES = {lines}\n" + FLOOD_SCRIPT.read_text())
    path.chmod(0o755)
    return path


def run_suite(binary: Path | None, hang_check: str, basetemp: Path) -> tuple[str, float]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--basetemp",
           str(basetemp), "--walredo-hang-check", hang_check, "--pyargs", "pytest_walredo.conformance"]
    if binary is not None:
        cmd += ["--walredo-bin", str(binary)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=basetemp.parent)
    seconds = time.monotonic() - start
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", proc.stdout, re.M)
    outcome = summary[-1] if summary else f"exit status {proc.returncode}"
    if proc.returncode != 0:
        failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
        outcome += f" ({', '.join(failed)})" if failed else ""
    return outcome, seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--flood", type=int, default=2 << 20, help="stderr bytes per answer batch")
    parser.add_argument("--one-line", action="store_true", help="flood as one endless line")
    parser.add_argument("--hang-check", default="0.2", help="--walredo-hang-check value")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flood-soak-") as tmp:
        work = Path(tmp)
        binary = launcher(work, args.flood, not args.one_line)
        print(f"{'run':>8} {'seconds':>8} {'ratio':>6}  outcome")
        base_outcome, base = run_suite(None, args.hang_check, work / "bt-base")
        print(f"{'baseline':>8} {base:8.1f} {1.0:6.2f}  {base_outcome}")
        bad = 0
        for i in range(1, args.runs + 1):
            outcome, seconds = run_suite(binary, args.hang_check, work / f"bt-{i}")
            bad += "failed" in outcome or "passed" not in outcome
            print(f"{i:>8} {seconds:8.1f} {seconds / base:6.2f}  {outcome}", flush=True)
        print(f"{args.runs - bad} of {args.runs} runs passed "
              f"({args.flood} bytes of stderr per answer batch, "
              f"{'one line' if args.one_line else '100-byte lines'}, hang check {args.hang_check})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
