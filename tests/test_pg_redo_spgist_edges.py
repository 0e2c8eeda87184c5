"""Edges of the SP-GiST redo routines that test_pg_redo_spgist.py leaves open: PICKSPLIT onto a
new source page, during an index build, and without a destination page; ADD_NODE onto a new
page that is also the parent, and without its old block; VACUUM_REDIRECT dropping exactly the
last item; an error of the SP-GiST page code reported with its message. Expected pages follow
spgxlog.c (spgRedoPickSplit, spgRedoAddNode, spgRedoVacuumRedirect)."""

from __future__ import annotations

import pytest
from test_pg_redo_spgist import (
    PLACEHOLDER,
    XID,
    _add_leaf,
    _add_node,
    _pick,
    block,
    inner,
    items,
    leaf,
    page_of,
    redirect,
    redo,
)

from pytest_walredo.pg import rmgr
from pytest_walredo.pg.redo import RedoError
from pytest_walredo.pg.spgist_page import SPGIST_DEAD, SPGIST_LEAF, SPGIST_NULLS, SpgOpaque, dead_tuple


@pytest.mark.parametrize("nulls", [False, True])
def test_picksplit_onto_a_new_source_page(nulls: bool) -> None:
    # init_src: the source is initialized (SpGistInitBuffer, leaf [+ nulls]) and gets the
    # tuples whose selector is 0; nothing is deleted from it
    body = _pick(init_src=True, ndelete=0, todelete=(), toinsert=(1, 2, 1), stores_nulls=nulls)
    blocks = [block(3, 0, will_init=True), block(11, 1, will_init=True), block(20, 2)]
    src = redo(page_of([leaf(9)]), body, blocks)
    assert items(src) == [leaf(5), leaf(6)]
    assert SpgOpaque.read(src) == SpgOpaque(SPGIST_LEAF | (SPGIST_NULLS if nulls else 0), 0, 0)


def test_picksplit_during_an_index_build_leaves_placeholders() -> None:
    # is_build: the moved tuples become PLACEHOLDERs, not redirects
    body = _pick(is_build=True, toinsert=(3, 4, 1))
    blocks = [block(3, 0), block(11, 1, will_init=True), block(20, 2)]
    src = redo(page_of([leaf(1), leaf(2)]), body, blocks)
    assert items(src) == [PLACEHOLDER, PLACEHOLDER, leaf(5), leaf(6)]
    assert SpgOpaque.read(src) == SpgOpaque(SPGIST_LEAF, 0, 2)


def test_picksplit_without_a_destination_page_keeps_every_leaf_on_the_source() -> None:
    body = _pick(select=bytes([0, 0, 0]), toinsert=(2, 3, 4))
    blocks = [block(3, 0), block(20, 2)]
    src = redo(page_of([leaf(1), leaf(2)]), body, blocks)
    assert items(src) == [redirect(20, 2), leaf(5), leaf(6), leaf(7)]
    innerp = redo(page_of([inner([(1, 1)])], flags=0), body, blocks, blkno=20)
    assert items(innerp) == [inner([(1, 1)]), inner([(3, 1), (11, 1)])]


@pytest.mark.parametrize("nulls", [False, True])
def test_picksplit_onto_a_new_destination_page(nulls: bool) -> None:
    body = _pick(stores_nulls=nulls)
    blocks = [block(3, 0), block(11, 1, will_init=True), block(20, 2)]
    dest = redo(page_of([leaf(9)]), body, blocks, blkno=11)
    assert items(dest) == [leaf(7)]
    assert SpgOpaque.read(dest).flags == SPGIST_LEAF | (SPGIST_NULLS if nulls else 0)


def test_add_node_onto_a_new_page_that_holds_the_parent() -> None:
    # new_page: block 1 is initialized (inner, flags 0); parent_blk 1: the parent's downlink to
    # the moved tuple is on that page
    grown = inner([(2, 2), (5, 5)])
    body = rmgr.SpgAddNode(2, 1, True, 1, 1, 0, XID, False, grown)
    blocks = [block(3, 0), block(8, 1, will_init=True)]
    new = redo(page_of([inner([(7, 7)])]), body, blocks, blkno=8)
    assert items(new) == [inner([(8, 1), (5, 5)])]
    assert SpgOpaque.read(new) == SpgOpaque(0, 0, 0)


def test_add_node_that_moves_the_tuple_needs_the_old_block() -> None:
    body = _add_node(inner([(2, 2), (5, 5)]), new_off=1, parent_blk=-1)
    with pytest.raises(RedoError, match=r"^failed to locate backup block with ID 0 in WAL record$"):
        redo(page_of([], flags=0), body, [block(8, 1)], blkno=8)


def test_vacuum_redirect_drops_exactly_the_last_item() -> None:
    before = page_of([inner([(1, 1)]), redirect(6, 6)], flags=0, nred=1)
    got = redo(before, rmgr.SpgVacuumRedirect(2, 55, (2,), False), [block(3, 0)])
    assert items(got) == [inner([(1, 1)])]
    assert SpgOpaque.read(got) == SpgOpaque(0, 0, 0)


def test_an_error_of_the_page_code_is_reported_with_its_message_and_context() -> None:
    before = page_of([leaf(1), leaf(2)])
    with pytest.raises(RedoError) as err:
        redo(before, _add_leaf(2, 0, leaf(3)), [block(3, 0)])
    assert str(err.value) == "SPGiST tuple to be replaced is not a placeholder"
    assert err.value.context is not None and " for SPGist/ADD_LEAF: " in err.value.context


def test_move_leafs_onto_an_existing_page_keeps_its_items() -> None:
    body = rmgr.SpgMoveLeafs(1, False, False, False, 2, 1, XID, False, (2,), (2, 3), (leaf(2), leaf(7)))
    blocks = [block(3, 0), block(9, 1), block(20, 2)]
    dst = redo(page_of([leaf(5)]), body, blocks, blkno=9)
    assert items(dst) == [leaf(5), leaf(2), leaf(7)]


def test_move_leafs_onto_a_new_page_of_nulls() -> None:
    body = rmgr.SpgMoveLeafs(1, True, False, True, 2, 1, XID, False, (2,), (1, 2), (leaf(2), leaf(7)))
    blocks = [block(3, 0), block(9, 1, will_init=True), block(20, 2)]
    dst = redo(None, body, blocks, blkno=9)
    assert items(dst) == [leaf(2), leaf(7)] and SpgOpaque.read(dst).flags == SPGIST_LEAF | SPGIST_NULLS


def test_picksplit_onto_an_existing_destination_page_keeps_its_items() -> None:
    body = _pick(init_dest=False, toinsert=(2, 3, 2))
    blocks = [block(3, 0), block(11, 1), block(20, 2)]
    dest = redo(page_of([leaf(9)]), body, blocks, blkno=11)
    assert items(dest) == [leaf(9), leaf(7)]


def test_picksplit_onto_a_new_inner_page_of_nulls() -> None:
    body = _pick(init_inner=True, off_inner=1, stores_nulls=True)
    blocks = [block(3, 0), block(11, 1, will_init=True), block(20, 2, will_init=True)]
    innerp = redo(None, body, blocks, blkno=20)
    assert items(innerp) == [inner([(3, 1), (11, 1)])] and SpgOpaque.read(innerp).flags == SPGIST_NULLS


def test_vacuum_leaf_kills_every_dead_item() -> None:
    body = rmgr.SpgVacuumLeaf(XID, False, (1, 3), (), (), (), (), ())
    got = redo(page_of([leaf(1), leaf(2), leaf(3)]), body, [block(3, 0)])
    assert items(got) == [dead_tuple(SPGIST_DEAD), leaf(2), dead_tuple(SPGIST_DEAD)]
