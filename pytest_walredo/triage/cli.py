"""The ``pytest-walredo`` command line: ``inspect``, ``replay``, ``shrink``, ``diff``, ``corpus``.

Exit statuses (documented in ``--help``):

* 0: success (inspect/diff: pages identical; replay: the answer matches; shrink: a smaller
  reproducer was written).
* 1: a finding (diff: pages differ; replay: the process failed or its answer differs;
  shrink: the input does not show the requested failure, so there is nothing to shrink;
  corpus check: an entry differs or failed).
* 2: a usage or input error: ONE line on stderr naming the file, flag or value at fault.

``main`` never lets an exception escape as a traceback for user errors: argparse errors are
turned into one line (argparse's own ``error()`` prints the whole usage first, so the parser
subclass below raises instead), and :class:`~pytest_walredo.triage.TriageError` is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pytest_walredo.pg.version import DEFAULT_VERSION, SUPPORTED_VERSIONS, Flavour
from pytest_walredo.triage import TriageError

__all__ = ["build_parser", "main"]

PROG = "pytest-walredo"
EXIT_OK, EXIT_FINDING, EXIT_ERROR = 0, 1, 2


class _UsageError(Exception):
    """An argparse error, carried to :func:`main` to be printed on one line."""

    def __init__(self, prog: str, message: str):
        super().__init__(f"{prog}: {message}")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are raised (one line) rather than printed with the usage."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self.prog, message)


def _pg_version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected one of "
                                         f"{', '.join(map(str, SUPPORTED_VERSIONS))}") from None
    if value not in SUPPORTED_VERSIONS:
        raise argparse.ArgumentTypeError(f"{value} is not supported; expected one of "
                                         f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
    return value


def _flavour(text: str) -> Flavour:
    try:
        return Flavour.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _seconds_or_off(text: str) -> float | None:
    if text.strip().lower() in ("0", "off", "no", "none"):
        return None
    return _positive_float(text)


def _add_pg_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-version", type=_pg_version, default=DEFAULT_VERSION, metavar="N",
                   help=f"PostgreSQL major version that wrote the WAL ({', '.join(map(str, SUPPORTED_VERSIONS))}; "
                        f"default {DEFAULT_VERSION}; nothing is guessed)")
    p.add_argument("--flavour", type=_flavour, default=Flavour.NEON, metavar="F",
                   help="WAL flavour: neon (Neon's heap records with t_cid) or vanilla (default neon)")


def _add_binary_options(p: argparse.ArgumentParser, timeout: float, timeout_help: str,
                        hang_check: bool = True) -> None:
    p.add_argument("--walredo-bin", type=Path, metavar="PATH",
                   help="walredo executable to run (default: the embedded reference walredo)")
    p.add_argument("--lib-dir", type=Path, metavar="DIR",
                   help="library directory for --walredo-bin (LD_LIBRARY_PATH of the process)")
    p.add_argument("--ref-fault", action="append", default=[], metavar="SPEC",
                   help="a --fault=SPEC for the reference walredo (repeatable; e.g. crash-after:1, no-lsn, "
                        "corrupt-byte:100); only without --walredo-bin")
    p.add_argument("--timeout", type=_positive_float, default=timeout, metavar="SECONDS",
                   help=f"{timeout_help} (default {timeout:g})")
    if not hang_check:
        return
    p.add_argument("--hang-check", type=_seconds_or_off, default=0.2, metavar="SECONDS",
                   help="while an answer is awaited this long, check whether the process sits idle with "
                        "every request consumed and call it a hang at once (a timeout) instead of waiting "
                        "for --timeout (default 0.2; 0 or off: never)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pytest-walredo`` (subcommands inspect/replay/shrink/diff)."""
    parser = _Parser(
        prog=PROG,
        description="Triage failing walredo inputs: decode, replay, shrink and diff .walredo files and pages.",
        epilog="Exit status: 0 ok, 1 a finding (differs / fails / nothing to shrink), 2 bad input or usage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("inspect", help="decode a .walredo stream or summarize a page file",
                       description="Decode every message of a .walredo stream: for A messages the WAL record "
                                   "like pg_waldump (rmgr, record name, xid, LSN, length, block references, "
                                   "full-page images, description); for P messages and 8192-byte page files a "
                                   "page summary (header fields, line pointers, tuples).")
    p.add_argument("file", type=Path, metavar="FILE", help="a .walredo stream or an 8192-byte page file")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    _add_pg_options(p)

    p = sub.add_parser("replay", help="run a .walredo request through a walredo process",
                       description="Send the request in FILE to a walredo process (the reference walredo unless "
                                   "--walredo-bin) and show the answer: page summary, the difference from "
                                   "--expect or from the redo model's prediction, stderr and exit status. A "
                                   "session stream (several calls, NAME.session.walredo) is sent to one process, "
                                   "call after call, and the marked call (NAME.json's session.index, else the "
                                   "last) is checked.")
    p.add_argument("file", type=Path, metavar="FILE",
                   help="a .walredo file holding one B [P] A* G request, or a session stream")
    p.add_argument("--expect", type=Path, metavar="PAGE", help="8192-byte page the answer must equal")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    _add_pg_options(p)
    _add_binary_options(p, 10.0, "how long to wait for the page")

    p = sub.add_parser("shrink", help="delta-debug a failing .walredo request down to a minimal one",
                       description="Remove records, the base image and tuple data from the request in FILE "
                                   "for as long as the walredo process still fails the same way (--until), "
                                   "then write the minimal request (with its .json, expected and actual page: "
                                   "a corpus entry) and list what was removed. A session stream (several "
                                   "calls, NAME.session.walredo) is sent to one process and shrunk as a whole: "
                                   "earlier calls are dropped while the marked call (NAME.json's "
                                   "session.index, else the last) keeps failing.")
    p.add_argument("file", type=Path, metavar="FILE",
                   help="a .walredo file holding one B [P] A* G request, or a session stream")
    p.add_argument("--until", required=True, choices=("crash", "timeout", "differs"),
                   help="the failure to keep: the process dies, does not answer within --timeout, or "
                        "answers a page that differs from the redo model's prediction")
    p.add_argument("-o", "--output", type=Path, metavar="OUT",
                   help="where to write the minimal request (default: FILE with .min.walredo)")
    p.add_argument("--match", metavar="TEXT",
                   help="only count failures whose message or stderr contains TEXT (keeps shrinking the "
                        "same failure rather than any failure)")
    p.add_argument("--max-runs", type=int, default=2000, metavar="N",
                   help="give up after N process runs (default 2000)")
    _add_pg_options(p)
    _add_binary_options(p, 2.0, "how long to wait for each page before calling it a timeout")

    p = sub.add_parser("diff", help="structured difference of two pages",
                       description="Compare two 8192-byte pages field by field: header fields, line pointers, "
                                   "tuple headers and data, special space, then any other differing bytes.")
    p.add_argument("a", type=Path, metavar="A", help="first page file (8192 bytes)")
    p.add_argument("b", type=Path, metavar="B", help="second page file (8192 bytes)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")

    p = sub.add_parser("corpus", help="build or check corpora of real PostgreSQL WAL",
                       description="Corpora of walredo requests cut from real PostgreSQL WAL, each with the page "
                                   "PostgreSQL logged for consistency checking as the expected answer.")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION", parser_class=_Parser)
    c = csub.add_parser("build", help="run workloads on a throwaway server and cut a corpus from its WAL",
                        description="Start a throwaway PostgreSQL server (unix socket in a temporary folder) "
                                    "with wal_consistency_checking = 'all', run the workloads, read the WAL with "
                                    "our own decoder and write up to --per-kind entries per record kind into "
                                    "OUTDIR (which must be absent or empty).")
    c.add_argument("outdir", type=Path, metavar="OUTDIR", help="folder to write the corpus into")
    c.add_argument("--pg-bin", type=Path, metavar="DIR",
                   help="bin/ folder of a PostgreSQL 14-17 installation (default: Debian's PostgreSQL 15, "
                        "/usr/lib/postgresql/15/bin)")
    c.add_argument("--workload", action="append", default=[], metavar="NAME|FILE.sql",
                   help="a built-in workload (heap, btree, hash, gin, gist, spgist, brin, sequence, generic) or "
                        "a SQL file; repeatable (default: every built-in workload)")
    c.add_argument("--per-kind", type=int, default=3, metavar="N", help="entries kept per record kind (default 3)")
    c.add_argument("--max-records", type=int, default=4, metavar="N",
                   help="records per request at most; longer chains start from a later page image (default 4)")
    c.add_argument("--wal-compression", choices=("off", "pglz", "lz4", "zstd"), default="off",
                   help="the server's wal_compression (default off)")
    c.add_argument("--flavour", choices=("auto", "vanilla", "neon"), default="auto",
                   help="WAL flavour of the entries (default auto: neon when the server has Neon's neon_rmgr)")
    c = csub.add_parser("check", help="replay a corpus through a walredo process and print the per-kind table",
                        description="Send every entry of DIR to a walredo process (the reference walredo unless "
                                    "--walredo-bin) and compare each answer with the expected page under the "
                                    "entry's mask. With the reference walredo, kinds the redo model does not "
                                    "implement are reported as unsupported.")
    c.add_argument("dir", type=Path, metavar="DIR", nargs="?", help="a corpus folder or tar archive")
    c.add_argument("--shipped", type=_pg_version, metavar="N",
                   help="instead of DIR: the corpus of PostgreSQL N shipped with the package (14-17)")
    c.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    _add_binary_options(c, 10.0, "how long to wait for each page", hang_check=False)
    return parser


def _print_json(doc: Any, out: TextIO) -> None:
    json.dump(doc, out, indent=2, sort_keys=False)
    out.write("\n")


def _cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.triage.inspect import inspect_file, render_report

    report = inspect_file(args.file, args.pg_version, args.flavour)
    if args.json:
        _print_json(report, out)
    else:
        out.write(render_report(report))
    return EXIT_OK


def _cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.render.pagediff import diff_as_json, diff_pages, render_diff, summarize_diff
    from pytest_walredo.triage.inspect import load_page

    a = load_page(args.a, "page A")
    b = load_page(args.b, "page B")
    diffs = diff_pages(a, b)
    if args.json:
        _print_json({"a": str(args.a), "b": str(args.b), "identical": not diffs, "summary": summarize_diff(diffs),
                     "differences": diff_as_json(diffs)}, out)
    else:
        out.write(render_diff(diffs, str(args.a), str(args.b)))
    return EXIT_FINDING if diffs else EXIT_OK


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.triage.replay import run_replay_command

    return run_replay_command(args, out)


def _cmd_shrink(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.triage.session import load_calls

    calls = load_calls(args.file)
    if args.max_runs < 1:
        raise TriageError(f"--max-runs {args.max_runs} must be at least 1")
    if len(calls) > 1 or calls[0].request is None:  # a session stream
        from pytest_walredo.triage.shrink_session import run_session_shrink

        return run_session_shrink(args, out, calls)
    from pytest_walredo.triage.shrink import run_shrink_command

    return run_shrink_command(args, out, calls[0].request)


def _cmd_corpus(args: argparse.Namespace, out: TextIO) -> int:
    from pytest_walredo.triage.corpus_cmd import run_corpus_command

    return run_corpus_command(args, out)


_COMMANDS = {"inspect": _cmd_inspect, "diff": _cmd_diff, "replay": _cmd_replay, "shrink": _cmd_shrink,
             "corpus": _cmd_corpus}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pytest-walredo`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    out, err = sys.stdout, sys.stderr
    # The process layer logs each walredo stderr line (logger pytest_walredo.walredo.stderr);
    # replay/shrink show stderr themselves, so keep those records off the terminal: with a
    # handler anywhere up the hierarchy, logging's last-resort stderr handler stays silent.
    pkg_log = logging.getLogger("pytest_walredo")
    if not any(isinstance(h, logging.NullHandler) for h in pkg_log.handlers):
        pkg_log.addHandler(logging.NullHandler())
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        err.write(f"{exc}\n")
        return EXIT_ERROR
    except SystemExit as exc:  # --help (status 0)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    if args.command is None:
        err.write(f"{PROG}: a command is required: {', '.join(_COMMANDS)} (see {PROG} --help)\n")
        return EXIT_ERROR
    try:
        return _COMMANDS[args.command](args, out)
    except TriageError as exc:
        err.write(f"{PROG} {args.command}: {exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:  # `pytest-walredo inspect big.walredo | head`
        return EXIT_OK
    except KeyboardInterrupt:
        err.write(f"{PROG} {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
