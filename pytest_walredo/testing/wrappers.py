"""The reference walredo behind a shell script: to the plugin it is an ordinary ``--walredo-bin``
(or ``--walredo-baseline-bin``), not "the reference" (no ``--fault`` through the fixtures, no
``unsupported`` verdicts: every request is sent). Absolute paths only, because the sandbox clears
the environment (no PATH, no PYTHONPATH)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from ..pg.version import Flavour
from ..target import reference_binary

__all__ = ["reference_wrapper"]


def reference_wrapper(path: Path, pg_version: int, flavour: Flavour | str, faults: Sequence[str] = ()) -> Path:
    """Write an executable ``path`` that runs the reference walredo of ``pg_version``/``flavour``
    with the given ``--fault=`` specs, passing its own arguments (``--wal-redo ...``) first."""
    launcher = reference_binary(path.parent / f".{path.name}-launcher", pg_version, Flavour.parse(flavour)).path
    args = ["--pg-version", str(pg_version), "--flavour", Flavour.parse(flavour).value,
            *(f"--fault={f}" for f in faults)]
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(str(launcher))} "$@" {shlex.join(args)}\n')
    path.chmod(0o755)
    return path
