"""Every record kind the strategies can draw, gathered from one module per resource manager
(:mod:`.xlog`, :mod:`.heap`, :mod:`.heap2`, :mod:`.btree` with :mod:`.btree_split` and
:mod:`.btree_delete`, :mod:`.gist` with :mod:`.gist_split`, :mod:`.spgist` with
:mod:`.spgist_inner`), each listing its ``KINDS``. Also :mod:`.sequence`, :mod:`.generic`,
:mod:`.brin`, :mod:`.gin` with :mod:`.gin_fast`, :mod:`.hash` with :mod:`.hash_meta` and
:mod:`.hash_vacuum`.

A kind (:class:`~.spec.RecordKind`) has a version-neutral name, a drawer, and says when it
applies to the block's current state; :data:`RECORD_KINDS` lists the names simplest first.
Adding a kind means adding a :class:`~.spec.RecordKind` to its rmgr's module here (plus its
record in ``pg/rmgr`` and its redo routine in ``pg/redo``): see docs/ADDING_A_RECORD_KIND.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hypothesis.errors import InvalidArgument

from . import (
    brin,
    btree,
    btree_delete,
    btree_split,
    generic,
    gin,
    gin_fast,
    gist,
    gist_split,
    hash,
    hash_meta,
    hash_vacuum,
    heap,
    heap2,
    sequence,
    spgist,
    spgist_inner,
    xlog,
)
from .spec import Drawer, Drawn, RecordKind

__all__ = ["INIT_KINDS", "KINDS", "RECORD_KINDS", "Drawer", "Drawn", "RecordKind", "check_kinds"]


def _registry(groups: Iterable[Sequence[RecordKind]]) -> dict[str, RecordKind]:
    out: dict[str, RecordKind] = {}
    for group in groups:
        for kind in group:
            if kind.name in out:
                raise RuntimeError(f"record kind {kind.name!r} is defined twice")
            out[kind.name] = kind
    ranks = sorted(k.simplicity for k in out.values())
    if len(set(ranks)) != len(ranks):
        raise RuntimeError("two record kinds share a simplicity number")
    return dict(sorted(out.items(), key=lambda item: item[1].simplicity))


KINDS: dict[str, RecordKind] = _registry((xlog.KINDS, heap.KINDS, heap2.KINDS, btree.KINDS, btree_split.KINDS,
                                             btree_delete.KINDS, sequence.KINDS, generic.KINDS,
                                             brin.KINDS, gist.KINDS, gist_split.KINDS, spgist.KINDS,
                                             spgist_inner.KINDS, gin.KINDS, gin_fast.KINDS,
                                             hash.KINDS, hash_meta.KINDS, hash_vacuum.KINDS))
"""Every record kind by name, simplest first."""

RECORD_KINDS: tuple[str, ...] = tuple(KINDS)
"""Every record kind :func:`~pytest_walredo.strategies.record_sequences` can draw, simplest
first (shrinking goes left)."""

INIT_KINDS: tuple[str, ...] = tuple(name for name, k in KINDS.items() if k.initializes)
"""The kinds that can start a block that has no page yet."""


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple, or InvalidArgument naming the unknown ones and the valid ones."""
    if isinstance(kinds, str):
        raise InvalidArgument(f"kinds={kinds!r} must be a sequence of kind names, not one string")
    kinds = tuple(kinds)
    if not kinds:
        raise InvalidArgument(f"kinds is empty; choose among: {', '.join(RECORD_KINDS)}")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise InvalidArgument(f"unknown record kind(s) {unknown}; known: {', '.join(RECORD_KINDS)}")
    return kinds
