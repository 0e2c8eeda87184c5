"""Redo of SP-GiST records (``spgxlog.c``, PostgreSQL 14-17; Neon's fork does not change it).

The routines, for the one requested block, in the order PostgreSQL visits the blocks:

* ADD_LEAF: the leaf tuple is added at its offset (``addOrReplaceTuple``: an offset within
  the page must hold a PLACEHOLDER, which it replaces) and the chain head's nextOffset points
  at it; with offnumLeaf == offnumHeadLeaf it replaces a DEAD tuple in place. A new page is
  initialized first (leaf, maybe nulls). Block 1, the parent, has node nodeI point at the
  new tuple.
* MOVE_LEAFS: the tuples go to the destination (block 1), then the source's moved tuples
  become dead tuples (``spgPageIndexMultiDelete``: the first listed a REDIRECT to the last
  inserted tuple, or a PLACEHOLDER during a build; the others PLACEHOLDERs), then the parent
  (block 2) links to the last inserted tuple.
* ADD_NODE: without block 1 the inner tuple is replaced in place; otherwise the new tuple is
  added on block 1, the old one becomes a REDIRECT to it (PLACEHOLDER during a build,
  counted in the special space), and the parent link is updated on block parentBlk.
* SPLIT_TUPLE: the postfix tuple goes to block 1 (unless on the same page), then the prefix
  tuple replaces the old one on block 0 (and the postfix follows there when on the same page).
* PICKSPLIT: the source loses its tuples (REDIRECT + PLACEHOLDERs to the new inner tuple, all
  PLACEHOLDERs during a build) or is re-initialized; each leaf tuple goes to the source or
  the destination as its selector byte says; the inner tuple goes to block 2, which may be
  the parent; else block 3 is the parent.
* VACUUM_LEAF: DEAD and PLACEHOLDER conversions, moves (line pointers swapped, then the
  source a PLACEHOLDER) and chain relinks; VACUUM_ROOT: ``PageIndexMultiDelete``;
  VACUUM_REDIRECT: REDIRECTs become PLACEHOLDERs (pointer invalidated, counters moved) and
  the trailing PLACEHOLDERs from firstPlaceholder on go.

Pages a record (re)initializes get their LSN only at the end, as in PostgreSQL; an error
PostgreSQL raises with ``elog(ERROR)`` is a FATAL here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo.buffer import Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.spgist import (
    SpgAddLeaf,
    SpgAddNode,
    SpgMoveLeafs,
    SpgPickSplit,
    SpgSplitTuple,
)
from pytest_walredo.pg.rmgr.spgist_vacuum import SpgVacuumLeaf, SpgVacuumRedirect, SpgVacuumRoot
from pytest_walredo.pg.spgist_page import (
    SPGIST_DEAD,
    SPGIST_LEAF,
    SPGIST_NULLS,
    SPGIST_PLACEHOLDER,
    SPGIST_REDIRECT,
    SpgError,
    SpgOpaque,
    add_item,
    add_or_replace,
    clear_pointer,
    dead_tuple,
    multi_delete,
    set_next_offset,
    set_tuple_state,
    spg_init_page,
    update_node_link,
)

__all__ = ["ROUTINES"]


def _init(flags: int) -> Callable[[Page], None]:
    return lambda page: spg_init_page(page, flags)


def _leaf_flags(nulls: bool) -> int:
    return SPGIST_LEAF | (SPGIST_NULLS if nulls else 0)


def _page(a: Apply, block_id: int, init: int | None = None) -> Page | None:
    """The block's page when it needs redo: ``XLogInitBufferForRedo`` + ``SpGistInitBuffer``
    with ``init`` flags, else ``XLogReadBufferForRedo``."""
    return a.page_for_redo(block_id, init=None if init is None else _init(init))


def _add_leaf(a: Apply, b: SpgAddLeaf) -> None:
    page = _page(a, 0, _leaf_flags(b.stores_nulls) if b.new_page else None)
    if page is not None:
        if b.off_leaf != b.off_head:
            add_or_replace(page, b.tuple, b.off_leaf)
            if b.off_head:
                set_next_offset(page, b.off_head, b.off_leaf)
        else:  # replacing a DEAD tuple
            page.index_tuple_delete(b.off_leaf)
            add_item(page, b.tuple, b.off_leaf)
        a.done(page)
    if b.off_parent:
        parent = _page(a, 1)
        if parent is not None:
            update_node_link(parent, b.off_parent, b.node_i, a.block(0).blkno, b.off_leaf)
            a.done(parent)


def _move_leafs(a: Apply, b: SpgMoveLeafs) -> None:
    dst = a.block(1).blkno
    last = b.toinsert[-1]
    page = _page(a, 1, _leaf_flags(b.stores_nulls) if b.new_page else None)
    if page is not None:
        for item, off in zip(b.tuples, b.toinsert, strict=True):
            add_or_replace(page, item, off)
        a.done(page)
    page = _page(a, 0)
    if page is not None:
        first = SPGIST_PLACEHOLDER if b.is_build else SPGIST_REDIRECT
        multi_delete(page, b.todelete, first, SPGIST_PLACEHOLDER, dst, last, b.redirect_xid)
        a.done(page)
    page = _page(a, 2)
    if page is not None:
        update_node_link(page, b.off_parent, b.node_i, dst, last)
        a.done(page)


def _add_node(a: Apply, b: SpgAddNode) -> None:
    if not a.has_block(1):  # updated in place
        page = _page(a, 0)
        if page is not None:
            page.index_tuple_delete(b.offnum)
            add_item(page, b.tuple, b.offnum)
            a.done(page)
        return
    new = a.block(1).blkno
    a.block(0)  # both blocks must be in the record (XLogRecGetBlockTag)
    page = _page(a, 1, 0 if b.new_page else None)
    if page is not None:
        add_or_replace(page, b.tuple, b.off_new)
        if b.parent_blk == 1:
            update_node_link(page, b.off_parent, b.node_i, new, b.off_new)
        a.done(page)
    page = _page(a, 0)
    if page is not None:
        if b.is_build:
            dead = dead_tuple(SPGIST_PLACEHOLDER)
        else:
            dead = dead_tuple(SPGIST_REDIRECT, new, b.off_new, b.redirect_xid)
        page.index_tuple_delete(b.offnum)
        add_item(page, dead, b.offnum)
        op = SpgOpaque.read(page)
        (op.counted(placeholders=1) if b.is_build else op.counted(redirections=1)).write(page)
        if b.parent_blk == 0:
            update_node_link(page, b.off_parent, b.node_i, new, b.off_new)
        a.done(page)
    if b.parent_blk == 2:
        page = _page(a, 2)
        if page is not None:
            update_node_link(page, b.off_parent, b.node_i, new, b.off_new)
            a.done(page)


def _split_tuple(a: Apply, b: SpgSplitTuple) -> None:
    if not b.postfix_same:
        page = _page(a, 1, 0 if b.new_page else None)
        if page is not None:
            add_or_replace(page, b.postfix, b.off_postfix)
            a.done(page)
    page = _page(a, 0)
    if page is not None:
        page.index_tuple_delete(b.off_prefix)
        add_item(page, b.prefix, b.off_prefix)
        if b.postfix_same:
            add_or_replace(page, b.postfix, b.off_postfix)
        a.done(page)


def _picksplit(a: Apply, b: SpgPickSplit) -> None:
    inner_blk = a.block(2).blkno
    src: Page | None = None
    if b.is_root_split:
        pass  # the root is touched only as the new inner page
    elif b.init_src:
        src = _page(a, 0, _leaf_flags(b.stores_nulls))
    else:
        src = _page(a, 0)
        if src is not None:
            if b.is_build:
                multi_delete(src, b.todelete, SPGIST_PLACEHOLDER, SPGIST_PLACEHOLDER)
            else:
                multi_delete(src, b.todelete, SPGIST_REDIRECT, SPGIST_PLACEHOLDER, inner_blk, b.off_inner,
                             b.redirect_xid)
    dest: Page | None = None
    if a.has_block(1):
        dest = _page(a, 1, _leaf_flags(b.stores_nulls) if b.init_dest else None)
    if len(b.select) != len(b.tuples) or len(b.toinsert) != len(b.tuples):
        raise a.fail("SP-GiST PICKSPLIT logs unequal numbers of tuples, offsets and page selectors")
    for item, off, sel in zip(b.tuples, b.toinsert, b.select, strict=True):
        page = dest if sel else src
        if page is not None:
            add_or_replace(page, item, off)
    for done in (src, dest):
        if done is not None:
            a.done(done)
    page = _page(a, 2, (SPGIST_NULLS if b.stores_nulls else 0) if b.init_inner else None)
    if page is not None:
        add_or_replace(page, b.inner, b.off_inner)
        if b.inner_is_parent:
            update_node_link(page, b.off_parent, b.node_i, inner_blk, b.off_inner)
        a.done(page)
    if a.has_block(3):
        page = _page(a, 3)
        if page is not None:
            update_node_link(page, b.off_parent, b.node_i, inner_blk, b.off_inner)
            a.done(page)


def _vacuum_leaf(a: Apply, b: SpgVacuumLeaf) -> None:
    page = _page(a, 0)
    if page is None:
        return
    multi_delete(page, b.dead, SPGIST_DEAD, SPGIST_DEAD)
    multi_delete(page, b.placeholder, SPGIST_PLACEHOLDER, SPGIST_PLACEHOLDER)
    for src, dest in zip(b.move_src, b.move_dest, strict=True):
        lp_src, lp_dest = page.item_id(src), page.item_id(dest)
        page.set_item_id(src, lp_dest)
        page.set_item_id(dest, lp_src)
    multi_delete(page, b.move_src, SPGIST_PLACEHOLDER, SPGIST_PLACEHOLDER)
    for src, nxt in zip(b.chain_src, b.chain_dest, strict=True):
        set_next_offset(page, src, nxt)
    a.done(page)


def _vacuum_root(a: Apply, b: SpgVacuumRoot) -> None:
    page = _page(a, 0)
    if page is not None:
        page.index_multi_delete(b.todelete)
        a.done(page)


def _vacuum_redirect(a: Apply, b: SpgVacuumRedirect) -> None:
    page = _page(a, 0)
    if page is None:
        return
    for off in b.offsets:
        set_tuple_state(page, off, SPGIST_PLACEHOLDER)
        clear_pointer(page, off)
    n = len(b.offsets)
    op = SpgOpaque.read(page).counted(redirections=-n, placeholders=n)
    if b.first_placeholder:
        last = page.max_offset()
        count = last - b.first_placeholder + 1
        op = op.counted(placeholders=-count)
        if count > 0:
            page.index_multi_delete(tuple(range(b.first_placeholder, last + 1)))
    op.write(page)
    a.done(page)


def _guarded(routine: Callable[[Apply, Any], None]) -> Routine:
    """The routine with SP-GiST's ``elog(ERROR)`` cases reported as the walredo's FATAL."""
    # a partial of a module-level function rather than a closure: its body is looked up when a
    # record is applied, not fixed when ROUTINES is built at import (what lets mutation testing
    # reach it; behaviour is the same)
    return functools.partial(_run_guarded, routine)


def _run_guarded(routine: Callable[[Apply, Any], None], a: Apply, body: Any) -> None:
    try:
        routine(a, body)
    except SpgError as exc:
        raise a.fail(str(exc)) from None


ROUTINES: dict[type[RmgrRecord], Routine] = {
    SpgAddLeaf: _guarded(_add_leaf),
    SpgMoveLeafs: _guarded(_move_leafs),
    SpgAddNode: _guarded(_add_node),
    SpgSplitTuple: _guarded(_split_tuple),
    SpgPickSplit: _guarded(_picksplit),
    SpgVacuumLeaf: _guarded(_vacuum_leaf),
    SpgVacuumRoot: _guarded(_vacuum_root),
    SpgVacuumRedirect: _guarded(_vacuum_redirect),
}
"""The redo routine of each SP-GiST record kind."""
