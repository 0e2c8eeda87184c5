"""Redo of every GiST record on pages built by hand; each expected page is written out from
PostgreSQL's routines (gistxlog.c, gistutil.c, bufpage.c), field by field."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.gist_page import (
    F_DELETED,
    F_FOLLOW_RIGHT,
    F_HAS_GARBAGE,
    F_LEAF,
    F_TUPLES_DELETED,
    GIST_PAGE_ID,
    INVALID_BLOCK,
    GistOpaque,
    gist_deleted_xid,
    gist_init_page,
)
from pytest_walredo.pg.page import LP_DEAD, ItemId, Page
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour

REL = (1663, 5, 16384)
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000
NSN = 0x7_0000_0042


def tup(key: int, *, blk: int = 1, off: int = 1, size: int = 16) -> bytes:
    """A GiST tuple: TID, t_info = size, key bytes (size - 8 of them)."""
    return struct.pack("<HHHH", blk >> 16, blk & 0xFFFF, off, size) + key.to_bytes(8, "little")[: size - 8].ljust(
        size - 8, b"k")


def page_of(tuples: list[bytes], *, flags: int = F_LEAF, nsn: int = 0, right: int = INVALID_BLOCK) -> Page:
    p = Page()
    gist_init_page(p, flags)
    GistOpaque(nsn, right, flags).write(p)
    for i, t in enumerate(tuples, start=1):
        assert p.add_item(t, i) == i
    p.lsn = OLD_LSN
    return p


def items(p: Page) -> list[bytes]:
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def block(blkno: int, block_id: int, *, will_init: bool = False, image: xr.ImageRef | None = None) -> xr.BlockRef:
    return xr.make_block(block_id, REL, blkno, will_init=will_init, image=image)


def redo(page: Page | None, body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], *, blkno: int = 3, v: int = 17,
         lsn: int = LSN) -> Page:
    raw = rmgr.build(body, blocks, pg_version=v).encode()
    out = redo_record(page.to_bytes() if page is not None else None, spcnode=REL[0], dbnode=REL[1],
                      relnode=REL[2], forknum=0, blkno=blkno, end_lsn=lsn, record=raw, pg_version=v,
                      flavour=Flavour.VANILLA)
    return Page(out) if out is not None else Page()


# --------------------------------------------------------------------------- PAGE_UPDATE


def test_page_update_appends_after_the_last_item() -> None:
    before = page_of([tup(1), tup(2)])
    new = [tup(3, size=24), tup(4, size=13)]  # sizes are IndexTupleSize, any alignment
    after = redo(before, rmgr.GistPageUpdate(0, 2, (), tuple(new)), [block(3, 0)])
    want = page_of([tup(1), tup(2), *new])
    want.lsn = LSN
    assert after.data == want.data


def test_page_update_one_for_one_overwrites_in_place() -> None:
    before = page_of([tup(1), tup(2), tup(3)], flags=0)
    bigger = tup(9, size=32)
    after = redo(before, rmgr.GistPageUpdate(1, 1, (2,), (bigger,)), [block(3, 0)])
    assert items(after) == [tup(1), bigger, tup(3)]
    want = Page(before.data)
    assert want.index_tuple_overwrite(2, bigger)  # PageIndexTupleOverwrite, not delete + add
    want.lsn = LSN
    assert after.data == want.data and GistOpaque.read(after).flags == 0


@pytest.mark.parametrize(("flags", "marked"), [(F_LEAF, True), (0, False)])
def test_page_update_deletes_then_appends(flags: int, marked: bool) -> None:
    before = page_of([tup(i) for i in range(1, 6)], flags=flags)
    new = tup(7)
    after = redo(before, rmgr.GistPageUpdate(3, 1, (1, 3, 5), (new,)), [block(3, 0)])
    assert items(after) == [tup(2), tup(4), new]
    assert GistOpaque.read(after).flags == flags | (F_TUPLES_DELETED if marked else 0)


def test_page_update_completes_the_childs_split() -> None:
    child = page_of([tup(1)], flags=F_LEAF | F_FOLLOW_RIGHT, nsn=NSN, right=9)
    body = rmgr.GistPageUpdate(1, 2, (1,), (tup(5, blk=3, off=0xFFFF), tup(6, blk=9, off=0xFFFF)))
    after = redo(child, body, [block(20, 0), block(3, 1)])
    want = Page(child.data)
    GistOpaque(LSN, 9, F_LEAF).write(want)  # NSN := the record's LSN, F_FOLLOW_RIGHT cleared
    want.lsn = LSN
    assert after.data == want.data


def test_completing_a_split_also_follows_a_restored_image() -> None:
    """gistRedoClearFollowRight acts on BLK_RESTORED too: the NSN is not in the image."""
    imaged = page_of([tup(1), tup(2)], flags=F_LEAF | F_FOLLOW_RIGHT, nsn=NSN, right=9)
    image = xr.ImageRef.from_page(imaged.to_bytes(), 17)
    after = redo(page_of([]), rmgr.GistPageUpdate(0, 1, (), (tup(5),)), [block(20, 0), block(3, 1, image=image)])
    assert items(after) == [tup(1), tup(2)]
    assert GistOpaque.read(after) == GistOpaque(LSN, 9, F_LEAF) and after.lsn == LSN


def test_completing_a_split_already_applied_changes_nothing() -> None:
    child = page_of([tup(1)], flags=F_LEAF | F_FOLLOW_RIGHT, nsn=NSN)
    child.lsn = LSN
    after = redo(child, rmgr.GistPageUpdate(0, 1, (), (tup(5),)), [block(20, 0), block(3, 1)])
    assert after.data == child.data


def test_page_update_without_data_or_image_is_an_error() -> None:
    image = xr.ImageRef.from_page(page_of([tup(1)]).to_bytes(), 17, apply=False)
    with pytest.raises(RedoError, match="no block data"):
        redo(page_of([tup(1)]), rmgr.GistPageUpdate(0, 1, None, None), [block(3, 0, image=image)])


def test_page_update_overwrite_beyond_the_items_fails_like_postgres() -> None:
    with pytest.raises(RedoError, match="invalid index offnum: 4"):
        redo(page_of([tup(1)]), rmgr.GistPageUpdate(1, 1, (4,), (tup(2),)), [block(3, 0)])


# --------------------------------------------------------------------------- DELETE


@pytest.mark.parametrize("v", SUPPORTED_VERSIONS)
def test_delete_removes_the_logged_items_in_every_layout(v: int) -> None:
    before = page_of([tup(i) for i in range(1, 7)], flags=F_LEAF | F_HAS_GARBAGE)
    for off in (2, 4, 5):
        lp = before.item_id(off)
        before.set_item_id(off, ItemId(lp.off, LP_DEAD, lp.len))
    body = rmgr.GistDelete(1234, 3, (2, 4, 5), v >= 16)
    raw = rmgr.build(body, [block(3, 0)], pg_version=v)
    assert len(raw.main_data) == (8 if v >= 16 else 6) + 6  # PG16 added isCatalogRel (and a pad byte)
    after = redo(before, body, [block(3, 0)], v=v)
    want = Page(before.data)
    want.index_multi_delete([2, 4, 5])
    GistOpaque(0, INVALID_BLOCK, F_LEAF | F_TUPLES_DELETED).write(want)  # F_HAS_GARBAGE cleared
    want.lsn = LSN
    assert after.data == want.data
    assert items(after) == [tup(1), tup(3), tup(6)]


# --------------------------------------------------------------------------- PAGE_SPLIT


def _split(pages: list[list[bytes]], *, leaf: bool = True, follow: bool = True, rlink: int = 44
           ) -> rmgr.GistPageSplit:
    return rmgr.GistPageSplit(rlink, NSN, leaf, len(pages), follow, tuple(tuple(p) for p in pages))


def test_split_pages_are_rebuilt_linked_and_flagged() -> None:
    left, middle, right = [tup(1), tup(2)], [tup(3)], [tup(4), tup(5, size=24)]
    body = _split([left, middle, right])
    blocks = [block(3, 1, will_init=True), block(7, 2, will_init=True), block(8, 3, will_init=True)]
    garbage = page_of([tup(99)] * 5, flags=0)
    for blkno, tuples, right_link, follow in ((3, left, 7, True), (7, middle, 8, True), (8, right, 44, False)):
        got = redo(garbage, body, blocks, blkno=blkno)
        want = Page()
        gist_init_page(want, F_LEAF)
        for i, t in enumerate(tuples, start=1):
            want.add_item(t, i)
        GistOpaque(NSN, right_link, F_LEAF | (F_FOLLOW_RIGHT if follow else 0)).write(want)
        want.lsn = LSN
        assert got.data == want.data, blkno


def test_split_without_markfollowright_sets_no_flag() -> None:
    body = _split([[tup(1)], [tup(2)]], follow=False)
    got = redo(None, body, [block(3, 1, will_init=True), block(7, 2, will_init=True)])
    assert GistOpaque.read(got) == GistOpaque(NSN, 7, F_LEAF)


def test_root_split_keeps_the_root_internal_and_no_follow_right() -> None:
    body = _split([[tup(1, blk=5, off=0xFFFF), tup(2, blk=6, off=0xFFFF)], [tup(3)], [tup(4)]], rlink=INVALID_BLOCK)
    blocks = [block(0, 1, will_init=True), block(5, 2, will_init=True), block(6, 3, will_init=True)]
    root = redo(None, body, blocks, blkno=0)
    assert GistOpaque.read(root) == GistOpaque(NSN, INVALID_BLOCK, 0, GIST_PAGE_ID)
    assert items(root) == [tup(1, blk=5, off=0xFFFF), tup(2, blk=6, off=0xFFFF)]
    first = redo(None, body, blocks, blkno=5)
    assert GistOpaque.read(first) == GistOpaque(NSN, 6, F_LEAF)  # no F_FOLLOW_RIGHT in a root split


def test_split_completes_the_left_childs_split() -> None:
    child = page_of([tup(1)], flags=F_FOLLOW_RIGHT, nsn=NSN, right=9)
    body = _split([[tup(5)], [tup(6)]], leaf=False)
    after = redo(child, body, [block(3, 0), block(20, 1, will_init=True), block(21, 2, will_init=True)])
    assert GistOpaque.read(after) == GistOpaque(LSN, 9, 0) and items(after) == [tup(1)]


def test_split_page_without_its_tuples_is_an_error() -> None:
    body = rmgr.GistPageSplit(44, NSN, True, 2, True, ((tup(1),), None))
    with pytest.raises(RedoError, match="no tuples for block 2"):
        redo(None, body, [block(3, 1, will_init=True), block(7, 2, will_init=True)], blkno=7)


def test_split_that_does_not_fit_fails_like_postgres() -> None:
    body = _split([[tup(1, size=4000)] * 3, [tup(2)]])
    with pytest.raises(RedoError, match="failed to add item to GiST index page, item 2 out of 3, size 4000"):
        redo(None, body, [block(3, 1, will_init=True), block(7, 2, will_init=True)])


# --------------------------------------------------------------------------- PAGE_DELETE, no-ops


def test_page_delete_marks_the_leaf_and_drops_the_parents_downlink() -> None:
    body = rmgr.GistPageDelete((5 << 32) | 77, 2)
    blocks = [block(3, 0), block(9, 1)]
    leaf = page_of([])
    got = redo(leaf, body, blocks)
    assert GistOpaque.read(got).flags == F_LEAF | F_DELETED and got.lower == 32
    assert gist_deleted_xid(got) == (5 << 32) | 77
    parent = page_of([tup(1, blk=3, off=0xFFFF), tup(2, blk=4, off=0xFFFF), tup(3, blk=5, off=0xFFFF)], flags=0)
    got = redo(parent, body, blocks, blkno=9)
    want = Page(parent.data)
    want.index_tuple_delete(2)
    want.lsn = LSN
    assert got.data == want.data


@pytest.mark.parametrize("body", [rmgr.GistPageReuse((1663, 5, 16384), 3, 99), rmgr.GistAssignLsn()])
def test_records_naming_no_block_change_nothing(body: rmgr.RmgrRecord) -> None:
    p = page_of([tup(1)])
    assert redo(p, body, []).data == p.data
    assert redo(None, body, []).data == bytes(8192)
