"""Coherent record sequences for one block (:func:`record_sequences`).

The block is initialized first (a pushed base image, a full-page image, or an ``INIT_PAGE``
record), end LSNs strictly increase and are above the page's pd_lsn, and every offset a record
names refers to a tuple that exists at that point. Coherence is kept by running the redo model
while drawing (:class:`~.block.Block`): each record is drawn against the page the previous
records produced, by the drawer of a kind that applies to that page (:mod:`.kinds`). A drawn
record the model rejects (a page that is full, say) is left out rather than faked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..pg import rmgr
from ..pg.page import Page
from ..pg.version import DEFAULT_VERSION, Flavour, check_version
from ..protocol import BufferTag
from .block import Block, page_kind
from .kinds import INIT_KINDS, KINDS, RecordKind, check_kinds
from .pages import pages
from .tags import DEFAULT_START_LSN, MAX_U32

__all__ = ["BlockTrace", "record_sequences", "validate"]


@dataclass(frozen=True)
class BlockTrace:
    """One drawn record sequence for one block, with what the model says about each step.

    ``kinds[i]`` is the :data:`~.kinds.RECORD_KINDS` name of ``records[i]`` (``(end LSN,
    bytes)``), ``page_kind`` what the block holds at the end (``"heap"``, ``"btree"`` or
    ``"none"``).
    """

    base_image: bytes | None
    records: tuple[tuple[int, bytes], ...]
    kinds: tuple[str, ...]
    page_kind: str


def _draw_record(draw: st.DrawFn, b: Block, kind: RecordKind, max_tuple_size: int) -> bytes | None:
    """One raw record of ``kind`` for block ``b`` (None: the kind does not fit now). Sets
    ``b.kind`` for a record that initializes the block; the caller restores it when the
    record is dropped."""
    xid = draw(st.integers(0, MAX_U32))
    if not kind.initializes and (b.page is None or b.kind != kind.on):
        return None
    drawn = kind.draw(draw, b, max_tuple_size)
    if drawn is None:
        return None
    if drawn.page_kind is not None:
        b.kind = drawn.page_kind
    return rmgr.build(drawn.body, drawn.blocks, pg_version=b.v, flavour=b.fl, xid=xid).encode()


def _applicable(b: Block, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds that apply to the block as it is now (keeps the order of ``kinds``; all of
    them when none does)."""
    return tuple(k for k in kinds if KINDS[k].fits(b)) or kinds


@st.composite
def _step(draw: st.DrawFn, b: Block, kinds: tuple[str, ...], init_kinds: tuple[str, ...],
          lsn: int, max_tuple_size: int) -> tuple[str, int, bytes] | None:
    """Draw and apply one record to ``b``: (kind, end LSN, raw record), or None (and ``b``
    unchanged) when the drawn kind does not fit the page or the model rejects it."""
    choices = init_kinds if b.page is None else _applicable(b, kinds)
    favoured = [k for k in choices if (f := KINDS[k].favoured) is not None and f(b)]
    for name in favoured:  # an even chance each, shrinking to "no" (RecordKind.favoured)
        if draw(st.booleans()):
            kind = name
            break
    else:
        # Three times in four, a kind that carries on with the page the block holds rather
        # than one that starts a new page: with some sixty initializing kinds among the
        # choices, an index page would otherwise rarely see the records that need its earlier
        # ones (a split, then a vacuum of the split page). The coin shrinks to "any kind".
        carry_on = tuple(k for k in choices if not KINDS[k].initializes)
        if b.page is not None and carry_on and draw(st.integers(0, 3)):
            choices = carry_on
        kind = draw(st.sampled_from(choices))
    lsn += 8 * draw(st.integers(1, 1 << 10))
    saved_kind = b.kind
    raw = _draw_record(draw, b, KINDS[kind], max_tuple_size)
    if raw is None or not b.apply(lsn, raw):
        b.kind = saved_kind
        return None
    return kind, lsn, raw


@st.composite
def _trace(draw: st.DrawFn, tag: BufferTag, pg_version: int, flavour: Flavour,
           min_records: int, max_records: int, kinds: tuple[str, ...], max_tuple_size: int,
           start_lsn: int) -> BlockTrace:
    b = Block(tag, pg_version, flavour)
    base: bytes | None = None
    start = draw(st.sampled_from(("push", "record")))
    if start == "push":
        base = draw(pages())
        b.page = base
        b.kind = page_kind(base)
    lsn = max(start_lsn, Page(base).lsn if base is not None else 0)
    n = draw(st.integers(min_records, max_records))
    records: list[tuple[int, bytes]] = []
    used: list[str] = []
    init_kinds = tuple(k for k in INIT_KINDS if k in kinds) or kinds
    attempts = 0
    while len(records) < n and attempts < 3 * n + 3:
        attempts += 1
        # one span per record: the shrinker can then drop a record's draws as a whole
        step = draw(_step(b, kinds, init_kinds, lsn, max_tuple_size))
        if step is None:
            continue
        kind, lsn, raw = step
        records.append((lsn, raw))
        used.append(kind)
    return BlockTrace(base, tuple(records), tuple(used), b.kind)


def validate(*, pg_version: int, flavour: Flavour | str, min_records: int, max_records: int,
             kinds: Sequence[str], max_tuple_size: int) -> tuple[Flavour, tuple[str, ...]]:
    """Check the arguments of a record-drawing strategy when it is built (InvalidArgument
    naming the argument); returns the parsed flavour and kinds."""
    try:
        check_version(pg_version)
        fl = Flavour.parse(flavour)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    if not 0 <= min_records <= max_records:
        raise InvalidArgument(f"min_records={min_records!r}, max_records={max_records!r}: "
                              f"expected 0 <= min_records <= max_records")
    if max_tuple_size < 0:
        raise InvalidArgument(f"max_tuple_size={max_tuple_size!r} must be >= 0")
    return fl, check_kinds(kinds)


def record_sequences(tag: BufferTag, *, pg_version: int = DEFAULT_VERSION,
                     flavour: Flavour = Flavour.NEON, min_records: int = 0, max_records: int = 6,
                     kinds: Sequence[str] = tuple(KINDS), max_tuple_size: int = 64,
                     start_lsn: int = DEFAULT_START_LSN) -> st.SearchStrategy[BlockTrace]:
    """A coherent record sequence for block ``tag`` (see the module docstring).

    ``kinds`` restricts the record kinds (names from :data:`~.kinds.RECORD_KINDS`); when the
    block has no page yet, only initializing kinds among them (``fpi``, ``heap_insert_init``,
    ``btree_newroot``, ``heap_update_new_block``) are drawn, or the sequence starts with a
    pushed base image. Later kinds are drawn only when they apply to the page as it is
    (a tuple to delete, an LP_DEAD line pointer to vacuum, an internal btree page for
    ``btree_insert_upper``, ...). Bad arguments raise InvalidArgument at once.

    >>> from pytest_walredo.protocol import BufferTag, RelTag
    >>> t = record_sequences(BufferTag(RelTag(1663, 5, 16384), 3), pg_version=15,
    ...                      min_records=1).example()
    >>> len(t.records) >= 1 and len(t.records) == len(t.kinds)
    True
    """
    if not isinstance(tag, BufferTag):
        raise InvalidArgument(f"tag={tag!r} must be a BufferTag")
    fl, kinds = validate(pg_version=pg_version, flavour=flavour, min_records=min_records,
                         max_records=max_records, kinds=kinds, max_tuple_size=max_tuple_size)
    return _trace(tag, pg_version, fl, min_records, max_records, kinds, max_tuple_size, start_lsn)
