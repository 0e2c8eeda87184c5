"""Redo of GIN records (``ginxlog.c``, PostgreSQL 14-17): ``ginRedoCreatePTree``,
``ginRedoInsert`` (entry pages, data leaves through ``ginRedoRecompress``, internal data
pages), ``ginRedoSplit``, ``ginRedoVacuumPage``, ``ginRedoVacuumDataLeafPage``,
``ginRedoDeletePage``, ``ginRedoUpdateMetapage``, ``ginRedoInsertListPage`` and
``ginRedoDeleteListPages``.

Every routine touches only the requested block, through :class:`~.buffer.Apply`.
SPLIT and VACUUM_PAGE carry their pages as full-page images and PostgreSQL's routines demand
that each page be restored from its image. The requested block is held to that; the record's
other blocks are skipped, as for every record (the walredo process sees only the requested
block; upstream's code would also fail on them, so no GIN split could ever be replayed in a
vanilla walredo). Where the requested block is not restored, Neon's fork differs
(:func:`.neon.gin_accepts_unrestored`).
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.gin_page import (
    GIN_COMPRESSED,
    GIN_DATA,
    GIN_DATA_OFFSET,
    GIN_DELETED,
    GIN_INCOMPLETE_SPLIT,
    GIN_LEAF,
    GIN_LIST,
    GIN_LIST_FULLROW,
    INVALID_BLOCK,
    POSTING_ITEM_SIZE,
    GinOpaque,
    PostingItem,
    add_posting_item,
    delete_posting_item,
    gin_init_page,
    init_metapage,
    set_data_size,
    set_downlink,
)
from pytest_walredo.pg.gin_posting import (
    GIN_SEGMENT_ADDITEMS,
    GIN_SEGMENT_DELETE,
    GIN_SEGMENT_INSERT,
    GIN_SEGMENT_REPLACE,
    recompress,
)
from pytest_walredo.pg.page import Page, PageError
from pytest_walredo.pg.redo import neon
from pytest_walredo.pg.redo.buffer import BLK_DONE, BLK_RESTORED, Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.gin import (
    EntryInsert,
    GinCreatePtree,
    GinDeletePage,
    GinInsert,
    GinSplit,
    GinVacuumDataLeafPage,
    GinVacuumPage,
    InternalInsert,
)
from pytest_walredo.pg.rmgr.gin_fast import GinDeleteListPages, GinInsertListPage, GinUpdateMetaPage
from pytest_walredo.pg.rmgr.ginxlog import LeafActions

__all__ = ["ROUTINES"]


def _set_opaque(page: Page, **fields: int) -> None:
    GinOpaque.unpack(page.data).replace(**fields).write(page)


def _tuple_size(a: Apply, data: bytes, pos: int) -> int:
    """``IndexTupleSize`` of the tuple logged at ``pos`` (the low 13 bits of t_info)."""
    if pos + 8 > len(data):
        raise a.fail(f"GIN record data ends inside an index tuple header at byte {pos}")
    size = int(struct.unpack_from("<H", data, pos + 6)[0]) & 0x1FFF
    if size < 8 or pos + size > len(data):
        raise a.fail(f"GIN index tuple at byte {pos} claims {size} bytes; the data has {len(data) - pos}")
    return size


def _add(a: Apply, page: Page, item: bytes, offnum: int, message: str) -> None:
    if page.add_item(item, offnum) == 0:
        raise a.fail(message)


def _clear_incomplete_split(a: Apply, block_id: int) -> None:
    """``ginRedoClearIncompleteSplit``."""
    page = a.page_for_redo(block_id)
    if page is not None:
        _set_opaque(page, flags=GinOpaque.unpack(page.data).flags & ~GIN_INCOMPLETE_SPLIT)
        a.done(page)


def _create_ptree(a: Apply, body: GinCreatePtree) -> None:
    page = a.page_for_redo(0, init=lambda p: gin_init_page(p, GIN_DATA | GIN_LEAF | GIN_COMPRESSED))
    if page is not None:
        set_data_size(page, len(body.segments))
        page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + len(body.segments)] = body.segments
        a.done(page)


def _insert_entry(a: Apply, page: Page, p: EntryInsert, rightblkno: int) -> None:
    """``ginRedoInsertEntry``: a downlink moved to the split's right child, a replaced leaf
    tuple removed, the new tuple added at the logged offset."""
    if rightblkno != INVALID_BLOCK:
        if not 1 <= p.offset <= page.max_offset():
            raise a.fail(f"GIN INSERT downlink update at item {p.offset}, which is not on the page")
        if page.item_id(p.offset).len < 6:
            raise a.fail(f"GIN INSERT downlink update: item {p.offset} is too short for a TID")
        set_downlink(page.item_view(p.offset), rightblkno)
    if p.is_delete:
        page.index_tuple_delete(p.offset)
    size = _tuple_size(a, p.tuple, 0)
    t = a.target
    _add(a, page, p.tuple[:size], p.offset,
         f"failed to add item to index page in {t.spcnode}/{t.dbnode}/{t.relnode}")


def _insert_internal(page: Page, p: InternalInsert, rightblkno: int) -> None:
    """``ginRedoInsertData`` on an internal page: the old downlink at the offset now points to
    the split's right child; the new item (the left child) goes in before it."""
    maxoff = GinOpaque.unpack(page.data).maxoff
    if not 1 <= p.offset <= maxoff:
        raise PageError(f"GIN INSERT updates posting item {p.offset} of a page with {maxoff}")
    pos = GIN_DATA_OFFSET + (p.offset - 1) * POSTING_ITEM_SIZE
    old = PostingItem.unpack(page.data, pos)
    page.data[pos : pos + POSTING_ITEM_SIZE] = PostingItem(rightblkno, old.key_block, old.key_offset).pack()
    add_posting_item(page, p.item, p.offset)


def _insert(a: Apply, body: GinInsert) -> None:
    rightblkno = INVALID_BLOCK
    if not body.isleaf:
        rightblkno = body.right_child
        _clear_incomplete_split(a, 1)
    page = a.page_for_redo(0)
    if page is None:
        return
    p = body.payload
    if p is None:
        raise a.fail("Gin INSERT carries no data and no image to apply")
    if isinstance(p, LeafActions):
        _recompress(a, page, p)
    elif isinstance(p, InternalInsert):
        _insert_internal(page, p, rightblkno)
    else:
        _insert_entry(a, page, p, rightblkno)
    a.done(page)


def _recompress(a: Apply, page: Page, leaf: LeafActions) -> None:
    last = leaf.actions[-1].action if leaf.actions else 0
    if len(leaf.actions) < leaf.count and last not in _KNOWN_ACTIONS:
        recompress(page, leaf.actions[:-1])  # the routine stops at the unknown action
        raise a.fail(f"unexpected GIN leaf action: {last}")
    if len(leaf.actions) < leaf.count:
        raise a.fail(f"GIN leaf data logs {leaf.count} actions but holds {len(leaf.actions)}")
    recompress(page, leaf.actions)


_KNOWN_ACTIONS = (GIN_SEGMENT_DELETE, GIN_SEGMENT_INSERT, GIN_SEGMENT_REPLACE, GIN_SEGMENT_ADDITEMS)
_SPLIT_PAGES = ((0, "left"), (1, "right"), (2, "root"))


def _must_restore(a: Apply, block_id: int, message: str) -> None:
    """The routine's demand that block ``block_id`` be restored from its image: held for the
    requested block (other blocks are skipped); Neon's fork also lets it be BLK_DONE."""
    action, page = a.read_for_redo(block_id)
    if action == BLK_RESTORED or page is None:
        return
    if action == BLK_DONE and neon.gin_accepts_unrestored(a.flavour):
        return
    raise a.fail(message)


def _split(a: Apply, body: GinSplit) -> None:
    if not body.isleaf:
        _clear_incomplete_split(a, 3)
    for block_id, name in _SPLIT_PAGES[: 3 if body.isroot else 2]:
        _must_restore(a, block_id, f"GIN split record did not contain a full-page image of {name} page")


def _vacuum_page(a: Apply, body: GinVacuumPage) -> None:
    action, page = a.read_for_redo(0)
    if action == BLK_RESTORED or page is None or neon.gin_vacuum_page_never_fails(a.flavour):
        return
    raise a.fail("replay of gin entry tree page vacuum did not restore the page")


def _vacuum_data_leaf(a: Apply, body: GinVacuumDataLeafPage) -> None:
    page = a.page_for_redo(0)
    if page is None:
        return
    if body.leaf is None:
        raise a.fail("Gin VACUUM_DATA_LEAF_PAGE carries no data and no image to apply")
    _recompress(a, page, body.leaf)
    a.done(page)


def _delete_page(a: Apply, body: GinDeletePage) -> None:
    """``ginRedoDeletePage``: the left sibling's right link, then the page marked deleted
    (pd_prune_xid holds the delete xid), then the parent's downlink removed."""
    left = a.page_for_redo(2)
    if left is not None:
        _set_opaque(left, rightlink=body.right_link)
        a.done(left)
    page = a.page_for_redo(0)
    if page is not None:
        _set_opaque(page, flags=GinOpaque.unpack(page.data).flags | GIN_DELETED)
        page.prune_xid = body.delete_xid
        a.done(page)
    parent = a.page_for_redo(1)
    if parent is not None:
        delete_posting_item(parent, body.parent_offset)
        a.done(parent)


def _add_tuples(a: Apply, page: Page, data: bytes, ntuples: int, first: int) -> None:
    pos = 0
    for i in range(ntuples):
        size = _tuple_size(a, data, pos)
        _add(a, page, data[pos : pos + size], first + i, "failed to add item to index page")
        pos += size


def _update_meta(a: Apply, body: GinUpdateMetaPage) -> None:
    meta = a.page_for_redo(0, init=lambda p: init_metapage(p, body.meta))
    if meta is not None:
        a.done(meta)
    if body.ntuples > 0:
        page = a.page_for_redo(1)
        if page is not None:
            if body.tuples is None:
                raise a.fail("Gin UPDATE_META_PAGE carries no tuples and no image to apply")
            _add_tuples(a, page, body.tuples, body.ntuples, 1 if page.is_empty() else page.max_offset() + 1)
            _set_opaque(page, maxoff=(GinOpaque.unpack(page.data).maxoff + 1) & 0xFFFF)
            a.done(page)
    elif body.prev_tail != INVALID_BLOCK:
        page = a.page_for_redo(1)
        if page is not None:
            _set_opaque(page, rightlink=body.new_rightlink)
            a.done(page)


def _insert_listpage(a: Apply, body: GinInsertListPage) -> None:
    page = a.page_for_redo(0, init=lambda p: gin_init_page(p, GIN_LIST))
    if page is None:
        return
    if body.rightlink == INVALID_BLOCK:  # the tail of a sublist
        _set_opaque(page, rightlink=body.rightlink, flags=GIN_LIST | GIN_LIST_FULLROW, maxoff=1)
    else:
        _set_opaque(page, rightlink=body.rightlink, maxoff=0)
    _add_tuples(a, page, body.tuples, body.ntuples, 1)
    a.done(page)


def _delete_listpages(a: Apply, body: GinDeleteListPages) -> None:
    meta = a.page_for_redo(0, init=lambda p: init_metapage(p, body.meta))
    if meta is not None:
        a.done(meta)
    for i in range(body.ndeleted):
        page = a.page_for_redo(i + 1, init=lambda p: gin_init_page(p, GIN_DELETED))
        if page is not None:
            a.done(page)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    GinCreatePtree: _create_ptree,
    GinInsert: _insert,
    GinSplit: _split,
    GinVacuumPage: _vacuum_page,
    GinVacuumDataLeafPage: _vacuum_data_leaf,
    GinDeletePage: _delete_page,
    GinUpdateMetaPage: _update_meta,
    GinInsertListPage: _insert_listpage,
    GinDeleteListPages: _delete_listpages,
}
"""The redo routine of every GIN record kind."""
