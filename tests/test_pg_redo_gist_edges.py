"""Edges of the GiST redo routines that test_pg_redo_gist.py leaves open: one deletion without
a replacement, tuples that do not fit, a replacement without its tuple, the opaque data's page
id kept, and an internal split's pages. Expected pages follow gistxlog.c
(gistRedoPageUpdateRecord, gistRedoPageSplitRecord); the messages are PostgreSQL's or the
model's documented refusals."""

from __future__ import annotations

import pytest
from test_pg_redo_gist import LSN, NSN, _split, block, items, page_of, redo, tup

from pytest_walredo.pg import rmgr
from pytest_walredo.pg.gist_page import F_LEAF, F_TUPLES_DELETED, GistOpaque
from pytest_walredo.pg.page import LP_UNUSED, PD_HAS_FREE_LINES, ItemId
from pytest_walredo.pg.redo import RedoError


def test_page_update_deleting_one_item_without_a_replacement() -> None:
    # ntodelete 1 with ntoinsert 0 is a plain deletion (PageIndexMultiDelete), not an overwrite
    after = redo(page_of([tup(1), tup(2), tup(3)]), rmgr.GistPageUpdate(1, 0, (2,), ()), [block(3, 0)])
    assert items(after) == [tup(1), tup(3)]
    assert GistOpaque.read(after).flags == F_LEAF | F_TUPLES_DELETED and after.lsn == LSN


def test_page_update_without_data_or_an_image_names_the_record() -> None:
    with pytest.raises(RedoError, match=r"^GiST PAGE_UPDATE carries no block data and no image to apply$"):
        redo(page_of([tup(1)]), rmgr.GistPageUpdate(0, 1, None, None), [block(3, 0)])


def test_page_update_replacing_an_item_without_its_tuple_is_an_error() -> None:
    with pytest.raises(RedoError, match=r"^GiST PAGE_UPDATE replaces an item but logs no tuple$"):
        redo(page_of([tup(1)]), rmgr.GistPageUpdate(1, 1, (1,), ()), [block(3, 0)])


def test_page_update_whose_replacement_does_not_fit_is_an_error() -> None:
    with pytest.raises(RedoError, match=r"^failed to add item to GiST index page, size 8168 bytes$"):
        redo(page_of([tup(1)]), rmgr.GistPageUpdate(1, 1, (1,), (tup(2, size=8168),)), [block(3, 0)])


def test_page_update_whose_new_tuples_do_not_fit_is_an_error() -> None:
    # gistRedoPageUpdateRecord: elog(ERROR, "failed to add item to GiST index page, size %d bytes")
    new = (tup(2, size=4096), tup(3, size=4096))
    with pytest.raises(RedoError, match=r"^failed to add item to GiST index page, size 4096 bytes$") as err:
        redo(page_of([tup(1)]), rmgr.GistPageUpdate(0, 2, (), new), [block(3, 0)])
    assert err.value.context is not None and " for Gist/PAGE_UPDATE" in err.value.context


def test_changing_the_flags_keeps_the_page_id() -> None:
    page = page_of([tup(1), tup(2)])
    op = GistOpaque.read(page)
    GistOpaque(op.nsn, op.rightlink, op.flags, 0x1234).write(page)
    after = redo(page, rmgr.GistPageUpdate(1, 0, (1,), ()), [block(3, 0)])
    assert GistOpaque.read(after) == GistOpaque(op.nsn, op.rightlink, F_LEAF | F_TUPLES_DELETED, 0x1234)


def test_internal_split_pages_are_not_leaves() -> None:
    body = _split([[tup(5)], [tup(6)]], leaf=False)
    blocks = [block(3, 0), block(20, 1, will_init=True), block(21, 2, will_init=True)]
    last = redo(None, body, blocks, blkno=21)
    assert GistOpaque.read(last) == GistOpaque(NSN, 44, 0)


def test_page_update_appends_after_the_last_item_even_with_a_free_line_pointer() -> None:
    # gistRedoPageUpdateRecord adds each tuple at an explicit offset (maxoff + 1), so an unused
    # line pointer (PD_HAS_FREE_LINES) is not reused
    page = page_of([tup(1), tup(2)])
    page.set_item_id(1, ItemId(0, LP_UNUSED, 0))
    page.set_flag(PD_HAS_FREE_LINES)
    after = redo(page, rmgr.GistPageUpdate(0, 1, (), (tup(3),)), [block(3, 0)])
    assert after.max_offset() == 3 and after.item(3) == tup(3) and after.item_id(1).flags == LP_UNUSED
