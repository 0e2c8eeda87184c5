"""``triage.inspect`` reads index tuples and btree special space through the page model."""

from __future__ import annotations

from pytest_walredo.pg.btree_page import (
    BTP_INCOMPLETE_SPLIT,
    BTP_LEAF,
    INDEX_NULL_MASK,
    INDEX_VAR_MASK,
    BTPageOpaque,
    IndexTuple,
    btree_page_init,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.triage.inspect import index_tuple_summary, page_summary


def test_index_tuple_fields_match_the_model() -> None:
    t = IndexTuple(0x12345, 7, 16 | INDEX_VAR_MASK | INDEX_NULL_MASK, b"k" * 8)
    s = index_tuple_summary(t.pack())
    assert s == {"t_tid": [0x12345, 7], "t_info": t.info, "size": 16,
                 "info_flags": ["HAS_VARWIDTH", "HAS_NULLS"], "data_len": 8, "data": (b"k" * 8).hex()}
    assert index_tuple_summary(t.pack()[:7]) == {
        "error": "item is 7 bytes, shorter than an 8-byte index tuple header"}


def test_btree_special_space_matches_the_model() -> None:
    page = Page()
    btree_page_init(page)
    op = BTPageOpaque(prev=3, next=0x10000, level=2, flags=BTP_LEAF | BTP_INCOMPLETE_SPLIT,
                      cycleid=0xFF7F)
    op.write(page)
    s = page_summary(page.to_bytes())
    assert s["kind"] == "btree"
    assert s["special"] == {"btpo_prev": 3, "btpo_next": 0x10000, "btpo_level": 2,
                            "btpo_flags": op.flags, "btpo_flag_names": ["LEAF", "INCOMPLETE_SPLIT"],
                            "btpo_cycleid": 0xFF7F}
    BTPageOpaque(flags=BTP_LEAF, cycleid=0xFF80).write(page)  # a hash page id, not a cycle id
    assert page_summary(page.to_bytes())["kind"] == "hash"
