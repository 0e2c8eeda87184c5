"""Drawers for hash records that move tuples between the pages of a bucket and remove them:
``hash_move_in`` (a write page takes tuples: MOVE_PAGE_CONTENTS or SQUEEZE_PAGE, reference 1,
where SQUEEZE_PAGE may also relink it past the freed page), ``hash_remove`` (tuples leave:
the read page of MOVE_PAGE_CONTENTS, reference 2; VACUUM's DELETE, reference 1; an insert's
VACUUM_ONE_PAGE removing LP_DEAD tuples, reference 0), ``hash_free_overflow`` (the overflow
page SQUEEZE_PAGE frees, reference 2: its remaining tuples go to the write page) and
``hash_bucket_locked`` (the primary bucket page MOVE_PAGE_CONTENTS,
SQUEEZE_PAGE or DELETE only lock, reference 0: it must not change).

The moved tuples are the read page's own, and go where ``_hash_pgaddmultitup`` puts them on
the write page; VACUUM_ONE_PAGE removes the LP_DEAD tuples when there are any.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.hash_page import INVALID_BLOCK, LH_PAGE_HAS_DEAD_TUPLES
from ...pg.page import LP_DEAD
from ...pg.rmgr.hash_vacuum import HashDelete, HashVacuumOnePage
from ..block import Block
from ..tags import MAX_U32
from .hash import (
    add_tuples,
    blocks_for,
    hash_opaque,
    holds_tuples,
    is_bucket,
    is_overflow,
    items,
    move_record,
    new_tuples,
    squeeze_record,
)
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]


def _has_items(b: Block) -> bool:
    return holds_tuples(b) and bool(items(b))


def _has_dead(b: Block) -> bool:
    """Tuples marked LP_DEAD (and the page's hint says so): what VACUUM_ONE_PAGE is for."""
    op = hash_opaque(b)
    return op is not None and holds_tuples(b) and bool(op.flag & LH_PAGE_HAS_DEAD_TUPLES) and any(
        lp.flags == LP_DEAD for _o, lp in b.view().item_ids())


def _empty_overflow(b: Block) -> bool:
    """An overflow page without tuples: what a squeeze frees."""
    return is_overflow(b) and not items(b)


def _some_offsets(draw: st.DrawFn, b: Block, *, at_least: int = 1) -> list[int]:
    """Ascending offsets of some of the page's tuples (at least ``at_least``)."""
    offs = [o for o, _t in items(b)]
    return sorted(draw(st.lists(st.sampled_from(offs), unique=True, min_size=min(at_least, len(offs)),
                                max_size=min(len(offs), 40))))


def _move_in(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The write page of MOVE_PAGE_CONTENTS (tuples in) or of SQUEEZE_PAGE (tuples in, maybe
    none, and a new next link when it precedes the freed page); it is the primary bucket
    page when it is one."""
    if not holds_tuples(b):
        return None
    nothing = draw(st.booleans())  # SQUEEZE_PAGE may move nothing to it
    tuples = new_tuples(draw, draw(st.integers(0 if nothing else 1, 4)))
    towrite = add_tuples(b.view(), tuples)
    if towrite is None:
        return None
    as_move = draw(st.booleans())
    if tuples and as_move:
        deleted = list(range(1, len(tuples) + 1))
        return move_record(draw, b, 1, tuples=tuples, towrite=towrite, deleted=deleted, is_prim=is_bucket(b))
    return squeeze_record(draw, b, 1, tuples=tuples, towrite=towrite, is_prim=is_bucket(b))


def _free_overflow(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The overflow page SQUEEZE_PAGE frees: its live tuples (maybe none) move to the write
    page, its neighbours in the chain (as its special space names them) are relinked, and it
    becomes an unused page."""
    op = hash_opaque(b)
    if op is None or not is_overflow(b):
        return None
    page = b.view()
    tuples = [page.item(o) for o, lp in page.item_ids() if lp.flags != LP_DEAD]
    # the page before it is reference 3, or reference 1 when it is the write page
    fixed = {3: op.prevblkno, 1: op.prevblkno, **({4: op.nextblkno} if op.nextblkno != INVALID_BLOCK else {})}
    return squeeze_record(draw, b, 2, tuples=tuples[:40], towrite=list(range(1, min(len(tuples), 40) + 1)),
                          fixed=fixed)


def _remove(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """Tuples leave the page: the read page of MOVE_PAGE_CONTENTS (reference 2; they go to an
    earlier page of the bucket at offsets 1..n), VACUUM's DELETE (reference 1; the primary
    bucket page is reference 0 when it is not this page; LH_PAGE_HAS_DEAD_TUPLES cleared or
    kept) or VACUUM_ONE_PAGE (reference 0: an insert finding the page full removes its
    LP_DEAD tuples, some drawn ones when it has none, and clears LH_PAGE_HAS_DEAD_TUPLES; the
    metapage is reference 1)."""
    if not _has_items(b):
        return None
    how = draw(st.sampled_from(("delete", "vacuum_one_page", "move")))
    if how == "move":
        deleted = _some_offsets(draw, b)
        page = b.view()
        tuples = [page.item(o) for o in deleted]
        return move_record(draw, b, 2, tuples=tuples, towrite=list(range(1, len(tuples) + 1)), deleted=deleted,
                           is_prim=draw(st.booleans()))
    if how == "delete":
        primary = is_bucket(b)
        body = HashDelete(draw(st.booleans()), primary, tuple(_some_offsets(draw, b)))
        return Drawn(body, blocks_for(draw, b, 1, [1] if primary else [0, 1]))
    dead = [o for o, lp in b.view().item_ids() if lp.flags == LP_DEAD]
    use_dead = bool(dead) and draw(st.booleans())
    deleted = dead if use_dead else _some_offsets(draw, b)
    vbody = HashVacuumOnePage(draw(st.integers(0, MAX_U32)), len(deleted), tuple(deleted),
                              b.v >= 16 and draw(st.booleans()))
    return Drawn(vbody, blocks_for(draw, b, 0, [0, 1], meta=1))


def _bucket_locked(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The primary bucket page a MOVE_PAGE_CONTENTS, SQUEEZE_PAGE or DELETE of a later page
    of the bucket locks (reference 0) and leaves alone."""
    if not is_bucket(b):
        return None
    how = draw(st.sampled_from(("move", "squeeze", "delete")))
    if how == "move":
        tuples = new_tuples(draw, draw(st.integers(1, 3)))
        n = list(range(1, len(tuples) + 1))
        return move_record(draw, b, 0, tuples=tuples, towrite=n, deleted=n, is_prim=False)
    if how == "squeeze":
        return squeeze_record(draw, b, 0)
    body = HashDelete(draw(st.booleans()), False, tuple(range(1, draw(st.integers(1, 5)) + 1)))
    return Drawn(body, blocks_for(draw, b, 0, [0, 1]))


KINDS = (
    RecordKind("hash_move_in", 1334, _move_in, on="hash", applies=holds_tuples, favoured=holds_tuples),
    RecordKind("hash_remove", 1337, _remove, on="hash", applies=_has_items, favoured=_has_dead),
    RecordKind("hash_free_overflow", 1340, _free_overflow, on="hash", applies=is_overflow, favoured=_empty_overflow),
    RecordKind("hash_bucket_locked", 1349, _bucket_locked, on="hash", applies=is_bucket, favoured=is_bucket),
)
"""The hash kinds that move and remove tuples and free overflow pages; LP_DEAD tuples are
favoured for removal and an empty overflow page for freeing, the order of real vacuums."""
