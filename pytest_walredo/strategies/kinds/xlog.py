"""Drawers for XLOG records: full-page images (``fpi``), and ``xlog_no_page``: XLOG records that
name no block and that a real walredo process replays without touching anything but shared
memory (NOOP, NEXTOID, RESTORE_POINT, FPW_CHANGE, BACKUP_END with a start point, PG17's
CHECKPOINT_REDO): the page must stay as it is.

Not drawn, though the model decodes them and leaves the page alone too: checkpoints (a real
walredo process PANICs on a checkpoint whose timeline is not its replay timeline),
PARAMETER_CHANGE (it rewrites pg_control, which the sandbox forbids), END_OF_RECOVERY and
OVERWRITE_CONTRECORD (timeline and overwritten-LSN checks), SWITCH (a WAL reader skips to the
next segment after it). A pageserver never sends any of them: they name no block."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.rmgr import xlog as x
from ...pg.rmgr.xlog import XlogFpi, XlogNoPage
from ...pg.xlogrecord import Compression, ImageRef, make_block
from ..block import Block
from ..pages import btree_full_leaf_pages, btree_internal_pages, btree_leaf_pages, heap_pages
from ..tags import MAX_U32
from .heap import has_tuples
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


_U32 = st.integers(0, MAX_U32)


@st.composite
def _no_page_main(draw: st.DrawFn, op: int, v: int) -> bytes:
    """Main data of XLOG record ``op`` as the server logs it."""
    if op == x.XLOG_NEXTOID:
        return struct.pack("<I", draw(_U32))
    if op == x.XLOG_RESTORE_POINT:
        name = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=63))
        return struct.pack("<q64s", draw(st.integers(0, 2**62)), name.encode())
    if op == x.XLOG_FPW_CHANGE:
        return struct.pack("<?", draw(st.booleans()))
    if op == x.XLOG_BACKUP_END:  # PG14 updates pg_control when it equals the (zero) backup start
        return struct.pack("<Q", draw(st.integers(1, 2**40)))
    if op == x.XLOG_CHECKPOINT_REDO:
        return struct.pack("<i", draw(st.integers(0, 2)))
    return b""  # NOOP


def _no_page(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    ops = [x.XLOG_NOOP, x.XLOG_NEXTOID, x.XLOG_RESTORE_POINT, x.XLOG_FPW_CHANGE, x.XLOG_BACKUP_END]
    if b.v >= 17:
        ops.append(x.XLOG_CHECKPOINT_REDO)
    op = draw(st.sampled_from(ops))
    return Drawn(XlogNoPage(op, draw(_no_page_main(op, b.v))), [])


KINDS = (
    RecordKind("fpi", 0, _fpi, on=None),
    RecordKind("xlog_no_page", 1505, _no_page, on="heap", applies=has_tuples),
)
"""The XLOG record kinds (``xlog_no_page`` is drawn on a heap page with tuples, where a
change would show)."""
