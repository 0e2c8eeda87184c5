"""Masking rules: what PostgreSQL's ``wal_consistency_checking`` ignores when it compares a page
redone from WAL with the page the primary logged (each rmgr's ``rm_mask``).

A rule is a pure function ``(page, blkno) -> masked page`` over 8192 bytes; ``RULES`` maps the
rmgr name, as pg_waldump prints it, to its rule. ``neon`` (Neon's heap resource manager) uses
the heap rule; ``none`` compares byte for byte. Use :func:`masked_equal` to compare two pages
under a rule, :func:`mask_page` to see what a rule leaves.

One file per rule, each stating the facts it follows (PostgreSQL 14-17 sources, and where
versions or our rules differ from them).
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.mask._bufmask import MaskError
from pytest_walredo.pg.mask.brin import brin_mask
from pytest_walredo.pg.mask.btree import btree_mask
from pytest_walredo.pg.mask.generic import generic_mask
from pytest_walredo.pg.mask.gin import gin_mask
from pytest_walredo.pg.mask.gist import gist_mask
from pytest_walredo.pg.mask.hash import hash_mask
from pytest_walredo.pg.mask.heap import heap_mask
from pytest_walredo.pg.mask.sequence import seq_mask
from pytest_walredo.pg.mask.spgist import spg_mask

__all__ = ["NO_MASK", "RULES", "MaskError", "MaskRule", "mask_page", "masked_equal", "rule_names"]

MaskRule = Callable[[bytes, int], bytes]

NO_MASK = "none"


def _identity(page: bytes, blkno: int) -> bytes:
    return bytes(page)


RULES: dict[str, MaskRule] = {
    "Heap": heap_mask,
    "Heap2": heap_mask,
    "neon": heap_mask,
    "Btree": btree_mask,
    "Hash": hash_mask,
    "Gin": gin_mask,
    "Gist": gist_mask,
    "Sequence": seq_mask,
    "SPGist": spg_mask,
    "BRIN": brin_mask,
    "Generic": generic_mask,
    NO_MASK: _identity,
}


def rule_names() -> tuple[str, ...]:
    return tuple(RULES)


def _rule(name: str) -> MaskRule:
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown mask {name!r}; expected one of {', '.join(RULES)}") from None


def mask_page(page: bytes, rule: str, blkno: int = 0) -> bytes:
    """``page`` with everything ``rule`` ignores set to 0. Raises :class:`MaskError` for a page
    the rule cannot be applied to, ValueError for an unknown rule or a page of the wrong size."""
    fn = _rule(rule)
    if len(page) != BLCKSZ:
        raise ValueError(f"a page is {BLCKSZ} bytes, got {len(page)}")
    return fn(page, blkno)


def masked_equal(a: bytes, b: bytes, rule: str, blkno: int = 0) -> bool:
    """Whether ``a`` and ``b`` are the same page under ``rule``. Byte-equal pages always are;
    otherwise a page the rule cannot mask (see :class:`MaskError`) is never equal to another."""
    fn = _rule(rule)
    if a == b:
        return True
    if len(a) != BLCKSZ or len(b) != BLCKSZ:
        return False
    try:
        return fn(a, blkno) == fn(b, blkno)
    except MaskError:
        return False
