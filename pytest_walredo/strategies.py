"""Hypothesis strategies for walredo tests: tags, LSNs, pages, WAL records, requests, workloads.

Import this one module in your own properties::

    from hypothesis import given
    from pytest_walredo import strategies as ws
    from pytest_walredo.sim import model_page

    @given(req=ws.redo_requests(pg_version=17))
    def test_my_binary_agrees_with_the_model(walredo, req):
        assert walredo.apply(req) == model_page(req, 17)

Everything here shrinks toward the simplest failing input: fewer records, fewer and smaller
tuples, lower offsets and block numbers, small LSN steps, and simpler record kinds (the kinds
are listed simplest first in :data:`RECORD_KINDS`; a drawn kind shrinks toward the front).

Record sequences are *coherent for one block*: the block is initialized first (a pushed base
image, a full-page image, or an ``INIT_PAGE`` record), end LSNs strictly increase and are above
the page's pd_lsn, and every offset a record names refers to a tuple that exists at that point.
Coherence is kept by running the redo model (:mod:`pytest_walredo.pg.redo`) while drawing: each
record is drawn against the page the previous records produced. A drawn record the model
rejects (a page that is full, say) is left out rather than faked.

Records the model supports and these strategies generate (for PostgreSQL 14-17, vanilla and
Neon flavours): XLOG FPI / FPI_FOR_HINT (optionally compressed, optionally with a second,
unrelated block reference), heap INSERT (+INIT), DELETE, LOCK, UPDATE / HOT_UPDATE (same
page, +INIT), INPLACE, CONFIRM, heap2 MULTI_INSERT (+INIT), btree INSERT_LEAF and NEWROOT
(level 0).

Interleavings of concurrent callers come from :func:`schedules` (re-exported from
:mod:`pytest_walredo.interleave`, which runs them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from .interleave import Schedule, schedules
from .pg import rmgr
from .pg.btree_page import BTP_LEAF, BTP_ROOT, BTPageOpaque, IndexTuple, btree_page_init
from .pg.page import LP_NORMAL, MAX_HEAP_TUPLES_PER_PAGE, Page, maxalign
from .pg.redo import RedoError, redo_record
from .pg.tuple import HEAP_XMAX_INVALID, HeapTupleHeader
from .pg.version import DEFAULT_VERSION, Flavour
from .pg.xlogrecord import Compression, ImageRef, make_block
from .protocol import BLCKSZ, BufferTag, RedoRequest, RelTag

__all__ = [
    "RECORD_KINDS",
    "BlockTrace",
    "Schedule",
    "block_numbers",
    "btree_leaf_pages",
    "buffer_tags",
    "empty_pages",
    "end_lsns",
    "heap_pages",
    "lsns",
    "pages",
    "raw_pages",
    "record_sequences",
    "redo_requests",
    "rel_tags",
    "schedules",
    "workloads",
]

RECORD_KINDS: tuple[str, ...] = (
    "fpi",
    "heap_insert",
    "heap_delete",
    "heap_lock",
    "heap_confirm",
    "heap_inplace",
    "heap_hot_update",
    "heap_update",
    "heap_insert_init",
    "heap_multi_insert",
    "btree_insert",
    "btree_newroot",
)
"""Every record kind :func:`record_sequences` can draw, simplest first (shrinking goes left)."""

_HEAP_KINDS = frozenset(k for k in RECORD_KINDS if k.startswith("heap_"))
_BTREE_KINDS = frozenset({"btree_insert", "btree_newroot"})
_INIT_KINDS = ("fpi", "heap_insert_init", "btree_newroot")
_MAX_U32 = 0xFFFFFFFF
DEFAULT_START_LSN = 0x0100_0000
"""Where drawn LSN ranges start (0/1000000); records end above it."""


# --------------------------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------------------------


def rel_tags(*, forks: Sequence[int] = (0,)) -> st.SearchStrategy[RelTag]:
    """Relation forks with small OIDs; shrinks to ``1663/1/1`` fork ``forks[0]``.

    >>> rel_tags().example()  # doctest: +SKIP
    RelTag(spcnode=1663, dbnode=5, relnode=16384, forknum=0)
    """
    return st.builds(
        RelTag,
        spcnode=st.sampled_from((1663, 1664)) | st.integers(0, _MAX_U32),
        dbnode=st.integers(1, 1 << 16) | st.integers(1, _MAX_U32),
        relnode=st.integers(1, 1 << 16) | st.integers(1, _MAX_U32),
        forknum=st.sampled_from(tuple(forks)),
    )


def block_numbers(max_value: int = 1000) -> st.SearchStrategy[int]:
    """Block numbers ``0..max_value`` (shrinks to 0)."""
    return st.integers(0, max_value)


def buffer_tags(*, max_block: int = 1000, forks: Sequence[int] = (0,)) -> st.SearchStrategy[BufferTag]:
    """A relation fork plus a block number.

    >>> buffer_tags().example()  # doctest: +SKIP
    BufferTag(rel=RelTag(spcnode=1663, dbnode=1, relnode=1, forknum=0), blknum=0)
    """
    return st.builds(BufferTag, rel_tags(forks=forks), block_numbers(max_block))


# --------------------------------------------------------------------------------------------
# LSNs
# --------------------------------------------------------------------------------------------


def lsns(min_value: int = DEFAULT_START_LSN, max_value: int = 1 << 40) -> st.SearchStrategy[int]:
    """One LSN (shrinks to ``min_value``)."""
    return st.integers(min_value, max_value)


def end_lsns(*, min_size: int = 0, max_size: int = 8, start: int = DEFAULT_START_LSN,
             max_step: int = 1 << 16) -> st.SearchStrategy[list[int]]:
    """Strictly increasing end LSNs above ``start``, as WAL records have them.

    Drawn as steps of 8..``max_step`` (MAXALIGNed, like record boundaries), so they shrink to
    ``start + 8, start + 16, ...``.

    >>> end_lsns(min_size=3, max_size=3).example()  # doctest: +SKIP
    [16777224, 16777232, 16777240]
    """

    def accumulate(steps: list[int]) -> list[int]:
        out, lsn = [], start
        for s in steps:
            lsn += 8 * s
            out.append(lsn)
        return out

    return st.lists(st.integers(1, max(1, max_step // 8)), min_size=min_size,
                    max_size=max_size).map(accumulate)


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _heap_item(xmin: int, blkno: int, offnum: int, payload: bytes, natts: int = 1) -> bytes:
    # t_hoff 24 = MAXALIGN(23): no null bitmap, one byte of padding after the fixed header.
    head = HeapTupleHeader(xmin=xmin, xmax=0, cid=0, ctid_block=blkno, ctid_offset=offnum,
                           infomask2=natts, infomask=HEAP_XMAX_INVALID, hoff=24, bits=b"\0")
    return head.pack() + payload


def empty_pages(*, max_lsn: int = DEFAULT_START_LSN) -> st.SearchStrategy[bytes]:
    """An initialized heap page with no tuples (``PageInit``), pd_lsn in ``0..max_lsn``.

    >>> len(empty_pages().example())
    8192
    """

    def build(lsn: int) -> bytes:
        page = Page.initialized()
        page.lsn = lsn
        return page.to_bytes()

    return st.integers(0, max_lsn).map(build)


@st.composite
def heap_pages(draw: st.DrawFn, *, max_tuples: int = 8, max_tuple_size: int = 64,
               blkno: int = 0, max_lsn: int = DEFAULT_START_LSN) -> bytes:
    """A heap page holding up to ``max_tuples`` tuples of up to ``max_tuple_size`` data bytes.

    Tuples are real heap tuples (23-byte header, t_hoff 24, ctid pointing at themselves);
    pd_lsn is in ``0..max_lsn``. Shrinks to an empty page.

    >>> from pytest_walredo.pg.page import Page
    >>> Page(heap_pages().example()).max_offset() <= 8
    True
    """
    page = Page.initialized()
    page.lsn = draw(st.integers(0, max_lsn))
    payloads = draw(st.lists(st.binary(max_size=max_tuple_size), max_size=max_tuples))
    xmin = draw(st.integers(0, _MAX_U32))
    for i, payload in enumerate(payloads, start=1):
        if page.add_item(_heap_item(xmin, blkno, i, payload), i, overwrite=True, is_heap=True) == 0:
            break
    return page.to_bytes()


def _index_tuple(key: bytes, tid_block: int, tid_offset: int) -> bytes:
    size = maxalign(8 + len(key))
    return IndexTuple(tid_block, tid_offset, size, key.ljust(size - 8, b"\0")).pack()


@st.composite
def btree_leaf_pages(draw: st.DrawFn, *, max_tuples: int = 8, max_key_size: int = 24,
                     max_lsn: int = DEFAULT_START_LSN) -> bytes:
    """A btree leaf page (``BTP_LEAF``, maybe ``BTP_ROOT``) with up to ``max_tuples`` index
    tuples of up to ``max_key_size`` key bytes. Shrinks to an empty leaf.

    >>> from pytest_walredo.pg.btree_page import BTPageOpaque
    >>> BTPageOpaque.unpack(btree_leaf_pages().example()).flags & 1
    1
    """
    page = Page()
    btree_page_init(page)
    root = draw(st.booleans())
    BTPageOpaque(0, 0, 0, BTP_LEAF | (BTP_ROOT if root else 0), 0).write(page)
    page.lsn = draw(st.integers(0, max_lsn))
    keys = draw(st.lists(st.binary(max_size=max_key_size), max_size=max_tuples))
    for i, key in enumerate(sorted(keys), start=1):
        if page.add_item(_index_tuple(key, 0, i), i) == 0:
            break
    return page.to_bytes()


@st.composite
def raw_pages(draw: st.DrawFn) -> bytes:
    """Arbitrary page bytes (the walredo process passes a pushed page through unchanged,
    whatever it holds): a fill byte with up to a few short runs of drawn bytes at drawn
    offsets. Drawn this way rather than as 8192 independent bytes so that examples stay
    small and shrink to all zeros.

    >>> len(raw_pages().example())
    8192
    """
    page = bytearray([draw(st.integers(0, 255))]) * BLCKSZ
    for _ in range(draw(st.integers(0, 4))):
        run = draw(st.binary(min_size=1, max_size=64))
        at = draw(st.integers(0, BLCKSZ - len(run)))
        page[at : at + len(run)] = run
    return bytes(page)


def pages(*, max_tuples: int = 8) -> st.SearchStrategy[bytes]:
    """A valid page: empty, heap with tuples, or btree leaf (shrinks toward empty)."""
    return st.one_of(empty_pages(), heap_pages(max_tuples=max_tuples),
                     btree_leaf_pages(max_tuples=max_tuples))


# --------------------------------------------------------------------------------------------
# Record sequences for one block
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockTrace:
    """One drawn record sequence for one block, with what the model says about each step.

    ``kinds[i]`` is the :data:`RECORD_KINDS` name of ``records[i]`` (``(end LSN, bytes)``),
    ``page_kind`` what the block holds at the end (``"heap"``, ``"btree"`` or ``"none"``).
    """

    base_image: bytes | None
    records: tuple[tuple[int, bytes], ...]
    kinds: tuple[str, ...]
    page_kind: str


class _Block:
    """The drawing state: the block's current page per the model, and its kind."""

    def __init__(self, tag: BufferTag, pg_version: int, flavour: Flavour) -> None:
        self.tag = tag
        self.v = pg_version
        self.fl = flavour
        self.page: bytes | None = None
        self.kind = "none"

    @property
    def rel3(self) -> tuple[int, int, int]:
        r = self.tag.rel
        return (r.spcnode, r.dbnode, r.relnode)

    def view(self) -> Page:
        return Page(self.page) if self.page is not None else Page()

    def normal_offsets(self) -> list[int]:
        if self.page is None or self.kind != "heap":
            return []
        p = self.view()
        return [off for off, lp in p.item_ids() if lp.flags == LP_NORMAL and lp.len >= 24]

    def room(self) -> int:
        """Bytes a new item may take (MAXALIGNed size), after its line pointer."""
        if self.page is None:
            return 0
        p = self.view()
        return max(0, p.upper - p.lower - 4) // 8 * 8

    def apply(self, lsn: int, raw: bytes) -> bool:
        r = self.tag.rel
        try:
            new = redo_record(self.page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode,
                              forknum=r.forknum, blkno=self.tag.blknum, end_lsn=lsn, record=raw,
                              pg_version=self.v, flavour=self.fl)
        except RedoError:
            return False
        self.page = None if new is None else bytes(new)
        return True


def _cid(draw: st.DrawFn, v: int, fl: Flavour) -> int | None:
    """A t_cid when the flavour's heap records carry one (Neon); None for vanilla."""
    if fl is Flavour.VANILLA:
        return None
    if v <= 15:
        return draw(st.integers(0, 100))
    return draw(st.none() | st.integers(0, 100))


def _xl_tuple(payload: bytes, cid: int | None) -> rmgr.XlTuple:
    # data = the bytes from t_bits on: one padding byte up to t_hoff 24, then the payload.
    return rmgr.XlTuple(1, HEAP_XMAX_INVALID, 24, b"\0" + payload, cid)


def _compressions(v: int) -> tuple[Compression, ...]:
    return (Compression.NONE, Compression.PGLZ) if v == 14 else tuple(Compression)


def _draw_record(draw: st.DrawFn, b: _Block, kind: str, max_tuple_size: int) -> bytes | None:
    """Draw one raw record of ``kind`` for block ``b`` (None: the kind does not fit now)."""
    v, fl, tag = b.v, b.fl, b.tag
    xid = draw(st.integers(0, _MAX_U32))

    def built(body: rmgr.RmgrRecord, *, will_init: bool = False, extra: Sequence = ()) -> bytes:
        blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, will_init=will_init),
                  *extra]
        return rmgr.build(body, blocks, pg_version=v, flavour=fl, xid=xid).encode()

    def payload(limit: int) -> bytes | None:
        limit = min(max_tuple_size, limit - 24)
        return None if limit < 0 else draw(st.binary(max_size=limit))

    if kind == "fpi":
        page_kind = draw(st.sampled_from(("heap", "btree")))
        image_page = draw(heap_pages(blkno=tag.blknum) if page_kind == "heap" else btree_leaf_pages())
        comp = draw(st.sampled_from(_compressions(v)))
        image = ImageRef.from_page(image_page, v, compression=comp)
        blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, image=image)]
        if draw(st.booleans()):  # a second block reference the walredo must leave alone
            other = ImageRef.from_page(draw(heap_pages(max_tuples=2)), v)
            blocks.append(make_block(1, b.rel3, (tag.blknum + 1) & _MAX_U32,
                                     forknum=tag.rel.forknum, image=other))
        for_hint = draw(st.booleans())
        b.kind = page_kind
        return rmgr.build(rmgr.XlogFpi(for_hint), blocks, pg_version=v, flavour=fl, xid=xid).encode()
    if kind == "heap_insert_init":
        cid = _cid(draw, v, fl)
        data = payload(BLCKSZ - 32)
        assert data is not None
        b.kind = "heap"
        return built(rmgr.HeapInsert(1, 0, _xl_tuple(data, cid), True, cid), will_init=True)
    if kind == "btree_newroot":
        if b.tag.blknum == 0:
            return None  # the metapage is block 0; a root there would be the metapage itself
        meta = rmgr.BtreeMetadata(4, tag.blknum, 0, tag.blknum, 0, 0, True)
        metablock = make_block(2, b.rel3, 0, forknum=tag.rel.forknum, will_init=True)
        b.kind = "btree"
        return built(rmgr.BtreeNewroot(tag.blknum, 0, b"", meta), will_init=True, extra=[metablock])
    if b.page is None:
        return None
    if b.kind == "btree":
        if kind != "btree_insert":
            return None
        p = b.view()
        first = 1
        key = draw(st.binary(max_size=min(24, max(0, b.room() - 8))))
        if maxalign(8 + len(key)) > b.room():
            return None
        off = draw(st.integers(first, p.max_offset() + 1))
        tid = (draw(st.integers(0, 100)), draw(st.integers(1, 50)))
        return built(rmgr.BtreeInsert(off, _index_tuple(key, *tid)))
    if b.kind != "heap" or kind not in _HEAP_KINDS:
        return None
    p = b.view()
    normals = b.normal_offsets()
    nextoff = p.max_offset() + 1
    if kind in ("heap_insert", "heap_multi_insert", "heap_update", "heap_hot_update") and (
        nextoff > MAX_HEAP_TUPLES_PER_PAGE
    ):
        return None
    if kind == "heap_insert":
        data = payload(b.room())
        if data is None:
            return None
        cid = _cid(draw, v, fl)
        return built(rmgr.HeapInsert(nextoff, 0, _xl_tuple(data, cid), False, cid))
    if kind == "heap_multi_insert":
        per_tuple = fl is Flavour.NEON and v <= 15
        n = draw(st.integers(1, 3))
        tuples = []
        room = b.room()
        for _ in range(n):
            data = payload(room - 4)
            if data is None:
                break
            room -= maxalign(24 + len(data)) + 4
            tuples.append(rmgr.MultiInsertTuple(1, HEAP_XMAX_INVALID, 24, b"\0" + data,
                                                draw(st.integers(0, 100)) if per_tuple else None))
        if not tuples or nextoff + len(tuples) - 1 > MAX_HEAP_TUPLES_PER_PAGE:
            return None
        rec_cid = None if per_tuple or fl is Flavour.VANILLA else draw(st.none() | st.integers(0, 100))
        offsets = tuple(range(nextoff, nextoff + len(tuples)))
        return built(rmgr.Heap2MultiInsert(0, len(tuples), offsets, tuple(tuples), False, rec_cid))
    if not normals:
        return None
    off = normals[draw(st.integers(0, len(normals) - 1))]
    if kind == "heap_delete":
        cid = _cid(draw, v, fl)
        return built(rmgr.HeapDelete(draw(st.integers(0, _MAX_U32)), off,
                                     draw(st.integers(0, 0x1F)), 0, cid))
    if kind == "heap_lock":
        cid = _cid(draw, v, fl)
        return built(rmgr.HeapLock(draw(st.integers(0, _MAX_U32)), off,
                                   draw(st.integers(0, 0x1F)), 0, cid))
    if kind == "heap_confirm":
        return built(rmgr.HeapConfirm(off))
    if kind == "heap_inplace":
        lp = p.item_id(off)
        old = p.item(off)
        hoff = old[22]
        length = lp.len - hoff
        if length < 0:
            return None
        data = draw(st.binary(min_size=length, max_size=length))
        return built(rmgr.HeapInplace(off, data))
    if kind in ("heap_update", "heap_hot_update"):
        data = payload(b.room())
        if data is None:
            return None
        cid = _cid(draw, v, fl)
        body = rmgr.HeapUpdate(draw(st.integers(0, _MAX_U32)), off, 0, nextoff,
                               draw(st.integers(0, 0x1F)), 0, kind == "heap_hot_update", False,
                               cid, _xl_tuple(data, cid))
        return built(body)
    return None


_NEEDS_TUPLE = frozenset({"heap_delete", "heap_lock", "heap_confirm", "heap_inplace",
                          "heap_hot_update", "heap_update"})


def _applicable(b: _Block, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds that can apply to the block as it is now (keeps the order of ``kinds``)."""
    has_tuples = bool(b.normal_offsets())
    out = tuple(
        k for k in kinds
        if k in _INIT_KINDS
        or (b.kind == "heap" and k in _HEAP_KINDS and (has_tuples or k not in _NEEDS_TUPLE))
        or (b.kind == "btree" and k == "btree_insert")
    )
    return out or kinds


@st.composite
def _trace(draw: st.DrawFn, tag: BufferTag, pg_version: int, flavour: Flavour,
           min_records: int, max_records: int, kinds: tuple[str, ...], max_tuple_size: int,
           start_lsn: int) -> BlockTrace:
    b = _Block(tag, pg_version, flavour)
    base: bytes | None = None
    start = draw(st.sampled_from(("push", "record")))
    if start == "push":
        base = draw(pages())
        b.page = base
        b.kind = "btree" if Page(base).special < BLCKSZ else "heap"  # btree pages have special space
    lsn = max(start_lsn, Page(base).lsn if base is not None else 0)
    n = draw(st.integers(min_records, max_records))
    records: list[tuple[int, bytes]] = []
    used: list[str] = []
    init_kinds = tuple(k for k in _INIT_KINDS if k in kinds) or kinds
    attempts = 0
    while len(records) < n and attempts < 3 * n + 3:
        attempts += 1
        choices = init_kinds if b.page is None else _applicable(b, kinds)
        kind = draw(st.sampled_from(choices))
        lsn += 8 * draw(st.integers(1, 1 << 10))
        saved_kind = b.kind
        raw = _draw_record(draw, b, kind, max_tuple_size)
        if raw is None or not b.apply(lsn, raw):
            b.kind = saved_kind
            continue
        records.append((lsn, raw))
        used.append(kind)
    return BlockTrace(base, tuple(records), tuple(used), b.kind)


def record_sequences(tag: BufferTag, *, pg_version: int = DEFAULT_VERSION,
                     flavour: Flavour = Flavour.NEON, min_records: int = 0, max_records: int = 6,
                     kinds: Sequence[str] = RECORD_KINDS, max_tuple_size: int = 64,
                     start_lsn: int = DEFAULT_START_LSN) -> st.SearchStrategy[BlockTrace]:
    """A coherent record sequence for block ``tag`` (see the module docstring).

    ``kinds`` restricts the record kinds (names from :data:`RECORD_KINDS`); when the block
    has no page yet, only initializing kinds among them (``fpi``, ``heap_insert_init``,
    ``btree_newroot``) are drawn, or the sequence starts with a pushed base image.

    >>> from pytest_walredo.protocol import BufferTag, RelTag
    >>> t = record_sequences(BufferTag(RelTag(1663, 5, 16384), 3), pg_version=15,
    ...                      min_records=1).example()
    >>> len(t.records) >= 1 and len(t.records) == len(t.kinds)
    True
    """
    unknown = sorted(set(kinds) - set(RECORD_KINDS))
    if unknown:
        raise ValueError(f"unknown record kind(s) {unknown}; known: {', '.join(RECORD_KINDS)}")
    return _trace(tag, pg_version, Flavour(flavour), min_records, max_records, tuple(kinds),
                  max_tuple_size, start_lsn)


# --------------------------------------------------------------------------------------------
# Requests and workloads
# --------------------------------------------------------------------------------------------


@st.composite
def redo_requests(draw: st.DrawFn, *, pg_version: int = DEFAULT_VERSION,
                  flavour: Flavour = Flavour.NEON, tag: BufferTag | None = None,
                  min_records: int = 0, max_records: int = 6,
                  kinds: Sequence[str] = RECORD_KINDS, max_tuple_size: int = 64) -> RedoRequest:
    """A whole redo request ``B [P] A* G`` for one block (``tag``, or a drawn one).

    >>> req = redo_requests(pg_version=16, flavour=Flavour.VANILLA).example()
    >>> req.messages()[0].describe().startswith("B BeginRedoForBlock")
    True
    """
    if tag is None:
        tag = draw(buffer_tags(max_block=100))
    trace = draw(record_sequences(tag, pg_version=pg_version, flavour=flavour,
                                  min_records=min_records, max_records=max_records, kinds=kinds,
                                  max_tuple_size=max_tuple_size))
    return RedoRequest(tag.rel, tag.blknum, trace.base_image, trace.records)


@st.composite
def workloads(draw: st.DrawFn, *, pg_version: int = DEFAULT_VERSION,
              flavour: Flavour = Flavour.NEON, min_requests: int = 1, max_requests: int = 8,
              max_blocks: int = 4, max_records: int = 4,
              kinds: Sequence[str] = RECORD_KINDS) -> list[RedoRequest]:
    """Many requests on a few blocks (several requests may name the same block, as the
    pageserver's would for successive versions of a page). Shrinks toward one request.

    >>> len(workloads(max_requests=3).example()) <= 3
    True
    """
    tags = draw(st.lists(buffer_tags(max_block=20), min_size=1, max_size=max_blocks, unique=True))
    n = draw(st.integers(min_requests, max_requests))
    out = []
    for _ in range(n):
        tag = tags[draw(st.integers(0, len(tags) - 1))]
        out.append(draw(redo_requests(pg_version=pg_version, flavour=flavour, tag=tag,
                                      max_records=max_records, kinds=kinds)))
    return out


def heap_tuple_count(page: bytes) -> int:
    """How many line pointers ``page`` has (a helper for assertions on drawn pages)."""
    return Page(page).max_offset()
