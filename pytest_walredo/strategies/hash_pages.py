"""Hash index pages as drawn values: :func:`hash_tuple_pages` (bucket and overflow pages,
small or filled up to capacity), pushed as base pages (:func:`.pages.pages`) and logged as
images by the hash record drawers (:mod:`.kinds.hash`)."""

from __future__ import annotations

from hypothesis import strategies as st

from ..pg.hash_page import (
    HASH_TUPLE_SIZE,
    LH_BUCKET_BEING_POPULATED,
    LH_BUCKET_PAGE,
    LH_OVERFLOW_PAGE,
    LH_PAGE_HAS_DEAD_TUPLES,
    HashOpaque,
    hash_tuple,
    init_bucket_page,
)
from ..pg.page import LP_DEAD, ItemId, Page
from .tags import DEFAULT_START_LSN, MAX_U32

__all__ = ["hash_tuple_pages"]

_CAPACITY = (8192 - 24 - 16) // (HASH_TUPLE_SIZE + 4)  # 407 tuples and their line pointers


@st.composite
def hash_tuple_pages(draw: st.DrawFn, *, blkno: int = 1, max_lsn: int = DEFAULT_START_LSN) -> bytes:
    """A bucket or overflow page as a split or vacuum leaves it: up to capacity (407) tuples in
    hash-code order, drawn from a few numbers (a start and a step for the codes); maybe up to
    three line pointers LP_DEAD with LH_PAGE_HAS_DEAD_TUPLES, as index scans mark them without
    WAL; the special space of a primary bucket page (hasho_prevblkno: the maxbucket of its
    last split) or of an overflow page (its neighbours in the bucket chain, never
    ``blkno``). Shrinks to a bucket page with one tuple (empty pages are what
    ``hash_new_page`` makes); pd_lsn in ``0..max_lsn``."""
    page = Page()
    overflow = draw(st.booleans())
    bucket = draw(st.integers(0, 1000))
    if overflow:
        init_bucket_page(page, draw(st.integers(1, 1 << 16).filter(lambda n: n != blkno)), bucket, LH_OVERFLOW_PAGE)
    else:
        flag = LH_BUCKET_PAGE | draw(st.sampled_from((0, 0, LH_BUCKET_BEING_POPULATED)))
        init_bucket_page(page, draw(st.integers(bucket, bucket + 1000)), bucket, flag)
    if draw(st.booleans()):
        nxt = draw(st.integers(1, 1 << 16).filter(lambda n: n != blkno))
        HashOpaque.unpack(page.data).with_(nextblkno=nxt).write(page)
    count = draw(st.integers(1, _CAPACITY))
    start, step = draw(st.integers(0, MAX_U32)), draw(st.integers(0, 1 << 20))
    for i, k in enumerate(sorted((start + i * step) & MAX_U32 for i in range(count))):
        page.add_item(hash_tuple(k, 1 + i // 100, 1 + i % 100), i + 1)
    dead = draw(st.lists(st.integers(1, count), max_size=3, unique=True)) if count else []
    for off in dead:
        lp = page.item_id(off)
        page.set_item_id(off, ItemId(lp.off, LP_DEAD, lp.len))
    if dead:
        op = HashOpaque.unpack(page.data)
        op.with_(flag=op.flag | LH_PAGE_HAS_DEAD_TUPLES).write(page)
    page.lsn = draw(st.integers(0, max_lsn))
    return page.to_bytes()
