"""Redo of every GIN record on pages built by hand, each expected page written out field by field
from PostgreSQL's ginxlog.c, ginpostinglist.c and ginblock.h; the posting-list codec on
vectors worked out by hand; and Neon's rule for a split or vacuumed page that is not restored
from its image, against upstream's error."""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.gin_page import (
    GIN_COMPRESSED,
    GIN_DATA,
    GIN_DATA_OFFSET,
    GIN_DELETED,
    GIN_INCOMPLETE_SPLIT,
    GIN_LEAF,
    GIN_LIST,
    GIN_LIST_FULLROW,
    GIN_META,
    INVALID_BLOCK,
    GinMeta,
    GinOpaque,
    PostingItem,
    add_posting_item,
    gin_init_page,
    posting_items,
    set_data_size,
)
from pytest_walredo.pg.gin_posting import (
    GIN_SEGMENT_ADDITEMS,
    GIN_SEGMENT_DELETE,
    GIN_SEGMENT_INSERT,
    GIN_SEGMENT_REPLACE,
    SegmentAction,
    compress_posting_list,
    decode_segment,
    split_segments,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.rmgr.gin import (
    EntryInsert,
    GinCreatePtree,
    GinDeletePage,
    GinInsert,
    GinSplit,
    GinVacuumDataLeafPage,
    GinVacuumPage,
    InternalInsert,
)
from pytest_walredo.pg.rmgr.gin_fast import GinDeleteListPages, GinInsertListPage, GinUpdateMetaPage
from pytest_walredo.pg.rmgr.ginxlog import LeafActions
from pytest_walredo.pg.version import Flavour

REL = (1663, 5, 16384)
V, N = Flavour.VANILLA, Flavour.NEON
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000


def redo(page: Page | None, body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], *, blkno: int = 7,
         flavour: Flavour = V, lsn: int = LSN) -> Page:
    raw = rmgr.build(body, blocks, pg_version=15, flavour=flavour).encode()
    out = redo_record(None if page is None else page.to_bytes(), spcnode=REL[0], dbnode=REL[1],
                      relnode=REL[2], forknum=0, blkno=blkno, end_lsn=lsn, record=raw, pg_version=15,
                      flavour=flavour)
    assert out is not None
    return Page(out)


def blk(block_id: int, blkno: int = 7, **kw: object) -> xr.BlockRef:
    return xr.make_block(block_id, REL, blkno, **kw)  # type: ignore[arg-type]


def tup(key: bytes, tid: tuple[int, int] = (1, 1)) -> bytes:
    size = (8 + len(key) + 7) // 8 * 8
    return struct.pack("<HHHH", tid[0] >> 16, tid[0] & 0xFFFF, tid[1], size) + key.ljust(size - 8, b"\0")


def leaf_page(segments: list[bytes], flags: int = GIN_DATA | GIN_LEAF | GIN_COMPRESSED) -> Page:
    page = Page()
    gin_init_page(page, flags)
    area = b"".join(segments)
    set_data_size(page, len(area))
    page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + len(area)] = area
    page.lsn = OLD_LSN
    return page


def items_of(page: Page) -> list[list[tuple[int, int]]]:
    area = page.data[GIN_DATA_OFFSET : page.lower]
    return [decode_segment(s) for s in split_segments(area)]


# --------------------------------------------------------------------------- posting lists


def test_posting_list_vector() -> None:
    # first item (0,1); deltas: (0,2) - (0,1) = 1; (1,1) - (0,2) = 2048 - 1 = 2047 = 0xFF 0x0F
    seg, n = compress_posting_list([(0, 1), (0, 2), (1, 1)])
    assert n == 3
    assert seg == bytes([0, 0, 0, 0, 1, 0, 3, 0, 0x01, 0xFF, 0x0F, 0x00])
    assert decode_segment(seg) == [(0, 1), (0, 2), (1, 1)]
    # the largest item pointer after (0,1) needs 7 bytes, the last one taking 8 bits
    top = (0xFFFFFFFF, 2047)
    seg, _ = compress_posting_list([(0, 1), top])
    assert seg[6] == 7 and decode_segment(seg) == [(0, 1), top]


def test_compression_stops_at_maxsize() -> None:
    items = [(b, 1) for b in range(0, 4000, 3)]
    seg, n = compress_posting_list(items, maxsize=64)
    assert len(seg) <= 64 and 1 < n < len(items) and decode_segment(seg) == items[:n]


# --------------------------------------------------------------------------- posting trees


def test_create_ptree_builds_a_compressed_root_leaf() -> None:
    s1, _ = compress_posting_list([(1, 1), (1, 5)])
    s2, _ = compress_posting_list([(9, 2)])
    page = redo(None, GinCreatePtree(s1 + s2), [blk(0, will_init=True)])
    assert GinOpaque.unpack(page.data) == GinOpaque(INVALID_BLOCK, 0, GIN_DATA | GIN_LEAF | GIN_COMPRESSED)
    assert page.lower == GIN_DATA_OFFSET + len(s1) + len(s2) and page.upper == page.special == 8184
    assert page.data[GIN_DATA_OFFSET : page.lower] == s1 + s2 and page.lsn == LSN


def test_data_leaf_insert_applies_each_segment_action() -> None:
    segs = [compress_posting_list(i)[0] for i in ([(1, 1), (1, 2)], [(2, 1)], [(3, 1), (3, 9)], [(4, 4)])]
    page = leaf_page(segs)
    new, _ = compress_posting_list([(2, 5), (2, 6)])
    actions = (SegmentAction(0, GIN_SEGMENT_ADDITEMS, items=((1, 3), (1, 2))),
               SegmentAction(1, GIN_SEGMENT_DELETE),
               SegmentAction(2, GIN_SEGMENT_INSERT, new),
               SegmentAction(2, GIN_SEGMENT_REPLACE, compress_posting_list([(3, 2)])[0]),
               SegmentAction(4, GIN_SEGMENT_INSERT, compress_posting_list([(8, 8)])[0]))
    out = redo(page, GinInsert(True, True, LeafActions(actions)), [blk(0)])
    # ADDITEMS merges (an item already there is kept once); segment 3 is untouched
    assert items_of(out) == [[(1, 1), (1, 2), (1, 3)], [(2, 5), (2, 6)], [(3, 2)], [(4, 4)], [(8, 8)]]
    assert out.lsn == LSN


def test_vacuum_leaf_shrinks_the_data_and_leaves_old_bytes_past_pd_lower() -> None:
    segs = [compress_posting_list(i)[0] for i in ([(1, 1), (1, 2), (1, 3)], [(2, 1)])]
    page = leaf_page(segs)
    before = page.to_bytes()
    out = redo(page, GinVacuumDataLeafPage(LeafActions((SegmentAction(0, GIN_SEGMENT_DELETE),))), [blk(0)])
    assert items_of(out) == [[(2, 1)]]
    assert out.lower == GIN_DATA_OFFSET + len(segs[1])
    # ginRedoRecompress writes the new data from the start and does not clear what follows
    assert out.data[out.lower : GIN_DATA_OFFSET + len(segs[0]) + len(segs[1])] == \
        before[GIN_DATA_OFFSET + len(segs[1]) : GIN_DATA_OFFSET + len(segs[0]) + len(segs[1])]


def test_an_uncompressed_leaf_is_converted_first() -> None:
    page = Page()
    gin_init_page(page, GIN_DATA | GIN_LEAF)
    page.data[GIN_DATA_OFFSET : GIN_DATA_OFFSET + 12] = struct.pack("<6H", 0, 1, 1, 0, 1, 4)
    GinOpaque(INVALID_BLOCK, 2, GIN_DATA | GIN_LEAF).write(page)
    page.lsn = OLD_LSN
    out = redo(page, GinInsert(True, True, LeafActions((SegmentAction(0, GIN_SEGMENT_ADDITEMS, items=((5, 5),)),))),
               [blk(0)])
    assert GinOpaque.unpack(out.data) == GinOpaque(INVALID_BLOCK, 0, GIN_DATA | GIN_LEAF | GIN_COMPRESSED)
    assert items_of(out) == [[(1, 1), (1, 4), (5, 5)]]


def test_unknown_leaf_action_is_postgres_error() -> None:
    page = leaf_page([compress_posting_list([(1, 1)])[0]])
    leaf = LeafActions.decode(struct.pack("<HBB", 2, 0, 7) + b"junk", "test")
    assert leaf.count == 2 and len(leaf.actions) == 1
    with pytest.raises(RedoError, match="unexpected GIN leaf action: 7"):
        redo(page, GinInsert(True, True, leaf), [blk(0)])


def _internal(children: list[int]) -> Page:
    page = Page()
    gin_init_page(page, GIN_DATA)
    for i, c in enumerate(children):
        add_posting_item(page, PostingItem(c, 10 * (i + 1), 1), 0)
    page.lsn = OLD_LSN
    return page


def test_internal_data_insert_moves_the_downlink_to_the_right_child() -> None:
    page = _internal([11, 12, 13])
    body = GinInsert(True, False, InternalInsert(2, PostingItem(12, 15, 3)), 12, 40)
    out = redo(page, body, [blk(0), blk(1, 12)])
    assert posting_items(out) == [PostingItem(11, 10, 1), PostingItem(12, 15, 3), PostingItem(40, 20, 1),
                                  PostingItem(13, 30, 1)]
    assert GinOpaque.unpack(out.data).maxoff == 4 and out.lower == GIN_DATA_OFFSET + 40


def test_non_leaf_insert_clears_the_childs_incomplete_split() -> None:
    child = leaf_page([compress_posting_list([(1, 1)])[0]],
                      GIN_DATA | GIN_LEAF | GIN_COMPRESSED | GIN_INCOMPLETE_SPLIT)
    body = GinInsert(True, False, InternalInsert(1, PostingItem(7, 1, 1)), 7, 8)
    out = redo(child, body, [blk(0, 3), blk(1, 7)])
    assert GinOpaque.unpack(out.data).flags == GIN_DATA | GIN_LEAF | GIN_COMPRESSED and out.lsn == LSN
    assert out.data[24 : out.lower] == child.data[24 : child.lower]


def test_delete_page_from_each_of_its_pages() -> None:
    body = GinDeletePage(2, 99, 1234)
    blocks = [blk(0, 7), blk(1, 8), blk(2, 9)]
    deleted = redo(leaf_page([]), body, blocks, blkno=7)
    assert GinOpaque.unpack(deleted.data).flags & GIN_DELETED and deleted.prune_xid == 1234
    parent = redo(_internal([5, 7, 6]), body, blocks, blkno=8)
    assert posting_items(parent) == [PostingItem(5, 10, 1), PostingItem(6, 30, 1)]
    assert parent.lower == GIN_DATA_OFFSET + 20
    # the old last item stays past pd_lower, as GinPageDeletePostingItem's memmove leaves it
    assert PostingItem.unpack(parent.data, GIN_DATA_OFFSET + 20) == PostingItem(6, 30, 1)
    left = redo(leaf_page([]), body, blocks, blkno=9)
    assert GinOpaque.unpack(left.data).rightlink == 99


# --------------------------------------------------------------------------- entry tree


def _entry(tuples: list[bytes], flags: int = GIN_LEAF) -> Page:
    page = Page()
    gin_init_page(page, flags)
    for t in tuples:
        page.add_item(t)
    page.lsn = OLD_LSN
    return page


def test_entry_leaf_insert_and_replace() -> None:
    page = _entry([tup(b"a"), tup(b"c")])
    out = redo(page, GinInsert(False, True, EntryInsert(2, False, tup(b"b"))), [blk(0)])
    assert [out.item(i) for i in (1, 2, 3)] == [tup(b"a"), tup(b"b"), tup(b"c")]
    out = redo(page, GinInsert(False, True, EntryInsert(2, True, tup(b"cc", (4, 4)))), [blk(0)])
    assert [out.item(i) for i in (1, 2)] == [tup(b"a"), tup(b"cc", (4, 4))] and out.max_offset() == 2


def test_entry_internal_insert_sets_the_downlink() -> None:
    page = _entry([tup(b"a", (3, 0)), tup(b"z", (4, 0))], flags=0)
    out = redo(page, GinInsert(False, False, EntryInsert(2, False, tup(b"m", (4, 0))), 4, 50),
               [blk(0), blk(1, 4)])
    assert [out.item(i) for i in (1, 2, 3)] == [tup(b"a", (3, 0)), tup(b"m", (4, 0)), tup(b"z", (50, 0))]


def test_split_restores_the_requested_page_and_skips_the_others() -> None:
    left, right = _entry([tup(b"a")]), _entry([tup(b"q")])
    body = GinSplit(REL, INVALID_BLOCK, 0, 0, 2)  # ISLEAF
    blocks = [blk(0, 7, image=xr.ImageRef.from_page(left.to_bytes(), 15)),
              blk(1, 8, image=xr.ImageRef.from_page(right.to_bytes(), 15))]
    for fl in (V, N):
        got = redo(None, body, blocks, blkno=8, flavour=fl)
        assert got.data[8:] == right.data[8:] and got.lsn == LSN


def test_neon_accepts_a_split_page_that_is_already_done_upstream_does_not() -> None:
    page = _entry([tup(b"a")])
    page.lsn = LSN + 8
    body = GinSplit(REL, INVALID_BLOCK, 0, 0, 2)
    blocks = [blk(0, 7), blk(1, 8, image=xr.ImageRef.from_page(page.to_bytes(), 15))]
    assert redo(page, body, blocks, blkno=7, flavour=N).to_bytes() == page.to_bytes()
    with pytest.raises(RedoError, match="did not contain a full-page image of left page"):
        redo(page, body, blocks, blkno=7, flavour=V)
    page.lsn = OLD_LSN  # needs redo and has no image: an error for both
    with pytest.raises(RedoError, match="did not contain a full-page image of left page"):
        redo(page, body, blocks, blkno=7, flavour=N)


def test_non_leaf_split_clears_its_childs_flag() -> None:
    child = _entry([tup(b"a")], GIN_LEAF | GIN_INCOMPLETE_SPLIT)
    image = xr.ImageRef.from_page(_entry([]).to_bytes(), 15)
    body = GinSplit(REL, INVALID_BLOCK, 7, 9, 0)
    out = redo(child, body, [blk(0, 1, image=image), blk(1, 2, image=image), blk(3, 7)], blkno=7)
    assert GinOpaque.unpack(out.data).flags == GIN_LEAF and out.lsn == LSN


def test_vacuum_page_without_its_image_neon_leaves_it_upstream_fails() -> None:
    page = _entry([tup(b"a")])
    assert redo(page, GinVacuumPage(), [blk(0)], flavour=N).to_bytes() == page.to_bytes()
    with pytest.raises(RedoError, match="replay of gin entry tree page vacuum did not restore the page"):
        redo(page, GinVacuumPage(), [blk(0)], flavour=V)
    fresh = _entry([tup(b"b")])
    got = redo(page, GinVacuumPage(), [blk(0, image=xr.ImageRef.from_page(fresh.to_bytes(), 15))])
    assert got.data[8:] == fresh.data[8:]


# --------------------------------------------------------------------------- pending list


META = GinMeta(head=3, tail=5, tail_free_size=100, n_pending_pages=2, n_pending_heap_tuples=7, n_entries=4)


def test_update_meta_rewrites_the_metapage() -> None:
    body = GinUpdateMetaPage(REL, META, INVALID_BLOCK, INVALID_BLOCK, 0)
    out = redo(_entry([tup(b"x")]), body, [blk(0, will_init=True)])
    assert GinOpaque.unpack(out.data) == GinOpaque(INVALID_BLOCK, 0, GIN_META)
    assert GinMeta.unpack(out.data, 24) == META and out.lower == 80 and out.lsn == LSN


def test_update_meta_appends_to_the_tail_or_links_it() -> None:
    tail = _entry([tup(b"a")], GIN_LIST)
    body = GinUpdateMetaPage(REL, META, INVALID_BLOCK, INVALID_BLOCK, 2, tup(b"b") + tup(b"c"))
    out = redo(tail, body, [blk(0, 0, will_init=True), blk(1, 7)])
    assert [out.item(i) for i in (1, 2, 3)] == [tup(b"a"), tup(b"b"), tup(b"c")]
    assert GinOpaque.unpack(out.data).maxoff == 1
    out = redo(tail, GinUpdateMetaPage(REL, META, 7, 12, 0), [blk(0, 0, will_init=True), blk(1, 7)])
    assert GinOpaque.unpack(out.data).rightlink == 12 and out.item(1) == tup(b"a")


def test_insert_listpage_rebuilds_the_page() -> None:
    tail = redo(None, GinInsertListPage(INVALID_BLOCK, 2, tup(b"a") + tup(b"b")), [blk(0, will_init=True)])
    assert GinOpaque.unpack(tail.data) == GinOpaque(INVALID_BLOCK, 1, GIN_LIST | GIN_LIST_FULLROW)
    assert [tail.item(1), tail.item(2)] == [tup(b"a"), tup(b"b")]
    mid = redo(None, GinInsertListPage(9, 1, tup(b"a")), [blk(0, will_init=True)])
    assert GinOpaque.unpack(mid.data) == GinOpaque(9, 0, GIN_LIST)


def test_delete_listpage_empties_the_deleted_pages() -> None:
    body = GinDeleteListPages(META, 2)
    blocks = [blk(0, 0, will_init=True), blk(1, 3, will_init=True), blk(2, 7, will_init=True)]
    out = redo(_entry([tup(b"a")], GIN_LIST), body, blocks, blkno=7)
    assert GinOpaque.unpack(out.data) == GinOpaque(INVALID_BLOCK, 0, GIN_DELETED) and out.max_offset() == 0
    meta = redo(None, body, blocks, blkno=0)
    assert GinMeta.unpack(meta.data, 24) == META


@pytest.mark.parametrize("info", [0x00, 0xB0])
def test_an_unknown_op_code_is_an_error_even_with_an_image(info: int) -> None:
    # gin_redo fails on an op code it does not know (0x00 was CREATE_INDEX before PostgreSQL 10)
    # before reading any block, so an image of the requested page is not restored either
    image = leaf_page([compress_posting_list([(1, 1)])[0]])
    ref = blk(0, image=xr.ImageRef.from_page(image.to_bytes(), 15))
    raw = xr.make_record(rmid=13, info=info, blocks=[ref], main_data=b"\0" * 8).encode()
    for flavour in (V, N):
        with pytest.raises(RedoError, match=f"Gin record info 0x{info:02X} is not supported"):
            redo_record(None, spcnode=REL[0], dbnode=REL[1], relnode=REL[2], forknum=0, blkno=7,
                        end_lsn=LSN, record=raw, pg_version=15, flavour=flavour)
