"""Redo of B-tree records that remove items or pages: ``btree_xlog_vacuum`` and
``btree_xlog_delete`` (with ``btree_xlog_updates`` for shrunk posting lists),
``btree_xlog_mark_page_halfdead``, ``btree_xlog_unlink_page``, REUSE_PAGE (no page change)
and META_CLEANUP (``_bt_restore_meta``), PostgreSQL 14-17.

VACUUM does not reset btpo_cycleid in 14-17 (PostgreSQL 18 does); both it and DELETE clear
BTP_HAS_GARBAGE.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.btree_page import (
    BTP_DELETED,
    BTP_HALF_DEAD,
    BTP_HAS_FULLXID,
    BTP_HAS_GARBAGE,
    BTP_LEAF,
    BTPageOpaque,
    btree_page_init,
)
from pytest_walredo.pg.btree_posting import P_HIKEY, downlink, halfdead_high_key, set_downlink, update_posting
from pytest_walredo.pg.page import SIZE_OF_PAGE_HEADER, Page, PageError
from pytest_walredo.pg.redo.btree import add_item, restore_meta, set_opaque
from pytest_walredo.pg.redo.buffer import Apply, Routine, no_page_change
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.btree_pagedel import (
    BtreeMarkPageHalfdead,
    BtreeMetaCleanup,
    BtreeReusePage,
    BtreeUnlinkPage,
)
from pytest_walredo.pg.rmgr.btree_vacuum import BtreeDelete, BtreeVacuum

__all__ = ["ROUTINES"]

_BT_DELETED_PAGE_DATA = struct.Struct("<Q")  # BTDeletedPageData: safexid


def _delete_items(a: Apply, body: BtreeVacuum | BtreeDelete) -> None:
    """VACUUM and DELETE: rewrite the updated posting lists, then delete the deleted items."""
    page = a.page_for_redo(0)
    if page is None:
        return
    if not body.items_logged:
        raise a.fail(f"btree {body.identify(a.version, a.flavour)} carries no items and no image to apply")
    try:
        for u in body.updates:
            new = update_posting(page.item(u.offnum), u.deletetids)
            if not page.index_tuple_overwrite(u.offnum, new):
                raise a.fail("failed to update partially dead item")
        if body.deleted:
            page.index_multi_delete(body.deleted)
    except PageError as exc:
        raise a.fail(str(exc)) from None
    set_opaque(page, flags=BTPageOpaque.unpack(page.data).flags & ~BTP_HAS_GARBAGE)
    a.done(page)


def _halfdead_leaf(a: Apply, page: Page, prev: int, nxt: int, topparent: int) -> None:
    """An empty half-dead leaf: prev/next links, HALF_DEAD | LEAF, and a dummy high key
    pointing to the top parent."""
    BTPageOpaque(prev, nxt, 0, BTP_HALF_DEAD | BTP_LEAF, 0).write(page)
    add_item(a, page, halfdead_high_key(topparent), P_HIKEY, "could not add dummy high key to half-dead page")


def _mark_page_halfdead(a: Apply, body: BtreeMarkPageHalfdead) -> None:
    parent = a.page_for_redo(1)
    if parent is not None:
        nxt = body.poffset + 1
        if not 1 <= body.poffset < parent.max_offset():
            raise a.fail(f"half-dead marking: parent item {body.poffset} has no next item on the page")
        try:
            rightsib = downlink(parent.item(nxt))
            set_downlink(parent.item_view(body.poffset), rightsib)
            parent.index_tuple_delete(nxt)
        except PageError as exc:
            raise a.fail(str(exc)) from None
        a.done(parent)
    leaf = a.page_for_redo(0, init=btree_page_init)
    if leaf is not None:
        _halfdead_leaf(a, leaf, body.leftblk, body.rightblk, body.topparent)
        a.done(leaf)


def _unlink_page(a: Apply, body: BtreeUnlinkPage) -> None:
    if body.leftsib != 0:  # P_NONE
        left = a.page_for_redo(1)
        if left is not None:
            set_opaque(left, next=body.rightsib)
            a.done(left)
    target = a.page_for_redo(0, init=btree_page_init)
    if target is not None:
        # BTPageSetDeleted: flags DELETED | HAS_FULLXID, the safexid as the page's contents
        flags = BTP_DELETED | BTP_HAS_FULLXID | (BTP_LEAF if body.level == 0 else 0)
        BTPageOpaque(body.leftsib, body.rightsib, body.level, flags, 0).write(target)
        target.lower = SIZE_OF_PAGE_HEADER + _BT_DELETED_PAGE_DATA.size
        target.upper = target.special
        _BT_DELETED_PAGE_DATA.pack_into(target.data, SIZE_OF_PAGE_HEADER, body.safexid)
        a.done(target)
    right = a.page_for_redo(2)
    if right is not None:
        set_opaque(right, prev=body.leftsib)
        a.done(right)
    if a.has_block(3):
        leaf = a.page_for_redo(3, init=btree_page_init)
        if leaf is not None:
            _halfdead_leaf(a, leaf, body.leafleftsib, body.leafrightsib, body.leaftopparent)
            a.done(leaf)
    if body.meta:
        restore_meta(a, 4, body.metadata)


def _meta_cleanup(a: Apply, body: BtreeMetaCleanup) -> None:
    restore_meta(a, 0, body.metadata)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    BtreeVacuum: _delete_items,
    BtreeDelete: _delete_items,
    BtreeMarkPageHalfdead: _mark_page_halfdead,
    BtreeUnlinkPage: _unlink_page,
    BtreeReusePage: no_page_change,
    BtreeMetaCleanup: _meta_cleanup,
}
"""The redo routine of each btree record kind that removes items or pages."""
