"""Edges of the GIN redo routines that test_pg_redo_gin.py leaves open: index tuples whose
logged size disagrees with the record's data, offsets at the ends of a page, records whose
block data an image replaced (and no image applies), and the pending list's first tuple on an
empty tail page. Expected pages follow ginxlog.c (ginRedoInsertEntry, ginRedoInsertData,
ginRedoUpdateMetapage); the messages are the model's documented refusals."""

from __future__ import annotations

import struct

import pytest
from test_pg_redo_gin import META, OLD_LSN, _entry, _internal, blk, leaf_page, redo, tup

from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.gin_page import (
    GIN_LIST,
    INVALID_BLOCK,
    GinOpaque,
    PostingItem,
    gin_init_page,
    posting_items,
)
from pytest_walredo.pg.gin_posting import compress_posting_list
from pytest_walredo.pg.page import LP_UNUSED, PD_HAS_FREE_LINES, ItemId, Page
from pytest_walredo.pg.redo import RedoError
from pytest_walredo.pg.rmgr.gin import (
    EntryInsert,
    GinInsert,
    GinSplit,
    GinVacuumDataLeafPage,
    GinVacuumPage,
    InternalInsert,
)
from pytest_walredo.pg.rmgr.gin_fast import GinInsertListPage, GinUpdateMetaPage
from pytest_walredo.pg.rmgr.ginxlog import LeafActions

REL_ = (1663, 5, 16384)


def _raw_tuple(size_field: int, length: int) -> bytes:
    """``length`` bytes whose t_info claims ``size_field`` bytes (TID (1,1))."""
    return (struct.pack("<HHHH", 0, 1, 1, size_field) + bytes(max(length - 8, 0)))[:length]


def _entry_insert(t: bytes, offset: int = 2, page: Page | None = None) -> Page:
    page = page if page is not None else _entry([tup(b"a")])
    return redo(page, GinInsert(False, True, EntryInsert(offset, False, t)), [blk(0)])


def _fails(message: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RedoError, match=f"^{message}$") as err:
        fn(*args)
    assert err.value.context is not None and " for Gin/" in err.value.context


# --------------------------------------------------------------------------- tuple sizes


def test_a_tuple_of_just_its_header_is_added() -> None:
    out = redo(None, GinInsertListPage(INVALID_BLOCK, 2, tup(b"a") + _raw_tuple(8, 8)), [blk(0, will_init=True)])
    assert [out.item(1), out.item(2)] == [tup(b"a"), _raw_tuple(8, 8)]


@pytest.mark.parametrize("tail", [1, 7])
def test_data_that_ends_inside_a_tuple_header_is_an_error(tail: int) -> None:
    # a list page's tuples, the second cut short (an entry insert's parser refuses this itself)
    _fails("GIN record data ends inside an index tuple header at byte 16", redo, None,
           GinInsertListPage(INVALID_BLOCK, 2, tup(b"a") + _raw_tuple(8, tail)), [blk(0, will_init=True)])


@pytest.mark.parametrize(("size", "length", "has"), [(4, 8, 8), (7, 8, 8), (24, 16, 16)])
def test_a_tuple_whose_size_disagrees_with_the_data_is_an_error(size: int, length: int, has: int) -> None:
    _fails(f"GIN index tuple at byte 0 claims {size} bytes; the data has {has}", _entry_insert,
           _raw_tuple(size, length))


def test_bytes_after_the_tuple_are_not_added() -> None:
    # ginRedoInsertEntry adds IndexTupleSize(itup) bytes
    out = _entry_insert(tup(b"b") + b"\xee" * 8)
    assert out.item(2) == tup(b"b")


def test_the_second_pending_tuple_is_checked_at_its_own_offset() -> None:
    tail = _entry([], GIN_LIST)
    body = GinUpdateMetaPage(REL_, META, INVALID_BLOCK, INVALID_BLOCK, 2, tup(b"b") + _raw_tuple(24, 16))
    _fails("GIN index tuple at byte 16 claims 24 bytes; the data has 16", redo, tail, body,
           [blk(0, 0, will_init=True), blk(1, 7)])


# --------------------------------------------------------------------------- offsets


def test_entry_insert_past_the_end_of_the_page_fails_to_add_the_item() -> None:
    _fails("failed to add item to index page in 1663/5/16384", _entry_insert, tup(b"b"), 3)


def test_entry_downlink_update_at_the_first_item() -> None:
    page = _entry([tup(b"a", (3, 0)), tup(b"z", (4, 0))], flags=0)
    out = redo(page, GinInsert(False, False, EntryInsert(1, False, tup(b"0", (3, 0))), 3, 50),
               [blk(0), blk(1, 3)])
    assert [out.item(i) for i in (1, 2, 3)] == [tup(b"0", (3, 0)), tup(b"a", (50, 0)), tup(b"z", (4, 0))]


def test_entry_downlink_update_of_an_item_not_on_the_page_is_an_error() -> None:
    page = _entry([tup(b"a", (3, 0))], flags=0)
    _fails("GIN INSERT downlink update at item 2, which is not on the page", redo, page,
           GinInsert(False, False, EntryInsert(2, False, tup(b"m", (4, 0))), 4, 50), [blk(0), blk(1, 4)])


@pytest.mark.parametrize(("length", "ok"), [(6, True), (4, False)])
def test_entry_downlink_update_needs_an_item_long_enough_for_a_tid(length: int, ok: bool) -> None:
    page = Page()
    gin_init_page(page, 0)
    page.add_item(struct.pack("<HHH", 0, 3, 0)[:length])
    page.lsn = OLD_LSN
    body = GinInsert(False, False, EntryInsert(1, False, tup(b"m", (4, 0))), 4, 50)
    if ok:
        out = redo(page, body, [blk(0), blk(1, 4)])
        assert out.item(2) == struct.pack("<HHH", 0, 50, 0)  # the downlink now names block 50
    else:
        _fails("GIN INSERT downlink update: item 1 is too short for a TID", redo, page, body, [blk(0), blk(1, 4)])


@pytest.mark.parametrize("offset", [1, 3])
def test_internal_data_insert_at_either_end(offset: int) -> None:
    page = _internal([11, 12, 13])
    body = GinInsert(True, False, InternalInsert(offset, PostingItem(20, 15, 3)), 20, 40)
    out = redo(page, body, [blk(0), blk(1, 20)])
    items = posting_items(out)
    assert items[offset - 1] == PostingItem(20, 15, 3) and items[offset].child == 40


@pytest.mark.parametrize("offset", [0, 4])
def test_internal_data_insert_outside_the_page_is_an_error(offset: int) -> None:
    body = GinInsert(True, False, InternalInsert(offset, PostingItem(20, 15, 3)), 20, 40)
    _fails(f"GIN INSERT updates posting item {offset} of a page with 3", redo, _internal([11, 12, 13]), body,
           [blk(0), blk(1, 20)])


# --------------------------------------------------------------------------- data an image replaced


def test_insert_without_its_data_or_an_image_is_an_error() -> None:
    _fails("Gin INSERT carries no data and no image to apply", redo, _entry([tup(b"a")]),
           GinInsert(False, True, None), [blk(0)])


def test_vacuum_data_leaf_without_its_data_or_an_image_is_an_error() -> None:
    _fails("Gin VACUUM_DATA_LEAF_PAGE carries no data and no image to apply", redo, _entry([tup(b"a")]),
           GinVacuumDataLeafPage(None), [blk(0)])


def test_update_meta_without_its_tuples_or_an_image_is_an_error() -> None:
    body = GinUpdateMetaPage(REL_, META, INVALID_BLOCK, INVALID_BLOCK, 1, None)
    _fails("Gin UPDATE_META_PAGE carries no tuples and no image to apply", redo, _entry([], GIN_LIST), body,
           [blk(0, 0, will_init=True), blk(1, 7)])


# --------------------------------------------------------------------------- pending list


def test_update_meta_puts_one_tuple_first_on_an_empty_tail() -> None:
    body = GinUpdateMetaPage(REL_, META, INVALID_BLOCK, INVALID_BLOCK, 1, tup(b"b"))
    out = redo(_entry([], GIN_LIST), body, [blk(0, 0, will_init=True), blk(1, 7)])
    assert out.max_offset() == 1 and out.item(1) == tup(b"b")
    assert GinOpaque.unpack(out.data).maxoff == 1


def test_insert_listpage_whose_tuples_do_not_fit_is_an_error() -> None:
    big = _raw_tuple(4096, 4096)
    _fails("failed to add item to index page", redo, None, GinInsertListPage(INVALID_BLOCK, 2, big + big),
           [blk(0, will_init=True)])



# --------------------------------------------------------------------------- data leaf actions, splits


def test_a_data_leaf_insert_of_no_actions_changes_only_pd_lsn() -> None:
    page = leaf_page([compress_posting_list([(1, 1), (1, 4)])[0]])
    out = redo(page, GinInsert(True, True, LeafActions.decode(struct.pack("<H", 0), "test")), [blk(0)])
    assert out.data[8:] == page.data[8:] and out.lsn != page.lsn


def test_a_root_split_needs_the_image_of_the_root_too() -> None:
    left = _entry([tup(b"a")])
    image = xr.ImageRef.from_page(left.to_bytes(), 15)
    body = GinSplit(REL_, INVALID_BLOCK, 0, 0, 2 | 4)  # ISLEAF | ISROOT
    blocks = [blk(0, 7, image=image), blk(1, 8, image=image), blk(2, 0)]
    _fails("GIN split record did not contain a full-page image of root page",
           lambda: redo(_entry([tup(b"r")]), body, blocks, blkno=0))


def test_vacuum_page_without_its_image_names_the_failure() -> None:
    with pytest.raises(RedoError, match=r"^replay of gin entry tree page vacuum did not restore the page$"):
        redo(_entry([tup(b"a")]), GinVacuumPage(), [blk(0)])


def test_vacuum_data_leaf_with_an_unknown_action_is_postgres_error() -> None:
    page = leaf_page([compress_posting_list([(1, 1)])[0]])
    leaf = LeafActions.decode(struct.pack("<HBB", 2, 0, 7) + b"junk", "test")
    _fails("unexpected GIN leaf action: 7", redo, page, GinVacuumDataLeafPage(leaf), [blk(0)])


def test_update_meta_appends_after_the_last_item_even_with_a_free_line_pointer() -> None:
    # ginRedoUpdateMetapage adds each tuple at an explicit offset (maxoff + 1)
    tail = _entry([tup(b"a"), tup(b"b")], GIN_LIST)
    tail.set_item_id(1, ItemId(0, LP_UNUSED, 0))
    tail.set_flag(PD_HAS_FREE_LINES)
    body = GinUpdateMetaPage(REL_, META, INVALID_BLOCK, INVALID_BLOCK, 1, tup(b"c"))
    out = redo(tail, body, [blk(0, 0, will_init=True), blk(1, 7)])
    assert out.max_offset() == 3 and out.item(3) == tup(b"c") and out.item_id(1).flags == LP_UNUSED
