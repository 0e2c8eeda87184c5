"""Drawers for XLOG records: full-page images (``fpi``)."""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.rmgr.xlog import XlogFpi
from ...pg.xlogrecord import Compression, ImageRef, make_block
from ..block import Block
from ..pages import btree_full_leaf_pages, btree_internal_pages, btree_leaf_pages, heap_pages
from ..tags import MAX_U32
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]


def _compressions(v: int) -> tuple[Compression, ...]:
    return (Compression.NONE, Compression.PGLZ) if v == 14 else tuple(Compression)


def _fpi(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """FPI / FPI_FOR_HINT of a heap page, a btree leaf (small or filled up to capacity) or a
    btree internal page, maybe compressed, maybe with a second, unrelated block reference the
    walredo must leave alone."""
    tag = b.tag
    page_kind = draw(st.sampled_from(("heap", "btree", "btree_internal", "btree_full")))
    if page_kind == "heap":
        image_page = draw(heap_pages(blkno=tag.blknum))
    elif page_kind == "btree_full":
        image_page = draw(btree_full_leaf_pages())
    else:
        image_page = draw(btree_leaf_pages() if page_kind == "btree" else btree_internal_pages())
    comp = draw(st.sampled_from(_compressions(b.v)))
    image = ImageRef.from_page(image_page, b.v, compression=comp)
    blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, image=image)]
    if draw(st.booleans()):
        other = ImageRef.from_page(draw(heap_pages(max_tuples=2)), b.v)
        blocks.append(make_block(1, b.rel3, (tag.blknum + 1) & MAX_U32,
                                 forknum=tag.rel.forknum, image=other))
    for_hint = draw(st.booleans())
    return Drawn(XlogFpi(for_hint), blocks, "heap" if page_kind == "heap" else "btree")


KINDS = (RecordKind("fpi", 0, _fpi, on=None),)
"""The XLOG record kinds."""
