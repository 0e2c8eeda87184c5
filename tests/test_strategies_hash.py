"""The hash record kinds in the strategies: drawn sequences, replayed record by record, do what
each record *says* to the page (read back from the decoded record and the page before it,
not from the drawer's choices), for every block of every hash record, every version and
flavour:

- a new metapage holds enough buckets for num_tuples / ffactor, truncated (at least 2, at
  most 2^30, less than twice as many),
  masks that send every hash code to an existing bucket, one spare page at its splitpoint;
  the metapage's counters and lists move exactly as the record says (one more tuple, n fewer,
  one more bitmap page at maxbucket + 2, one more bucket with masks that still map every
  code to a bucket, one or two more spares);
- INSERT, MOVE_PAGE_CONTENTS and SQUEEZE_PAGE add exactly their tuples, at their offsets,
  keeping the page in hash-code order; DELETE, VACUUM_ONE_PAGE and MOVE_PAGE_CONTENTS remove
  exactly the logged items, the rest unchanged and in order;
- a bitmap page changes in exactly one bit; a chain link, a bucket flag, firstfree change
  and nothing else; a freed overflow page is an empty unused page; a primary bucket page
  that is only locked does not change at all (pd_lsn included), nor (PostgreSQL 17) does a
  write page nothing is written to;
- pg_waldump 15 reads drawn sequences of every kind, and the kinds shrink to short
  sequences.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from test_strategies_kinds import generate_until, redo_at, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.hash_page import (
    INVALID_BLOCK,
    LH_BITMAP_PAGE,
    LH_META_PAGE,
    LH_OVERFLOW_PAGE,
    LH_PAGE_HAS_DEAD_TUPLES,
    LH_UNUSED_PAGE,
    HashMeta,
    HashOpaque,
    bitmap_bit,
    hashkey2bucket,
    tuple_hashkey,
)
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump
from pytest_walredo.pg.xlogrecord import DecodedRecord, decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
METAPAGE = BufferTag(RelTag(1663, 5, 16384), 0)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()

NEW = ("hash_new_page",)
SETUP: dict[str, tuple[str, ...]] = {
    "hash_init_meta": ("hash_init_meta",),
    "hash_meta_count": ("hash_init_meta", "hash_meta_count"),
    "hash_meta_layout": ("hash_init_meta", "hash_meta_layout"),
    "hash_new_page": NEW,
    "hash_insert": (*NEW, "hash_insert"),
    "hash_bitmap": (*NEW, "hash_bitmap"),
    "hash_chain_link": (*NEW, "hash_chain_link"),
    "hash_split_flags": (*NEW, "hash_split_flags"),
    "hash_move_in": (*NEW, "hash_move_in"),
    "hash_remove": (*NEW, "hash_insert", "hash_remove"),
    "hash_free_overflow": (*NEW, "hash_remove", "hash_free_overflow"),
    "hash_bucket_locked": (*NEW, "hash_bucket_locked"),
}
KINDS = tuple(SETUP)
# every block of every hash record, as (record name, block id)
EVERY_BLOCK = {("INIT_META_PAGE", 0), ("INIT_BITMAP_PAGE", 0), ("INIT_BITMAP_PAGE", 1), ("INSERT", 0), ("INSERT", 1),
               *(("ADD_OVFL_PAGE", i) for i in range(5)), *(("SPLIT_ALLOCATE_PAGE", i) for i in range(3)),
               ("SPLIT_PAGE", 0), ("SPLIT_COMPLETE", 0), ("SPLIT_COMPLETE", 1),
               *(("MOVE_PAGE_CONTENTS", i) for i in range(3)), *(("SQUEEZE_PAGE", i) for i in range(7)),
               ("DELETE", 0), ("DELETE", 1), ("SPLIT_CLEANUP", 0), ("UPDATE_META_PAGE", 0),
               ("VACUUM_ONE_PAGE", 0), ("VACUUM_ONE_PAGE", 1)}
# sample hash codes: the masks of a metapage must send each to a bucket that exists
CODES = [0, 1, 2, 3, 5, 0x7FFF, 0x12345678, 0x80000000, 0xDEADBEEF, 0xFFFFFFFE, 0xFFFFFFFF]


def _tag(kind: str) -> BufferTag:
    return METAPAGE if kind in ("hash_init_meta", "hash_meta_count", "hash_meta_layout") else TAG


def _op(p: Page) -> HashOpaque:
    return HashOpaque.unpack(p.data)


def _items(p: Page) -> list[bytes]:
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def _sorted_codes(p: Page) -> bool:
    codes = [tuple_hashkey(t) for t in _items(p)]
    return codes == sorted(codes)


def _same_but(before: Page, after: Page, *ranges: tuple[int, int]) -> None:
    """Every byte past pd_lsn equal, except in ``ranges`` ([start, end))."""
    a, b = bytearray(before.data), bytearray(after.data)
    for lo, hi in [(0, 8), *ranges]:
        a[lo:hi] = b[lo:hi] = bytes(hi - lo)
    assert a == b, "bytes changed outside what the record changes"


def _special(p: Page, field: str) -> tuple[int, int]:
    start = p.special + {"prevblkno": 0, "nextblkno": 4, "bucket": 8, "flag": 12}[field]
    return start, start + (2 if field == "flag" else 4)


def _meta_field(name: str) -> tuple[int, int]:
    at = {"ntuples": 32, "maxbucket": 48, "highmask": 52, "lowmask": 56, "ovflpoint": 60, "firstfree": 64,
          "nmaps": 68}[name]
    return at, at + (8 if name == "ntuples" else 4)


def _u32_at(name: str, i: int) -> tuple[int, int]:
    at = (76 if name == "spares" else 468) + 4 * i
    return at, at + 4


# --------------------------------------------------------------------------- per-record checks


def _check_new_meta(body: rmgr.HashInitMetaPage, after: Page) -> None:
    m = HashMeta.unpack(after.data)
    assert _op(after).flag == LH_META_PAGE and m.ffactor == body.ffactor and m.ntuples == 0.0
    want = math.floor(body.num_tuples / body.ffactor)  # C converts the quotient to uint32
    assert m.maxbucket + 1 >= min(max(2, want), 1 << 30), "too few buckets for the tuples"
    assert m.maxbucket + 1 <= max(2, 2 * want), "far more buckets than the tuples need"
    assert m.highmask == m.lowmask * 2 + 1 and m.lowmask < m.maxbucket + 1 <= m.highmask + 1
    assert all(hashkey2bucket(c, m.maxbucket, m.highmask, m.lowmask) <= m.maxbucket for c in CODES)
    assert m.bmsize == 1 << (m.bmshift - 3) and m.bmsize <= m.bsize < 2 * m.bmsize
    spares = [HashMeta.spare(after.data, i) for i in range(98)]
    assert spares[m.ovflpoint] == 1 and sum(spares) == 1 and m.nmaps == 0


def _check_meta(body: rmgr.RmgrRecord, own: int, rec: DecodedRecord, before: Page, after: Page) -> None:
    """The metapage's side of a record: exactly the fields it says change."""
    old, new = HashMeta.unpack(before.data), HashMeta.unpack(after.data)
    if isinstance(body, rmgr.HashInsert):
        assert new.ntuples == old.ntuples + 1
        _same_but(before, after, _meta_field("ntuples"))
    elif isinstance(body, rmgr.HashVacuumOnePage):
        assert new.ntuples == old.ntuples - body.ntuples
        _same_but(before, after, _meta_field("ntuples"))
    elif isinstance(body, rmgr.HashUpdateMetaPage):
        assert new.ntuples == body.ntuples
        _same_but(before, after, _meta_field("ntuples"))
    elif isinstance(body, rmgr.HashInitBitmapPage):
        assert new.nmaps == old.nmaps + 1 and HashMeta.mapp(after.data, old.nmaps) == old.maxbucket + 2
        _same_but(before, after, _meta_field("nmaps"), _u32_at("mapp", old.nmaps))
    elif isinstance(body, rmgr.HashAddOvflPage):
        assert new.firstfree == body.firstfree
        grown = 0 if body.bmpage_found else (2 if rec.block(3) is not None else 1)
        spare = HashMeta.spare(after.data, old.ovflpoint)
        assert spare == (HashMeta.spare(before.data, old.ovflpoint) + grown) & 0xFFFFFFFF
        changed = [_meta_field("firstfree"), _u32_at("spares", old.ovflpoint)]
        if grown == 2:
            b3 = rec.block(3)
            assert b3 is not None and HashMeta.mapp(after.data, old.nmaps) == b3.blkno and new.nmaps == old.nmaps + 1
            changed += [_meta_field("nmaps"), _u32_at("mapp", old.nmaps)]
        _same_but(before, after, *changed)
    elif isinstance(body, rmgr.HashSplitAllocatePage):
        assert new.maxbucket == body.new_bucket
        changed = [_meta_field("maxbucket")]
        if body.masks is not None:
            assert (new.lowmask, new.highmask) == body.masks
            changed += [_meta_field("lowmask"), _meta_field("highmask")]
        if body.splitpoint is not None:
            assert new.ovflpoint == body.splitpoint[0] > old.ovflpoint
            assert HashMeta.spare(after.data, new.ovflpoint) == HashMeta.spare(before.data, old.ovflpoint)
            changed += [_meta_field("ovflpoint"), _u32_at("spares", new.ovflpoint)]
        if old.maxbucket + 1 == new.maxbucket:  # a metapage the split follows: codes still map
            assert all(hashkey2bucket(c, new.maxbucket, new.highmask, new.lowmask) <= new.maxbucket for c in CODES)
        _same_but(before, after, *changed)
    else:
        assert isinstance(body, rmgr.HashSqueezePage) and own == 6 and body.firstfree is not None
        assert new.firstfree == body.firstfree
        _same_but(before, after, _meta_field("firstfree"))


def _check_added(before: Page, after: Page, towrite: tuple[int, ...], tuples: tuple[bytes, ...]) -> None:
    """The tuples are in, each at its logged offset when it went in, the others unchanged."""
    want = _items(before)
    for off, t in zip(towrite, tuples, strict=True):
        want.insert(off - 1, t)
    assert _items(after) == want
    if _sorted_codes(before):
        assert _sorted_codes(after), "the page is out of hash-code order"


def _check_removed(before: Page, after: Page, deleted: tuple[int, ...]) -> None:
    assert _items(after) == [t for o, t in enumerate(_items(before), start=1) if o not in deleted]


def _link(body: rmgr.RmgrRecord, own: int, rec: DecodedRecord) -> tuple[str, int] | None:
    """The chain link a record sets on reference ``own``, and its value (None: not a link)."""
    if isinstance(body, rmgr.HashAddOvflPage) and own == 1:
        b0 = rec.block(0)
        assert b0 is not None
        return "nextblkno", b0.blkno
    if isinstance(body, rmgr.HashSqueezePage) and own in (3, 4):
        return ("nextblkno", body.nextblkno) if own == 3 else ("prevblkno", body.prevblkno)
    return None


def _check_bits(body: rmgr.RmgrRecord, own: int, before: Page, after: Page) -> str:
    """A bitmap page: new (every bit set), or exactly one bit set or cleared."""
    if isinstance(body, rmgr.HashInitBitmapPage) or (isinstance(body, rmgr.HashAddOvflPage) and own == 3):
        assert _op(after).flag == LH_BITMAP_PAGE and after.lower == 24 + body.bmsize
        assert after.data[24 : 24 + body.bmsize] == b"\xff" * body.bmsize
        return ""
    assert isinstance(body, rmgr.HashAddOvflPage | rmgr.HashSqueezePage) and body.bitmap_bit is not None
    setting = isinstance(body, rmgr.HashAddOvflPage)
    assert bitmap_bit(after.data, body.bitmap_bit) == setting
    at = 24 + body.bitmap_bit // 8
    _same_but(before, after, (at, at + 1))
    assert (before.data[at] ^ after.data[at]) & ~(1 << body.bitmap_bit % 8) == 0
    return "bit set" if setting else "bit cleared"


def _check_tuple_page(body: rmgr.RmgrRecord, own: int, rec: DecodedRecord, before: Page, after: Page, v: int) -> str:
    """Bucket, overflow and bitmap pages; returns a label for what happened."""
    link = _link(body, own, rec)
    if link is not None:
        assert getattr(_op(after), link[0]) == link[1]
        _same_but(before, after, _special(before, link[0]))
    elif isinstance(body, rmgr.HashInitBitmapPage) or (isinstance(body, rmgr.HashAddOvflPage) and own in (2, 3)) or (
            isinstance(body, rmgr.HashSqueezePage) and own == 5):
        return _check_bits(body, own, before, after)
    elif isinstance(body, rmgr.HashInsert):
        assert body.tuple
        _check_added(before, after, (body.offnum,), (body.tuple,))
    elif isinstance(body, rmgr.HashAddOvflPage):
        b1 = rec.block(1)
        assert own == 0 and b1 is not None and after.max_offset() == 0
        assert _op(after) == HashOpaque(b1.blkno, INVALID_BLOCK, body.bucket, LH_OVERFLOW_PAGE)
    elif isinstance(body, rmgr.HashSplitAllocatePage):
        if own == 0:
            assert (_op(after).flag, _op(after).prevblkno) == (body.old_bucket_flag, body.new_bucket)
            _same_but(before, after, _special(before, "flag"), _special(before, "prevblkno"))
        else:
            assert _op(after).bucket == _op(after).prevblkno == body.new_bucket and after.max_offset() == 0
            assert _op(after).flag == body.new_bucket_flag
    elif isinstance(body, rmgr.HashSplitPage):
        b0 = rec.block(0)
        assert b0 is not None and b0.image is not None and after.data[8:] == b0.image.restore_page()[8:]
    elif isinstance(body, rmgr.HashSplitComplete | rmgr.HashSplitCleanup):
        if isinstance(body, rmgr.HashSplitCleanup):
            assert _op(after).flag == _op(before).flag & ~0x40  # LH_BUCKET_NEEDS_SPLIT_CLEANUP
        else:
            assert _op(after).flag == (body.old_bucket_flag if own == 0 else body.new_bucket_flag)
        _same_but(before, after, _special(before, "flag"))
    elif own == 0 and isinstance(body, rmgr.HashMovePageContents | rmgr.HashSqueezePage | rmgr.HashDelete):
        assert after.data == before.data, "the primary bucket page is only locked"
        return "only locked"
    elif isinstance(body, rmgr.HashMovePageContents | rmgr.HashSqueezePage) and own == 1:
        return _check_write_page(body, before, after, v)
    elif isinstance(body, rmgr.HashMovePageContents):
        assert own == 2 and body.deleted is not None
        _check_removed(before, after, body.deleted)
    elif isinstance(body, rmgr.HashSqueezePage):
        assert own == 2 and after.max_offset() == 0 and _op(after).page_type == LH_UNUSED_PAGE
        assert (_op(after).prevblkno, _op(after).nextblkno) == (INVALID_BLOCK, INVALID_BLOCK)
    else:
        assert isinstance(body, rmgr.HashDelete | rmgr.HashVacuumOnePage) and body.deleted is not None
        _check_removed(before, after, body.deleted)
        if isinstance(body, rmgr.HashVacuumOnePage) or body.clear_dead_marking:
            assert not _op(after).flag & LH_PAGE_HAS_DEAD_TUPLES
        else:
            assert _op(after).flag == _op(before).flag
    return ""


def _check_write_page(body: rmgr.HashMovePageContents | rmgr.HashSqueezePage, before: Page, after: Page,
                      v: int) -> str:
    if body.tuples is not None and body.towrite is not None:
        _check_added(before, after, body.towrite, body.tuples)
    else:
        assert _items(after) == _items(before)
    if isinstance(body, rmgr.HashSqueezePage) and body.is_prev_bucket_same_wrt:
        assert _op(after).nextblkno == body.nextblkno
    elif not body.ntups:
        untouched = v >= 17
        assert (after.data == before.data) if untouched else (after.data[8:] == before.data[8:])
        return "nothing written" + (" (17: untouched)" if untouched else "")
    return ""


def _replay_and_check(trace: ws.BlockTrace, tag: BufferTag, v: int, fl: Flavour) -> set[str]:
    labels: set[str] = set()
    page = trace.base_image
    for k, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = redo_at(page, raw, lsn, tag, v, fl)
        assert after is not None
        if k.startswith("hash"):
            rec = decode_record(raw, v)
            body = rmgr.parse(rec, v, fl)
            mine = [b.block_id for b in rec.blocks if b.blkno == tag.blknum and b.relnode == tag.rel.relnode]
            assert len(mine) == 1, f"{k}: the requested block is referenced {len(mine)} times"
            own = mine[0]
            before = Page(page) if page is not None else Page()
            name = body.identify(v, fl)
            if isinstance(body, rmgr.HashInitMetaPage):
                _check_new_meta(body, Page(after))
            elif tag.blknum == 0:
                _check_meta(body, own, rec, before, Page(after))
            else:
                extra = _check_tuple_page(body, own, rec, before, Page(after), v)
                if extra:
                    labels.add(f"{name}:{extra}")
            labels.add(f"{name}:{own}")
        page = after
    whole = model_page(RedoRequest(tag.rel, tag.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(8192)) == whole
    return labels


# --------------------------------------------------------------------------- the properties


def _checker(kind: str, version: int, flavour: Flavour, examples: int) -> Callable[[], None]:
    tag = _tag(kind)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(ws.record_sequences(tag, pg_version=version, flavour=flavour, min_records=2, max_records=6,
                               kinds=SETUP[kind]))
    def check(trace: ws.BlockTrace) -> None:
        _replay_and_check(trace, tag, version, flavour)

    return check


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_hash_kinds_do_what_their_records_say(version: int, flavour: Flavour) -> None:
    for kind in KINDS:
        _checker(kind, version, flavour, 8)()


@pytest.mark.parametrize("version", [15, 17])
def test_every_block_of_every_hash_record_is_drawn_and_checked(version: int) -> None:
    """Each block of each record (and the write page nothing is written to, which PostgreSQL
    17 leaves alone) is reached by the checks above; generation stops once all were seen."""
    want = {f"{name}:{i}" for name, i in EVERY_BLOCK} | {"SQUEEZE_PAGE:bit cleared", "ADD_OVFL_PAGE:bit set",
                                                         "MOVE_PAGE_CONTENTS:only locked", "DELETE:only locked"}
    want.add("SQUEEZE_PAGE:nothing written" + (" (17: untouched)" if version >= 17 else ""))
    seen: set[str] = set()
    for _round in range(20):  # every kind in turn, 30 sequences a time, 600 at most
        for kind in KINDS:
            tag = _tag(kind)
            seen |= generate_until(
                ws.record_sequences(tag, pg_version=version, flavour=Flavour.NEON, min_records=2, max_records=5,
                                    kinds=SETUP[kind]),
                lambda t, tag=tag: _replay_and_check(t, tag, version, Flavour.NEON), want - seen, examples=30)
        if seen >= want:
            break
    assert seen >= want, sorted(want - seen)


@pytest.mark.parametrize("kind", ["hash_insert", "hash_move_in", "hash_remove", "hash_meta_layout"])
def test_properties_hold_on_many_sequences(kind: str) -> None:
    _checker(kind, 17, Flavour.NEON, 60)()


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
def test_pg_waldump_15_reads_drawn_hash_sequences() -> None:
    """Drawn PG15 sequences of each kind (a few blocks at a time) are read by pg_waldump 15 as
    we decode and describe them; generation for a kind stops once it was read."""
    seen: set[str] = set()
    for kind in KINDS:
        traces = st.lists(ws.record_sequences(_tag(kind), pg_version=15, flavour=Flavour.VANILLA, min_records=2,
                                              max_records=4, kinds=SETUP[kind]), min_size=1, max_size=4)
        seen |= generate_until(traces, lambda ts: set(waldump_agrees(ts)), {kind}, examples=25)
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


@pytest.mark.parametrize(("kind", "at_most"), [
    ("hash_insert", 2),  # a new page (or a pushed one), then the insert
    ("hash_remove", 3),  # a new page, an insert, the removal (or a filled SPLIT_PAGE image, the removal)
    ("hash_meta_layout", 2),  # the metapage, then its change
    ("hash_free_overflow", 2),
])
def test_hash_kinds_shrink_to_short_sequences(kind: str, at_most: int) -> None:
    tag = _tag(kind)
    trace = find(ws.record_sequences(tag, pg_version=17, kinds=SETUP[kind]), lambda t: kind in t.kinds,
                 settings=settings(database=None, max_examples=3000))
    assert len(trace.records) <= at_most and trace.kinds[-1] == kind, trace.kinds
    if trace.base_image is not None:
        assert Page(trace.base_image).max_offset() <= 1


def test_struct_offsets_used_here() -> None:
    """The byte ranges these checks allow to change are the fields they name."""
    from pytest_walredo.pg.hash_page import init_meta_page

    p = Page()
    init_meta_page(p, 4000.0, 450, 307)
    HashMeta.set(p, "firstfree", 0xABCD)
    lo, hi = _meta_field("firstfree")
    assert struct.unpack_from("<I", p.data, lo)[0] == 0xABCD and hi - lo == 4
    lo, _ = _u32_at("spares", 4)
    assert struct.unpack_from("<I", p.data, lo)[0] == 1
