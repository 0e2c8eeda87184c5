"""The masking rules (pg/mask) on real PostgreSQL 15 pages: the expected pages of the corpus
shipped with the package, one rmgr at a time. A copy changed only where PostgreSQL's mask
function ignores compares equal; a copy changed anywhere else does not."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.corpus.default import load_shipped
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.mask import RULES, MaskError, mask_page, masked_equal
from pytest_walredo.pg.page import LP_NORMAL, Page

ENTRIES = list(load_shipped(15))


def real_pages(rmgr: str, where: Callable[[Page], bool] = lambda p: True) -> list[tuple[bytes, int]]:
    """(expected page, block number) of shipped entries of ``rmgr`` whose page satisfies ``where``."""
    out = []
    for e in ENTRIES:
        if e.meta.rmgr == rmgr and e.expected is not None and where(Page(e.expected)):
            out.append((e.expected, e.meta.blk))
    assert out, f"the shipped corpus has no {rmgr} page of the wanted shape"
    return out


def lps(page: Page) -> list[tuple[int, int, int, int]]:
    """(offset number, lp_off, lp_flags, lp_len) of each line pointer."""
    out = []
    for i in range(max(0, (page.lower - 24) // 4)):
        (w,) = struct.unpack_from("<I", page.data, 24 + 4 * i)
        out.append((i + 1, w & 0x7FFF, (w >> 15) & 3, w >> 17))
    return out


def common_noise(page: Page) -> None:
    """Change what every rule masks: pd_lsn, pd_checksum."""
    page.lsn = page.lsn + 0x1234
    page.checksum = page.checksum ^ 0x5A5A


def hints_and_free_space(page: Page) -> None:
    """Change pd_prune_xid, the three hint flags and a byte of free space."""
    page.prune_xid = page.prune_xid ^ 0x77
    page.flags = page.flags ^ 0x0007
    if page.upper > page.lower:
        page.data[(page.lower + page.upper) // 2] ^= 0xFF


def special_u16(page: Page, off: int) -> int:
    return int(struct.unpack_from("<H", page.data, page.special + off)[0])


def set_special_u16(page: Page, off: int, value: int) -> None:
    struct.pack_into("<H", page.data, page.special + off, value)


def first_item(page: Page) -> tuple[int, int]:
    """(lp_off, lp_len) of the first item with storage."""
    for _o, off, _f, length in lps(page):
        if length:
            return off, length
    raise AssertionError("no item")


def has_items(p: Page) -> bool:
    return any(length for _n, _o, _f, length in lps(p))


def assert_masked_only(rule: str, page: bytes, blkno: int, noise: Callable[[Page], None],
                       data_at: Callable[[Page], int] | None = None) -> None:
    """``noise`` changes only what ``rule`` masks; a byte of data (the last byte of the first
    item, or ``data_at``) is never masked."""
    changed = Page(page)
    noise(changed)
    assert changed.to_bytes() != page, "the noise changed nothing"
    assert masked_equal(page, changed.to_bytes(), rule, blkno), f"{rule}: a masked change made a difference"
    data = Page(changed.to_bytes())
    if data_at is None:
        off, length = first_item(data)
        data.data[off + length - 1] ^= 0x01
    else:
        data.data[data_at(data)] ^= 0x01
    assert not masked_equal(page, data.to_bytes(), rule, blkno), f"{rule}: a change of item data was masked"


def test_every_rule_is_named_like_pg_waldump_rmgrs() -> None:
    assert set(RULES) == {"Heap", "Heap2", "neon", "Btree", "Hash", "Gin", "Gist", "Sequence", "SPGist",
                          "BRIN", "Generic", "none"}


def test_heap_mask_on_real_heap_pages() -> None:
    def noise(p: Page) -> None:
        common_noise(p)
        hints_and_free_space(p)
        for _o, off, flags, length in lps(p):
            if flags == LP_NORMAL:
                (infomask,) = struct.unpack_from("<H", p.data, off + 20)
                if infomask & 0x0300 != 0x0300:  # xmin not frozen: every HEAP_XACT_MASK bit
                    struct.pack_into("<H", p.data, off + 20, infomask ^ 0xFCF0)  # not 0x0300: that would freeze xmin
                else:
                    struct.pack_into("<H", p.data, off + 20, infomask ^ 0x0C00)
                struct.pack_into("<I", p.data, off + 8, 0xDEADBEEF)  # t_cid
                pad = (length + 7) // 8 * 8
                p.data[off + length:off + pad] = b"\xAA" * (pad - length)

    for rule in ("Heap", "Heap2", "neon"):
        for page, blk in real_pages("Heap", lambda p: any(f == LP_NORMAL for _o, _x, f, _l in lps(p)))[:2]:
            assert_masked_only(rule, page, blk, noise)


def test_heap_mask_keeps_frozen_xmin_status_and_xmax_data() -> None:
    page, blk = real_pages("Heap", lambda p: any(f == LP_NORMAL for _o, _x, f, _l in lps(p)))[0]
    p = Page(page)
    off = next(o for _n, o, f, _l in lps(p) if f == LP_NORMAL)
    (infomask,) = struct.unpack_from("<H", p.data, off + 20)
    frozen = Page(page)
    struct.pack_into("<H", frozen.data, off + 20, infomask | 0x0300)
    other = Page(frozen.to_bytes())
    struct.pack_into("<H", other.data, off + 20, (infomask | 0x0300) ^ 0x0010)  # HEAP_XMAX_KEYSHR_LOCK
    assert not masked_equal(frozen.to_bytes(), other.to_bytes(), "Heap", blk)
    xmax = Page(page)
    struct.pack_into("<I", xmax.data, off + 4, 424242)
    assert not masked_equal(page, xmax.to_bytes(), "Heap", blk)


def test_heap_mask_speculative_ctid_becomes_the_tuple_itself() -> None:
    page, blk = real_pages("Heap", lambda p: any(f == LP_NORMAL for _o, _x, f, _l in lps(p)))[0]
    p = Page(page)
    n, off = next((n, o) for n, o, f, _l in lps(p) if f == LP_NORMAL)
    spec = Page(page)
    struct.pack_into("<HHH", spec.data, off + 12, 7, 9, 0xFFFE)  # a speculative token in t_ctid
    redone = Page(page)
    struct.pack_into("<HHH", redone.data, off + 12, blk >> 16, blk & 0xFFFF, n)
    assert masked_equal(spec.to_bytes(), redone.to_bytes(), "Heap", blk)
    moved = Page(page)
    struct.pack_into("<HHH", moved.data, off + 12, 0xABC, 0x1234, 77)  # an ordinary ctid is data
    assert not masked_equal(page, moved.to_bytes(), "Heap", blk)


def _btree_leaf(p: Page) -> bool:
    return p.special == BLCKSZ - 16 and special_u16(p, 12) & 0x01 and p.lower > 28


def test_btree_mask_on_a_real_leaf() -> None:
    def noise(p: Page) -> None:
        common_noise(p)
        hints_and_free_space(p)
        for n, off, flags, length in lps(p):
            if flags == LP_NORMAL:
                struct.pack_into("<I", p.data, 24 + 4 * (n - 1), off | 3 << 15 | length << 17)  # LP_DEAD
        set_special_u16(p, 12, special_u16(p, 12) | 0x40 | 0x20)  # HAS_GARBAGE, SPLIT_END
        set_special_u16(p, 14, 0x1234)  # btpo_cycleid

    page, blk = real_pages("Btree", _btree_leaf)[0]
    assert_masked_only("Btree", page, blk, noise)
    other = Page(page)
    set_special_u16(other, 12, special_u16(other, 12) ^ 0x02)  # BTP_ROOT is not a hint
    assert not masked_equal(page, other.to_bytes(), "Btree", blk)


def test_btree_mask_keeps_line_pointer_flags_of_internal_pages() -> None:
    page, blk = real_pages("Btree", lambda p: p.special == BLCKSZ - 16 and not special_u16(p, 12) & 0x09
                           and p.lower > 28)[0]
    p = Page(page)
    n, off, _f, length = next(x for x in lps(p) if x[2] == LP_NORMAL)
    struct.pack_into("<I", p.data, 24 + 4 * (n - 1), off | 3 << 15 | length << 17)
    assert not masked_equal(page, p.to_bytes(), "Btree", blk)


def test_hash_mask_on_a_real_bucket_page() -> None:
    def noise(p: Page) -> None:
        common_noise(p)
        hints_and_free_space(p)
        for n, off, flags, length in lps(p):
            if flags == LP_NORMAL:
                struct.pack_into("<I", p.data, 24 + 4 * (n - 1), off | 3 << 15 | length << 17)
        set_special_u16(p, 12, special_u16(p, 12) | 0x80)  # LH_PAGE_HAS_DEAD_TUPLES

    page, blk = real_pages("Hash", lambda p: p.special == BLCKSZ - 16 and special_u16(p, 12) & 0x0F in (1, 2)
                           and p.lower > 28)[0]
    assert_masked_only("Hash", page, blk, noise)


def test_hash_mask_ignores_an_unused_page_entirely() -> None:
    page, blk = real_pages("Hash", lambda p: p.special == BLCKSZ - 16 and special_u16(p, 12) & 0x0F in (1, 2)
                           and p.lower > 28)[0]
    a, b = Page(page), Page(page)
    for p in (a, b):
        set_special_u16(p, 12, 0)  # LH_UNUSED_PAGE
    b.data[200] ^= 0xFF  # a line pointer
    off, _len = first_item(b)
    b.data[off] ^= 0xFF
    assert masked_equal(a.to_bytes(), b.to_bytes(), "Hash", blk)


def test_gin_mask_on_a_real_page_and_deleted_pages() -> None:
    page, blk = real_pages("Gin", lambda p: p.special == BLCKSZ - 8 and p.lower > 28)[0]

    def noise(p: Page) -> None:
        common_noise(p)
        hints_and_free_space(p)

    assert_masked_only("Gin", page, blk, noise)
    a, b = Page(page), Page(page)
    for p in (a, b):
        set_special_u16(p, 6, special_u16(p, 6) | 0x04)  # GIN_DELETED: content ignored
    off, _len = first_item(b)
    b.data[off] ^= 0xFF
    assert masked_equal(a.to_bytes(), b.to_bytes(), "Gin", blk)


def test_gist_mask_on_a_real_leaf() -> None:
    def noise(p: Page) -> None:
        common_noise(p)
        hints_and_free_space(p)
        p.data[p.special:p.special + 8] = b"\x01" * 8  # NSN
        set_special_u16(p, 12, special_u16(p, 12) ^ (0x08 | 0x10))  # FOLLOW_RIGHT, HAS_GARBAGE
        for n, off, flags, length in lps(p):
            if flags == LP_NORMAL:
                struct.pack_into("<I", p.data, 24 + 4 * (n - 1), off | 3 << 15 | length << 17)

    page, blk = real_pages("Gist", lambda p: p.special == BLCKSZ - 16 and bool(special_u16(p, 12) & 0x01)
                           and has_items(p))[0]
    assert_masked_only("Gist", page, blk, noise)
    other = Page(page)
    set_special_u16(other, 12, special_u16(other, 12) ^ 0x04)  # F_TUPLES_DELETED: ours, masked
    assert masked_equal(page, other.to_bytes(), "Gist", blk)
    set_special_u16(other, 12, special_u16(other, 12) ^ 0x02)  # F_DELETED is kept
    assert not masked_equal(page, other.to_bytes(), "Gist", blk)


@pytest.mark.parametrize("rmgr", ["SPGist", "Sequence", "Generic"])
def test_header_and_free_space_rules(rmgr: str) -> None:
    page, blk = real_pages(rmgr, lambda p: p.lower >= 28 and p.upper > p.lower)[0]

    def noise(p: Page) -> None:
        common_noise(p)
        p.data[(p.lower + p.upper) // 2] ^= 0xFF
        if rmgr == "SPGist":
            hints_and_free_space(p)

    # bloom (generic WAL) keeps its tuples between the header and pd_lower, not as items
    data_at = (lambda p: (24 + p.lower) // 2) if rmgr == "Generic" else None
    assert_masked_only(rmgr, page, blk, noise, data_at)
    if rmgr != "SPGist":  # sequence and generic pages keep their hint flags
        other = Page(page)
        other.flags = other.flags ^ 0x0004
        assert not masked_equal(page, other.to_bytes(), rmgr, blk)


def test_brin_mask_on_a_real_regular_page() -> None:
    page, blk = real_pages("BRIN", lambda p: p.special == BLCKSZ - 8 and special_u16(p, 6) == 0xF093
                           and p.lower > 28)[0]

    def noise(p: Page) -> None:
        common_noise(p)
        hints_and_free_space(p)
        set_special_u16(p, 4, special_u16(p, 4) ^ 0x0001)  # BRIN_EVACUATE_PAGE

    assert_masked_only("BRIN", page, blk, noise)


def test_none_is_byte_for_byte() -> None:
    page, blk = ENTRIES[0].expected, 0
    assert page is not None
    other = Page(page)
    common_noise(other)
    assert not masked_equal(page, other.to_bytes(), "none", blk)
    assert masked_equal(page, page, "none", blk)


def test_invalid_pointers_cannot_be_masked() -> None:
    page, blk = real_pages("Heap")[0]
    bad = Page(page)
    bad.lower, bad.upper = 9000 & 0xFFFF, 100
    with pytest.raises(MaskError, match="invalid page pd_lower"):
        mask_page(bad.to_bytes(), "Heap", blk)
    assert not masked_equal(page, bad.to_bytes(), "Heap", blk)
    assert masked_equal(bad.to_bytes(), bad.to_bytes(), "Heap", blk)
    with pytest.raises(ValueError, match="unknown mask 'Nope'"):
        mask_page(page, "Nope")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(RULES)), st.integers(0, len(ENTRIES) - 1),
       st.lists(st.tuples(st.integers(0, BLCKSZ - 1), st.integers(0, 255)), max_size=8),
       st.lists(st.tuples(st.integers(0, 23), st.integers(0, 255)), max_size=4), st.integers(0, 2**32 - 2))
def test_damaged_real_pages_mask_or_fail_cleanly(rule: str, which: int, flips: list[tuple[int, int]],
                                                 header_flips: list[tuple[int, int]], blkno: int) -> None:
    """Real pages of every kind with bytes (header fields too) overwritten: every rule gives a
    page or a MaskError, never another exception, and leaves the input alone."""
    expected = ENTRIES[which].expected
    assert expected is not None
    damaged = bytearray(expected)
    for pos, value in [*flips, *header_flips]:
        damaged[pos] = value
    page = bytes(damaged)
    try:
        out = mask_page(page, rule, blkno)
    except MaskError:
        return
    assert len(out) == BLCKSZ and damaged == bytearray(page)
    assert mask_page(page, rule, blkno) == out
