"""Edges of the btree redo routines that test_pg_redo_btree.py leaves open: records whose
block data an image replaced (and no image applies), items that do not fit where the record
puts them, offsets at the ends of the page, the metapage written with the logged version, and
the incomplete-split flag of an internal page. Expected pages and messages come from
nbtxlog.c (btree_xlog_insert/split/newroot/dedup, _bt_restore_page, _bt_restore_meta) and the
model's documented refusals, never from the model's own output."""

from __future__ import annotations

import struct

import pytest
from test_pg_redo_btree import (
    LSN,
    OLD_LSN,
    N,
    _split,
    block,
    items,
    itup,
    key_of,
    leaf,
    record,
    redo,
    right_area,
)

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.btree_page import BTP_INCOMPLETE_SPLIT, BTP_LEAF, BTP_META, BTP_ROOT, BTPageOpaque
from pytest_walredo.pg.btree_posting import form_posting, heap_tids
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import RedoError

BT_MAGIC = 0x053162


def _fails(page: Page | None, raw: bytes, message: str, *, blkno: int = 0, kind: str) -> None:
    with pytest.raises(RedoError, match=f"^{message}$") as err:
        redo(page, raw, blkno=blkno)
    assert err.value.context is not None and f" for Btree/{kind}: " in err.value.context


def _big(key: int, size: int) -> bytes:
    """An index tuple of ``size`` bytes (a multiple of 8): TID, t_info with the size, then filler."""
    return struct.pack("<HHHH", 0, 1, 1, size) + struct.pack("<q", key) + bytes(size - 16)


# --------------------------------------------------------------------------- INSERT


def test_insert_without_its_tuple_or_an_image_is_an_error() -> None:
    raw = record(rmgr.BtreeInsert(2, b""), [block(0, block_id=0)])
    _fails(leaf([10]), raw, "btree INSERT carries no index tuple and no image to apply", kind="INSERT_LEAF")


def test_insert_past_the_end_of_the_line_pointers_fails_to_add_the_item() -> None:
    # PageAddItem refuses an offset beyond maxoff + 1; btree_xlog_insert PANICs
    raw = record(rmgr.BtreeInsert(3, itup(30)), [block(0, block_id=0)])
    _fails(leaf([10]), raw, "failed to add new item", kind="INSERT_LEAF")


def test_insert_meta_restores_the_metapage_with_the_logged_version() -> None:
    md = rmgr.BtreeMetadata(3, 1, 1, 1, 1, 7, False)  # a version 3 index (PostgreSQL 12 layout)
    body = rmgr.BtreeInsert(1, itup(30), 0x20, md)  # INSERT_META: an internal page, the metapage
    raw = record(body, [block(4, block_id=0), block(3, block_id=1), block(0, block_id=2, will_init=True)])
    out = redo(None, raw, blkno=0)
    expected = Page.initialized(16)
    struct.pack_into("<IIIIIII4xdB", expected.data, 24, BT_MAGIC, 3, 1, 1, 1, 1, 7, -1.0, 0)  # float8 aligned
    BTPageOpaque(flags=BTP_META).write(expected)
    expected.lower = 24 + 48
    expected.lsn = LSN
    assert out.to_bytes() == expected.to_bytes()


@pytest.mark.parametrize("item", [1, 2])
def test_insert_post_splits_a_posting_list_at_either_end_of_the_page(item: int) -> None:
    posting = form_posting(itup(20), [(1, 1), (1, 5), (1, 9)])
    page = Page.initialized(16)
    BTPageOpaque(0, 0, 0, BTP_LEAF, 0).write(page)
    for t in ([posting, itup(30)] if item == 1 else [itup(10), posting]):
        page.add_item(t)
    page.lsn = OLD_LSN
    out = redo(page, record(rmgr.BtreeInsert(item + 1, itup(20, (1, 6)), 0x50, None, 2), [block(0, block_id=0)]))
    assert heap_tids(out.item(item)) == [(1, 1), (1, 5), (1, 6)]
    assert out.item(item + 1) == itup(20, (1, 9))


def test_insert_post_at_an_item_not_on_the_page_is_an_error() -> None:
    raw = record(rmgr.BtreeInsert(3, itup(20, (1, 6)), 0x50, None, 2), [block(0, block_id=0)])
    _fails(leaf([10]), raw, "posting list split at item 2, which is not on the page", kind="INSERT_POST")


def test_insert_post_into_an_item_that_is_no_posting_list_is_an_error() -> None:
    raw = record(rmgr.BtreeInsert(2, itup(10, (1, 6)), 0x50, None, 2), [block(0, block_id=0)])
    with pytest.raises(RedoError) as err:
        redo(leaf([10]), raw)
    assert "posting" in str(err.value) and err.value.context is not None


# --------------------------------------------------------------------------- SPLIT


def _split_raw(body: rmgr.BtreeSplit) -> bytes:
    return record(body, [block(5, block_id=0), block(9, block_id=1, will_init=True)])


def test_split_without_the_left_high_key_or_an_image_is_an_error() -> None:
    body = rmgr.BtreeSplit(0, 3, 3, 0, False, b"", b"", right_area([itup(30)]))
    _fails(leaf([10, 20, 30]), _split_raw(body), "btree split carries no left high key and no image to apply",
           blkno=5, kind="SPLIT_R")


def test_split_whose_right_page_does_not_fit_is_an_error() -> None:
    tuples = [itup(k) for k in range(600)]  # 600 * (16 + 4) bytes: more than a page holds
    body = rmgr.BtreeSplit(0, 2, 2, 0, False, b"", itup(0, (0, 0)), right_area(tuples))
    _fails(None, _split_raw(body), "_bt_restore_page: cannot add item to page", blkno=9, kind="SPLIT_R")


def test_split_whose_left_high_key_does_not_fit_is_an_error() -> None:
    body = rmgr.BtreeSplit(0, 2, 2, 0, False, b"", _big(5, 8176), right_area([itup(30)]))
    _fails(leaf([10, 30]), _split_raw(body), "failed to add high key to left page after split", blkno=5,
           kind="SPLIT_R")


def test_split_whose_old_items_do_not_fit_next_to_the_high_key_is_an_error() -> None:
    page = leaf([10, 20, 30])
    body = rmgr.BtreeSplit(0, 3, 3, 0, False, b"", _big(5, 8128), right_area([itup(30)]))
    _fails(page, _split_raw(body), "failed to add old item to left page after split", blkno=5, kind="SPLIT_R")


@pytest.mark.parametrize("newitemoff", [2, 3])  # before an old item that stays left, or last on the left
def test_split_whose_new_left_item_does_not_fit_is_an_error(newitemoff: int) -> None:
    # the 8096-byte high key and the old items fit (8140 of 8152 bytes), the new item does not
    body = rmgr.BtreeSplit(0, 3, newitemoff, 0, True, _big(15, 32), _big(30, 8096), right_area([itup(30)]))
    _fails(leaf([10, 20, 30]), _split_raw(body), "failed to add new item to left page after split", blkno=5,
           kind="SPLIT_L")


def test_split_whose_first_right_item_is_beyond_the_page_is_an_error() -> None:
    body = rmgr.BtreeSplit(0, 4, 4, 0, False, b"", itup(40, (0, 0)), right_area([itup(40)]))
    _fails(leaf([10]), _split_raw(body), "split's first right item 4 is beyond the page's items", blkno=5,
           kind="SPLIT_R")


def test_split_that_keeps_every_old_item_on_the_left() -> None:
    # the new item is the first right item: firstrightoff = maxoff + 1
    body = rmgr.BtreeSplit(0, 4, 4, 0, False, b"", itup(40, (0, 0)), right_area([itup(40)]))
    left = redo(leaf([10, 20, 30]), _split_raw(body), blkno=5)
    assert [key_of(t) for t in items(left)] == [40, 10, 20, 30]


def test_split_of_an_internal_page_leaves_it_internal() -> None:
    page = leaf([10, 20, 30, 40], flags=0)
    body = rmgr.BtreeSplit(1, 3, 2, 0, True, itup(15), itup(30, (0, 0)), right_area([itup(30), itup(40)]))
    raw = record(body, [block(5, block_id=0), block(9, block_id=1, will_init=True), block(4, block_id=3)])
    left = redo(page, raw, blkno=5)
    assert BTPageOpaque.unpack(left.data) == BTPageOpaque(0, 9, 0, BTP_INCOMPLETE_SPLIT, 0)
    assert [key_of(t) for t in items(left)] == [30, 10, 15, 20]


def test_split_with_a_posting_list_split_keeps_the_items_after_it_on_the_left() -> None:
    # the posting list is item 2 of 5 and items 3 and 4 stay left too
    posting = form_posting(itup(20), [(1, 1), (1, 5), (1, 9)])
    orig = Page.initialized(16)
    BTPageOpaque(0, 0, 0, BTP_LEAF, 0).write(orig)
    for t in (itup(10), posting, itup(30, (1, 2)), itup(40, (1, 3)), itup(50, (1, 4))):
        orig.add_item(t)
    orig.lsn = OLD_LSN
    body = rmgr.BtreeSplit(0, 5, 3, 2, True, itup(20, (1, 6)), itup(50, (0, 0)), right_area([itup(50, (1, 4))]))
    left = redo(orig, _split_raw(body), blkno=5)
    got = items(left)
    assert [key_of(t) for t in got] == [50, 10, 20, 20, 30, 40]
    assert heap_tids(got[2]) == [(1, 1), (1, 5), (1, 6)] and got[3] == itup(20, (1, 9))


@pytest.mark.parametrize(("newitemoff", "message"), [
    (1, "posting list split at item 0, which is not on the page"),
    (5, "posting list split at item 4, which is not on the page"),
])
def test_split_with_a_posting_list_split_outside_the_page_is_an_error(newitemoff: int, message: str) -> None:
    body = rmgr.BtreeSplit(0, 3, newitemoff, 2, True, itup(20, (1, 6)), itup(30, (0, 0)), right_area([itup(30)]))
    _fails(leaf([10, 20, 30]), _split_raw(body), message, blkno=5, kind="SPLIT_L")


def test_split_with_a_posting_list_split_at_the_first_item() -> None:
    posting = form_posting(itup(20), [(1, 1), (1, 5), (1, 9)])
    orig = Page.initialized(16)
    BTPageOpaque(0, 0, 0, BTP_LEAF, 0).write(orig)
    for t in (posting, itup(30, (1, 2)), itup(40, (1, 3))):
        orig.add_item(t)
    orig.lsn = OLD_LSN
    body = rmgr.BtreeSplit(0, 3, 2, 2, True, itup(20, (1, 6)), itup(40, (0, 0)), right_area([itup(40, (1, 3))]))
    got = items(redo(orig, _split_raw(body), blkno=5))
    assert heap_tids(got[1]) == [(1, 1), (1, 5), (1, 6)] and got[2] == itup(20, (1, 9))


# --------------------------------------------------------------------------- NEWROOT


def test_newroot_of_level_0_ignores_logged_tuples() -> None:
    # btree_xlog_newroot restores the logged tuples only for an internal root (level > 0)
    md = rmgr.BtreeMetadata(4, 7, 0, 7, 0, 0, False)
    body = rmgr.BtreeNewroot(7, 0, right_area([itup(10)]), md)
    raw = record(body, [block(7, block_id=0, will_init=True), block(0, block_id=2, will_init=True)])
    root = redo(None, raw, blkno=7)
    assert root.max_offset() == 0
    assert BTPageOpaque.unpack(root.data) == BTPageOpaque(0, 0, 0, BTP_ROOT | BTP_LEAF, 0)


def test_newroot_of_level_1_clears_the_childs_incomplete_split() -> None:
    md = rmgr.BtreeMetadata(4, 7, 1, 7, 1, 0, False)
    body = rmgr.BtreeNewroot(7, 1, right_area([itup(10), itup(20)]), md)
    raw = record(body, [block(7, block_id=0, will_init=True), block(3, block_id=1),
                        block(0, block_id=2, will_init=True)])
    child = leaf([1, 2], nxt=8, flags=BTP_LEAF | BTP_INCOMPLETE_SPLIT)
    out = redo(child, raw, blkno=3)
    assert BTPageOpaque.unpack(out.data).flags == BTP_LEAF and out.lsn == LSN


def test_newroot_whose_tuples_do_not_fit_is_an_error() -> None:
    md = rmgr.BtreeMetadata(4, 7, 1, 7, 1, 0, False)
    body = rmgr.BtreeNewroot(7, 1, right_area([itup(k) for k in range(600)]), md)
    raw = record(body, [block(7, block_id=0, will_init=True), block(3, block_id=1),
                        block(0, block_id=2, will_init=True)])
    _fails(None, raw, "_bt_restore_page: cannot add item to page", blkno=7, kind="NEWROOT")


# --------------------------------------------------------------------------- DEDUP


def test_dedup_without_intervals_or_an_image_is_an_error() -> None:
    raw = record(rmgr.BtreeDedup(1, None), [block(0, block_id=0)])
    _fails(leaf([10, 10]), raw, "btree DEDUP carries no intervals and no image to apply", kind="DEDUP")


def test_dedup_on_a_page_without_data_items_is_an_error() -> None:
    raw = record(rmgr.BtreeDedup(0, ()), [block(0, block_id=0)])
    _fails(leaf([], nxt=4, hikey=99), raw, "btree DEDUP on a page without data items", kind="DEDUP")


def test_dedup_of_a_page_with_one_data_item_keeps_it() -> None:
    page = leaf([10])
    out = redo(page, record(rmgr.BtreeDedup(0, ()), [block(0, block_id=0)]))
    expected = leaf([10])
    expected.lsn = LSN
    assert out.to_bytes() == expected.to_bytes()


# --------------------------------------------------------------------------- VACUUM, DELETE, page deletion


@pytest.mark.parametrize(("v", "kind"), [(17, "VACUUM"), (16, "DELETE")])
def test_vacuum_or_delete_without_items_or_an_image_is_an_error_naming_the_record(v: int, kind: str) -> None:
    body = (rmgr.BtreeVacuum(2, 0, items_logged=False) if kind == "VACUUM"
            else rmgr.BtreeDelete(99, 2, 0, items_logged=False, is_catalog_rel=True))
    raw = record(body, [block(0, block_id=0)], v=v)
    with pytest.raises(RedoError, match=f"^btree {kind} carries no items and no image to apply$"):
        redo(leaf([1, 2]), raw, v=v)


def test_vacuum_of_an_item_beyond_the_page_is_the_pages_error() -> None:
    page = leaf([10, 20])
    with pytest.raises(Exception) as expected:  # what PageIndexMultiDelete says (test_pg_page.py)
        Page(page.to_bytes()).index_multi_delete((1, 5))
    raw = record(rmgr.BtreeVacuum(2, 0, (1, 5)), [block(0, block_id=0)])
    with pytest.raises(RedoError) as err:
        redo(page, raw)
    assert str(err.value) == str(expected.value) and err.value.context is not None


def test_half_dead_marking_needs_a_next_item_in_the_parent() -> None:
    # btree_xlog_mark_page_halfdead moves the downlink of the item after poffset into poffset
    parent = Page.initialized(16)
    BTPageOpaque(0, 0, 1, 0, 0).write(parent)
    for child in (3, 4):
        parent.add_item(itup(child * 10, (child, 0)))
    parent.lsn = OLD_LSN
    body = rmgr.BtreeMarkPageHalfdead(poffset=2, leafblk=4, leftblk=3, rightblk=5, topparent=0xFFFFFFFF)
    raw = record(body, [block(4, block_id=0, will_init=True), block(8, block_id=1)])
    _fails(parent, raw, "half-dead marking: parent item 2 has no next item on the page", blkno=8,
           kind="MARK_PAGE_HALFDEAD")


def test_a_metapage_record_without_its_metadata_is_an_error_naming_the_block() -> None:
    body = rmgr.BtreeInsert(1, itup(30), 0x20, None)  # INSERT_META whose metadata an image replaced
    raw = record(body, [block(4, block_id=0), block(3, block_id=1), block(0, block_id=2, will_init=True)])
    _fails(None, raw, "btree metapage block 2 carries no metadata", kind="INSERT_META")


def test_half_dead_marking_of_a_parent_item_too_short_for_a_downlink_is_an_error() -> None:
    parent = Page.initialized(16)
    BTPageOpaque(0, 0, 1, 0, 0).write(parent)
    parent.add_item(itup(30, (3, 0)))
    parent.add_item(b"\x00\x00\x04")
    parent.lsn = OLD_LSN
    body = rmgr.BtreeMarkPageHalfdead(poffset=1, leafblk=4, leftblk=3, rightblk=5, topparent=0xFFFFFFFF)
    raw = record(body, [block(4, block_id=0, will_init=True), block(8, block_id=1)])
    _fails(parent, raw, "index tuple is 3 bytes, shorter than its 8-byte header", blkno=8, kind="MARK_PAGE_HALFDEAD")


def test_insert_onto_a_never_initialized_page_is_the_pages_error() -> None:
    raw = record(rmgr.BtreeInsert(1, itup(30)), [block(0, block_id=0)])
    _fails(None, raw, r"corrupted page pointers: lower = 0, upper = 0, special = 0", kind="INSERT_LEAF")


def test_split_whose_right_page_data_is_not_tuples_is_an_error() -> None:
    body = rmgr.BtreeSplit(0, 2, 2, 0, False, b"", itup(0, (0, 0)), b"\x01\x02\x03")
    with pytest.raises(RedoError, match=r"^_bt_restore_page: .+") as err:
        redo(None, _split_raw(body), blkno=9)
    assert err.value.context is not None


def test_split_resets_the_left_pages_cycle_id() -> None:
    # btree_xlog_split: lopaque->btpo_cycleid = 0 (the right page's is 0 in vanilla too)
    body = rmgr.BtreeSplit(0, 3, 3, 0, False, b"", itup(30, (0, 0)), right_area([itup(30)]))
    left = redo(leaf([10, 20, 30], cycleid=7), _split_raw(body), blkno=5)
    assert BTPageOpaque.unpack(left.data) == BTPageOpaque(0, 9, 0, BTP_INCOMPLETE_SPLIT | BTP_LEAF, 0)


def _posting_page(keys_before: list[int]) -> Page:
    orig = Page.initialized(16)
    BTPageOpaque(0, 0, 0, BTP_LEAF, 0).write(orig)
    for k in keys_before:
        orig.add_item(itup(k))
    orig.add_item(form_posting(itup(20), [(1, 1), (1, 5), (1, 9)]))
    orig.lsn = OLD_LSN
    return orig


def test_split_with_a_posting_list_split_at_the_last_item_of_the_page() -> None:
    # the posting list is item 2 of 2; every old item stays left and the new item follows it
    body = rmgr.BtreeSplit(0, 3, 3, 2, True, itup(20, (1, 6)), itup(30, (0, 0)), right_area([itup(30)]))
    got = items(redo(_posting_page([10]), _split_raw(body), blkno=5))
    assert heap_tids(got[2]) == [(1, 1), (1, 5), (1, 6)] and got[3] == itup(20, (1, 9))


def test_split_with_a_posting_list_split_of_an_item_that_is_no_posting_list_is_an_error() -> None:
    body = rmgr.BtreeSplit(0, 3, 2, 2, True, itup(10, (1, 6)), itup(30, (0, 0)), right_area([itup(30)]))
    with pytest.raises(RedoError) as err:
        redo(leaf([10, 20, 30]), _split_raw(body), blkno=5)
    assert "posting" in str(err.value) and " for Btree/SPLIT_L: " in (err.value.context or "")


def test_split_whose_rewritten_posting_list_does_not_fit_is_an_error() -> None:
    # the 8096-byte high key and item 1 fit (8120 of 8152 bytes), the 32-byte posting list does not
    body = rmgr.BtreeSplit(0, 3, 3, 2, True, itup(20, (1, 6)), _big(30, 8096), right_area([itup(30)]))
    _fails(_posting_page([10]), _split_raw(body), "failed to add new posting list item to left page after split",
           blkno=5, kind="SPLIT_L")


@pytest.mark.parametrize("cycleid", [0, 0xFF7F])  # MAX_BT_CYCLE_ID is 0xFF7F
@pytest.mark.parametrize("compression", ["none", "pglz"])
def test_neon_split_right_page_takes_any_cycle_id_of_the_left_image(cycleid: int, compression: str) -> None:
    orig = leaf([10, 20, 30, 40, 50, 60], cycleid=cycleid)
    image = xr.ImageRef.from_page(orig.to_bytes(), 17, compression=compression,
                                  force_compression=compression != "none")
    _o, raw, _right, _h = _split(False, left_image=image)
    assert BTPageOpaque.unpack(redo(None, raw, blkno=9, fl=N).data).cycleid == cycleid
