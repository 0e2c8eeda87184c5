"""PostgreSQL build constants the whole model shares: block size, alignment, fork numbers.

This module is their one owner; every other module (the protocol codec included) imports
them from here. Values are those of a default 64-bit build (``pg_config.h``,
``common/relpath.h``), which is what Neon ships.
"""

from __future__ import annotations

__all__ = [
    "BLCKSZ",
    "FORK_NAMES",
    "FSM_FORKNUM",
    "INIT_FORKNUM",
    "MAIN_FORKNUM",
    "MAXIMUM_ALIGNOF",
    "MAX_FORKNUM",
    "VISIBILITYMAP_FORKNUM",
    "maxalign",
]

BLCKSZ = 8192
"""The size of a relation block (a page), and of every answer of the walredo process."""

MAXIMUM_ALIGNOF = 8
"""MAXALIGN on 64-bit platforms."""

MAIN_FORKNUM = 0
FSM_FORKNUM = 1
VISIBILITYMAP_FORKNUM = 2
INIT_FORKNUM = 3
MAX_FORKNUM = INIT_FORKNUM

FORK_NAMES = {MAIN_FORKNUM: "main", FSM_FORKNUM: "fsm", VISIBILITYMAP_FORKNUM: "vm", INIT_FORKNUM: "init"}
"""The fork suffixes PostgreSQL uses in file names (``forkNames``)."""


def maxalign(n: int) -> int:
    """``MAXALIGN(n)``."""
    return (n + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1)
