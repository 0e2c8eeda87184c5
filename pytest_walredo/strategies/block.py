"""The drawing state of one block: its page as the redo model says it is now, and what kind of
page that is; plus the questions record drawers ask about it.

Invariant: :attr:`Block.page` is always the page the model produced from the records drawn so
far (:meth:`Block.apply` runs :func:`pytest_walredo.pg.redo.redo_record`), so every record is
drawn against the page it will be applied to.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from ..pg.constants import BLCKSZ
from ..pg.hash_page import is_hash_page
from ..pg.page import LP_DEAD, LP_NORMAL, LP_REDIRECT, PD_ALL_VISIBLE, PD_HAS_FREE_LINES, Page
from ..pg.redo import RedoError, redo_record
from ..pg.version import Flavour
from ..pg.xlogrecord import BlockRef, make_block
from ..protocol import BufferTag

__all__ = ["Block", "PageKind", "other_block", "page_kind"]

PageKind = str
"""What the block holds: ``"none"`` (no page yet), ``"heap"``, ``"btree"``, ``"gin"``, ``"gist"``,
``"spgist"`` or ``"hash"``."""


def page_kind(page: bytes) -> PageKind:
    """The kind of a pushed page (:func:`.pages.pages` pushes heap, btree and hash pages): hash
    (its special space ends in the hash page id), btree (other pages with special space) or
    heap."""
    if is_hash_page(page):
        return "hash"
    return "btree" if Page(page).special < BLCKSZ else "heap"


class Block:
    """The block a record sequence is drawn for (``tag``), in ``pg_version``/``flavour``."""

    def __init__(self, tag: BufferTag, pg_version: int, flavour: Flavour) -> None:
        self.tag = tag
        self.v = pg_version
        self.fl = flavour
        self.page: bytes | None = None
        self.kind: PageKind = "none"

    @property
    def rel3(self) -> tuple[int, int, int]:
        r = self.tag.rel
        return (r.spcnode, r.dbnode, r.relnode)

    def view(self) -> Page:
        return Page(self.page) if self.page is not None else Page()

    def own_block(self, block_id: int = 0, *, will_init: bool = False) -> BlockRef:
        """A block reference to this block."""
        return make_block(block_id, self.rel3, self.tag.blknum, forknum=self.tag.rel.forknum,
                          will_init=will_init)

    def apply(self, lsn: int, raw: bytes) -> bool:
        """Apply record ``raw`` ending at ``lsn`` with the redo model; False (and the page
        unchanged) when the model rejects it."""
        r = self.tag.rel
        try:
            new = redo_record(self.page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode,
                              forknum=r.forknum, blkno=self.tag.blknum, end_lsn=lsn, record=raw,
                              pg_version=self.v, flavour=self.fl)
        except RedoError:
            return False
        self.page = None if new is None else bytes(new)
        return True

    # -- the page's line pointers -----------------------------------------------------------------

    def normal_offsets(self) -> list[int]:
        """Offsets of the heap page's LP_NORMAL tuples (none unless it is a heap page)."""
        if self.page is None or self.kind != "heap":
            return []
        p = self.view()
        return [off for off, lp in p.item_ids() if lp.flags == LP_NORMAL and lp.len >= 24]

    def dead_offsets(self) -> list[int]:
        """LP_DEAD line pointers without storage on the heap page (what VACUUM's second pass
        marks unused)."""
        if self.page is None or self.kind != "heap":
            return []
        return [off for off, lp in self.view().item_ids() if lp.flags == LP_DEAD and not lp.has_storage]

    def redirects(self) -> dict[int, int]:
        """The heap page's LP_REDIRECT line pointers: offset -> the offset it points at."""
        if self.page is None or self.kind != "heap":
            return {}
        return {off: lp.off for off, lp in self.view().item_ids() if lp.flags == LP_REDIRECT}

    def room(self) -> int:
        """Bytes a new item may take (MAXALIGNed size), after its line pointer."""
        if self.page is None:
            return 0
        p = self.view()
        return max(0, p.upper - p.lower - 4) // 8 * 8

    def insert_offsets(self, n: int) -> list[int]:
        """Where ``n`` new tuples go on the heap page, as ``PageAddItem`` without an offset
        chooses: while PD_HAS_FREE_LINES says there are unused line pointers (a prune or
        vacuum left them), the first unused one, then one past the end. An offset above
        MaxHeapTuplesPerPage means the page has no room for that many tuples."""
        p = self.view()
        free = ([off for off, lp in p.item_ids() if not lp.is_used and not lp.has_storage]
                if p.flags & PD_HAS_FREE_LINES else [])
        out: list[int] = []
        nxt = p.max_offset() + 1
        for _ in range(n):
            if free:
                out.append(free.pop(0))
            else:
                out.append(nxt)
                nxt += 1
        return out

    def all_visible_cleared(self) -> int:
        """1 when the page has PD_ALL_VISIBLE: heap INSERT/DELETE/UPDATE and MULTI_INSERT
        then log their ``*_ALL_VISIBLE_CLEARED`` flag (bit 0x01 in every one of them), as
        PostgreSQL does when it modifies an all-visible page."""
        return 1 if self.page is not None and self.view().flags & PD_ALL_VISIBLE else 0


def other_block(draw: st.DrawFn, avoid: Sequence[int], low: int = 0) -> int:
    """A block number ``>= low`` that is none of ``avoid`` (shrinks toward ``low``).

    Invariant: the result differs from every block in ``avoid``, so a block reference to it
    can never be the requested block (``avoid`` always holds the requested block number)."""
    n = draw(st.integers(low, low + 1000))
    while n in avoid:
        n += 1
    return n
