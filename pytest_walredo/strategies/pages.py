"""Pages: empty, heap, btree leaf and internal, hash (:mod:`.hash_pages`), arbitrary bytes; and the tuple builders the
record drawers share (:func:`heap_item`, :func:`index_tuple`, :func:`downlink`)."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..pg.btree_page import (
    BTP_LEAF,
    BTP_ROOT,
    INDEX_AM_RESERVED_BIT,
    BTPageOpaque,
    IndexTuple,
    btree_page_init,
)
from ..pg.constants import BLCKSZ, maxalign
from ..pg.page import LP_DEAD, ItemId, Page
from ..pg.tuple import HEAP_XMAX_INVALID, HeapTupleHeader
from .hash_pages import hash_tuple_pages
from .tags import DEFAULT_START_LSN, MAX_U32

__all__ = [
    "btree_full_leaf_pages",
    "btree_internal_pages",
    "btree_leaf_pages",
    "downlink",
    "empty_pages",
    "heap_item",
    "heap_pages",
    "heap_tuple_count",
    "index_tuple",
    "pages",
    "raw_pages",
]


def heap_item(xmin: int, blkno: int, offnum: int, payload: bytes, natts: int = 1) -> bytes:
    """A heap tuple (23-byte header, ctid pointing at itself) carrying ``payload``."""
    # t_hoff 24 = MAXALIGN(23): no null bitmap, one byte of padding after the fixed header.
    head = HeapTupleHeader(xmin=xmin, xmax=0, cid=0, ctid_block=blkno, ctid_offset=offnum,
                           infomask2=natts, infomask=HEAP_XMAX_INVALID, hoff=24, bits=b"\0")
    return head.pack() + payload


def empty_pages(*, max_lsn: int = DEFAULT_START_LSN) -> st.SearchStrategy[bytes]:
    """An initialized heap page with no tuples (``PageInit``), pd_lsn in ``0..max_lsn``.

    >>> len(empty_pages().example())
    8192
    """

    def build(lsn: int) -> bytes:
        page = Page.initialized()
        page.lsn = lsn
        return page.to_bytes()

    return st.integers(0, max_lsn).map(build)


@st.composite
def heap_pages(draw: st.DrawFn, *, max_tuples: int = 8, max_tuple_size: int = 64,
               blkno: int = 0, max_lsn: int = DEFAULT_START_LSN, max_dead: int = 2) -> bytes:
    """A heap page holding up to ``max_tuples`` tuples of up to ``max_tuple_size`` data bytes.

    Tuples are real heap tuples (23-byte header, t_hoff 24, ctid pointing at themselves);
    pd_lsn is in ``0..max_lsn``. Up to ``max_dead`` of the line pointers may be LP_DEAD
    without storage, as pruning leaves them for VACUUM (the page is then compacted like
    ``PageRepairFragmentation`` does). Shrinks to an empty page.

    >>> from pytest_walredo.pg.page import Page
    >>> Page(heap_pages().example()).max_offset() <= 8
    True
    """
    page = Page.initialized()
    page.lsn = draw(st.integers(0, max_lsn))
    payloads = draw(st.lists(st.binary(max_size=max_tuple_size), max_size=max_tuples))
    xmin = draw(st.integers(0, MAX_U32))
    for i, payload in enumerate(payloads, start=1):
        if page.add_item(heap_item(xmin, blkno, i, payload), i, overwrite=True, is_heap=True) == 0:
            break
    n = page.max_offset()
    if n and max_dead > 0:
        dead = draw(st.lists(st.integers(1, n), max_size=max_dead, unique=True))
        for off in dead:
            page.set_item_id(off, ItemId(0, LP_DEAD, 0))
        if dead:
            page.repair_fragmentation()
            # the free gap keeps stale tuple bytes after compaction; zero it like a fresh
            # page's, so the page can be logged as an image with a hole
            page.data[page.lower : page.upper] = bytes(page.upper - page.lower)
    return page.to_bytes()


def index_tuple(key: bytes, tid_block: int, tid_offset: int) -> bytes:
    """A btree leaf tuple: heap TID plus ``key`` (zero-padded to MAXALIGN)."""
    size = maxalign(8 + len(key))
    return IndexTuple(tid_block, tid_offset, size, key.ljust(size - 8, b"\0")).pack()


@st.composite
def btree_leaf_pages(draw: st.DrawFn, *, max_tuples: int = 8, max_key_size: int = 24,
                     max_lsn: int = DEFAULT_START_LSN) -> bytes:
    """A btree leaf page (``BTP_LEAF``, maybe ``BTP_ROOT``) with up to ``max_tuples`` index
    tuples of up to ``max_key_size`` key bytes. Shrinks to an empty leaf.

    >>> from pytest_walredo.pg.btree_page import BTPageOpaque
    >>> BTPageOpaque.unpack(btree_leaf_pages().example()).flags & 1
    1
    """
    page = Page()
    btree_page_init(page)
    root = draw(st.booleans())
    BTPageOpaque(0, 0, 0, BTP_LEAF | (BTP_ROOT if root else 0), 0).write(page)
    page.lsn = draw(st.integers(0, max_lsn))
    keys = draw(st.lists(st.binary(max_size=max_key_size), max_size=max_tuples))
    for i, key in enumerate(sorted(keys), start=1):
        if page.add_item(index_tuple(key, 0, i), i) == 0:
            break
    return page.to_bytes()


@st.composite
def btree_full_leaf_pages(draw: st.DrawFn, *, max_lsn: int = DEFAULT_START_LSN) -> bytes:
    """A btree leaf filled up to a drawn fill level, up to capacity: the pages that splits,
    deduplication and VACUUM act on in real indexes. Keys are 8 bytes, ascending with runs of
    duplicates (``dup`` equal keys in a row), heap TIDs ascending with gaps; the page may have a right
    sibling (then a high key above every key is item 1) and a left one. Drawn from a handful of
    numbers, not tuple by tuple, so examples stay small; shrinks toward a few tuples on a
    rightmost leaf.

    >>> from pytest_walredo.pg.page import Page
    >>> Page(btree_full_leaf_pages().example()).max_offset() >= 1
    True
    """
    page = Page()
    btree_page_init(page)
    nxt = draw(st.sampled_from((0, 0, 1)) | st.integers(2, 1 << 16))
    prev = draw(st.integers(0, 1 << 16))
    cycleid = draw(st.integers(0, 0xFFFF))
    BTPageOpaque(prev, nxt, 0, BTP_LEAF, cycleid).write(page)
    page.lsn = draw(st.integers(0, max_lsn))
    capacity = (BLCKSZ - 24 - 16) // (16 + 4) - 1  # 16-byte tuples and their line pointers
    count = draw(st.integers(1, capacity))
    dup = draw(st.integers(1, 8))
    start = draw(st.integers(0, 1 << 30))
    # TIDs ascend with gaps (every other offset), where later inserts can fall inside the
    # posting lists deduplication makes of the runs
    items = [index_tuple((start + i // dup).to_bytes(8, "big"), 1 + i // 50, 1 + 2 * (i % 50))
             for i in range(count)]
    if nxt:
        items.insert(0, downlink(0, (start + count).to_bytes(8, "big")))
    for i, item in enumerate(items, start=1):
        if page.add_item(item, i) == 0:
            break
    return page.to_bytes()


@st.composite
def raw_pages(draw: st.DrawFn) -> bytes:
    """Arbitrary page bytes (the walredo process passes a pushed page through unchanged,
    whatever it holds): a fill byte with up to a few short runs of drawn bytes at drawn
    offsets. Drawn this way rather than as 8192 independent bytes so that examples stay
    small and shrink to all zeros.

    >>> len(raw_pages().example())
    8192
    """
    page = bytearray([draw(st.integers(0, 255))]) * BLCKSZ
    for _ in range(draw(st.integers(0, 4))):
        run = draw(st.binary(min_size=1, max_size=64))
        at = draw(st.integers(0, BLCKSZ - len(run)))
        page[at : at + len(run)] = run
    return bytes(page)


def downlink(child: int, key: bytes) -> bytes:
    """A btree pivot tuple pointing at ``child`` (PostgreSQL 12+: the TID's block is the
    downlink, its offset the number of key attributes, INDEX_ALT_TID_MASK set in t_info).
    An empty ``key`` is the "minus infinity" first downlink of an internal page."""
    size = maxalign(8 + len(key))
    return IndexTuple(child, 1 if key else 0, size | INDEX_AM_RESERVED_BIT,
                      key.ljust(size - 8, b"\0")).pack()


def btree_internal_pages(*, max_tuples: int = 8, max_key_size: int = 24, max_level: int = 3,
                         max_lsn: int = DEFAULT_START_LSN) -> st.SearchStrategy[bytes]:
    """A btree internal page: level ``1..max_level``, not a leaf, holding 1..``max_tuples``
    downlinks: the first data item is the key-less "minus infinity" downlink, the others
    carry ascending keys of up to ``max_key_size`` bytes; downlinks point at distinct blocks
    >= 1 (block 0 is the metapage). A rightmost page (no right sibling) may be ``BTP_ROOT``;
    a page with a right sibling keeps its high key (above every key) at offset 1, so its
    data items start at offset 2 (``P_FIRSTDATAKEY``). Shrinks to a rightmost level-1 page
    with one downlink to block 1.

    >>> from pytest_walredo.pg.btree_page import BTPageOpaque
    >>> op = BTPageOpaque.unpack(btree_internal_pages().example())
    >>> op.level >= 1 and not op.flags & 1
    True
    """
    if max_tuples < 1 or max_level < 1:
        raise InvalidArgument("an internal page has at least one downlink and level >= 1")
    return _btree_internal_pages(max_tuples, max_key_size, max_level, max_lsn)


@st.composite
def _btree_internal_pages(draw: st.DrawFn, max_tuples: int, max_key_size: int, max_level: int,
                          max_lsn: int) -> bytes:
    page = Page()
    btree_page_init(page)
    level = draw(st.integers(1, max_level))
    right = draw(st.none() | st.integers(1, 1 << 16))  # the right sibling's block, if any
    root = right is None and draw(st.booleans())
    BTPageOpaque(0, right or 0, level, BTP_ROOT if root else 0, 0).write(page)
    page.lsn = draw(st.integers(0, max_lsn))
    children = draw(st.lists(st.integers(1, 1 << 16), min_size=1, max_size=max_tuples, unique=True))
    keys = sorted(draw(st.lists(st.binary(min_size=1, max_size=max(1, max_key_size)),
                                min_size=len(children) - 1, max_size=len(children) - 1)))
    items = [downlink(child, key) for child, key in zip(children, [b"", *keys], strict=True)]
    if right is not None:
        # the high key: a pivot above every key on the page (its downlink is not used)
        items.insert(0, downlink(right, (keys[-1] if keys else b"") + b"\xff"))
    for i, item in enumerate(items, start=1):
        if page.add_item(item, i) == 0:
            break
    return page.to_bytes()


def pages(*, max_tuples: int = 8) -> st.SearchStrategy[bytes]:
    """A valid page: empty, heap with tuples, btree leaf (small or filled up to capacity),
    btree internal page or hash bucket or overflow page (shrinks toward empty)."""
    return st.one_of(empty_pages(), heap_pages(max_tuples=max_tuples),
                     btree_leaf_pages(max_tuples=max_tuples),
                     btree_internal_pages(max_tuples=max(1, max_tuples)),
                     btree_full_leaf_pages(),
                     hash_tuple_pages())


def heap_tuple_count(page: bytes) -> int:
    """How many line pointers ``page`` has (a helper for assertions on drawn pages)."""
    return Page(page).max_offset()
