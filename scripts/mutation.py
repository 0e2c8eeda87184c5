#!/usr/bin/env python3
"""Mutation testing of the core modules, each with the fast tests that cover it.

    python scripts/mutation.py                # every module, then the table
    python scripts/mutation.py -k protocol    # one module (substring of its name; repeatable)
    python scripts/mutation.py -k page -v     # ... and print every surviving mutant's diff
    python scripts/mutation.py --list         # the modules and their tests

Each module runs in a scratch copy of the checkout (``.mutation/<module>/``, deleted and made
anew on every run so that no verdict is cached from older tests), with mutmut 3 mutating only
that module's files and running only that module's tests. mutmut copies the package into
``<scratch>/mutants/`` and imports it from there; PYTHONPATH is set to that folder too, so no
test, and no subprocess a test starts, can import another copy of ``pytest_walredo``.

Equivalent mutants (no test can tell them from the original) are listed with the reason in
``docs/MUTATION.md``, in its TOML block; they are matched by module, function and the changed
source line before and after the mutation (not by mutmut's numbering or line numbers, which move
when the code is edited), and left out of the score. Listed mutants that no longer exist, or
that the tests now kill, are reported so that the list stays true.

score = killed / (mutants - equivalent). A mutant whose tests time out or crash counts as
killed; a mutant that no test runs counts as surviving (a gap like any other).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pytest_walredo"
DOCS = ROOT / "docs" / "MUTATION.md"


@dataclass(frozen=True)
class Module:
    """One row of the table: the files to mutate (globs; missing ones are skipped, so that a
    module can name both its old and its new layout) and the fast tests that cover them."""

    name: str
    sources: tuple[str, ...]
    tests: tuple[str, ...]
    # mutmut kills a mutant's test run after (test time + 1 s) * this many seconds of wall
    # time (its default, 15, is long for tests that wait on a process: a mutant that makes a
    # request hang would cost minutes)
    timeout_multiplier: float = 15.0


# The tests of the redo model every pg/redo row runs (in-process, about a second together).
REDO_TESTS = ("test_pg_redo.py", "test_pg_redo_edges.py", "test_vectors_redo.py", "test_corpus_default.py",
              "test_record_kinds.py")

# Edit here when a module moves or gains a test file. Only fast, in-process tests belong here:
# mutmut runs them once per mutant.
MODULES: tuple[Module, ...] = (
    Module("protocol", ("protocol.py",), ("test_protocol.py", "test_dump.py")),
    Module("pg/page", ("pg/page.py",), ("test_pg_page.py", "test_pg_page_edges.py")),
    Module("pg/xlogrecord", ("pg/xlogrecord.py",), ("test_pg_xlogrecord.py",)),
    Module("pg/compression", ("pg/compression.py",), ("test_pg_compression.py",)),
    # the redo routines, one row per rmgr (or group), each with the redo tests every rmgr shares
    # (hand-built records, the Neon vectors, the shipped corpora of real PostgreSQL WAL, every
    # drawable kind applied once) and its own
    Module("pg/redo/heap.py", ("pg/redo/heap.py",), REDO_TESTS),
    Module("pg/redo/heap2.py", ("pg/redo/heap2.py",), (*REDO_TESTS, "test_pg_redo_btree.py")),  # + LOCK_UPDATED
    Module("pg/redo/btree+btree_delete", ("pg/redo/btree.py", "pg/redo/btree_delete.py"),
           (*REDO_TESTS, "test_pg_redo_btree.py", "test_pg_redo_btree_edges.py")),
    # (+ the btree and GIN tests: Neon's rules for them are in neon.py)
    Module("pg/redo/buffer+neon+__init__", ("pg/redo/buffer.py", "pg/redo/neon.py", "pg/redo/__init__.py"),
           (*REDO_TESTS, "test_pg_redo_btree.py", "test_pg_redo_btree_edges.py", "test_pg_redo_gin.py")),
    Module("pg/redo/hash+hash_vacuum", ("pg/redo/hash.py", "pg/redo/hash_vacuum.py"),
           (*REDO_TESTS, "test_pg_redo_hash.py", "test_pg_redo_hash_edges.py")),
    Module("pg/redo/gin.py", ("pg/redo/gin.py",), (*REDO_TESTS, "test_pg_redo_gin.py", "test_pg_redo_gin_edges.py")),
    Module("pg/redo/gist.py", ("pg/redo/gist.py",), (*REDO_TESTS, "test_pg_redo_gist.py", "test_pg_redo_gist_edges.py")),
    Module("pg/redo/spgist.py", ("pg/redo/spgist.py",),
           (*REDO_TESTS, "test_pg_redo_spgist.py", "test_pg_redo_spgist_edges.py")),
    # test_strategies_brin.py (3 s) is left out: its shrink test fails in mutmut's clean run, where
    # Hypothesis does not shrink (it passes in the suite)
    Module("pg/redo/brin.py", ("pg/redo/brin.py",), (*REDO_TESTS, "test_pg_redo_brin_edges.py")),
    Module("pg/redo/sequence+generic+xlog", ("pg/redo/sequence.py", "pg/redo/generic.py", "pg/redo/xlog.py"),
           (*REDO_TESTS, "test_strategies_am_seq.py", "test_pg_redo_seq_generic_xlog_edges.py")),
    Module("process/client", ("process/client.py",),
           ("test_client.py", "test_client_edges.py", "test_pipe_transport.py",
            "test_client_reader.py"), 4.0),
    Module("process/sandbox", ("process/sandbox.py",),
           ("test_process_sandbox.py", "test_refserver_launch.py", "test_sandbox_units.py"), 4.0),
    Module("process/quiescence", ("process/quiescence.py",), ("test_quiescence.py",), 4.0),
    Module("refserver/machine", ("refserver/machine.py",), ("test_refserver_machine.py",)),
)

# mutmut's exit-code verdicts, folded into the table's columns.
KILLED_CODES = {1, 3, 36, -24, 24, 152, 255, -11, -9}  # failed, pytest error, timeout, crash
SURVIVED_CODES = {0}
UNTESTED_CODES = {5, 33}  # no test ran the mutant: it survives as well

MUTMUT_CLI = "import sys; from mutmut.__main__ import cli; sys.argv[0] = 'mutmut'; cli()"


@dataclass
class Mutant:
    name: str  # mutmut's name, e.g. pytest_walredo.protocol.xǁDecoderǁfeed__mutmut_3
    file: str
    exit_code: int | None
    function: str = ""
    before: str = ""
    after: str = ""
    diff: str = ""
    equivalent: bool = False

    @property
    def killed(self) -> bool:
        return self.exit_code in KILLED_CODES


@dataclass
class Result:
    module: Module
    files: list[str]
    mutants: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def equivalent(self) -> int:
        return sum(m.equivalent for m in self.mutants)

    @property
    def killed(self) -> int:
        return sum(m.killed for m in self.mutants)

    @property
    def survivors(self) -> list[Mutant]:
        return [m for m in self.mutants if not m.killed and not m.equivalent]

    @property
    def score(self) -> float:
        scored = len(self.mutants) - self.equivalent
        return self.killed / scored if scored else 0.0


def load_equivalents(path: Path) -> list[dict[str, str]]:
    """The ``[[equivalent]]`` entries of the first ```toml block in docs/MUTATION.md."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    text = path.read_text(encoding="utf-8")
    block = re.search(r"^```toml\n(.*?)^```", text, re.S | re.M)
    if block is None:
        return []
    entries = tomllib.loads(block.group(1)).get("equivalent", [])
    for entry in entries:
        missing = {"module", "function", "before", "after", "reason"} - set(entry)
        if missing:
            raise SystemExit(f"{path}: equivalent mutant entry {entry} lacks {', '.join(sorted(missing))}")
    return list(entries)


def source_files(module: Module) -> list[str]:
    pkg = ROOT / PACKAGE
    found: list[str] = []
    for pattern in module.sources:
        for path in sorted(pkg.glob(pattern)):
            if path.is_file():
                found.append(str(path.relative_to(ROOT)))
    return found


def make_scratch(scratch: Path, module: Module, files: list[str]) -> None:
    """A copy of the checkout with a [tool.mutmut] section for this module only."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / PACKAGE, scratch / PACKAGE, ignore=ignore)
    shutil.copytree(ROOT / "tests", scratch / "tests", ignore=ignore)
    shutil.copy2(ROOT / "conftest.py", scratch / "conftest.py")
    tests = [f"tests/{t}" for t in module.tests]
    config = "\n".join([
        "",
        "[tool.mutmut]",
        f"source_paths = [{PACKAGE!r}]",
        f"only_mutate = {json.dumps(files)}",
        'also_copy = ["conftest.py"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        # needs_postgres tests run initdb (seconds each, once per mutant): too slow here
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-m", "not needs_postgres"]',
        "use_git_change_detection = false",
        f"timeout_multiplier = {module.timeout_multiplier}",
        "",
    ])
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (scratch / "pyproject.toml").write_text(text + config, encoding="utf-8")


def function_of(name: str) -> str:
    """``pytest_walredo.protocol.xǁDecoderǁfeed__mutmut_3`` -> ``Decoder.feed``."""
    key = name.rpartition(".")[2].rpartition("__mutmut_")[0]
    if key.startswith("xǁ"):
        _, cls, func = key.split("ǁ", 2)
        return f"{cls}.{func}"
    return key[2:] if key.startswith("x_") else key


def read_mutants(scratch: Path, files: list[str]) -> list[Mutant]:
    """Verdicts from mutmut's .meta files, and each mutant's changed lines (from its diff)."""
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    mutants: list[Mutant] = []
    old_cwd = Path.cwd()
    os.chdir(scratch)  # mutmut's helpers read mutants/ and pyproject.toml from the cwd
    reset_config()
    try:
        for file in files:
            meta = scratch / "mutants" / f"{file}.meta"
            if not meta.exists():
                continue
            codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
            for name, code in codes.items():
                mutant = Mutant(name=name, file=file, exit_code=code, function=function_of(name))
                mutant.diff = get_diff_for_mutant(name, path=file)
                body = mutant.diff.splitlines()[2:]
                mutant.before = " ".join(line[1:].strip() for line in body if line.startswith("-"))
                mutant.after = " ".join(line[1:].strip() for line in body if line.startswith("+"))
                mutants.append(mutant)
    finally:
        os.chdir(old_cwd)
        reset_config()
    return mutants


def mark_equivalents(result: Result, equivalents: list[dict[str, str]]) -> list[str]:
    """Flag the listed equivalents; return complaints about entries that are no longer true."""
    complaints = []
    for entry in equivalents:
        if entry["module"] != result.module.name:
            continue
        matches = [m for m in result.mutants if m.function == entry["function"]
                   and m.before == entry["before"].strip() and m.after == entry["after"].strip()]
        if "occurrence" in entry:  # the same change on the same text twice in one function
            n = int(entry["occurrence"])
            matches = matches[n - 1 : n]
        where = f"{entry['module']} {entry['function']}: {entry['before']!r} -> {entry['after']!r}"
        if "occurrence" in entry:
            where += f" (occurrence {entry['occurrence']})"
        if not matches:
            complaints.append(f"listed equivalent not found (code changed?): {where}")
        for m in matches:
            if m.killed:
                complaints.append(f"listed equivalent is killed by the tests (not equivalent): {where}")
            else:
                m.equivalent = True
    return complaints


def run_module(module: Module, workdir: Path, children: int, log: Path, survivors: bool = False,
               examples: int = 0) -> Result:
    files = source_files(module)
    result = Result(module, files)
    if not files:
        result.error = f"no file matches {', '.join(module.sources)} under {PACKAGE}/"
        return result
    scratch = workdir / module.name.replace("/", "-")
    names: list[str] = []
    if survivors and (scratch / "mutants").is_dir():
        # keep mutmut's verdicts, bring in the current tests, re-run only what was not killed
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for dest in (scratch / "tests", scratch / "mutants" / "tests"):
            shutil.copytree(ROOT / "tests", dest, ignore=ignore, dirs_exist_ok=True)
        names = [m.name for m in read_mutants(scratch, files) if not m.killed]
        if not names:
            result.mutants = read_mutants(scratch, files)
            return result
    else:
        make_scratch(scratch, module, files)
        # PYTHONPATH names mutmut's copy, so that subprocesses started by tests import it too.
        # The folder must exist before Python starts: a sys.path entry missing at the first
        # import is cached as "nothing here" for the life of the process, and the package would
        # then come from wherever else it is installed (an editable install of another
        # checkout, say).
        (scratch / "mutants").mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(scratch / "mutants")
    vectors = ROOT.parent / "shared" / "vectors"
    env.setdefault("WALREDO_VECTORS_DIR", str(vectors))
    if examples > 0:  # read by tests/conftest.py: property tests run at most this many examples
        env["WALREDO_MUTATION_EXAMPLES"] = str(examples)
    else:
        env.pop("WALREDO_MUTATION_EXAMPLES", None)
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        # its own session, so that an interrupted run takes mutmut's workers down with it
        proc = subprocess.Popen([sys.executable, "-c", MUTMUT_CLI, "run", "--max-children", str(children),
                                 *names],
                                cwd=scratch, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            returncode = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    result.seconds = time.monotonic() - start
    if returncode != 0:
        result.error = f"mutmut exited with {returncode}; see {log}"
    result.mutants = read_mutants(scratch, files)
    return result


def toml_stub(m: Mutant, module: Module) -> str:
    """The docs/MUTATION.md entry that would list ``m`` as equivalent (reason to be written)."""
    def q(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string
    return "\n".join(["[[equivalent]]", f"module = {q(module.name)}", f"function = {q(m.function)}",
                      f"before = {q(m.before)}", f"after = {q(m.after)}", 'reason = ""', ""])


def table(results: list[Result]) -> str:
    rows = [("module", "tests", "mutants", "killed", "equivalent", "survived", "score", "seconds")]
    for r in results:
        rows.append((
            f"`{r.module.name}`",
            ", ".join(f"`{t}`" for t in r.module.tests),
            str(len(r.mutants)),
            str(r.killed),
            str(r.equivalent),
            str(len(r.survivors)),
            f"{100 * r.score:.1f}%" if r.mutants else "-",
            f"{r.seconds:.0f}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="select", action="append", default=[],
                        help="run only modules whose name contains this (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each survivor's diff")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".mutation",
                        help="scratch folder (default: .mutation/ in the checkout)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1,
                        help="mutants run at once (default: the number of cores)")
    parser.add_argument("--examples", type=int, default=10,
                        help="property tests run at most this many examples per mutant, derandomized "
                             "and unshrunk (default 10; 0: the tests' own settings)")
    parser.add_argument("--nice", type=int, default=10, help="niceness increment (default 10)")
    parser.add_argument("--survivors", action="store_true",
                        help="reuse the last run's scratch copy and re-run only the mutants it did not "
                             "kill, against the current tests (quick check of new tests; seconds "
                             "then count only the re-run)")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()

    modules = [m for m in MODULES if not args.select or any(k in m.name for k in args.select)]
    if args.list:
        for m in MODULES:
            print(f"{m.name:22} {', '.join(source_files(m)) or '(no file)':40} {', '.join(m.tests)}")
        return 0
    if not modules:
        parser.error(f"-k {' '.join(args.select)} matches no module; --list shows them")
    try:
        import mutmut  # noqa: F401
    except ModuleNotFoundError:
        print("mutmut is not installed: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    if args.nice:
        os.nice(args.nice)
    equivalents = load_equivalents(DOCS) if DOCS.exists() else []

    results: list[Result] = []
    complaints: list[str] = []
    for module in modules:
        print(f"mutating {module.name} ...", flush=True)
        log = args.workdir / f"{module.name.replace('/', '-')}.log"
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run_module(module, args.workdir, args.max_children, log, args.survivors,
                            args.examples)
        complaints += mark_equivalents(result, equivalents)
        results.append(result)
        if result.error:
            complaints.append(f"{module.name}: {result.error}")
        print(f"  {len(result.mutants)} mutants, {result.killed} killed, {result.equivalent} equivalent, "
              f"{len(result.survivors)} survived, {result.seconds:.0f} s", flush=True)
        report = args.workdir / f"{module.name.replace('/', '-')}-survivors.txt"
        report.write_text("".join(f"# {m.name}\n{m.diff}\n{toml_stub(m, module)}\n" for m in result.survivors),
                          encoding="utf-8")
        for m in result.survivors:
            print(f"  survived: {m.name}  [{m.function}] {m.before!r} -> {m.after!r}")
            if args.verbose:
                print("    " + m.diff.replace("\n", "\n    "))
        if result.survivors:
            print(f"  (diffs of the survivors: {report})")

    print()
    print(table(results))
    for complaint in complaints:
        print(f"warning: {complaint}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
