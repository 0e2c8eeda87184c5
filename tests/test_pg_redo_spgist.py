"""Redo of every SP-GiST record on pages built by hand; each expected page is written out from
PostgreSQL's routines (spgxlog.c, spgdoinsert.c, spgutils.c, bufpage.c), field by field.
(Every kind is also checked against real PostgreSQL 14-17 WAL in test_corpus_gist_spgist.py.)"""

from __future__ import annotations

import struct

import pytest

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import RedoError, redo_record
from pytest_walredo.pg.spgist_page import (
    SGDTSIZE,
    SPGIST_DEAD,
    SPGIST_LEAF,
    SPGIST_NULLS,
    SPGIST_PAGE_ID,
    SPGIST_PLACEHOLDER,
    SPGIST_REDIRECT,
    SpgOpaque,
    dead_tuple,
    spg_init_page,
    tuple_state,
)
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour

REL = (1663, 5, 16384)
OLD_LSN = 0x1_0000_0100
LSN = 0x1_0000_2000
XID = 0x777


def leaf(key: int, *, nxt: int = 0, size: int = 24) -> bytes:
    """A live leaf tuple: state 0 and size, t_info = nextOffset, heap TID (1, key), key bytes."""
    return struct.pack("<IHHHH", size << 2, nxt, 0, 1, key) + bytes([key & 0xFF]) * (size - 12)


def node(blk: int, off: int) -> bytes:
    """A node IndexTuple pointing at (blk, off), 8 bytes: no label."""
    return struct.pack("<HHHH", blk >> 16, blk & 0xFFFF, off, 8)


def inner(nodes: list[tuple[int, int]], *, prefix: bytes = b"") -> bytes:
    """A live inner tuple: the state/nNodes/prefixSize word, its size, 2 pad, prefix, nodes."""
    body = prefix + b"".join(node(b, o) for b, o in nodes)
    size = 8 + len(body)
    return struct.pack("<IHH", (len(nodes) << 3) | (len(prefix) << 16), size, 0) + body


def page_of(tuples: list[bytes], *, flags: int = SPGIST_LEAF, nred: int = 0, nph: int = 0) -> Page:
    p = Page()
    spg_init_page(p, flags)
    for i, t in enumerate(tuples, start=1):
        assert p.add_item(t, i) == i
    SpgOpaque(flags, nred, nph).write(p)
    p.lsn = OLD_LSN
    return p


def items(p: Page) -> list[bytes]:
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def block(blkno: int, block_id: int, *, will_init: bool = False) -> xr.BlockRef:
    return xr.make_block(block_id, REL, blkno, will_init=will_init)


def redo(page: Page | None, body: rmgr.RmgrRecord, blocks: list[xr.BlockRef], *, blkno: int = 3,
         v: int = 17) -> Page:
    raw = rmgr.build(body, blocks, pg_version=v).encode()
    out = redo_record(page.to_bytes() if page is not None else None, spcnode=REL[0], dbnode=REL[1],
                      relnode=REL[2], forknum=0, blkno=blkno, end_lsn=LSN, record=raw, pg_version=v,
                      flavour=Flavour.VANILLA)
    return Page(out) if out is not None else Page()


def want(tuples: list[bytes], **kw: int) -> Page:
    p = page_of(tuples, **kw)
    p.lsn = LSN
    return p


def redirect(blk: int, off: int) -> bytes:
    return dead_tuple(SPGIST_REDIRECT, blk, off, XID)


PLACEHOLDER = dead_tuple(SPGIST_PLACEHOLDER)


def _add_leaf(off: int, head: int, tup: bytes, *, new: bool = False, parent: int = 0, node_i: int = 0,
              nulls: bool = False) -> rmgr.SpgAddLeaf:
    return rmgr.SpgAddLeaf(new, nulls, off, head, parent, node_i, tup)


# --------------------------------------------------------------------------- the tuples


def test_dead_tuples_are_16_bytes_and_only_a_redirect_keeps_its_target() -> None:
    assert len(PLACEHOLDER) == SGDTSIZE == 16
    assert PLACEHOLDER == struct.pack("<IHHHHI", 3 | (16 << 2), 0, 0xFFFF, 0xFFFF, 0, 0)
    assert redirect(0x12345, 7) == struct.pack("<IHHHHI", 1 | (16 << 2), 0, 1, 0x2345, 7, XID)
    assert dead_tuple(SPGIST_DEAD, 5, 5, 99) == struct.pack("<IHHHHI", 2 | (16 << 2), 0, 0xFFFF, 0xFFFF, 0, 0)


# --------------------------------------------------------------------------- ADD_LEAF


def test_add_leaf_to_a_new_page_initializes_it() -> None:
    got = redo(None, _add_leaf(1, 0, leaf(1), new=True, nulls=True), [block(3, 0, will_init=True)])
    assert items(got) == [leaf(1)]
    assert SpgOpaque.read(got) == SpgOpaque(SPGIST_LEAF | SPGIST_NULLS, 0, 0, SPGIST_PAGE_ID)
    assert got.special == 8192 - 8 and got.lsn == LSN


def test_add_leaf_links_the_chain_head_to_the_new_tuple() -> None:
    before = page_of([leaf(1, nxt=0), leaf(2, nxt=0)])
    before.data[before.item_id(2).off + 4 : before.item_id(2).off + 6] = struct.pack("<H", 0x8000)  # a flag bit
    got = redo(before, _add_leaf(3, 2, leaf(3)), [block(3, 0)])
    assert items(got)[:1] == [leaf(1)] and items(got)[2] == leaf(3)
    assert struct.unpack_from("<H", items(got)[1], 4)[0] == 0x8000 | 3  # the flag bit kept


def test_add_leaf_replaces_a_placeholder_and_counts_it_gone() -> None:
    before = page_of([leaf(1), PLACEHOLDER, leaf(3)], nph=1)
    got = redo(before, _add_leaf(2, 0, leaf(9)), [block(3, 0)])
    assert items(got) == [leaf(1), leaf(9), leaf(3)]
    assert SpgOpaque.read(got).n_placeholder == 0


def test_add_leaf_over_a_live_tuple_is_an_error() -> None:
    before = page_of([leaf(1), leaf(2)])
    with pytest.raises(RedoError, match="SPGiST tuple to be replaced is not a placeholder"):
        redo(before, _add_leaf(2, 0, leaf(9)), [block(3, 0)])


def test_add_leaf_with_equal_offsets_replaces_a_dead_tuple() -> None:
    before = page_of([leaf(1), dead_tuple(SPGIST_DEAD)])
    got = redo(before, _add_leaf(2, 2, leaf(9)), [block(3, 0)])
    assert items(got) == [leaf(1), leaf(9)]


def test_add_leaf_updates_the_parents_node() -> None:
    parent = page_of([inner([(1, 1)]), inner([(4, 4), (5, 5), (6, 6)])], flags=0)
    got = redo(parent, _add_leaf(7, 0, leaf(1), parent=2, node_i=1), [block(40, 0), block(3, 1)])
    assert items(got) == [inner([(1, 1)]), inner([(4, 4), (40, 7), (6, 6)])]
    with pytest.raises(RedoError, match="failed to find requested node 3 in SPGiST inner tuple"):
        redo(parent, _add_leaf(7, 0, leaf(1), parent=2, node_i=3), [block(40, 0), block(3, 1)])


def test_add_leaf_without_parent_leaves_the_other_page() -> None:
    p = page_of([inner([(1, 1)])], flags=0)
    assert redo(p, _add_leaf(7, 0, leaf(1)), [block(40, 0), block(3, 1)]).data == p.data


# --------------------------------------------------------------------------- MOVE_LEAFS


def _move(todelete: tuple[int, ...], toinsert: tuple[int, ...], tuples: tuple[bytes, ...], *,
          dead: bool = False, build: bool = False, new: bool = False) -> rmgr.SpgMoveLeafs:
    return rmgr.SpgMoveLeafs(len(todelete), new, dead, False, 2, 1, XID, build, todelete, toinsert, tuples)


def test_move_leafs_fills_the_destination_and_redirects_the_source() -> None:
    body = _move((3, 1), (1, 2, 3), (leaf(1), leaf(3), leaf(7)), new=True)
    blocks = [block(3, 0), block(9, 1, will_init=True), block(20, 2)]
    dst = redo(None, body, blocks, blkno=9)
    assert items(dst) == [leaf(1), leaf(3), leaf(7)]
    src = redo(page_of([leaf(1), leaf(2), leaf(3)]), body, blocks)
    # the first listed offset (3) becomes the REDIRECT to the last inserted tuple, the others PLACEHOLDERs
    assert items(src) == [PLACEHOLDER, leaf(2), redirect(9, 3)]
    assert SpgOpaque.read(src) == SpgOpaque(SPGIST_LEAF, 1, 1)
    parent = redo(page_of([inner([(1, 1)]), inner([(3, 1), (3, 3)])], flags=0), body, blocks, blkno=20)
    assert items(parent)[1] == inner([(3, 1), (9, 3)])


def test_move_leafs_during_a_build_leaves_placeholders_only() -> None:
    body = _move((2,), (1,), (leaf(2),), dead=True, build=True)
    src = redo(page_of([leaf(1), leaf(2)]), body, [block(3, 0), block(9, 1), block(20, 2)])
    assert items(src) == [leaf(1), PLACEHOLDER] and SpgOpaque.read(src).n_placeholder == 1


# --------------------------------------------------------------------------- ADD_NODE


def _add_node(tup: bytes, *, off: int = 2, new_off: int = 0, parent_blk: int = -1,
              build: bool = False, new: bool = False) -> rmgr.SpgAddNode:
    return rmgr.SpgAddNode(off, new_off, new, parent_blk, 1, 0, XID, build, tup)


def test_add_node_in_place() -> None:
    before = page_of([inner([(1, 1)]), inner([(2, 2)])], flags=0)
    got = redo(before, _add_node(inner([(2, 2), (0xFFFFFFFF, 0)])), [block(3, 0)])
    assert items(got) == [inner([(1, 1)]), inner([(2, 2), (0xFFFFFFFF, 0)])]


@pytest.mark.parametrize("build", [False, True])
def test_add_node_moving_the_tuple_leaves_a_redirect_and_updates_the_parent(build: bool) -> None:
    grown = inner([(2, 2), (5, 5)])
    body = _add_node(grown, new_off=1, parent_blk=0, build=build)
    blocks = [block(3, 0), block(8, 1)]
    old = redo(page_of([inner([(3, 2)]), inner([(2, 2)])], flags=0), body, blocks)
    dead = PLACEHOLDER if build else redirect(8, 1)
    # the parent (item 1, on the old page) is relinked to the moved tuple at (8, 1)
    assert items(old) == [inner([(8, 1)]), dead]
    assert SpgOpaque.read(old) == (SpgOpaque(0, 0, 1) if build else SpgOpaque(0, 1, 0))
    new = redo(page_of([], flags=0), body, blocks, blkno=8)
    assert items(new) == [grown]


def test_add_node_with_a_third_parent_page() -> None:
    body = _add_node(inner([(1, 1)]), new_off=1, parent_blk=2)
    parent = redo(page_of([inner([(3, 2)])], flags=0), body, [block(4, 0), block(8, 1), block(3, 2)])
    assert items(parent) == [inner([(8, 1)])]


# --------------------------------------------------------------------------- SPLIT_TUPLE


def test_split_tuple_on_one_page() -> None:
    prefix, postfix = inner([(0, 3)], prefix=b"abcdefgh"), inner([(6, 6), (7, 7)])
    body = rmgr.SpgSplitTuple(1, 3, False, True, prefix, postfix)
    got = redo(page_of([inner([(5, 5)]), inner([(2, 2)]), PLACEHOLDER], flags=0, nph=1), body, [block(3, 0)])
    assert items(got) == [prefix, inner([(2, 2)]), postfix] and SpgOpaque.read(got).n_placeholder == 0


def test_split_tuple_onto_a_new_page() -> None:
    prefix, postfix = inner([(9, 1)]), inner([(6, 6)])
    body = rmgr.SpgSplitTuple(1, 1, True, False, prefix, postfix)
    blocks = [block(3, 0), block(9, 1, will_init=True)]
    assert items(redo(None, body, blocks, blkno=9)) == [postfix]
    assert SpgOpaque.read(redo(None, body, blocks, blkno=9)).flags == 0
    assert items(redo(page_of([inner([(5, 5)])], flags=0), body, blocks)) == [prefix]


# --------------------------------------------------------------------------- PICKSPLIT


def _pick(**kw: object) -> rmgr.SpgPickSplit:
    args: dict[str, object] = dict(is_root_split=False, ndelete=2, ninsert=3, init_src=False, init_dest=True,
                                   off_inner=2, init_inner=False, stores_nulls=False, inner_is_parent=False,
                                   off_parent=1, node_i=0, redirect_xid=XID, is_build=False, todelete=(1, 2),
                                   toinsert=(2, 3, 1), select=bytes([0, 0, 1]),
                                   inner=inner([(3, 1), (11, 1)]), tuples=(leaf(5), leaf(6), leaf(7)))
    args.update(kw)
    return rmgr.SpgPickSplit(**args)  # type: ignore[arg-type]


def test_picksplit_spreads_the_leaves_by_their_selector() -> None:
    body = _pick()
    blocks = [block(3, 0), block(11, 1, will_init=True), block(20, 2), block(30, 3)]
    src = redo(page_of([leaf(1), leaf(2)]), body, blocks)
    # the deleted items become a REDIRECT to the inner tuple (20, 2) and a PLACEHOLDER, which the
    # first new leaf replaces; the second is appended
    assert items(src) == [redirect(20, 2), leaf(5), leaf(6)]
    assert SpgOpaque.read(src) == SpgOpaque(SPGIST_LEAF, 1, 0)
    assert items(redo(None, body, blocks, blkno=11)) == [leaf(7)]
    innerp = redo(page_of([inner([(1, 1)])], flags=0), body, blocks, blkno=20)
    assert items(innerp) == [inner([(1, 1)]), inner([(3, 1), (11, 1)])]
    parent = redo(page_of([inner([(3, 1)])], flags=0), body, blocks, blkno=30)
    assert items(parent) == [inner([(20, 2)])]


def test_picksplit_of_the_root_reinitializes_it_as_the_inner_page() -> None:
    body = _pick(is_root_split=True, ndelete=0, todelete=(), toinsert=(1, 2, 3), select=bytes([1, 1, 1]),
                 init_inner=True, off_inner=1)
    blocks = [block(11, 1, will_init=True), block(0, 2, will_init=True)]
    root = redo(page_of([leaf(1)]), body, blocks, blkno=0)
    assert items(root) == [inner([(3, 1), (11, 1)])] and SpgOpaque.read(root).flags == 0
    assert items(redo(None, body, blocks, blkno=11)) == [leaf(5), leaf(6), leaf(7)]


def test_picksplit_inner_page_is_the_parent() -> None:
    body = _pick(inner_is_parent=True, off_inner=2, off_parent=1, node_i=1)
    blocks = [block(3, 0), block(11, 1, will_init=True), block(20, 2)]
    got = redo(page_of([inner([(3, 3), (3, 1)])], flags=0), body, blocks, blkno=20)
    assert items(got) == [inner([(3, 3), (20, 2)]), inner([(3, 1), (11, 1)])]


# --------------------------------------------------------------------------- VACUUM_*


def test_vacuum_leaf_kills_moves_and_rechains() -> None:
    before = page_of([leaf(1, nxt=2), leaf(2, nxt=3), leaf(3), leaf(4), leaf(5)])
    body = rmgr.SpgVacuumLeaf(XID, False, (2,), (3,), (5,), (4,), (1,), (4,))
    got = redo(before, body, [block(3, 0)])
    dead_, ph = dead_tuple(SPGIST_DEAD), PLACEHOLDER
    # 2 DEAD, 3 PLACEHOLDER; 5 moved into 4's slot (line pointers swapped), then 5 a PLACEHOLDER
    assert [tuple_state(t) for t in items(got)] == [0, SPGIST_DEAD, SPGIST_PLACEHOLDER, 0, SPGIST_PLACEHOLDER]
    assert items(got)[1:3] == [dead_, ph] and items(got)[3] == leaf(5) and items(got)[4] == ph
    assert struct.unpack_from("<H", items(got)[0], 4)[0] == 4
    assert SpgOpaque.read(got).n_placeholder == 2


def test_vacuum_root_deletes_the_items() -> None:
    got = redo(page_of([leaf(1), leaf(2), leaf(3)]), rmgr.SpgVacuumRoot(XID, False, (1, 3)), [block(0, 0)], blkno=0)
    assert items(got) == [leaf(2)]


@pytest.mark.parametrize("v", SUPPORTED_VERSIONS)
def test_vacuum_redirect_makes_placeholders_and_drops_the_trailing_ones(v: int) -> None:
    before = page_of([redirect(5, 5), inner([(1, 1)]), redirect(6, 6), PLACEHOLDER], flags=0, nred=2, nph=1)
    body = rmgr.SpgVacuumRedirect(3, 55, (1, 3), v >= 16)
    got = redo(before, body, [block(3, 0)], v=v)
    # 1 and 3 become PLACEHOLDERs (pointer invalid, xid kept); from 3 on the items go
    assert items(got) == [struct.pack("<IHHHHI", 3 | (16 << 2), 0, 0xFFFF, 0xFFFF, 0, XID), inner([(1, 1)])]
    assert SpgOpaque.read(got) == SpgOpaque(0, 0, 1)


def test_records_apply_once() -> None:
    before = page_of([leaf(1)])
    before.lsn = LSN
    assert redo(before, rmgr.SpgVacuumRoot(XID, False, (1,)), [block(3, 0)]).data == before.data
