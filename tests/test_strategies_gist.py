"""The GiST record kinds in the strategies (issue 14): drawn for every version and flavour, read
by pg_waldump 15, and, replayed record by record, each record did what it *says* (read back
from the decoded record and the page before it, not from the drawer's choices):

- PAGE_UPDATE: the items are those of before with the logged offsets deleted (or the one
  item overwritten in place) and the logged tuples appended, in order; a leaf that lost items
  is marked F_TUPLES_DELETED;
- FPI_FOR_HINT of killed items: the same items, some LP_DEAD, F_HAS_GARBAGE set;
- DELETE: exactly the logged items gone, the rest in order; F_HAS_GARBAGE cleared,
  F_TUPLES_DELETED set;
- PAGE_SPLIT: every new page (each redone from the same record) holds exactly its logged
  tuples in order, is a leaf exactly when the split page was and it is not the root, links
  right to the next page (the last to the old right link), carries the old NSN, and
  F_FOLLOW_RIGHT on all but the last unless it is a root split; when this page was the one
  that split, the new pages together hold every tuple it had, once;
- completing a split: the child's NSN is the record's LSN and F_FOLLOW_RIGHT is gone, its
  items those of before (or of the image the record restored);
- PAGE_DELETE: the leaf is F_DELETED with the logged deleteXid and pd_lower 32; the parent
  lost exactly the downlink at the logged offset;
- PAGE_REUSE and ASSIGN_LSN leave the page byte for byte.

(PAGE_DELETE is one kind seen from either page it touches, PAGE_REUSE and ASSIGN_LSN one
kind: fewer kinds are reached more often among every rmgr's kinds.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from test_strategies_kinds import generate_until, redo_at, waldump_agrees

from pytest_walredo import strategies as ws
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.gist_page import (
    F_DELETED,
    F_FOLLOW_RIGHT,
    F_HAS_GARBAGE,
    F_LEAF,
    F_TUPLES_DELETED,
    INVALID_BLOCK,
    GistOpaque,
    gist_deleted_xid,
)
from pytest_walredo.pg.page import LP_DEAD, Page
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.waldump import find_pg_waldump
from pytest_walredo.pg.xlogrecord import DecodedRecord, decode_record
from pytest_walredo.protocol import BufferTag, RedoRequest, RelTag
from pytest_walredo.sim import model_page

REL = RelTag(1663, 5, 16384)
TAG = BufferTag(REL, 3)
ROOT = BufferTag(REL, 0)
COMBOS = [(v, fl) for v in SUPPORTED_VERSIONS for fl in Flavour]
WALDUMP = find_pg_waldump()
KINDS = tuple(k for k in ws.RECORD_KINDS if k.startswith("gist_"))
GROW = ("gist_split", "gist_page_update")
SETUP: dict[str, tuple[str, ...]] = {
    "gist_split": GROW,
    "gist_page_update": GROW,
    "gist_vacuum": (*GROW, "gist_vacuum"),
    "gist_kill_items": (*GROW, "gist_kill_items"),
    "gist_delete": (*GROW, "gist_kill_items", "gist_delete"),
    "gist_finish_split": ("gist_split", "gist_finish_split"),
    "gist_page_delete": ("gist_split", "gist_vacuum", "gist_page_delete"),
    "gist_no_block": ("gist_split", "gist_no_block"),
}


def _items(p: Page) -> list[bytes]:
    return [p.item(o) for o in range(1, p.max_offset() + 1)]


def _op(p: Page) -> GistOpaque:
    return GistOpaque.read(p)


def _same_but_flags(before: Page, after: Page) -> None:
    """nsn, right link and page id unchanged."""
    a, b = _op(before), _op(after)
    assert (a.nsn, a.rightlink, a.page_id) == (b.nsn, b.rightlink, b.page_id)


def _check_update(body: rmgr.GistPageUpdate, before: Page, after: Page) -> None:
    assert body.todelete is not None and body.tuples is not None
    old = _items(before)
    if body.ntodelete == 1 and body.ntoinsert == 1:
        want = old[:]
        want[body.todelete[0] - 1] = body.tuples[0]
        assert _op(after).flags == _op(before).flags
    else:
        want = [t for i, t in enumerate(old, start=1) if i not in body.todelete] + list(body.tuples)
        marked = bool(body.ntodelete) and _op(before).is_leaf
        assert _op(after).flags == _op(before).flags | (F_TUPLES_DELETED if marked else 0)
    assert _items(after) == want
    _same_but_flags(before, after)


def _check_split(rec: DecodedRecord, body: rmgr.GistPageSplit, before: Page, lsn: int, v: int,
                 fl: Flavour, own_blk: int, was_gist: bool) -> None:
    """Every page of the split, each redone from the record on nothing."""
    blknos = [b.blkno for b in (rec.block(i + 1) for i in range(body.npage)) if b is not None]
    assert len(blknos) == body.npage and own_blk in blknos
    rootsplit = blknos[0] == 0
    pages = []
    for i, blkno in enumerate(blknos):
        got = redo_at(None, rec.encode(), lsn, BufferTag(REL, blkno), v, fl)
        assert got is not None
        p = Page(got)
        op = _op(p)
        assert _items(p) == list(body.pages[i] or ())
        assert bool(op.flags & F_LEAF) == (body.origleaf and blkno != 0)
        assert op.nsn == body.orignsn
        if blkno == 0:
            assert op.rightlink == INVALID_BLOCK and not op.flags & F_FOLLOW_RIGHT
        else:
            last = i == body.npage - 1
            assert op.rightlink == (body.origrlink if last else blknos[i + 1])
            assert bool(op.flags & F_FOLLOW_RIGHT) == (not last and not rootsplit and body.markfollowright)
        pages.append(p)
    if own_blk == blknos[0] and was_gist and not _op(before).flags & F_DELETED:
        # this page is the one that split: its right link and NSN carry over, and every tuple
        # it had is on one of the new pages (the non-root ones in a root split)
        assert (body.origrlink, body.orignsn) == (_op(before).rightlink if own_blk else INVALID_BLOCK,
                                                  _op(before).nsn)
        spread = Counter(t for p, blkno in zip(pages, blknos, strict=True) if blkno != 0 for t in _items(p))
        assert not Counter(_items(before)) - spread, "a tuple of the split page is lost"


def _check_step(kind: str, rec: DecodedRecord, body: rmgr.RmgrRecord, before: Page, after: Page, lsn: int,
                v: int, fl: Flavour, tag: BufferTag, was_gist: bool) -> None:
    refs = {b.block_id: b for b in rec.blocks}
    own = [i for i, b in refs.items() if (b.forknum, b.blkno) == (tag.rel.forknum, tag.blknum)]
    if kind == "gist_no_block":
        assert not rec.blocks and after.data == before.data
        return
    assert len(own) == 1 and after.lsn == lsn
    if kind == "gist_split":
        assert isinstance(body, rmgr.GistPageSplit)
        _check_split(rec, body, before, lsn, v, fl, tag.blknum, was_gist)
    elif kind == "gist_finish_split":
        ref = refs[own[0]]
        src = Page(ref.image.restore_page()) if ref.image is not None else before
        assert _op(before).flags & F_FOLLOW_RIGHT
        assert _op(after).nsn == lsn and _op(after).flags == _op(src).flags & ~F_FOLLOW_RIGHT
        assert _items(after) == _items(src) and _op(after).rightlink == _op(src).rightlink
    elif kind in ("gist_page_update", "gist_vacuum"):
        assert isinstance(body, rmgr.GistPageUpdate) and own == [0]
        _check_update(body, before, after)
    elif kind == "gist_kill_items":
        assert isinstance(body, rmgr.XlogFpi) and body.for_hint
        assert _items(after) == _items(before) and _op(after).flags == _op(before).flags | F_HAS_GARBAGE
        assert any(lp.flags == LP_DEAD for _o, lp in after.item_ids())
    elif kind == "gist_delete":
        assert isinstance(body, rmgr.GistDelete) and body.offsets == tuple(sorted(body.offsets))
        old = _items(before)
        assert _items(after) == [t for i, t in enumerate(old, start=1) if i not in body.offsets]
        assert _op(after).flags == (_op(before).flags | F_TUPLES_DELETED) & ~F_HAS_GARBAGE
        _same_but_flags(before, after)
    elif kind == "gist_page_delete" and own == [0]:
        assert isinstance(body, rmgr.GistPageDelete)
        assert _op(after).flags == _op(before).flags | F_DELETED
        assert gist_deleted_xid(after) == body.delete_xid and after.lower == 32
    elif kind == "gist_page_delete":
        assert isinstance(body, rmgr.GistPageDelete) and own == [1]
        old = _items(before)
        assert _items(after) == old[: body.downlink_offset - 1] + old[body.downlink_offset:]
        assert _op(after) == _op(before)


def _replay_and_check(trace: ws.BlockTrace, tag: BufferTag, v: int, fl: Flavour) -> set[str]:
    labels: set[str] = set()
    page = trace.base_image
    was_gist = False  # pushed pages are never GiST pages; a GiST record leaves one
    for k, (lsn, raw) in zip(trace.kinds, trace.records, strict=True):
        after = redo_at(page, raw, lsn, tag, v, fl)
        assert after is not None
        if k in KINDS:
            rec = decode_record(raw, v)
            body = rmgr.parse(rec, v, fl)
            before = Page(page) if page is not None else Page()
            _check_step(k, rec, body, before, Page(after), lsn, v, fl, tag, was_gist)
            labels.add(k)
            if isinstance(body, rmgr.GistPageSplit) and rec.block(1) and rec.block(1).blkno == 0:  # type: ignore[union-attr]
                labels.add("root split")
            if k == "gist_finish_split" and any(b.image is not None for b in rec.blocks):
                labels.add("follow-right cleared after an image")
            if k == "gist_page_delete":
                labels.add("the deleted leaf" if rec.block(0).blkno == tag.blknum else "the parent")  # type: ignore[union-attr]
            if k == "gist_delete" and _op(before).flags & F_HAS_GARBAGE:
                labels.add("dead items deleted")
            if isinstance(body, rmgr.GistPageUpdate) and body.ntodelete == 1 and body.ntoinsert == 1:
                labels.add("overwrite")
            if k == "gist_split" and was_gist and rec.block(1) is not None and rec.block(1).blkno == tag.blknum:  # type: ignore[union-attr]
                labels.add("this page split")
        was_gist = was_gist or k in KINDS
        page = after
    whole = model_page(RedoRequest(tag.rel, tag.blknum, trace.base_image, trace.records), v, fl)
    assert (page if page is not None else bytes(8192)) == whole
    return labels


def _sequences(kind: str, v: int, fl: Flavour, tag: BufferTag = TAG) -> st.SearchStrategy[ws.BlockTrace]:
    return ws.record_sequences(tag, pg_version=v, flavour=fl, min_records=1, max_records=6, kinds=SETUP[kind])


# --------------------------------------------------------------------------- coverage and checks


def _collect(kind: str, tag: BufferTag, version: int, flavour: Flavour, seen: set[str], want: set[str]) -> None:
    """Replay and check drawn sequences of ``kind`` for ``tag``, adding their labels to ``seen``
    until ``want`` are all there (or 500 examples ran out)."""
    seen |= generate_until(_sequences(kind, version, flavour, tag),
                           lambda t: _replay_and_check(t, tag, version, flavour), want - seen, examples=500)


@pytest.mark.parametrize(("version", "flavour"), COMBOS)
def test_every_gist_kind_is_drawn_and_does_what_its_record_says(version: int, flavour: Flavour) -> None:
    """Each kind is drawn in every version and flavour, and every step of the sequences drawn
    until then passes its check (for the page at block 3, and at block 0, the root)."""
    seen: set[str] = set()
    for kind in KINDS:
        for tag in (TAG, ROOT):
            _collect(kind, tag, version, flavour, seen, {kind})
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


def test_every_check_is_exercised() -> None:
    """The checks are not vacuous: root splits, splits of this very page, an overwrite, a split
    completed on a restored image, a DELETE of items a scan killed and PAGE_DELETE from both
    of its pages all happen."""
    seen: set[str] = set()
    wanted = {"gist_split": ("root split", "this page split"), "gist_page_update": ("overwrite",),
              "gist_finish_split": ("follow-right cleared after an image",), "gist_delete": ("dead items deleted",),
              "gist_page_delete": ("the deleted leaf", "the parent")}
    for kind, labels in wanted.items():
        for tag in (TAG, ROOT):
            _collect(kind, tag, 16, Flavour.NEON, seen, set(labels))
    want = {lab for labels in wanted.values() for lab in labels}
    assert seen >= want, sorted(want - seen)


def _checker(kind: str, version: int, flavour: Flavour, examples: int, tag: BufferTag = TAG) -> Callable[[], None]:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_sequences(kind, version, flavour, tag))
    def check(trace: ws.BlockTrace) -> None:
        _replay_and_check(trace, tag, version, flavour)

    return check


@pytest.mark.parametrize("kind", ["gist_split", "gist_page_update", "gist_vacuum", "gist_delete",
                                  "gist_finish_split", "gist_page_delete"])
def test_properties_hold_on_many_sequences(kind: str) -> None:
    """The per-kind properties on more examples (PG17, Neon), shrinking on failure."""
    _checker(kind, 17, Flavour.NEON, 25)()


# --------------------------------------------------------------------------- pg_waldump


@pytest.mark.needs_postgres
@pytest.mark.skipif(WALDUMP is None, reason="pg_waldump (PostgreSQL 15) is not installed")
def test_pg_waldump_15_reads_drawn_gist_sequences() -> None:
    """pg_waldump 15 reads drawn sequences until every GiST kind was among them."""
    seen = generate_until(st.lists(st.sampled_from((TAG, ROOT)).flatmap(lambda t: ws.record_sequences(
        t, pg_version=15, flavour=Flavour.VANILLA, min_records=2, max_records=6, kinds=KINDS)),
        min_size=1, max_size=4), lambda ts: set(waldump_agrees(ts)), set(KINDS))
    assert seen >= set(KINDS), sorted(set(KINDS) - seen)


# --------------------------------------------------------------------------- shrinking


@pytest.mark.parametrize(("kind", "at_most"), [
    ("gist_split", 1),  # the split builds the page from nothing
    # a split leaving a leaf with items, then DELETE; or with the scan that killed the items
    # in between (DELETE favours killed items), which the shrinker does not always drop
    ("gist_delete", 3),
])
def test_gist_kinds_shrink_to_short_sequences(kind: str, at_most: int) -> None:
    trace = find(ws.record_sequences(TAG, pg_version=17, flavour=Flavour.NEON, kinds=SETUP[kind]),
                 lambda t: kind in t.kinds,
                 settings=settings(database=None, max_examples=3000, derandomize=True))
    assert len(trace.records) <= at_most, trace.kinds
    assert trace.kinds[-1] == kind
