"""Edges of the hash redo routines that test_pg_redo_hash.py leaves open: the metapage and new
overflow page of ADD_OVFL_PAGE and the metapage of SQUEEZE_PAGE when the record lacks the data
(an image replaced it elsewhere, and none applies here), and a first free bit of 0. Messages are
the model's documented refusals; the metapage field follows hash_xlog_add_ovfl_page and
hash_xlog_squeeze_page."""

from __future__ import annotations

import pytest
from test_pg_redo_hash import blk, hash_tuple, meta, rec, redo

from pytest_walredo.pg import rmgr
from pytest_walredo.pg.hash_page import HashMeta
from pytest_walredo.pg.redo import RedoError


def test_add_ovfl_page_without_the_bucket_number_is_an_error() -> None:
    raw = rec(rmgr.HashAddOvflPage(4096, True, None, 37, 38), [blk(9, 0, will_init=True), blk(5, 1), blk(4, 2),
                                                               blk(0, 4)])
    with pytest.raises(RedoError, match=r"^hash ADD_OVFL_PAGE carries no bucket number and no image to apply$"):
        redo(None, raw, 9)


@pytest.mark.parametrize("kind", ["ADD_OVFL_PAGE", "SQUEEZE_PAGE"])
def test_a_metapage_change_without_firstfree_is_an_error(kind: str) -> None:
    if kind == "ADD_OVFL_PAGE":
        raw = rec(rmgr.HashAddOvflPage(4096, True, 7, 37, None), [blk(9, 0, will_init=True), blk(5, 1), blk(4, 2),
                                                                  blk(0, 4)])
    else:
        body = rmgr.HashSqueezePage(6, 9, 1, True, False, (2,), (hash_tuple(15, 1, 1),), 33, None)
        raw = rec(body, [blk(1, 1), blk(8, 2), blk(6, 3), blk(9, 4), blk(2, 5), blk(0, 6)])
    with pytest.raises(RedoError, match=f"^hash {kind} carries no firstfree and no image to apply$"):
        redo(meta(), raw, 0)


def test_add_ovfl_page_sets_a_first_free_bit_of_zero() -> None:
    m = meta()
    HashMeta.set(m, "firstfree", 99)
    raw = rec(rmgr.HashAddOvflPage(4096, True, 7, 37, 0), [blk(9, 0, will_init=True), blk(5, 1), blk(4, 2),
                                                           blk(0, 4)])
    assert HashMeta.get(redo(m, raw, 0).data, "firstfree") == 0


def test_squeeze_page_sets_a_first_free_bit_of_zero() -> None:
    m = meta()
    HashMeta.set(m, "firstfree", 99)
    body = rmgr.HashSqueezePage(6, 9, 1, True, False, (2,), (hash_tuple(15, 1, 1),), 33, 0)
    raw = rec(body, [blk(1, 1), blk(8, 2), blk(6, 3), blk(9, 4), blk(2, 5), blk(0, 6)])
    assert HashMeta.get(redo(m, raw, 0).data, "firstfree") == 0
