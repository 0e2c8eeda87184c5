"""Which walredo binary to run: a user's ``--walredo-bin`` or the embedded reference.

Sits on the process layer; the plugin, the conformance suite and the triage CLI all resolve their
binary here, so "the reference walredo" means the same command everywhere.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .pg.version import DEFAULT_VERSION, Flavour

__all__ = ["BinaryError", "WalredoBinary", "reference_binary", "user_binary"]

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


class BinaryError(Exception):
    """The walredo binary cannot be used; the message names the path and the reason."""


@dataclass(frozen=True)
class WalredoBinary:
    """A walredo command: the executable, its library dir and the extra arguments to pass.

    ``is_reference`` marks the embedded reference server, which alone understands ``--fault``.
    """

    path: Path
    lib_dir: Path | None = None
    args: tuple[str, ...] = ()
    is_reference: bool = False
    pg_version: int = DEFAULT_VERSION
    flavour: Flavour = Flavour.NEON
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.label or str(self.path)

    def with_faults(self, faults: Sequence[str]) -> WalredoBinary:
        """The same binary with ``--fault=SPEC`` arguments (reference only)."""
        if not faults:
            return self
        if not self.is_reference:
            raise BinaryError(f"{self.path} is not the reference walredo; only it takes --fault")
        return replace(self, args=self.args + tuple(f"--fault={f}" for f in faults))

    def with_args(self, args: Sequence[str]) -> WalredoBinary:
        return replace(self, args=self.args + tuple(args)) if args else self


def user_binary(
    path: Path, lib_dir: Path | None, pg_version: int, flavour: Flavour, *, flag: str = "--walredo-bin"
) -> WalredoBinary:
    """Check that ``path`` is an executable file; raise :class:`BinaryError` naming it if not."""
    p = path.expanduser()
    if not p.exists():
        raise BinaryError(f"{flag} {p}: no such file")
    if p.is_dir():
        raise BinaryError(f"{flag} {p}: is a directory, not a walredo executable")
    if not os.access(p, os.X_OK):
        raise BinaryError(f"{flag} {p}: is not executable")
    return WalredoBinary(p.resolve(), lib_dir, (), False, pg_version, flavour, str(p))


_LAUNCHER = """#!{python} -I
# Launcher for pytest-walredo's embedded reference walredo (generated; safe to delete).
# -I: the sandbox clears the environment, so nothing may depend on PYTHONPATH or the cwd.
# walredo-fork-server: pytest_walredo.refserver.__main__ {parent}
import sys
sys.path.insert(0, {parent!r})
from pytest_walredo.refserver.__main__ import main
sys.exit(main())
"""


def reference_binary(
    directory: Path | None = None,
    pg_version: int = DEFAULT_VERSION,
    flavour: Flavour = Flavour.NEON,
) -> WalredoBinary:
    """Write an executable launcher for the reference walredo into ``directory`` and describe it.

    A generated launcher (rather than the ``walredo-ref`` console script) works the same whether
    the package is installed or imported from a source tree, and pins this interpreter. Its
    ``walredo-fork-server`` line lets the process layer's shim server run it without starting
    an interpreter (``process/_shim.py``: the server imports the reference once and forks).
    """
    directory = Path(tempfile.mkdtemp(prefix="walredo-ref-")) if directory is None else directory
    directory.mkdir(parents=True, exist_ok=True)
    launcher = directory / "walredo-ref"
    text = _LAUNCHER.format(python=sys.executable, parent=str(_PACKAGE_PARENT))
    if not launcher.exists() or launcher.read_text() != text:
        tmp = launcher.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(launcher)
    args = ("--pg-version", str(pg_version), "--flavour", flavour.value)
    return WalredoBinary(
        launcher, None, args, True, pg_version, flavour, f"reference walredo (PG{pg_version}, {flavour.value})"
    )
