"""Hash records (rmgr 12): layouts, decoding and pg_waldump's descriptions, PostgreSQL 14-17.

``hash_case`` draws any hash record with block references as PostgreSQL registers them
(block data left out where an image is applied); ``test_pg_rmgr._record_case`` uses it, so
the typed round trip, the mutation test and pg_waldump 15 and 17 (test_pg_waldump.py) cover
every hash record. The descriptions below are hashdesc.c's, checked against the real
pg_waldump on real WAL by test_corpus_hash.py.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import strategies as st

from pytest_walredo.pg.hash_page import hash_tuple
from pytest_walredo.pg.rmgr import (
    HashAddOvflPage,
    HashDelete,
    HashInitBitmapPage,
    HashInitMetaPage,
    HashInsert,
    HashMovePageContents,
    HashSplitAllocatePage,
    HashSplitCleanup,
    HashSplitComplete,
    HashSplitPage,
    HashSqueezePage,
    HashUpdateMetaPage,
    HashVacuumOnePage,
    RmgrDecodeError,
    RmgrRecord,
    UnsupportedRecord,
    build,
    describe_record,
    parse,
)
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.xlogrecord import BlockRef, ImageRef, make_block, make_record

_REL = (1663, 5, 16384)
_u32 = st.integers(0, 2**32 - 1)
_u16 = st.integers(0, 2**16 - 1)
_off = st.integers(1, 400)
_float = st.floats(0, 1e12, allow_nan=False, allow_infinity=False) | st.integers(0, 10**7).map(float)

HASH_KINDS = ("h_init_meta", "h_init_bitmap", "h_insert", "h_add_ovfl", "h_split_alloc", "h_split_page",
              "h_split_complete", "h_move", "h_squeeze", "h_delete", "h_split_cleanup", "h_update_meta",
              "h_vacuum_one_page")


def _image(v: int) -> ImageRef:
    page = bytearray(8192)
    struct.pack_into("<HHHH", page, 12, 24, 8176, 8176, 8192 | 4)
    return ImageRef.from_page(bytes(page), v)


def _ref(draw: st.DrawFn, block_id: int, v: int, *, image: bool | None = False, will_init: bool = False) -> BlockRef:
    img = draw(st.booleans()) if image is None else image
    return make_block(block_id, _REL, draw(st.integers(0, 2**32 - 2)), image=_image(v) if img else None,
                      will_init=will_init)


def _tuples(draw: st.DrawFn, n: int) -> tuple[bytes, ...]:
    return tuple(hash_tuple(draw(_u32), draw(_u16), draw(_u16), moved_by_split=draw(st.booleans())) for _ in range(n))


def _offsets(draw: st.DrawFn, min_size: int = 1) -> tuple[int, ...]:
    return tuple(draw(st.lists(_off, min_size=min_size, max_size=6)))


def _logged(draw: st.DrawFn) -> bool:
    """Whether a block's data is logged (else an image is applied instead)."""
    return draw(st.booleans())


def hash_case(draw: st.DrawFn, kind: str, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """One hash record of ``kind`` (a name of HASH_KINDS) and its block references."""
    if kind == "h_init_meta":
        return HashInitMetaPage(draw(_float), draw(_u32), draw(_u16)), [_ref(draw, 0, v, will_init=True)]
    if kind == "h_init_bitmap":
        return HashInitBitmapPage(draw(_u16)), [_ref(draw, 0, v, will_init=True), _ref(draw, 1, v, image=None)]
    if kind == "h_insert":
        logged = _logged(draw)
        tup = _tuples(draw, 1)[0] if logged else b""
        return HashInsert(draw(_off), tup), [_ref(draw, 0, v, image=not logged), _ref(draw, 1, v, image=None)]
    if kind == "h_add_ovfl":
        found, new_map, map_logged, meta_logged = (draw(st.booleans()) for _ in range(4))
        new_map = new_map and not found
        body: RmgrRecord = HashAddOvflPage(draw(_u16), found, draw(_u32), draw(_u32) if found and map_logged else None,
                                           draw(_u32) if meta_logged else None)
        blocks = [_ref(draw, 0, v, will_init=True), _ref(draw, 1, v, image=None)]
        if found:
            blocks.append(_ref(draw, 2, v, image=not map_logged))
        if new_map:
            blocks.append(_ref(draw, 3, v, will_init=True))
        return body, [*blocks, _ref(draw, 4, v, image=not meta_logged)]
    if kind == "h_split_alloc":
        flags = draw(st.integers(0, 3))
        logged = flags == 0 or _logged(draw)
        masks = (draw(_u32), draw(_u32)) if logged and flags & 1 else None
        splitpoint = (draw(st.integers(0, 97)), draw(_u32)) if logged and flags & 2 else None
        body = HashSplitAllocatePage(draw(_u32), draw(_u16), draw(_u16), flags, masks, splitpoint)
        return body, [_ref(draw, 0, v, image=None), _ref(draw, 1, v, will_init=True), _ref(draw, 2, v, image=not logged)]
    if kind == "h_split_page":
        return HashSplitPage(), [_ref(draw, 0, v, image=True)]
    if kind == "h_split_complete":
        return HashSplitComplete(draw(_u16), draw(_u16)), [_ref(draw, 0, v, image=None), _ref(draw, 1, v, image=None)]
    if kind in ("h_move", "h_squeeze"):
        prim = draw(st.booleans())
        n = draw(st.integers(1 if kind == "h_move" else 0, 4))
        logged = n > 0 and _logged(draw)
        towrite = tuple(draw(st.lists(_off, min_size=n, max_size=n))) if logged else None
        tuples = _tuples(draw, n) if logged else None
        blocks = [] if prim else [_ref(draw, 0, v)]
        blocks.append(_ref(draw, 1, v, image=n > 0 and not logged))
        if kind == "h_move":
            deleted = _offsets(draw) if _logged(draw) else None
            blocks.append(_ref(draw, 2, v, image=deleted is None))
            return HashMovePageContents(n, prim, towrite, tuples, deleted), blocks
        prev_same = draw(st.booleans())
        bit = draw(_u32) if _logged(draw) else None
        firstfree = draw(st.none() | _u32)
        blocks.append(_ref(draw, 2, v, image=None))
        if not prev_same:
            blocks.append(_ref(draw, 3, v, image=None))
        if draw(st.booleans()):
            blocks.append(_ref(draw, 4, v, image=None))
        blocks.append(_ref(draw, 5, v, image=bit is None))
        if firstfree is not None or draw(st.booleans()):
            blocks.append(_ref(draw, 6, v, image=firstfree is None))
        body = HashSqueezePage(draw(_u32), draw(_u32), n, prim, prev_same, towrite, tuples, bit, firstfree)
        return body, blocks
    if kind == "h_delete":
        prim = draw(st.booleans())
        deleted = _offsets(draw) if _logged(draw) else None
        blocks = ([] if prim else [_ref(draw, 0, v)]) + [_ref(draw, 1, v, image=deleted is None)]
        return HashDelete(draw(st.booleans()), prim, deleted), blocks
    if kind == "h_split_cleanup":
        return HashSplitCleanup(), [_ref(draw, 0, v, image=None)]
    if kind == "h_update_meta":
        return HashUpdateMetaPage(draw(_float)), [_ref(draw, 0, v, image=None)]
    assert kind == "h_vacuum_one_page"
    deleted = _offsets(draw, 0)
    pad = draw(st.binary(min_size=1, max_size=1))
    body = HashVacuumOnePage(draw(_u32), len(deleted), deleted, v >= 16 and draw(st.booleans()), pad)
    return body, [_ref(draw, 0, v, image=None), _ref(draw, 1, v, image=None)]


# --------------------------------------------------------------------------- descriptions

_B = [make_block(i, _REL, 10 + i) for i in range(7)]
_TUP = hash_tuple(0xDEADBEEF, 1, 2)

_DESCRIPTIONS: list[tuple[RmgrRecord, list[BlockRef], str, str]] = [
    (HashInitMetaPage(4000.0, 450, 307), _B[:1], "INIT_META_PAGE", "num_tuples 4000, fillfactor 307"),
    (HashInitMetaPage(1234567.0, 450, 10), _B[:1], "INIT_META_PAGE", "num_tuples 1.23457e+06, fillfactor 10"),
    (HashInitBitmapPage(4096), _B[:2], "INIT_BITMAP_PAGE", "bmsize 4096"),
    (HashInsert(7, _TUP), _B[:2], "INSERT", "off 7"),
    (HashAddOvflPage(4096, True, 3, 5, 6), _B[:3] + _B[4:5], "ADD_OVFL_PAGE", "bmsize 4096, bmpage_found T"),
    (HashSplitAllocatePage(9, 0x22, 0x12, 3, (7, 15), (4, 2)), _B[:3], "SPLIT_ALLOCATE_PAGE",
     "new_bucket 9, meta_page_masks_updated T, issplitpoint_changed T"),
    (HashSplitAllocatePage(5, 0x22, 0x12, 0), _B[:3], "SPLIT_ALLOCATE_PAGE",
     "new_bucket 5, meta_page_masks_updated F, issplitpoint_changed F"),
    (HashSplitComplete(0x42, 2), _B[:2], "SPLIT_COMPLETE", "old_bucket_flag 66, new_bucket_flag 2"),
    (HashMovePageContents(1, False, (3,), (_TUP,), (1,)), _B[:3], "MOVE_PAGE_CONTENTS", "ntups 1, is_primary F"),
    (HashSqueezePage(4, 0xFFFFFFFF, 0, True, False, None, None, 9), _B[1:4] + _B[5:6], "SQUEEZE_PAGE",
     "prevblkno 4, nextblkno 4294967295, ntups 0, is_primary T"),
    (HashDelete(True, False, (2, 3)), _B[:2], "DELETE", "clear_dead_marking T, is_primary F"),
    (HashSplitCleanup(), _B[:1], "SPLIT_CLEANUP", ""),
    (HashSplitPage(), [make_block(0, _REL, 10, image=_image(15))], "SPLIT_PAGE", ""),
    (HashUpdateMetaPage(2.5), _B[:1], "UPDATE_META_PAGE", "ntuples 2.5"),
]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize(("body", "blocks", "name", "desc"), _DESCRIPTIONS, ids=[d[2] + str(i) for i, d in
                                                                               enumerate(_DESCRIPTIONS)])
def test_descriptions_are_the_same_in_every_version(body: RmgrRecord, blocks: list[BlockRef], name: str, desc: str,
                                                    version: int) -> None:
    rec = build(body, blocks, pg_version=version)
    d = describe_record(rec, version, Flavour.NEON)
    assert (rec.rmid, d.rmgr, d.name, d.desc) == (12, "Hash", name, desc)
    assert parse(rec, version, Flavour.VANILLA) == body


def test_vacuum_one_page_layout_and_description_changed_in_16() -> None:
    body = HashVacuumOnePage(731, 2, (4, 9))
    old = build(body, _B[:2], pg_version=15)
    assert old.main_data == struct.pack("<Ii", 731, 2) + struct.pack("<2H", 4, 9)
    assert describe_record(old, 15).desc == "ntuples 2, latestRemovedXid 731"
    new = build(HashVacuumOnePage(731, 2, (4, 9), True, b"\x7f"), _B[:2], pg_version=16)
    assert new.main_data == struct.pack("<IH?", 731, 2, True) + b"\x7f" + struct.pack("<2H", 4, 9)
    assert describe_record(new, 17).desc == "ntuples 2, snapshotConflictHorizon 731, isCatalogRel T"
    assert describe_record(new, 16).desc == "ntuples 2, snapshotConflictHorizon 731"  # not printed in 16
    again = parse(new, 16)
    assert isinstance(again, HashVacuumOnePage) and again.pad == b"\x7f"
    assert build(again, _B[:2], pg_version=16).encode() == new.encode()
    with pytest.raises(ValueError, match="isCatalogRel exists from PostgreSQL 16"):
        build(HashVacuumOnePage(1, 0, (), True), _B[:2], pg_version=15)


def test_block_data_layouts() -> None:
    rec = build(HashSplitAllocatePage(9, 0x22, 0x12, 2, None, (4, 11)), _B[:3], pg_version=15)
    assert rec.main_data == struct.pack("<IHHB", 9, 0x22, 0x12, 2)
    assert rec.blocks[2].data == struct.pack("<II", 4, 11)
    rec = build(HashSqueezePage(4, 7, 2, True, True, (3, 5), (_TUP, _TUP), 12, 3), [_B[1], _B[2], _B[4], _B[5], _B[6]],
                pg_version=17)
    assert rec.main_data == struct.pack("<IIH??", 4, 7, 2, True, True)
    assert rec.blocks[0].data == struct.pack("<2H", 3, 5) + _TUP + _TUP
    assert (rec.blocks[3].data, rec.blocks[4].data) == (struct.pack("<I", 12), struct.pack("<I", 3))
    rec = build(HashAddOvflPage(4096, False, 77, None, 5), [_B[0], _B[1], _B[3], _B[4]], pg_version=14)
    assert rec.main_data == struct.pack("<H?", 4096, False) and rec.blocks[0].data == struct.pack("<I", 77)
    assert rec.blocks[2].data == b"" and rec.blocks[3].data == struct.pack("<I", 5)


@pytest.mark.parametrize(("info", "main", "blocks", "message"), [
    (0x00, b"\0" * 13, {}, "INIT_META_PAGE main data is 13 bytes, expected 14"),
    (0x30, struct.pack("<HB", 4096, 2), {}, "bmpage_found is 2"),
    (0x40, struct.pack("<IHHB", 1, 2, 2, 3), {2: b"\0" * 8}, "block 2 data is 8 bytes for flags 0x03"),
    (0x70, struct.pack("<HB", 2, 0), {1: struct.pack("<2H", 1, 2) + _TUP}, "logs 1 index tuples for ntups 2"),
    (0x80, struct.pack("<IIHBB", 1, 2, 0, 1, 0), {1: b"\x01\x00"}, "write page data for ntups 0"),
    (0x90, b"\0\0", {1: b"\x01\x00\x02"}, "not a whole number of offsets"),
    (0xC0, struct.pack("<Ii", 1, 3) + b"\x01\x00", {}, "main data is 10 bytes for ntuples 3"),
])
def test_malformed_records_are_decode_errors(info: int, main: bytes, blocks: dict[int, bytes], message: str) -> None:
    refs = [make_block(i, _REL, i + 1, data=d) for i, d in sorted(blocks.items())]
    rec = make_record(rmid=12, info=info, main_data=main, blocks=refs)
    with pytest.raises(RmgrDecodeError, match=message):
        parse(rec, 15)


def test_unknown_opcode_is_unsupported() -> None:
    with pytest.raises(UnsupportedRecord, match=r"rmgr Hash info 0xD0 is not a hash record"):
        parse(make_record(rmid=12, info=0xD0), 15)


def test_empty_arrays_are_refused_as_no_data() -> None:
    with pytest.raises(ValueError, match="empty array is logged as no data"):
        build(HashDelete(True, True, ()), _B[1:2], pg_version=15)
    with pytest.raises(ValueError, match="flags 0x01 disagree"):
        build(HashSplitAllocatePage(1, 2, 2, 1, None, (1, 2)), _B[:3], pg_version=15)
