"""Edges of the page model that mutation testing found untested (docs/MUTATION.md): whole pages
compared byte for byte after each operation (length 8192, stale bytes kept), deleting the first
and the last item, exact fits, corrupt pointers and lengths, the free-lines hint, checksum
mismatches, and ``TransactionIdPrecedes`` on special xids and at the 2^31 distance.

Pages are laid out by hand with :func:`raw_page` (not with the operations under test), on a
background of stale bytes that differ from byte to byte, so that a wrong copy shows."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg.checksum import pg_checksum_page
from pytest_walredo.pg.page import (
    BLCKSZ,
    LP_DEAD,
    LP_NORMAL,
    LP_REDIRECT,
    LP_UNUSED,
    PD_HAS_FREE_LINES,
    ItemId,
    Page,
    PageError,
    PageView,
    _xid_precedes,
    page_header_problem,
    parse_page,
)

STALE = bytes((i * 7 + 3) & 0xFF for i in range(BLCKSZ))
N, U, D = LP_NORMAL, LP_UNUSED, LP_DEAD


def raw_page(special: int, upper: int, lps: list[tuple[int, int, int]], data: dict[int, bytes],
             flags: int = 0, lower: int | None = None) -> bytes:
    """A page over stale bytes: header, the line pointers ``(off, flags, len)``, ``data`` put at
    the given offsets, the special space zeroed."""
    b = bytearray(STALE)
    lower = 24 + 4 * len(lps) if lower is None else lower
    struct.pack_into("<IIHHHHHHI", b, 0, 0, 0, 0, flags, lower, upper, special, 0x2004, 0)
    for i, (off, fl, ln) in enumerate(lps):
        struct.pack_into("<I", b, 24 + 4 * i, off | fl << 15 | ln << 17)
    b[special:] = bytes(BLCKSZ - special)
    for off, chunk in data.items():
        b[off : off + len(chunk)] = chunk
    return bytes(b)


def lp(off: int, fl: int, ln: int) -> bytes:
    return struct.pack("<I", off | fl << 15 | ln << 17)


def assert_page(page: Page, expected: bytes) -> None:
    assert len(page.data) == BLCKSZ
    assert page.to_bytes() == expected


A, B, C = b"a" * 16, b"b" * 16, b"c" * 16


# --------------------------------------------------------------------------- PageIndexTupleDelete


def test_delete_first_item_moves_the_rest_up() -> None:
    page = Page(raw_page(8176, 8128, [(8160, N, 16), (8144, N, 16), (8128, N, 16)],
                         {8160: A, 8144: B, 8128: C}))
    page.index_tuple_delete(1)
    # line pointers 2,3 shift down (slot 3 keeps its old bytes); b and c move up by 16
    assert_page(page, raw_page(8176, 8144, [(8160, N, 16), (8144, N, 16)],
                               {8160: B, 8144: C, 8128: C, 32: lp(8128, N, 16)}))


def test_delete_last_item_moves_nothing() -> None:
    page = Page(raw_page(8192, 8144, [(8176, N, 16), (8160, N, 16), (8144, N, 16)],
                         {8176: A, 8160: B, 8144: C}))
    page.index_tuple_delete(3)
    assert_page(page, raw_page(8192, 8160, [(8176, N, 16), (8160, N, 16)],
                               {8176: A, 8160: B, 8144: C, 32: lp(8144, N, 16)}))


def test_delete_adjusts_line_pointer_one_when_it_lies_below() -> None:
    # item 1 is the lowest tuple: deleting item 2 moves it up, and its line pointer with it
    page = Page(raw_page(8192, 8144, [(8144, N, 16), (8176, N, 16), (8160, N, 16)],
                         {8176: A, 8160: B, 8144: C}))
    page.index_tuple_delete(2)
    assert_page(page, raw_page(8192, 8160, [(8160, N, 16), (8176, N, 16)],
                               {8176: B, 8160: C, 8144: C, 32: lp(8160, N, 16)}))


def test_delete_from_a_full_page_and_with_unaligned_lengths() -> None:
    # pd_lower == pd_upper is a legal (full) page
    page = Page(raw_page(8192, 32, [(8184, N, 8), (32, N, 8152)], {8184: b"x" * 8, 32: b"y" * 8152}))
    page.index_tuple_delete(1)
    assert (page.lower, page.upper, page.item_id(1)) == (28, 40, ItemId(40, N, 8152))
    assert page.item(1) == b"y" * 8152 and len(page.data) == BLCKSZ
    # the moved distance is the MAXALIGNed length (10 -> 16)
    page = Page(raw_page(8192, 8160, [(8176, N, 10), (8160, N, 16)], {8176: b"z" * 10, 8160: B}))
    page.index_tuple_delete(1)
    assert page.item_id(1) == ItemId(8176, N, 16) and page.upper == 8176


def test_delete_of_a_zero_length_item_at_pd_special() -> None:
    page = Page(raw_page(8192, 8192, [(8192, N, 0)], {}))
    page.index_tuple_delete(1)
    assert (page.lower, page.upper) == (24, 8192)


def test_delete_moves_every_pointer_at_or_below_the_deleted_tuple() -> None:
    # PostgreSQL adjusts each remaining line pointer with lp_off <= the deleted offset, so a
    # second pointer to the deleted tuple moves too (byte-for-byte agreement even on odd pages)
    page = Page(raw_page(8192, 8160, [(8176, N, 16), (8176, N, 16), (8160, N, 16)], {8176: A, 8160: B}))
    page.index_tuple_delete(1)
    assert [page.item_id(i).off for i in (1, 2)] == [8192, 8176]


@pytest.mark.parametrize("offnum", [0, -1, 3])
def test_delete_refuses_offsets_outside_the_array(offnum: int) -> None:
    page = Page(raw_page(8192, 8160, [(8176, N, 16), (8160, N, 16)], {8176: A, 8160: B}))
    with pytest.raises(PageError, match=rf"^invalid index offnum: {offnum}$"):
        page.index_tuple_delete(offnum)
    with pytest.raises(PageError, match=r"^invalid index offnum: 1$"):
        Page.initialized().index_tuple_delete(1)


CORRUPT_POINTERS = [  # (lower, upper, special)
    (20, 8160, 8192),  # pd_lower below the header
    (8170, 8160, 8192),  # pd_lower above pd_upper
    (28, 8184, 8176),  # pd_upper above pd_special
    (28, 8160, 8200),  # pd_special beyond the page
    (28, 8160, 8188),  # pd_special not MAXALIGNed
]


@pytest.mark.parametrize(("lower", "upper", "special"), CORRUPT_POINTERS)
def test_delete_and_repair_refuse_corrupt_page_pointers(lower: int, upper: int, special: int) -> None:
    raw = bytearray(raw_page(8192, upper, [(8160, N, 16)], {8160: A}))
    struct.pack_into("<HHH", raw, 12, lower, upper, special)
    msg = rf"^corrupted page pointers: lower = {lower}, upper = {upper}, special = {special}$"
    with pytest.raises(PageError, match=msg):
        Page(raw).index_tuple_delete(1)
    with pytest.raises(PageError, match=msg):
        Page(raw).repair_fragmentation()
    if special % 8 == 0:  # PageAddItem does not look at the alignment of pd_special
        with pytest.raises(PageError, match=msg):
            Page(raw).add_item(b"x")


@pytest.mark.parametrize(("item", "offset", "size"), [
    ((8152, N, 16), 8152, 16),  # below pd_upper
    ((8184, N, 16), 8184, 16),  # past pd_special
    ((8164, N, 8), 8164, 8),  # not MAXALIGNed
])
def test_delete_refuses_a_corrupt_line_pointer(item: tuple[int, int, int], offset: int, size: int) -> None:
    page = Page(raw_page(8192, 8160, [(8176, N, 16), item], {8176: A}))
    with pytest.raises(PageError, match=rf"^corrupted line pointer: offset = {offset}, size = {size}$"):
        page.index_tuple_delete(2)


# --------------------------------------------------------------------------- PageRepairFragmentation


def test_repair_compacts_resets_unused_and_drops_trailing_ones() -> None:
    lps = [(8176, N, 10), (123, U, 0), (8144, N, 24), (8128, N, 5), (77, U, 0)]
    page = Page(raw_page(8192, 8128, lps, {8176: b"1" * 10, 8144: b"3" * 24, 8128: b"4" * 5}))
    page.repair_fragmentation()
    # item 1 stays; item 3 moves up to 8152; item 4 carries its 8 MAXALIGNed bytes (5 of its own
    # and 3 stale ones) to 8144; unused pointers become zero words; the trailing one is dropped;
    # one unused pointer remains, so PD_HAS_FREE_LINES is set
    expected = raw_page(8192, 8144, [(8176, N, 10), (0, U, 0), (8152, N, 24), (8144, N, 5)],
                        {8176: b"1" * 10, 8152: b"3" * 24, 8144: b"4" * 5 + STALE[8133:8136],
                         8128: b"4" * 5, 40: bytes(4)},
                        flags=PD_HAS_FREE_LINES)
    assert_page(page, expected)


def test_repair_with_every_line_pointer_unused_empties_the_array() -> None:
    page = Page(raw_page(8192, 8192, [(5, U, 0), (6, U, 0), (7, U, 0)], {}, flags=PD_HAS_FREE_LINES))
    page.repair_fragmentation()
    assert_page(page, raw_page(8192, 8192, [], {24: bytes(12)}))


def test_repair_with_only_dead_items_resets_pd_upper() -> None:
    page = Page(raw_page(8192, 8192, [(0, D, 0), (0, D, 0)], {}, flags=PD_HAS_FREE_LINES))
    page.repair_fragmentation()
    assert_page(page, raw_page(8192, 8192, [(0, D, 0), (0, D, 0)], {}))


def test_repair_of_a_page_without_line_pointers() -> None:
    raw = raw_page(8176, 8000, [], {}, flags=PD_HAS_FREE_LINES)
    page = Page(raw)
    page.repair_fragmentation()
    expected = bytearray(raw)
    struct.pack_into("<HHH", expected, 10, 0, 24, 8176)  # no hint; pd_upper back to pd_special
    assert_page(page, bytes(expected))


def test_repair_of_an_exactly_full_page_changes_nothing_but_the_hint() -> None:
    raw = raw_page(8192, 32, [(8184, N, 8), (32, N, 8152)], {8184: b"x" * 8, 32: b"y" * 8152})
    page = Page(raw)
    page.set_flag(PD_HAS_FREE_LINES)
    page.repair_fragmentation()  # 8 + 8152 == pd_special - pd_lower: fits exactly
    assert_page(page, raw)


def test_repair_refuses_item_lengths_beyond_the_page() -> None:
    page = Page(raw_page(8192, 4096, [(4096, N, 4096), (4096, N, 4096)], {}))
    with pytest.raises(PageError, match=r"^corrupted item lengths: total 8192, available space 8160$"):
        page.repair_fragmentation()


@pytest.mark.parametrize("off", [8152, 8176])
def test_repair_refuses_storage_outside_upper_and_special(off: int) -> None:
    page = Page(raw_page(8176, 8160, [(8160, N, 8), (off, N, 8)], {}))
    with pytest.raises(PageError, match=rf"^corrupted line pointer: {off}$"):
        page.repair_fragmentation()


# --------------------------------------------------------------------------- PageTruncateLinePointerArray


@pytest.mark.parametrize(("lps", "flags", "lower", "hint"), [
    ([], PD_HAS_FREE_LINES, 24, False),  # nothing to truncate, no unused pointer
    ([(0, U, 0)], 0, 28, True),  # a lone unused pointer stays
    ([(8184, N, 8), (0, U, 0), (0, U, 0)], PD_HAS_FREE_LINES, 28, False),
    ([(0, U, 0), (8184, N, 8)], 0, 32, True),  # unused before the last used one
    ([(8184, N, 8), (8176, N, 8)], PD_HAS_FREE_LINES, 32, False),
])
def test_truncate_line_pointer_array(lps: list[tuple[int, int, int]], flags: int, lower: int,
                                     hint: bool) -> None:
    raw = raw_page(8192, 8176, lps, {}, flags=flags)
    page = Page(raw)
    page.truncate_line_pointer_array()
    expected = bytearray(raw)
    struct.pack_into("<HH", expected, 10, PD_HAS_FREE_LINES if hint else 0, lower)
    assert_page(page, bytes(expected))


def test_truncate_of_an_empty_array_does_not_read_past_pd_lower() -> None:
    page = Page(raw_page(8192, 8176, [], {24: bytes(4)}))  # the next slot reads as unused
    page.truncate_line_pointer_array()
    assert (page.lower, page.flags) == (24, 0)


def test_truncate_ignores_stale_line_pointers_past_pd_lower() -> None:
    # slot 3 holds the bytes of a normal line pointer, but pd_lower says there are two
    page = Page(raw_page(8192, 8176, [(8184, N, 8), (0, U, 0)], {32: lp(8176, N, 8)}))
    page.truncate_line_pointer_array()
    assert (page.lower, page.flags) == (28, 0)


# --------------------------------------------------------------------------- PageAddItemExtended


def test_insert_shifts_only_the_line_pointers_in_use() -> None:
    page = Page(raw_page(8192, 8176, [(8184, N, 8), (8176, N, 8)], {8184: b"1" * 8, 8176: b"2" * 8}))
    assert page.add_item(b"X" * 8, 1) == 1
    assert_page(page, raw_page(8192, 8168, [(8168, N, 8), (8184, N, 8), (8176, N, 8)],
                               {8184: b"1" * 8, 8176: b"2" * 8, 8168: b"X" * 8}))


def test_add_item_that_fills_the_page_exactly() -> None:
    page = Page.initialized()
    assert page.add_item(b"a" * 8) == 1
    assert page.add_item(b"x" * 8152) == 2  # pd_lower 32 == pd_upper 32
    assert (page.lower, page.upper, page.free_space(), page.exact_free_space()) == (32, 32, 0, 0)
    assert page.add_item(b"") == 0  # no room for a line pointer, and no exception
    assert len(page.data) == BLCKSZ


def test_overwrite_refuses_dead_or_stored_line_pointers_and_appends_at_the_end() -> None:
    page = Page(raw_page(8192, 8176, [(0, D, 0), (8184, U, 8)], {}))
    assert page.add_item(b"n" * 8, 1, overwrite=True) == 0  # dead without storage: used
    assert page.add_item(b"n" * 8, 2, overwrite=True) == 0  # unused with storage
    # one past the end appends even when the stale bytes of that slot look used
    page = Page(raw_page(8192, 8184, [(8184, N, 8)], {28: lp(8000, N, 8)}))
    assert page.add_item(b"n" * 8, 2, overwrite=True) == 2
    assert page.item_id(2) == ItemId(8176, N, 8) and page.lower == 32


def test_free_lines_hint_reuses_the_first_free_pointer_only() -> None:
    page = Page(raw_page(8192, 8184, [(0, U, 0), (8184, N, 8)], {}, flags=PD_HAS_FREE_LINES))
    assert page.add_item(b"n" * 8) == 1 and page.lower == 32
    # dead without storage and unused with storage are not free: append, clear the hint
    page = Page(raw_page(8192, 8184, [(0, D, 0), (8000, U, 8)], {}, flags=PD_HAS_FREE_LINES))
    assert page.add_item(b"n" * 8) == 3
    assert not page.flags & PD_HAS_FREE_LINES


def test_only_heap_pages_stop_at_291_items() -> None:
    page = Page.initialized()
    for i in range(300):
        assert page.add_item(b"") == i + 1


def test_overwrite_item_in_place() -> None:
    raw = raw_page(8192, 8176, [(8176, N, 10)], {8176: b"q" * 10})
    page = Page(raw)
    page.overwrite_item(1, b"Z" * 10)
    assert_page(page, raw[:8176] + b"Z" * 10 + raw[8186:])
    with pytest.raises(PageError, match=r"^item 1 is 10 bytes; in-place overwrite needs the same "
                                        r"length, got 9$"):
        page.overwrite_item(1, b"Z" * 9)


# --------------------------------------------------------------------------- line pointers and items


def test_line_pointer_positions_end_at_the_page() -> None:
    page = Page()
    assert page.item_id(2042) == ItemId()  # bytes 8188..8191: the last slot that fits
    for offnum in (0, 2043):
        with pytest.raises(PageError, match=rf"^line pointer {offnum} is outside the page$"):
            page.item_id(offnum)


def test_item_ids_stop_at_pd_lower() -> None:
    page = Page(raw_page(8192, 8176, [(8184, N, 8), (8176, N, 8)], {32: lp(8000, N, 8)}))
    assert list(page.item_ids()) == [(1, ItemId(8184, N, 8)), (2, ItemId(8176, N, 8))]
    raw = bytearray(raw_page(8192, 8176, [], {}))
    struct.pack_into("<H", raw, 12, 20)  # pd_lower below the header: no line pointers
    assert Page(raw).max_offset() == 0


def test_items_up_to_the_end_of_the_page_and_beyond() -> None:
    page = Page(raw_page(8192, 8176, [(8184, N, 8), (8190, N, 8)], {8184: b"e" * 8}))
    assert page.item(1) == b"e" * 8
    view = page.item_view(1)
    view[:] = b"E" * 8  # a writable view into the page
    assert page.data[8184:] == b"E" * 8 and len(page.data) == BLCKSZ
    for read in (page.item, page.item_view):
        with pytest.raises(PageError, match=r"^line pointer 2 \(NORMAL off=8190 len=8\) points beyond the page$"):
            read(2)


def test_new_empty_and_init() -> None:
    assert Page().is_new() and not Page.initialized().is_new()
    raw = bytearray(BLCKSZ)
    raw[14] = 1  # pd_upper 1: not new
    assert not Page(raw).is_new()
    assert Page.initialized().is_empty()
    assert not Page(raw_page(8192, 8184, [(8184, N, 8)], {})).is_empty()
    page = Page()
    page.init()
    assert (page.lower, page.upper, page.special) == (24, 8192, 8192)
    page.init(8168)  # the largest special space: pd_upper = pd_special = 24
    assert (page.lower, page.upper, page.special) == (24, 24, 24)
    with pytest.raises(ValueError, match=r"^special size 8169 does not fit in a page$"):
        page.init(8169)
    with pytest.raises(ValueError, match=r"^a page is 8192 bytes, got 10$"):
        Page(b"x" * 10)
    with pytest.raises(ValueError, match=r"^a page is 8192 bytes, got 8193$"):
        parse_page(bytes(8193))


def test_repr() -> None:
    page = Page.initialized()
    page.lsn = 0x1_016A_9388
    page.add_item(b"x")
    assert repr(page) == "Page(lsn=1/16A9388, lower=28, upper=8184, special=8192, items=1)"


# --------------------------------------------------------------------------- free space


@pytest.mark.parametrize(("gap", "free", "exact"), [(0, 0, 0), (2, 0, 2), (4, 0, 4), (5, 1, 5)])
def test_free_space_at_small_gaps(gap: int, free: int, exact: int) -> None:
    page = Page(raw_page(8192, 100 + gap, [], {}, lower=100))
    assert (page.free_space(), page.exact_free_space()) == (free, exact)


def _heap_page(nline: int, unused_at: int | None, hint: bool, gap: int | None = None) -> Page:
    lps = [(0, D, 0)] * nline
    if unused_at is not None:
        lps[unused_at] = (0, U, 0)
    lower = 24 + 4 * nline
    return Page(raw_page(8192, 8192 if gap is None else lower + gap, lps, {},
                         flags=PD_HAS_FREE_LINES if hint else 0))


def test_heap_free_space_with_291_line_pointers() -> None:
    room = 8192 - (24 + 4 * 291) - 4
    assert _heap_page(290, None, False).heap_free_space() == 8192 - (24 + 4 * 290) - 4
    assert _heap_page(291, None, False).heap_free_space() == 0
    assert _heap_page(291, None, True).heap_free_space() == 0  # hint, but nothing unused
    assert _heap_page(291, 100, True).heap_free_space() == room  # an unused one to reuse
    assert _heap_page(291, 100, False).heap_free_space() == 0  # no hint: not looked for
    assert _heap_page(291, None, False, gap=5).heap_free_space() == 0
    assert _heap_page(291, 100, True, gap=5).heap_free_space() == 1


# --------------------------------------------------------------------------- checks


def test_checksum_mismatch_and_match() -> None:
    page = Page.initialized()
    page.add_item(b"tuple bytes")
    page.checksum = pg_checksum_page(page.data, 7)
    assert page.problem(7) is None
    assert page.problem() is None  # without a block number, no checksum check
    want8 = pg_checksum_page(page.data, 8)
    assert want8 != page.checksum
    assert page.problem(8) == (f"page verification failed, calculated checksum {want8} but expected"
                               f" {page.checksum}")
    assert Page().problem(0) is None  # a new (all-zero) page has no checksum to check
    bad = Page.initialized()
    bad.lower = 20
    assert bad.problem(0) == "pd_lower 20 is below the header size 24"


def test_header_problem_edges() -> None:
    assert page_header_problem(raw_page(8192, 32, [(32, N, 8)] * 2, {})) is None  # lower == upper
    junk = bytearray(BLCKSZ)
    junk[5000] = 1
    assert page_header_problem(junk) == "page has pd_upper 0 (a new page) but is not all zeros"
    assert page_header_problem(bytes(100)) == "page is 100 bytes, expected 8192"


@pytest.mark.parametrize(("item", "problem"), [
    ((0, U, 0), None),
    ((0, D, 0), None),
    ((8184, D, 8), None),
    ((5, LP_REDIRECT, 0), None),
    ((0, LP_REDIRECT, 1), "line pointer 1 (REDIRECT off=0 len=1) has a length"),
    ((0, U, 1), "line pointer 1 (UNUSED off=0 len=1) has a length"),
    ((8184, N, 0), "line pointer 1 is normal but has length 0"),
    ((8184, N, 8), None),
    ((8188, N, 8), "line pointer 1 (NORMAL off=8188 len=8) lies outside the tuple space [8176, 8192)"),
    ((8168, N, 8), "line pointer 1 (NORMAL off=8168 len=8) lies outside the tuple space [8176, 8192)"),
])
def test_line_pointer_problems(item: tuple[int, int, int], problem: str | None) -> None:
    assert Page(raw_page(8192, 8176, [item], {})).line_pointer_problem() == problem


# --------------------------------------------------------------------------- TransactionIdPrecedes


@pytest.mark.parametrize(("a", "b", "precedes"), [
    (2, 0x80000005, True),  # special xids (0-2) compare as plain numbers
    (0x80000005, 2, False),
    (1, 2, True),
    (2, 2, False),
    (2, 1, False),
    (3, 0x80000004, False),  # both normal: modulo 2^32, 0x80000004 is "before" 3
    (0x80000004, 3, True),
    (3, 3 + 2**31, True),  # exactly 2^31 apart: the first precedes
    (3 + 2**31, 3, True),
    (4, 3 + 2**31, True),  # 2^31 - 1 apart, either way round
    (2 + 2**31, 3, False),
    (100, 200, True),
    (200, 100, False),
    (0xFFFFFF00, 5, True),  # across wraparound
])
def test_xid_precedes(a: int, b: int, precedes: bool) -> None:
    assert _xid_precedes(a, b) is precedes


# --------------------------------------------------------------------------- PageView


def test_view_items_at_the_edges() -> None:
    lps = [(8176, N, 8), (8184, N, 8), (0, D, 0), (8190, N, 8), (44, N, 4), (48, N, 4)]
    view = parse_page(raw_page(8192, 8176, lps, {8176: b"1" * 8, 8184: b"2" * 8, 48: b"body"}))
    assert view.item(1) == b"1" * 8
    assert view.item(2) == b"2" * 8  # ends exactly at the end of the page
    assert view.item(3) is None  # no storage
    assert view.item(4) is None  # beyond the page
    assert view.item(5) is None  # points into the line pointer array
    assert view.item(6) == b"body"  # the first byte after the line pointers
    assert view.item(0) is None and view.item(7) is None
    with pytest.raises(ValueError, match=r"^page body is 10 bytes, expected 8144$"):
        PageView(view.header, view.line_pointers, b"x" * 10)
