"""Redo of GiST records (``gistxlog.c``, PostgreSQL 14-17; Neon's fork does not change it).

The routines, for the one requested block:

* PAGE_UPDATE (``gistRedoPageUpdateRecord``): one deleted offset and one new tuple overwrite
  that item in place (``PageIndexTupleOverwrite``); otherwise the offsets go with
  ``PageIndexMultiDelete`` (a leaf then gets F_TUPLES_DELETED) and every logged tuple is
  appended after the last item. Block 1, a left child, has its split completed.
* DELETE (``gistRedoDeleteRecord``): ``PageIndexMultiDelete`` of the logged offsets (PG14/15:
  only when the main data carries them), F_HAS_GARBAGE cleared, F_TUPLES_DELETED set.
* PAGE_SPLIT (``gistRedoPageSplitRecord``): each new page is initialized and filled from its
  logged tuples; a leaf split's pages stay leaves except the root; page i links right to page
  i+1 and the last one to the original right link; every page gets the original NSN and,
  except the last one and in a root split, F_FOLLOW_RIGHT when the record asks for it. Block
  0, the left child, has its split completed.
* completing a child's split (``gistRedoClearFollowRight``): NSN := the record's LSN and
  F_FOLLOW_RIGHT cleared, also right after an image of the child was restored (the NSN is not
  in the image).
* PAGE_DELETE (``gistRedoPageDelete``): block 0 becomes a deleted page keeping deleteXid;
  block 1, its parent, loses the downlink (``PageIndexTupleDelete``).
* PAGE_REUSE and ASSIGN_LSN change no page.
"""

from __future__ import annotations

from pytest_walredo.pg.gist_page import (
    F_FOLLOW_RIGHT,
    F_HAS_GARBAGE,
    F_LEAF,
    F_TUPLES_DELETED,
    GIST_ROOT_BLKNO,
    INVALID_BLOCK,
    GistOpaque,
    gist_init_page,
    gist_set_deleted,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo.buffer import BLK_NEEDS_REDO, BLK_RESTORED, Apply, Routine, no_page_change
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.gist import (
    GistAssignLsn,
    GistDelete,
    GistPageDelete,
    GistPageReuse,
    GistPageSplit,
    GistPageUpdate,
)

__all__ = ["ROUTINES"]


def _set_flags(page: Page, set_: int = 0, clear: int = 0, **fields: int) -> None:
    """Change some GISTPageOpaqueData fields: flags bits set and cleared, nsn, rightlink."""
    op = GistOpaque.read(page)
    GistOpaque(fields.get("nsn", op.nsn), fields.get("rightlink", op.rightlink),
               (op.flags | set_) & ~clear, op.page_id).write(page)


def _add(a: Apply, page: Page, item: bytes, offnum: int) -> None:
    if page.add_item(item, offnum) != offnum:
        raise a.fail(f"failed to add item to GiST index page, size {len(item)} bytes")


def _clear_follow_right(a: Apply, block_id: int) -> None:
    """``gistRedoClearFollowRight``: the child's NSN becomes this record's LSN and F_FOLLOW_RIGHT
    goes, even when an image of it was just restored."""
    action, page = a.read_for_redo(block_id)
    if page is not None and action in (BLK_NEEDS_REDO, BLK_RESTORED):
        _set_flags(page, clear=F_FOLLOW_RIGHT, nsn=a.lsn)
        a.done(page)


def _page_update(a: Apply, body: GistPageUpdate) -> None:
    page = a.page_for_redo(0)
    if page is not None:
        if body.todelete is None or body.tuples is None:
            raise a.fail("GiST PAGE_UPDATE carries no block data and no image to apply")
        tuples = list(body.tuples)
        if body.ntodelete == 1 and body.ntoinsert == 1:
            if not tuples:
                raise a.fail("GiST PAGE_UPDATE replaces an item but logs no tuple")
            item = tuples.pop(0)
            if not page.index_tuple_overwrite(body.todelete[0], item):
                raise a.fail(f"failed to add item to GiST index page, size {len(item)} bytes")
        elif body.ntodelete > 0:
            page.index_multi_delete(body.todelete)
            if GistOpaque.read(page).is_leaf:
                _set_flags(page, set_=F_TUPLES_DELETED)
        off = page.max_offset() + 1  # FirstOffsetNumber on an empty page
        for item in tuples:
            _add(a, page, item, off)
            off += 1
        a.done(page)
    if a.has_block(1):
        _clear_follow_right(a, 1)


def _delete(a: Apply, body: GistDelete) -> None:
    page = a.page_for_redo(0)
    if page is None:
        return
    if body.offsets:
        page.index_multi_delete(body.offsets)
    _set_flags(page, set_=F_TUPLES_DELETED, clear=F_HAS_GARBAGE)
    a.done(page)


def _page_split(a: Apply, body: GistPageSplit) -> None:
    blknos = [a.block(i + 1).blkno for i in range(body.npage)]
    isrootsplit = bool(blknos) and blknos[0] == GIST_ROOT_BLKNO
    for i, blkno in enumerate(blknos):
        page = a.init_for_redo(i + 1)
        if page is None:
            continue
        tuples = body.pages[i] if i < len(body.pages) else None
        if tuples is None:
            raise a.fail(f"GiST PAGE_SPLIT carries no tuples for block {i + 1}")
        gist_init_page(page, F_LEAF if body.origleaf and blkno != GIST_ROOT_BLKNO else 0)
        for off, item in enumerate(tuples, start=1):
            if page.add_item(item, off) != off:
                raise a.fail(f"failed to add item to GiST index page, item {off - 1} out of"
                             f" {len(tuples)}, size {len(item)} bytes")
        if blkno == GIST_ROOT_BLKNO:
            _set_flags(page, clear=F_FOLLOW_RIGHT, rightlink=INVALID_BLOCK, nsn=body.orignsn)
        else:
            last = i == body.npage - 1
            right = body.origrlink if last else blknos[i + 1]
            follow = not last and not isrootsplit and body.markfollowright
            _set_flags(page, set_=F_FOLLOW_RIGHT if follow else 0, clear=0 if follow else F_FOLLOW_RIGHT,
                       rightlink=right, nsn=body.orignsn)
        a.done(page)
    if a.has_block(0):
        _clear_follow_right(a, 0)


def _page_delete(a: Apply, body: GistPageDelete) -> None:
    leaf = a.page_for_redo(0)
    if leaf is not None:
        gist_set_deleted(leaf, body.delete_xid)
        a.done(leaf)
    parent = a.page_for_redo(1)
    if parent is not None:
        parent.index_tuple_delete(body.downlink_offset)
        a.done(parent)


ROUTINES: dict[type[RmgrRecord], Routine] = {
    GistPageUpdate: _page_update,
    GistDelete: _delete,
    GistPageReuse: no_page_change,
    GistPageSplit: _page_split,
    GistPageDelete: _page_delete,
    GistAssignLsn: no_page_change,
}
"""The redo routine of each GiST record kind."""
