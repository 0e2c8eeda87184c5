"""The page model: header and line pointer layout, PostgreSQL's page operations with
hand-worked expectations, validity reasons, and loss-free parse/render round trips."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo.pg.btree_page import (
    BTP_LEAF,
    BTP_ROOT,
    BTMetaPageData,
    BTPageOpaque,
    IndexTuple,
    split_index_tuples,
)
from pytest_walredo.pg.page import (
    BLCKSZ,
    LP_DEAD,
    LP_NORMAL,
    LP_REDIRECT,
    LP_UNUSED,
    PD_ALL_VISIBLE,
    PD_HAS_FREE_LINES,
    ItemId,
    Page,
    PageError,
    PageHeader,
    PageView,
    maxalign,
    page_header_problem,
    parse_page,
    render_page,
)
from pytest_walredo.pg.tuple import (
    HEAP_HOT_UPDATED,
    HEAP_XMAX_INVALID,
    HEAP_XMIN_COMMITTED,
    HeapTupleHeader,
    infomask_names,
)

# --------------------------------------------------------------------------- header, line pointers


def test_header_layout_matches_bufpage_h() -> None:
    h = PageHeader(lsn=0x1_016A_9388, checksum=0xBEEF, flags=PD_ALL_VISIBLE, lower=28, upper=8160,
                   special=8192, pagesize_version=0x2004, prune_xid=777)
    raw = h.pack()
    # pd_lsn is xlogid (high half) then xrecoff (low half), each a little-endian u32
    assert raw[0:4] == (1).to_bytes(4, "little")
    assert raw[4:8] == (0x16A9388).to_bytes(4, "little")
    assert raw[8:10] == b"\xef\xbe"
    assert struct.unpack("<HHHHHI", raw[10:24]) == (PD_ALL_VISIBLE, 28, 8160, 8192, 0x2004, 777)
    assert PageHeader.unpack(raw) == h
    assert (h.pagesize, h.layout_version) == (8192, 4)


def test_line_pointer_bitfields_pack_low_bits_first() -> None:
    # lp_off=8160 (15 bits), lp_flags=LP_NORMAL (2 bits), lp_len=32 (15 bits):
    # 8160 | 1 << 15 | 32 << 17 = 0x1FE0 + 0x8000 + 0x400000 = 0x409FE0
    lp = ItemId(8160, LP_NORMAL, 32)
    assert lp.word == 0x409FE0
    assert lp.pack() == bytes([0xE0, 0x9F, 0x40, 0x00])
    assert ItemId.from_word(0x409FE0) == lp
    # the widest values use all 32 bits
    assert ItemId(0x7FFF, LP_DEAD, 0x7FFF).word == 0xFFFFFFFF
    with pytest.raises(ValueError, match=r"off=32768 \(< 32768\)"):
        ItemId(1 << 15, 0, 0)
    # every field one past its width is refused with a ValueError naming it (flags 4 once
    # raised KeyError from the message's own formatting)
    with pytest.raises(ValueError, match=r"^line pointer fields out of range: off=0 \(< 32768\), "
                                         r"flags=4 \(< 4\), len=0 \(< 32768\)$"):
        ItemId(0, 4, 0)
    with pytest.raises(ValueError, match=r"len=32768 \(< 32768\)$"):
        ItemId(0, LP_NORMAL, 1 << 15)
    assert ItemId(0x7FFF, LP_DEAD, 0x7FFF).len == 0x7FFF


def test_page_init_writes_exactly_the_header() -> None:
    page = Page(os.urandom(BLCKSZ))
    page.init(16)
    expected = bytearray(BLCKSZ)
    # pd_lower 24, pd_upper = pd_special = 8192 - 16, size|version 0x2004, all else zero
    struct.pack_into("<HHHH", expected, 12, 24, 8176, 8176, 0x2004)
    assert page.to_bytes() == bytes(expected)
    page.init(13)  # special size is MAXALIGNed: 13 -> 16
    assert (page.upper, page.special) == (8176, 8176)


# --------------------------------------------------------------------------- PageAddItemExtended


def test_add_item_places_maxaligned_tuples_downwards_and_keeps_padding_bytes() -> None:
    page = Page.initialized()
    page.data[8000:8192] = b"\xaa" * 192  # stale bytes in the free space
    assert page.add_item(b"A" * 30) == 1
    # 30 bytes -> MAXALIGN 32: tuple at 8192 - 32 = 8160; bytes 8190..8191 keep 0xAA
    assert page.item_id(1) == ItemId(8160, LP_NORMAL, 30)
    assert page.data[8160:8190] == b"A" * 30 and page.data[8190:8192] == b"\xaa\xaa"
    assert page.add_item(b"B" * 8) == 2
    assert page.item_id(2) == ItemId(8152, LP_NORMAL, 8)
    assert (page.lower, page.upper) == (24 + 2 * 4, 8152)
    assert page.free_space() == 8152 - 32 - 4
    assert page.exact_free_space() == 8152 - 32


def test_add_item_insert_in_the_middle_shifts_line_pointers() -> None:
    page = Page.initialized()
    page.add_item(b"1" * 8)
    page.add_item(b"2" * 8)
    assert page.add_item(b"X" * 8, 1) == 1  # not overwrite: shuffle 1,2 up to 2,3
    assert [page.item(i) for i in (1, 2, 3)] == [b"X" * 8, b"1" * 8, b"2" * 8]
    assert [page.item_id(i).off for i in (1, 2, 3)] == [8168, 8184, 8176]


def test_add_item_overwrite_rules() -> None:
    page = Page.initialized()
    page.add_item(b"a" * 8)
    page.add_item(b"b" * 8)
    # overwriting a used line pointer is refused
    assert page.add_item(b"c" * 8, 1, overwrite=True) == 0
    # an unused one is reused without growing the line pointer array
    page.set_item_id(2, ItemId())
    lower = page.lower
    assert page.add_item(b"c" * 8, 2, overwrite=True) == 2
    assert page.lower == lower and page.item(2) == b"c" * 8
    # one past the end appends; further is refused ("specified item offset is too large")
    assert page.add_item(b"d" * 8, 3, overwrite=True) == 3
    assert page.add_item(b"e" * 8, 5, overwrite=True) == 0


def test_add_item_uses_a_free_line_pointer_when_the_hint_says_so() -> None:
    page = Page.initialized()
    for _ in range(3):
        page.add_item(b"t" * 8)
    page.set_item_id(2, ItemId())
    assert page.add_item(b"n" * 8) == 4  # no PD_HAS_FREE_LINES hint: append
    page.set_flag(PD_HAS_FREE_LINES)
    assert page.add_item(b"m" * 8) == 2
    page.set_flag(PD_HAS_FREE_LINES)
    page.set_item_id(3, ItemId(8000, LP_DEAD, 8))  # dead with storage is not reusable
    assert page.add_item(b"z" * 8) == 5
    assert not page.flags & PD_HAS_FREE_LINES  # the stale hint was cleared


def test_add_item_refuses_when_full_and_on_corrupt_pointers() -> None:
    page = Page.initialized()
    # 8164 bytes would fit unaligned, but MAXALIGN(8164) = 8168 > 8192 - 28: refused
    assert page.add_item(b"x" * (BLCKSZ - 24 - 4)) == 0
    assert page.add_item(b"x" * 8160) == 1  # pd_lower 28 <= pd_upper 32
    assert page.add_item(b"y") == 0
    bad = Page.initialized()
    bad.lower = 10
    with pytest.raises(PageError, match="corrupted page pointers: lower = 10, upper = 8192"):
        bad.add_item(b"z")


def test_heap_page_holds_at_most_291_tuples() -> None:
    page = Page.initialized()
    for i in range(291):
        assert page.add_item(b"", is_heap=True) == i + 1
    assert page.add_item(b"", is_heap=True) == 0


# --------------------------------------------------------------------------- deletion, compaction


def test_index_tuple_delete_closes_both_gaps() -> None:
    page = Page.initialized(16)
    for ch in b"abc":
        page.add_item(bytes([ch]) * 16)
    # items: 1 'a' at 8160, 2 'b' at 8144, 3 'c' at 8128
    page.index_tuple_delete(2)
    # line pointers shift down; 'c' (below the hole) moves up by 16 to 8144
    assert page.max_offset() == 2
    assert page.item_id(1) == ItemId(8160, LP_NORMAL, 16)
    assert page.item_id(2) == ItemId(8144, LP_NORMAL, 16)
    assert page.item(2) == b"c" * 16 and page.upper == 8144
    with pytest.raises(PageError, match="invalid index offnum: 3"):
        page.index_tuple_delete(3)


def test_repair_fragmentation_compacts_in_line_pointer_order() -> None:
    page = Page.initialized()
    page.add_item(b"1" * 10)  # 8176 (aligned 16)
    page.add_item(b"2" * 8)  # 8168
    page.add_item(b"3" * 24)  # 8144
    page.add_item(b"4" * 8)  # 8136
    page.set_item_id(2, ItemId(0, LP_DEAD, 0))
    page.set_item_id(4, ItemId())
    page.repair_fragmentation()
    # item 1 stays at 8176, item 3 moves up to 8176 - 24 = 8152, carrying its 24 bytes;
    # trailing unused lp 4 is truncated; lp 2 is dead (used), so no free line pointers
    assert page.item_id(1) == ItemId(8176, LP_NORMAL, 10)
    assert page.item_id(3) == ItemId(8152, LP_NORMAL, 24)
    assert page.item(3) == b"3" * 24
    assert (page.upper, page.lower, page.max_offset()) == (8152, 36, 3)
    assert not page.flags & PD_HAS_FREE_LINES
    # bytes below the new pd_upper keep their stale content (PostgreSQL does not zero them)
    assert page.data[8144:8152] == b"3" * 8


def test_repair_fragmentation_sets_the_free_lines_hint_and_resets_unused() -> None:
    page = Page.initialized()
    page.add_item(b"a" * 8)
    page.add_item(b"b" * 8)
    page.set_item_id(1, ItemId(0, LP_UNUSED, 0))
    page.repair_fragmentation()
    assert page.flags & PD_HAS_FREE_LINES
    assert page.item_id(2) == ItemId(8184, LP_NORMAL, 8) and page.upper == 8184
    empty = Page.initialized()
    empty.add_item(b"x" * 8)
    empty.set_item_id(1, ItemId(0, LP_DEAD, 0))
    empty.repair_fragmentation()
    assert empty.upper == 8192  # nothing with storage: pd_upper back to pd_special


def test_truncate_line_pointer_array_keeps_one() -> None:
    page = Page.initialized()
    for _ in range(4):
        page.add_item(b"q" * 8)
    page.set_item_id(2, ItemId())
    page.set_item_id(4, ItemId())
    page.truncate_line_pointer_array()
    assert page.max_offset() == 3 and page.flags & PD_HAS_FREE_LINES
    for i in (1, 3):
        page.set_item_id(i, ItemId())
    page.truncate_line_pointer_array()
    assert page.max_offset() == 1  # never truncated to nothing
    assert page.flags & PD_HAS_FREE_LINES


def test_prune_xid_keeps_the_oldest() -> None:
    page = Page.initialized()
    page.update_prune_xid(1000)
    page.update_prune_xid(2000)
    assert page.prune_xid == 1000
    page.update_prune_xid(900)
    assert page.prune_xid == 900
    # modulo-2^32: 0xFFFFFF00 precedes 900 after wraparound
    page.update_prune_xid(0xFFFFFF00)
    assert page.prune_xid == 0xFFFFFF00


def test_heap_free_space_is_zero_with_max_line_pointers() -> None:
    page = Page.initialized()
    for _ in range(291):
        page.add_item(b"", is_heap=True)
    assert page.free_space() > 0 and page.heap_free_space() == 0


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        (10, 0x0008, "pd_flags 0x0008"),
        (12, 20, "pd_lower 20 is below the header size 24"),
        (12, 8000, "pd_lower 8000 is above pd_upper 7000"),
        (14, 8100, "pd_upper 8100 is above pd_special 8000"),
        (16, 8196, "pd_special 8196 is beyond the page size"),
        (16, 6992, "pd_upper 7000 is above pd_special 6992"),
        (16, 7001, "pd_special 7001 is not a multiple of 8"),
    ],
)
def test_header_problems_name_the_field(field: int, value: int, needle: str) -> None:
    page = Page.initialized()
    page.upper, page.special = 7000, 8000
    struct.pack_into("<H", page.data, field, value)
    assert needle in (page.problem() or "")


def test_special_must_be_maxaligned_and_new_pages_all_zero() -> None:
    page = Page.initialized()
    page.special = 8188
    page.upper = 8000
    assert "not a multiple of 8" in (page.problem() or "")
    assert page_header_problem(bytes(BLCKSZ)) is None
    junk = bytearray(BLCKSZ)
    junk[100] = 1
    assert "not all zeros" in (page_header_problem(junk) or "")


def test_line_pointer_problem() -> None:
    page = Page.initialized()
    page.add_item(b"x" * 8)
    assert page.line_pointer_problem() is None
    page.set_item_id(1, ItemId(9000 & 0x7FFF, LP_NORMAL, 8))
    assert "outside the tuple space" in (page.line_pointer_problem() or "")
    page.set_item_id(1, ItemId(0, LP_REDIRECT, 4))
    assert "has a length" in (page.line_pointer_problem() or "")


# --------------------------------------------------------------------------- tuples, btree pieces


def test_heap_tuple_header_layout() -> None:
    raw = bytes.fromhex("e8030000" "00000000" "01000000" "0000" "0700" "0300" "0340" "0009" "18")
    h = HeapTupleHeader.unpack(raw + b"\x00")
    assert (h.xmin, h.xmax, h.cid) == (1000, 0, 1)
    assert h.ctid == (7, 3)  # bi_hi 0, bi_lo 7, posid 3
    assert (h.natts, h.infomask2 & HEAP_HOT_UPDATED) == (3, HEAP_HOT_UPDATED)
    assert h.infomask == HEAP_XMIN_COMMITTED | HEAP_XMAX_INVALID
    assert infomask_names(h.infomask) == ["XMIN_COMMITTED", "XMAX_INVALID"]
    assert "HOT_UPDATED" in h.flag_names()
    assert h.hoff == 24 and h.pack() == raw + b"\x00"


def test_btree_opaque_meta_and_index_tuples() -> None:
    page = Page.initialized(16)
    BTPageOpaque(prev=1, next=2, level=0, flags=BTP_LEAF | BTP_ROOT, cycleid=5).write(page)
    assert page.data[-16:] == struct.pack("<IIIHH", 1, 2, 0, 3, 5)
    assert BTPageOpaque.unpack(page.data).flag_names() == ["LEAF", "ROOT"]
    meta = BTMetaPageData(root=3, level=1, fastroot=3, fastlevel=1, allequalimage=True).pack()
    assert len(meta) == 48
    assert struct.unpack_from("<IIIIIII", meta) == (0x053162, 4, 3, 1, 3, 1, 0)
    assert struct.unpack_from("<d?", meta, 32) == (-1.0, True)
    itup = IndexTuple(0x10002, 7, 16, b"\x01" * 8)
    assert itup.pack()[:8] == struct.pack("<HHHH", 1, 2, 7, 16) and itup.size == 16
    assert IndexTuple.unpack(itup.pack()) == itup
    two = itup.pack() + IndexTuple(0, 1, 12, b"\x02" * 4).pack() + b"\x00" * 4
    assert split_index_tuples(two) == [itup.pack(), two[16:]]


# --------------------------------------------------------------------------- parse/render


def test_view_of_a_heap_page() -> None:
    page = Page.initialized()
    page.add_item(b"hello, tuple")
    view = parse_page(page.to_bytes())
    assert view.header.lower == 28 and view.line_pointers == (ItemId(8176, LP_NORMAL, 12),)
    assert view.item(1) == b"hello, tuple"
    assert view.item(2) is None
    with pytest.raises(ValueError, match="implies 1 line pointers"):
        PageView(view.header, (), view.body)


@st.composite
def _pages(draw: st.DrawFn) -> bytes:
    """Any 8192 bytes: a drawn header (any pd_lower, small line pointer arrays likely), a
    drawn start of the line pointer area, and the rest from a drawn fill byte or seeded
    random bytes (Hypothesis cannot shrink well over 8 KiB of raw binary)."""
    head = bytearray(draw(st.binary(min_size=24, max_size=24)))
    lower = draw(st.one_of(st.integers(0, 64), st.integers(0, 0xFFFF)))
    struct.pack_into("<H", head, 12, lower)
    lps = draw(st.binary(max_size=64))
    rest_len = BLCKSZ - 24 - len(lps)
    if draw(st.booleans()):
        rest = bytes([draw(st.integers(0, 255))]) * rest_len
    else:
        rest = random.Random(draw(st.integers(0, 2**32))).randbytes(rest_len)
    return bytes(head) + lps + rest


@settings(max_examples=200, deadline=None)
@given(_pages())
def test_render_parse_is_identity_on_any_bytes(raw: bytes) -> None:
    assert render_page(parse_page(raw)) == raw


@settings(max_examples=200, deadline=None)
@given(_pages())
def test_parse_render_parse_is_identity(raw: bytes) -> None:
    view = parse_page(raw)
    assert parse_page(render_page(view)) == view
    assert len(view.line_pointers) == max(0, (min(view.header.lower, BLCKSZ) - 24) // 4)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=200), max_size=30))
def test_added_items_read_back(items: list[bytes]) -> None:
    page = Page.initialized()
    for it in items:
        off = page.add_item(it)
        if off:
            assert page.item(off) == it
            assert page.item_id(off).off % 8 == 0
    assert page.problem() is None and page.line_pointer_problem() is None
    assert page.upper == BLCKSZ - sum(maxalign(len(i)) for i in items[: page.max_offset()])


# --------------------------------------------------------------------------- real pages


def real_pages(data: Path) -> list[tuple[str, int, bytes]]:
    out = []
    for f in sorted((data / "base" / "1").iterdir()):
        if not f.name.isdigit():
            continue  # main forks only (fsm/vm have no line pointers)
        raw = f.read_bytes()
        for blk in range(len(raw) // BLCKSZ):
            out.append((f.name, blk, raw[blk * BLCKSZ : (blk + 1) * BLCKSZ]))
    return out


@pytest.mark.needs_postgres
def test_real_heap_pages_parse_with_our_bitfield_layout(initdb_cluster: Path) -> None:
    # pg_class (1259) is a heap: every normal line pointer must point at a tuple whose
    # header is plausible, which only holds if lp_off/lp_flags/lp_len are unpacked right.
    raw = (initdb_cluster / "base" / "1" / "1259").read_bytes()
    checked = 0
    for blk in range(len(raw) // BLCKSZ):
        page = Page(raw[blk * BLCKSZ : (blk + 1) * BLCKSZ])
        assert page.problem() is None and page.line_pointer_problem() is None
        for off, lp in page.item_ids():
            if lp.flags != LP_NORMAL:
                continue
            h = HeapTupleHeader.unpack(page.item(off))
            assert h.hoff % 8 == 0 and 24 <= h.hoff <= lp.len
            assert h.ctid[0] == blk or h.ctid[0] < len(raw) // BLCKSZ
            checked += 1
    assert checked > 100


@pytest.mark.needs_postgres
def test_real_pages_render_back_and_verify(initdb_cluster: Path) -> None:
    pages = real_pages(initdb_cluster)
    assert len(pages) > 100
    for name, blk, raw in pages:
        assert render_page(parse_page(raw)) == raw
        assert Page(raw).problem(blk) is None, f"{name} block {blk}"
