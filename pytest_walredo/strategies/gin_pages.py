"""GIN pages for the record drawers (:mod:`.kinds.gin`, :mod:`.kinds.gin_fast`): entry tree
leaves and internal pages, posting tree leaves (compressed segments) and internal pages,
pending-list pages and the metapage; and the questions drawers ask about a block holding one.
Layouts: :mod:`pytest_walredo.pg.gin_page`."""

from __future__ import annotations

from hypothesis import strategies as st

from ..pg.gin_page import (
    GIN_COMPRESSED,
    GIN_DATA,
    GIN_DATA_OFFSET,
    GIN_DELETED,
    GIN_INCOMPLETE_SPLIT,
    GIN_LEAF,
    GIN_LIST,
    GIN_LIST_FULLROW,
    GIN_META,
    INVALID_BLOCK,
    GinMeta,
    GinOpaque,
    PostingItem,
    add_posting_item,
    data_size,
    gin_init_page,
    init_metapage,
    set_data_size,
)
from ..pg.gin_posting import ItemPointer, compress_posting_list, decode_segment, split_segments
from ..pg.page import Page
from .block import Block
from .pages import index_tuple

__all__ = [
    "PAGE_SHAPES",
    "entry_tuples",
    "gin_opaque",
    "gin_pages",
    "is_data_internal",
    "is_data_leaf",
    "is_entry",
    "is_list",
    "item_pointers",
    "leaf_items",
    "leaf_segments",
    "segments_of",
]

PAGE_SHAPES = ("entry_leaf", "entry_internal", "data_leaf", "data_internal", "list", "meta")

_blocks = st.integers(1, 1000)


def gin_opaque(b: Block) -> GinOpaque | None:
    """The GIN special space of the block's page (None when it is not a GIN page)."""
    if b.page is None or b.kind != "gin":
        return None
    return GinOpaque.unpack(b.page)


def _flags_are(b: Block, want: int, mask: int) -> bool:
    op = gin_opaque(b)
    return op is not None and op.flags & mask == want


def is_entry(b: Block) -> bool:
    """An entry tree page (leaf or internal), not deleted."""
    return _flags_are(b, 0, GIN_DATA | GIN_LIST | GIN_META | GIN_DELETED)


def is_data_leaf(b: Block) -> bool:
    """A compressed posting tree leaf, not deleted."""
    return _flags_are(b, GIN_DATA | GIN_LEAF | GIN_COMPRESSED, GIN_DATA | GIN_LEAF | GIN_COMPRESSED | GIN_DELETED)


def is_data_internal(b: Block) -> bool:
    return _flags_are(b, GIN_DATA, GIN_DATA | GIN_LEAF | GIN_DELETED)


def is_list(b: Block) -> bool:
    return _flags_are(b, GIN_LIST, GIN_LIST | GIN_DELETED)


def item_pointers(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[list[ItemPointer]]:
    """Sorted, distinct heap item pointers, dense or far apart."""
    tid = st.tuples(st.integers(0, 5000), st.integers(1, 300))
    return st.lists(tid, min_size=min_size, max_size=max_size, unique=True).map(sorted)


def segments_of(draw: st.DrawFn, items: list[ItemPointer]) -> list[bytes]:
    """``items`` cut into drawn runs, each compressed into one segment."""
    out = []
    rest = list(items)
    while rest:
        n = draw(st.integers(1, len(rest)))
        seg, packed = compress_posting_list(rest[:n])
        out.append(seg)
        rest = rest[packed:]
    return out


def leaf_segments(page: bytes) -> list[bytes]:
    """The segments of a compressed data leaf."""
    p = Page(page)
    return split_segments(p.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + data_size(p)])


def leaf_items(page: bytes) -> list[ItemPointer]:
    """Every item pointer of a compressed data leaf, in page order."""
    return [ip for seg in leaf_segments(page) for ip in decode_segment(seg)]


def entry_tuples(draw: st.DrawFn, n_max: int, *, downlinks: bool) -> list[bytes]:
    """Entry tree tuples: small keys with a heap TID, or (internal pages) a downlink."""
    keys = draw(st.lists(st.binary(min_size=1, max_size=16), max_size=n_max))
    out = []
    for k in keys:
        if downlinks:
            out.append(index_tuple(k, draw(_blocks), 0))
        else:
            out.append(index_tuple(k, draw(st.integers(0, 100)), draw(st.integers(1, 50))))
    return out


@st.composite
def gin_pages(draw: st.DrawFn, shape: str | None = None) -> bytes:
    """A GIN page of ``shape`` (drawn from :data:`PAGE_SHAPES` when None), maybe with a
    right link and, on tree pages, GIN_INCOMPLETE_SPLIT."""
    shape = shape or draw(st.sampled_from(PAGE_SHAPES))
    page = Page()
    right = draw(st.sampled_from((INVALID_BLOCK, 0)) | _blocks)
    split = GIN_INCOMPLETE_SPLIT if shape != "meta" and shape != "list" and draw(st.booleans()) else 0
    if shape == "meta":
        init_metapage(page, GinMeta(n_pending_pages=draw(st.integers(0, 9)), n_entries=draw(st.integers(0, 99))))
        return page.to_bytes()
    if shape in ("entry_leaf", "entry_internal", "list"):
        flags = {"entry_leaf": GIN_LEAF, "entry_internal": 0, "list": GIN_LIST | GIN_LIST_FULLROW}[shape]
        gin_init_page(page, flags | split)
        for t in entry_tuples(draw, 6, downlinks=shape == "entry_internal"):
            page.add_item(t)
    elif shape == "data_leaf":
        gin_init_page(page, GIN_DATA | GIN_LEAF | GIN_COMPRESSED | split)
        segs = segments_of(draw, draw(item_pointers(0, 60)))
        area = b"".join(segs)
        set_data_size(page, len(area))
        page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + len(area)] = area
    else:
        gin_init_page(page, GIN_DATA | split)
        keys = draw(item_pointers(1, 8))
        for key in keys:
            add_posting_item(page, PostingItem(draw(_blocks), *key), 0)
    GinOpaque.unpack(page.data).replace(rightlink=right).write(page)
    return page.to_bytes()
