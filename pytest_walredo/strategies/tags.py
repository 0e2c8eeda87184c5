"""Where a request goes and when: relation forks, block numbers, buffer tags and LSNs."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..pg.constants import MAX_FORKNUM
from ..protocol import BufferTag, RelTag

__all__ = [
    "DEFAULT_START_LSN",
    "MAX_U32",
    "block_numbers",
    "buffer_tags",
    "end_lsns",
    "lsns",
    "rel_tags",
]

MAX_U32 = 0xFFFFFFFF
DEFAULT_START_LSN = 0x0100_0000
"""Where drawn LSN ranges start (0/1000000); records end above it."""


def _check_forks(forks: Sequence[int]) -> tuple[int, ...]:
    forks = tuple(forks)
    if not forks or any(not isinstance(f, int) or not 0 <= f <= MAX_FORKNUM for f in forks):
        raise InvalidArgument(f"forks={forks!r}: expected fork numbers 0..{MAX_FORKNUM}, at least one")
    return forks


def rel_tags(*, forks: Sequence[int] = (0,)) -> st.SearchStrategy[RelTag]:
    """Relation forks with small OIDs; shrinks to ``1663/1/1`` fork ``forks[0]``.

    >>> rel_tags().example()  # doctest: +SKIP
    RelTag(spcnode=1663, dbnode=5, relnode=16384, forknum=0)
    """
    return st.builds(
        RelTag,
        spcnode=st.sampled_from((1663, 1664)) | st.integers(0, MAX_U32),
        dbnode=st.integers(1, 1 << 16) | st.integers(1, MAX_U32),
        relnode=st.integers(1, 1 << 16) | st.integers(1, MAX_U32),
        forknum=st.sampled_from(_check_forks(forks)),
    )


def block_numbers(max_value: int = 1000) -> st.SearchStrategy[int]:
    """Block numbers ``0..max_value`` (shrinks to 0)."""
    if not 0 <= max_value <= MAX_U32:
        raise InvalidArgument(f"max_value={max_value!r}: expected a block number 0..{MAX_U32}")
    return st.integers(0, max_value)


def buffer_tags(*, max_block: int = 1000, forks: Sequence[int] = (0,)) -> st.SearchStrategy[BufferTag]:
    """A relation fork plus a block number.

    >>> buffer_tags().example()  # doctest: +SKIP
    BufferTag(rel=RelTag(spcnode=1663, dbnode=1, relnode=1, forknum=0), blknum=0)
    """
    return st.builds(BufferTag, rel_tags(forks=forks), block_numbers(max_block))


def lsns(min_value: int = DEFAULT_START_LSN, max_value: int = 1 << 40) -> st.SearchStrategy[int]:
    """One LSN (shrinks to ``min_value``)."""
    return st.integers(min_value, max_value)


def end_lsns(*, min_size: int = 0, max_size: int = 8, start: int = DEFAULT_START_LSN,
             max_step: int = 1 << 16) -> st.SearchStrategy[list[int]]:
    """Strictly increasing end LSNs above ``start``, as WAL records have them.

    Drawn as steps of 8..``max_step`` (MAXALIGNed, like record boundaries), so they shrink to
    ``start + 8, start + 16, ...``.

    >>> end_lsns(min_size=3, max_size=3).example()  # doctest: +SKIP
    [16777224, 16777232, 16777240]
    """

    def accumulate(steps: list[int]) -> list[int]:
        out, lsn = [], start
        for s in steps:
            lsn += 8 * s
            out.append(lsn)
        return out

    return st.lists(st.integers(1, max(1, max_step // 8)), min_size=min_size,
                    max_size=max_size).map(accumulate)
