"""Command line of the reference walredo server (``walredo-ref`` / ``python -m
pytest_walredo.refserver``); see the package docstring for what it does.

::

    walredo-ref --wal-redo [--tenant-shard-id ID] [--disable-seccomp] [--pg-version N]
                [--flavour neon|vanilla] [--fault=SPEC ...]
    walredo-ref --help          (usage and the --fault catalogue)
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Options

USAGE = ("usage: walredo-ref --wal-redo [--tenant-shard-id ID] [--disable-seccomp] "
         "[--pg-version 14|15|16|17] [--flavour neon|vanilla] [--fault=SPEC ...]")

__all__ = ["main", "prefork"]


class _UsageError(Exception):
    pass


def _say(text: str) -> None:
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _parse(argv: list[str]) -> Options:
    from ..pg.version import DEFAULT_VERSION, Flavour, check_version
    from .faults import FaultSpecError, parse_faults
    from .server import Options

    if not argv or argv[0] != "--wal-redo":
        raise _UsageError(f"walredo-ref: --wal-redo must be the first argument; {USAGE}")
    pg_version = DEFAULT_VERSION
    flavour = Flavour.NEON
    seccomp = True
    faults: list[str] = []
    i = 1

    def value(flag: str) -> str:
        nonlocal i
        if i + 1 >= len(argv):
            raise _UsageError(f"walredo-ref: {flag} needs a value; {USAGE}")
        i += 1
        return argv[i]

    while i < len(argv):
        arg = argv[i]
        flag, eq, inline = arg.partition("=")
        if flag == "--disable-seccomp" and not eq:
            seccomp = False
        elif flag in ("--tenant-shard-id", "--pg-version", "--flavour", "--fault"):
            text = inline if eq else value(flag)
            if flag == "--pg-version":
                try:
                    pg_version = check_version(int(text))
                except ValueError:
                    raise _UsageError(f"walredo-ref: --pg-version {text!r} is not one of "
                                      "14, 15, 16, 17") from None
            elif flag == "--flavour":
                try:
                    flavour = Flavour.parse(text)
                except ValueError:
                    raise _UsageError(f"walredo-ref: --flavour {text!r} is not 'neon' or "
                                      "'vanilla'") from None
            elif flag == "--fault":
                faults.append(text)
            # --tenant-shard-id: only there to name the process in `ps`, like the real one
        else:
            raise _UsageError(f"walredo-ref: unknown argument {arg!r}; {USAGE}")
        i += 1
    try:
        plan = parse_faults(faults)
    except FaultSpecError as exc:
        raise _UsageError(f"walredo-ref: {exc}") from None
    return Options(pg_version=pg_version, flavour=flavour, seccomp=seccomp, faults=plan)


def help_text() -> str:
    """``walredo-ref --help``: usage, options and the fault catalogue."""
    import textwrap

    from .faults import CATALOGUE

    lines = [USAGE, "",
             "The embedded reference walredo of pytest-walredo: speaks the walredo protocol on stdin/stdout",
             "like 'postgres --wal-redo' and applies records with pytest-walredo's PostgreSQL model.", "",
             "options:",
             "  --wal-redo               required, first (as the pageserver passes it)",
             "  --tenant-shard-id ID     ignored (names the process in ps, like the real one)",
             "  --disable-seccomp        do not enter the seccomp sandbox after start-up",
             "  --pg-version N           PostgreSQL major version of the WAL (14-17; default 17)",
             "  --flavour neon|vanilla   WAL flavour (default neon)",
             "  --fault=SPEC             a seeded bug (repeatable); answers are counted from 1, G and H alike:",
             ""]
    for spec, effect in CATALOGUE:
        wrapped = textwrap.wrap(effect, 66)
        lines.append(f"  {spec:<22} {wrapped[0]}")
        lines.extend(f"  {'':<22} {w}" for w in wrapped[1:])
    lines += ["", "Called by name from a wrapper script, walredo-ref is not found: the sandbox clears PATH,",
              "so give its absolute path (see README, 'Trying the harness with seeded faults')."]
    return "\n".join(lines)


def prefork() -> None:
    """Import everything :func:`main` will need, for a fork server that forks a process per
    launch and calls :func:`main` in it (``process/_shim.py``): each child then starts with the
    redo model loaded instead of importing it. A model that cannot load is reported by each
    child at its first ``A``, as without a fork server."""
    from . import faults, seccomp, server  # noqa: F401

    try:
        server.load_model()
    except server.Fatal:
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the server on fds 0/1/2 and return its exit status.

    Usage errors: one line on stderr, status 2. With the sandbox on, the process leaves through
    ``os._exit`` instead of returning: interpreter teardown would make syscalls the filter
    refuses (the real walredo process likewise ``_exit``s under seccomp).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] in (["--help"], ["-h"]):
        sys.stdout.write(help_text() + "\n")
        return 0
    try:
        options = _parse(args)
    except _UsageError as exc:
        _say(str(exc))
        return 2
    from .server import RefServer

    server = RefServer(options)
    if not options.seccomp:
        return server.serve()
    from .seccomp import SeccompError, install

    server.preload()  # everything the server will import, before the filter forbids open()
    try:
        install()
    except SeccompError as exc:
        _say(f"FATAL:  could not enter the seccomp sandbox: {exc.strerror}")
        return 1
    status = server.serve()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
