"""Drawers for GIN's pending-list records (fast update): a list page written whole
(INSERT_LISTPAGE), the metapage rewritten (UPDATE_META_PAGE, DELETE_LISTPAGE), tuples or a
right link added to the tail list page (UPDATE_META_PAGE seen from its block 1), list pages
dropped from the head of the list (DELETE_LISTPAGE seen from a deleted page)."""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.gin_page import INVALID_BLOCK, GinMeta
from ...pg.rmgr.gin_fast import GinDeleteListPages, GinInsertListPage, GinUpdateMetaPage
from ..block import Block, other_block
from ..gin_pages import is_list
from ..pages import index_tuple
from .btree import ref
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]

_u32 = st.integers(0, 2**32 - 1)


def _tuples(draw: st.DrawFn, min_size: int = 0) -> list[bytes]:
    keys = draw(st.lists(st.binary(min_size=1, max_size=16), min_size=min_size, max_size=6))
    return [index_tuple(k, draw(st.integers(0, 100)), draw(st.integers(1, 50))) for k in keys]


@st.composite
def _meta(draw: st.DrawFn) -> GinMeta:
    head = draw(st.sampled_from((INVALID_BLOCK, 1)) | st.integers(1, 100))
    return GinMeta(head, draw(st.sampled_from((INVALID_BLOCK, 2)) | st.integers(1, 100)),
                   draw(st.integers(0, 8000)), draw(st.integers(0, 20)), draw(st.integers(0, 10**6)),
                   draw(st.integers(0, 500)), draw(st.integers(0, 500)), draw(st.integers(0, 500)),
                   draw(st.integers(0, 10**6)), draw(st.sampled_from((1, 2))))


def _insert_listpage(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """INSERT_LISTPAGE: the block becomes a pending-list page holding drawn tuples; without a
    right link it is the tail of a sublist (GIN_LIST_FULLROW)."""
    tuples = _tuples(draw)
    right = draw(st.sampled_from((INVALID_BLOCK,)) | st.integers(1, 1000))
    body = GinInsertListPage(right, len(tuples), b"".join(tuples))
    return Drawn(body, [b.own_block(will_init=True)], "gin")


def _update_meta(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """UPDATE_META_PAGE: the block is the metapage, rewritten with drawn metadata; the tail
    page (another block) takes tuples, or a new right link, or is not named (the statistics
    update of ``ginUpdateStats``)."""
    blocks = [b.own_block(will_init=True)]
    variant = draw(st.sampled_from(("stats", "tuples", "rightlink")))
    tail = other_block(draw, (b.tag.blknum,), low=1)
    if variant == "stats":
        body = GinUpdateMetaPage(b.rel3, draw(_meta()), INVALID_BLOCK, INVALID_BLOCK, 0)
    elif variant == "tuples":
        tuples = _tuples(draw, 1)
        body = GinUpdateMetaPage(b.rel3, draw(_meta()), INVALID_BLOCK, INVALID_BLOCK, len(tuples),
                                 b"".join(tuples))
        blocks.append(ref(1, b, tail))
    else:
        body = GinUpdateMetaPage(b.rel3, draw(_meta()), tail, draw(st.integers(1, 1000)), 0)
        blocks.append(ref(1, b, tail))
    return Drawn(body, blocks, "gin")


def _list_append(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """UPDATE_META_PAGE seen from the tail list page (block 1): it takes tuples after its last
    one (and counts one more heap tuple in maxoff), or a new right link (a sublist was added
    after it). The metapage is another block."""
    meta = other_block(draw, (b.tag.blknum,))
    blocks = [ref(0, b, meta, will_init=True), b.own_block(1)]
    if draw(st.booleans()):
        tuples = _tuples(draw, 1)
        if sum(len(t) + 4 for t in tuples) > b.room():
            return None
        body = GinUpdateMetaPage(b.rel3, draw(_meta()), INVALID_BLOCK, INVALID_BLOCK, len(tuples),
                                 b"".join(tuples))
    else:
        body = GinUpdateMetaPage(b.rel3, draw(_meta()), b.tag.blknum, draw(st.integers(1, 1000)), 0)
    return Drawn(body, blocks)


def _delete_listpage(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """DELETE_LISTPAGE: the block is the metapage (block 0, rewritten) or one of the list pages
    dropped from the head of the list (an empty GIN_DELETED page)."""
    n = draw(st.integers(1, 4))
    role = draw(st.integers(0, n))
    avoid = [b.tag.blknum]
    blocks = []
    for block_id in range(n + 1):
        if block_id == role:
            blkno = b.tag.blknum
        else:
            blkno = other_block(draw, avoid)
            avoid.append(blkno)
        blocks.append(ref(block_id, b, blkno, will_init=True))
    return Drawn(GinDeleteListPages(draw(_meta()), n), blocks, "gin")


KINDS = (
    RecordKind("gin_insert_listpage", 693, _insert_listpage, on=None),
    RecordKind("gin_update_meta", 697, _update_meta, on=None),
    RecordKind("gin_list_append", 703, _list_append, on="gin", applies=is_list),
    RecordKind("gin_delete_listpage", 707, _delete_listpage, on=None),
)
"""The GIN pending-list record kinds."""
