"""Issue 14's simplest record kinds in the strategies and the redo model: Sequence LOG, Generic
deltas and full images, and the XLOG records that name no block (BRIN: test_strategies_brin.py).

Evidence:

* every kind is drawn for every version and flavour (test_strategies_kinds.py draws every
  kind of RECORD_KINDS), and pg_waldump 15 reads drawn sequences and describes them as we do;
* replaying a drawn sequence record by record, each record did what it says, read back from
  the decoded record and the page before it:

  - Sequence LOG: the page is rebuilt from the record alone (the same page whatever the block
    held before), holding exactly the logged tuple as item 1 and the sequence magic;
  - Generic full image: the page is the image; a delta: every fragment's bytes are on the
    page, the hole between the new pd_lower and pd_upper is zero, every other byte is as
    before;
  - XLOG records that name no block: the page is unchanged, byte for byte;
* the delta PostgreSQL logs for a page change (our ``page_delta``), replayed by the redo model,
  turns any page into the changed page with its hole zeroed: the two sides are written
  independently, so this catches a fault in either;
* the kinds shrink to short sequences.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from test_strategies_kinds import generate_until, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import redo_record
from pytest_walredo.pg.rmgr.generic import page_delta
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump
from pytest_walredo.pg.xlogrecord import decode_record, make_block
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()
SETUP: dict[str, tuple[str, ...]] = {
    "sequence_log": ("heap_insert_init", "generic_full_image", "sequence_log"),
    "generic_full_image": ("heap_insert_init", "generic_full_image"),
    "generic_delta": ("generic_full_image", "generic_delta"),
    "xlog_no_page": ("heap_insert_init", "xlog_no_page"),
}
KINDS = tuple(SETUP)


def _redo(page: bytes | None, raw: bytes, lsn: int, v: int, fl: Flavour, tag: BufferTag = TAG) -> bytes | None:
    r = tag.rel
    return redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode, forknum=r.forknum,
                       blkno=tag.blknum, end_lsn=lsn, record=raw, pg_version=v, flavour=fl)


def _check_step(kind: str, raw: bytes, before: bytes | None, after: bytes, lsn: int, v: int, fl: Flavour) -> None:
    rec = decode_record(raw, v)
    body = rmgr.parse(rec, v, fl)
    p = Page(after)
    if kind == "sequence_log":
        assert isinstance(body, rmgr.SeqLog)
        assert _redo(None, raw, lsn, v, fl) == after, "the page depends on what the block held"
        assert (p.lower, p.special, p.max_offset(), p.lsn) == (28, BLCKSZ - 8, 1, lsn)
        assert p.item(1) == body.tuple and struct.unpack_from("<I", after, p.special)[0] == 0x1717
        assert not any(after[p.lower : p.upper]) and not any(after[8:12]) and not any(after[16 + 4 : 24])
    elif kind == "generic_full_image":
        own = [b for b in rec.blocks if b.blkno == TAG.blknum]
        assert len(own) == 1 and own[0].image is not None
        expected = Page(own[0].image.restore_page())
        expected.lsn = lsn
        assert after == expected.to_bytes()
    elif kind == "generic_delta":
        assert isinstance(body, rmgr.GenericRecord) and before is not None
        want = bytearray(before)
        written = set()
        for off, data in body.delta(0):
            want[off : off + len(data)] = data
            written.update(range(off, off + len(data)))
        lower, upper = struct.unpack_from("<HH", want, 12)
        assert all(b == 0 for b in after[lower:upper]), "the hole is not zeroed"
        for i in range(8, BLCKSZ):  # pd_lsn aside
            if not lower <= i < upper:
                assert after[i] == want[i], f"byte {i}: {'logged' if i in written else 'untouched'} byte differs"
        assert p.lsn == lsn
    elif kind == "xlog_no_page":
        assert isinstance(body, rmgr.XlogNoPage) and not rec.blocks
        assert after == before


def _replay_and_check(trace: ws.BlockTrace, v: int, fl: Flavour) -> set[str]:
    seen: set[str] = set()
    page = trace.base_image
    for kind, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = _redo(page, raw, lsn, v, fl)
        assert after is not None
        if kind in SETUP:
            _check_step(kind, raw, page, after, lsn, v, fl)
            seen.add(kind)
        page = after
    whole = model_page(RedoRequest(TAG.rel, TAG.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(BLCKSZ)) == whole
    return seen


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_kinds_do_what_their_records_say(version: int, flavour: Flavour) -> None:
    """Generation stops once each kind's check has run (at most 300 sequences per kind)."""
    for kind in KINDS:
        assert kind in _check_until_seen(kind, version, flavour)


def _check_until_seen(kind: str, version: int, flavour: Flavour) -> set[str]:
    return generate_until(
        ws.record_sequences(TAG, pg_version=version, flavour=flavour, min_records=2, max_records=5,
                            kinds=SETUP[kind]),
        lambda trace: _replay_and_check(trace, version, flavour), {kind})


@st.composite
def _page_change(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """Any page (even garbage), and a standard page it changes into: either bytes of it
    rewritten, with pd_lower and pd_upper moved, or another page altogether."""
    cur = bytes(8) + draw(ws.pages() | ws.raw_pages())[8:]  # pd_lsn 0: the record is to be applied
    if draw(st.booleans()):
        target = bytearray(draw(ws.pages()))
    else:
        target = bytearray(cur)
        for _ in range(draw(st.integers(0, 6))):
            at = draw(st.integers(24, BLCKSZ - 1))
            data = draw(st.binary(min_size=1, max_size=min(40, BLCKSZ - at)))
            target[at : at + len(data)] = data
        lower = draw(st.integers(24, BLCKSZ))
        struct.pack_into("<HH", target, 12, lower, draw(st.integers(lower, BLCKSZ)))
    return cur, bytes(target)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_page_change(), st.sampled_from(COMBOS))
def test_a_logged_delta_replays_into_the_changed_page(change: tuple[bytes, bytes],
                                                      combo: tuple[int, Flavour]) -> None:
    cur, target = change
    v, fl = combo
    lsn = 0x1000
    frags = page_delta(cur, target)
    body = rmgr.GenericRecord(((0, frags),))
    raw = rmgr.build(body, [make_block(0, (1663, 5, 16384), TAG.blknum)], pg_version=v, flavour=fl).encode()
    after = _redo(cur, raw, lsn, v, fl)
    want = Page(target)
    want.data[want.lower : want.upper] = bytes(want.upper - want.lower)
    want.lsn = lsn
    assert after == want.to_bytes()


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
@pytest.mark.parametrize("kind", KINDS)
def test_pg_waldump_15_reads_drawn_sequences(kind: str) -> None:
    seen = generate_until(
        st.lists(ws.record_sequences(TAG, pg_version=15, flavour=Flavour.VANILLA, min_records=2,
                                     max_records=4, kinds=SETUP[kind]), min_size=1, max_size=4),
        lambda traces: set(waldump_agrees(traces)), {kind})
    assert kind in seen


@pytest.mark.parametrize(("kind", "at_most"), [
    ("sequence_log", 1),  # it starts a block by itself
    ("generic_full_image", 1),
    ("generic_delta", 2),  # the full image, then the delta
    ("xlog_no_page", 2),  # a heap page with a tuple, then the record
])
def test_kinds_shrink_to_short_sequences(kind: str, at_most: int) -> None:
    trace = find(ws.record_sequences(TAG, pg_version=17, kinds=SETUP[kind]), lambda t: kind in t.kinds,
                 settings=settings(database=None, max_examples=2000))
    assert len(trace.records) <= at_most, trace.kinds
    assert trace.kinds[-1] == kind
