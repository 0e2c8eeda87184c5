"""What a record kind tells the sequence drawer: :class:`RecordKind` and :class:`Drawn`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

from ...pg.rmgr import RmgrRecord
from ...pg.xlogrecord import BlockRef
from ..block import Block, PageKind

__all__ = ["Drawer", "Drawn", "RecordKind", "always"]


@dataclass(frozen=True)
class Drawn:
    """A drawn record: its typed body, its block references (block 0 first), and, for a
    record that initializes the block, what the block holds afterwards."""

    body: RmgrRecord
    blocks: list[BlockRef]
    page_kind: PageKind | None = None


Drawer = Callable[[st.DrawFn, Block, int], Drawn | None]
"""``drawer(draw, block, max_tuple_size)``: a record of the kind for the block as it is now,
or None when the drawn details do not fit (the page is full, say)."""


def always(_b: Block) -> bool:
    return True


@dataclass(frozen=True)
class RecordKind:
    """One version-neutral record kind (``heap_insert``, ``heap2_prune``...).

    ``simplicity`` orders the kinds: they are offered, and shrink, from the lowest number
    (simplest) up; give a new kind a number between its neighbours'.

    ``on`` says when the kind applies: ``None`` for a kind that initializes the block
    (it applies whatever the block holds, and on a block with no page yet), else the page
    kind it needs (``"heap"``, ``"btree"``), and then ``applies`` must hold for the block as
    it is now (a tuple to delete, an LP_DEAD line pointer to vacuum...): only then is the kind
    offered. The drawer is called for any block that holds a page of kind ``on`` (for an
    initializing kind, for any block), checks what it needs itself and may give up (None).

    ``favoured``: when it holds for the block, the kind is offered first with an even chance
    (VACUUM right after the prune that left LP_DEAD line pointers, which otherwise would
    rarely be drawn among a dozen applicable kinds); the extra coin shrinks to "no".
    """

    name: str
    simplicity: int
    draw: Drawer
    on: PageKind | None
    applies: Callable[[Block], bool] = always
    favoured: Callable[[Block], bool] | None = field(default=None)

    @property
    def initializes(self) -> bool:
        return self.on is None

    def fits(self, b: Block) -> bool:
        """Whether the kind applies to block ``b`` as it is now."""
        return self.on is None or (b.kind == self.on and self.applies(b))
