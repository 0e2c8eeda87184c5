"""Whole redo requests (``B [P] A* G``) and workloads of many requests on a few blocks."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..pg.version import DEFAULT_VERSION, Flavour
from ..protocol import BufferTag, RedoRequest
from .kinds import RECORD_KINDS
from .sequences import record_sequences, validate
from .tags import buffer_tags

__all__ = ["redo_requests", "workloads"]


def redo_requests(*, pg_version: int = DEFAULT_VERSION, flavour: Flavour = Flavour.NEON,
                  tag: BufferTag | None = None, min_records: int = 0, max_records: int = 6,
                  kinds: Sequence[str] = RECORD_KINDS,
                  max_tuple_size: int = 64) -> st.SearchStrategy[RedoRequest]:
    """A whole redo request ``B [P] A* G`` for one block (``tag``, or a drawn one) with a
    coherent record sequence (:func:`~.sequences.record_sequences`). Bad arguments raise
    InvalidArgument at once, naming the bad value and the valid ones.

    >>> req = redo_requests(pg_version=16, flavour=Flavour.VANILLA).example()
    >>> req.messages()[0].describe().startswith("B BeginRedoForBlock")
    True
    >>> redo_requests(kinds=["bogus"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hypothesis.errors.InvalidArgument: unknown record kind(s) ['bogus']; known: fpi, heap_insert, ...
    """
    if tag is not None and not isinstance(tag, BufferTag):
        raise InvalidArgument(f"tag={tag!r} must be a BufferTag or None")
    fl, checked = validate(pg_version=pg_version, flavour=flavour, min_records=min_records,
                           max_records=max_records, kinds=kinds, max_tuple_size=max_tuple_size)
    return _redo_requests(pg_version, fl, tag, min_records, max_records, checked, max_tuple_size)


@st.composite
def _redo_requests(draw: st.DrawFn, pg_version: int, flavour: Flavour, tag: BufferTag | None,
                   min_records: int, max_records: int, kinds: tuple[str, ...],
                   max_tuple_size: int) -> RedoRequest:
    if tag is None:
        tag = draw(buffer_tags(max_block=100))
    trace = draw(record_sequences(tag, pg_version=pg_version, flavour=flavour, min_records=min_records,
                                  max_records=max_records, kinds=kinds, max_tuple_size=max_tuple_size))
    return RedoRequest(tag.rel, tag.blknum, trace.base_image, trace.records)


def workloads(*, pg_version: int = DEFAULT_VERSION, flavour: Flavour = Flavour.NEON,
              min_requests: int = 1, max_requests: int = 8, max_blocks: int = 4, max_records: int = 4,
              kinds: Sequence[str] = RECORD_KINDS) -> st.SearchStrategy[list[RedoRequest]]:
    """Many requests on a few blocks (several requests may name the same block, as the
    pageserver's would for successive versions of a page). Shrinks toward one request.

    >>> len(workloads(max_requests=3).example()) <= 3
    True
    """
    fl, checked = validate(pg_version=pg_version, flavour=flavour, min_records=0,
                           max_records=max_records, kinds=kinds, max_tuple_size=64)
    if not 0 <= min_requests <= max_requests:
        raise InvalidArgument(f"min_requests={min_requests!r}, max_requests={max_requests!r}: "
                              f"expected 0 <= min_requests <= max_requests")
    if max_blocks < 1:
        raise InvalidArgument(f"max_blocks={max_blocks!r} must be >= 1")
    return _workloads(pg_version, fl, min_requests, max_requests, max_blocks, max_records, checked)


@st.composite
def _workloads(draw: st.DrawFn, pg_version: int, flavour: Flavour, min_requests: int,
               max_requests: int, max_blocks: int, max_records: int,
               kinds: tuple[str, ...]) -> list[RedoRequest]:
    tags = draw(st.lists(buffer_tags(max_block=20), min_size=1, max_size=max_blocks, unique=True))
    n = draw(st.integers(min_requests, max_requests))
    out = []
    for _ in range(n):
        tag = tags[draw(st.integers(0, len(tags) - 1))]
        out.append(draw(_redo_requests(pg_version, flavour, tag, 0, max_records, kinds, 64)))
    return out
