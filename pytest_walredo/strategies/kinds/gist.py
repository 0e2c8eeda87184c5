"""Drawers for GiST records that change one page in place: PAGE_UPDATE (new tuples appended,
one tuple overwritten, a downlink replaced by two when a child's split completes), its
vacuum form (offsets deleted only), the hint image of items killed by scans (FPI_FOR_HINT:
LP_DEAD items, F_HAS_GARBAGE), DELETE of a leaf's dead items, PAGE_DELETE (this page the
emptied leaf, or the parent losing its downlink), and PAGE_REUSE or ASSIGN_LSN, which name no
block; plus the helpers :mod:`.gist_split` shares. Page splits (which also build pages from
nothing) are in :mod:`.gist_split`.

GiST tuples are drawn as ``IndexTupleData``: a heap TID (leaf) or a child block with offset
0xFFFF (internal), then key bytes; most sizes are MAXALIGNed as ``index_form_tuple`` makes
them, a few are not (redo copies ``IndexTupleSize`` bytes either way).
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.constants import maxalign
from ...pg.gist_page import F_FOLLOW_RIGHT, F_HAS_GARBAGE, GistOpaque
from ...pg.page import LP_DEAD, ItemId
from ...pg.rmgr.gist import GistAssignLsn, GistDelete, GistPageDelete, GistPageReuse, GistPageUpdate
from ...pg.rmgr.xlog import XlogFpi
from ...pg.xlogrecord import BlockRef, ImageRef, make_block
from ..block import Block, other_block
from .spec import Drawn, RecordKind

__all__ = [
    "KINDS",
    "gist_image",
    "gist_items",
    "gist_opaque",
    "gist_ref",
    "gist_tuple",
    "is_live",
    "room_for",
]

_DOWNLINK_OFFSET = 0xFFFF  # TUPLE_IS_VALID: the offset of an internal tuple's child pointer


def gist_opaque(b: Block) -> GistOpaque | None:
    """The GiST special space of the block's page (None when it is not a GiST page)."""
    if b.page is None or b.kind != "gist":
        return None
    return GistOpaque.of(b.page)


def is_live(b: Block) -> bool:
    """A GiST page that is not deleted."""
    op = gist_opaque(b)
    return op is not None and not op.is_deleted


def _is_leaf(b: Block) -> bool:
    op = gist_opaque(b)
    return op is not None and op.is_leaf and not op.is_deleted


def _is_internal(b: Block) -> bool:
    op = gist_opaque(b)
    return op is not None and not op.is_leaf and not op.is_deleted


def gist_items(b: Block) -> list[bytes]:
    """The page's tuples in item order."""
    p = b.view()
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def room_for(tuples: list[bytes], free: int) -> bool:
    """Whether ``tuples`` fit in ``free`` bytes, line pointers included."""
    return sum(maxalign(len(t)) + 4 for t in tuples) <= free


_KEY_SIZES = (16, 32, 8, 24, 0, 5)


def gist_tuple(draw: st.DrawFn, leaf: bool, child: int = 0) -> bytes:
    """A leaf tuple (a heap TID) or a downlink to ``child``, with key bytes; one drawn number
    picks the key size, the key and the TID (drawing each apart made splits of many tuples
    slow to generate), shrinking to a 16-byte zero key."""
    k = draw(st.integers(0, 2**32 - 1))
    n = _KEY_SIZES[k % len(_KEY_SIZES)]
    key = (k.to_bytes(4, "little") * 10)[:n]
    blk, off = (k % 500, 1 + k % 199) if leaf else (child, _DOWNLINK_OFFSET)
    return struct.pack("<HHHH", blk >> 16, blk & 0xFFFF, off, 8 + len(key)) + key


def gist_ref(block_id: int, b: Block, blkno: int, *, will_init: bool = False,
             image: ImageRef | None = None) -> BlockRef:
    """A block reference to block ``blkno`` of this block's relation fork."""
    return make_block(block_id, b.rel3, blkno, forknum=b.tag.rel.forknum, will_init=will_init, image=image)


def gist_image(draw: st.DrawFn, b: Block) -> ImageRef:
    """A full-page image of the block's page as PostgreSQL logs it (the free space as a hole,
    maybe compressed)."""
    assert b.page is not None
    page = b.view()
    if 24 <= page.lower < page.upper <= len(page.data):
        page.data[page.lower : page.upper] = bytes(page.upper - page.lower)
    comps = ("none", "pglz") if b.v == 14 else ("none", "pglz", "lz4", "zstd")
    return ImageRef.from_page(page.to_bytes(), b.v, compression=draw(st.sampled_from(comps)))


def _new_tuples(draw: st.DrawFn, b: Block, leaf: bool, n: int) -> list[bytes]:
    return [gist_tuple(draw, leaf, other_block(draw, (b.tag.blknum,), low=1)) for _ in range(n)]


def _page_update(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """PAGE_UPDATE on this page: new tuples appended; or one tuple overwritten in place (a key
    grew, ``gistplacetopage`` with an old offset); or, on an internal page, a child's
    downlink replaced by the two halves of its split, that child being reference 1."""
    op = gist_opaque(b)
    if op is None or op.is_deleted:
        return None
    items = gist_items(b)
    leaf = op.is_leaf
    shape = draw(st.sampled_from(("append", "overwrite", "child_split") if items else ("append",)))
    if shape == "append":
        new = _new_tuples(draw, b, leaf, draw(st.integers(1, 3)))
        todelete: tuple[int, ...] = ()
    elif shape == "overwrite":
        at = draw(st.integers(1, len(items)))
        new = _new_tuples(draw, b, leaf, 1)
        if maxalign(len(new[0])) - maxalign(len(items[at - 1])) > b.room():
            return None
        todelete = (at,)
        blocks = [b.own_block()]
        return Drawn(GistPageUpdate(1, 1, todelete, tuple(new)), blocks)
    else:
        if leaf:
            return None
        todelete = (draw(st.integers(1, len(items))),)
        new = _new_tuples(draw, b, False, 2)
    if not room_for(new, b.room() + 4):
        return None
    blocks = [b.own_block()]
    if shape == "child_split":
        blocks.append(gist_ref(1, b, other_block(draw, (b.tag.blknum,), low=1)))
    return Drawn(GistPageUpdate(len(todelete), len(new), todelete, tuple(new)), blocks)


def _ascending(draw: st.DrawFn, n: int) -> tuple[int, ...]:
    """A non-empty ascending subset of 1..n."""
    chosen = draw(st.sets(st.integers(1, n), min_size=1, max_size=n))
    return tuple(sorted(chosen))


def _vacuum(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """PAGE_UPDATE as ``gistvacuumpage`` logs it: dead leaf tuples deleted, none inserted;
    often all of them, leaving the empty leaf that PAGE_DELETE removes."""
    items = gist_items(b) if _is_leaf(b) else []
    if not items:
        return None
    offs = tuple(range(1, len(items) + 1)) if draw(st.booleans()) else _ascending(draw, len(items))
    return Drawn(GistPageUpdate(len(offs), 0, offs, ()), [b.own_block()])


def _dead(b: Block) -> list[int]:
    """The leaf's LP_DEAD items (marked by a kill, logged as a hint image)."""
    return [o for o, lp in b.view().item_ids() if lp.flags == LP_DEAD] if _is_leaf(b) else []


def _kill_items(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """``gistkillitems``: index scans mark some leaf items LP_DEAD and the page F_HAS_GARBAGE
    without WAL; with checksums (or wal_log_hints) the change is logged as FPI_FOR_HINT, an
    image of the page as it is then."""
    items = gist_items(b) if _is_leaf(b) else []
    if not items:
        return None
    page = b.view()
    for off in _ascending(draw, len(items)):
        lp = page.item_id(off)
        page.set_item_id(off, ItemId(lp.off, LP_DEAD, lp.len))
    op = GistOpaque.read(page)
    GistOpaque(op.nsn, op.rightlink, op.flags | F_HAS_GARBAGE, op.page_id).write(page)
    marked = Block(b.tag, b.v, b.fl)
    marked.page, marked.kind = page.to_bytes(), b.kind
    return Drawn(XlogFpi(True), [gist_ref(0, b, b.tag.blknum, image=gist_image(draw, marked))])


def _delete(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """DELETE (``gistprunepage``): the leaf's dead items, in ascending order, go (items drawn
    at random when none is marked dead)."""
    items = gist_items(b) if _is_leaf(b) else []
    if not items:
        return None
    drawn = _ascending(draw, len(items))  # drawn either way: the shrinker can then drop the kill
    offs = tuple(_dead(b)) or drawn
    body = GistDelete(draw(st.integers(0, 2**32 - 1)), len(offs), offs, b.v >= 16 and draw(st.booleans()))
    return Drawn(body, [b.own_block()])


def _small_leaf(b: Block) -> bool:
    """A leaf with one or two items: vacuuming it empty (then deleting it) is favoured, so
    that page deletion is reached among many kinds."""
    return _is_leaf(b) and 1 <= b.view().max_offset() <= 2


def _fuller_leaf(b: Block) -> bool:
    """A leaf with three items or more, no dead one yet: scans killing some of them (then
    DELETE) are favoured there."""
    return _is_leaf(b) and b.view().max_offset() >= 3 and not _dead(b)


def _empty_leaf(b: Block) -> bool:
    return _is_leaf(b) and b.view().max_offset() == 0


def _deletable_downlinks(b: Block) -> bool:
    return _is_internal(b) and b.view().max_offset() >= 2


def _page_delete(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """PAGE_DELETE, seen from this page: an emptied leaf is the deleted page (reference 0,
    its parent reference 1); an internal page is the parent (reference 1), losing one
    downlink, never its last one (``gistvacuum_delete_empty_pages`` keeps one)."""
    if _empty_leaf(b):
        body = GistPageDelete(draw(st.integers(0, 2**64 - 1)), draw(st.integers(1, 100)))
        return Drawn(body, [b.own_block(), gist_ref(1, b, other_block(draw, (b.tag.blknum,), low=1))])
    if not _deletable_downlinks(b):
        return None
    n = b.view().max_offset()
    body = GistPageDelete(draw(st.integers(0, 2**64 - 1)), draw(st.integers(1, n)))
    return Drawn(body, [gist_ref(0, b, other_block(draw, (b.tag.blknum,), low=1)), b.own_block(1)])


def _no_block(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    """PAGE_REUSE (a hot-standby conflict point naming a relation block) or ASSIGN_LSN (an
    empty record taking an LSN): no block reference, no page change."""
    if draw(st.booleans()):
        return Drawn(GistAssignLsn(), [])
    rel = (draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)))
    body = GistPageReuse(rel, draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**64 - 1)),
                         b.v >= 16 and draw(st.booleans()))
    return Drawn(body, [])


def follows_right(b: Block) -> bool:
    """The page is the left half of a split whose downlink the parent does not have yet."""
    op = gist_opaque(b)
    return op is not None and bool(op.flags & F_FOLLOW_RIGHT)


KINDS = (
    RecordKind("gist_page_update", 1410, _page_update, on="gist", applies=is_live, favoured=_is_internal),
    RecordKind("gist_vacuum", 1420, _vacuum, on="gist", applies=lambda b: bool(_is_leaf(b) and gist_items(b)),
               favoured=_small_leaf),
    RecordKind("gist_kill_items", 1425, _kill_items, on="gist",
               applies=lambda b: bool(_is_leaf(b) and gist_items(b)), favoured=_fuller_leaf),
    RecordKind("gist_delete", 1430, _delete, on="gist", applies=lambda b: bool(_is_leaf(b) and gist_items(b)),
               favoured=lambda b: bool(_dead(b))),
    RecordKind("gist_page_delete", 1450, _page_delete, on="gist",
               applies=lambda b: _empty_leaf(b) or _deletable_downlinks(b), favoured=_empty_leaf),
    RecordKind("gist_no_block", 1470, _no_block, on="gist"),
)
"""The GiST record kinds that change a page in place (splits: :mod:`.gist_split`)."""
