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
Neon flavours; the kind names are version-neutral and each maps to the record layout of the
version drawn for):

* XLOG FPI / FPI_FOR_HINT (optionally compressed, optionally with a second, unrelated block
  reference) of a heap page, a btree leaf or a btree internal page;
* heap INSERT (+INIT), DELETE, LOCK, UPDATE / HOT_UPDATE on one page, INPLACE, CONFIRM, heap2
  MULTI_INSERT (+INIT). On a page with PD_ALL_VISIBLE (after a VISIBLE record), INSERT,
  MULTI_INSERT, DELETE and UPDATE log their ``ALL_VISIBLE_CLEARED`` flag, as PostgreSQL does;
* cross-page UPDATE, both ways: ``heap_update_new_block`` (this block is reference 0 and gets
  the new tuple, +INIT when drawn or when the block has no heap page) and
  ``heap_update_old_block`` (this block is reference 1; its tuple gets the xmax);
* ``heap2_visible``: VISIBLE (reference 0 is the visibility-map page, reference 1 this heap
  page, which gets PD_ALL_VISIBLE and keeps its pd_lsn);
* ``heap2_freeze``: FREEZE_PAGE (PG14/15 per-tuple, PG16 freeze plans) or, in PG17,
  PRUNE_VACUUM_SCAN with freeze plans only; the frozen tuples exist;
* ``heap2_prune``: PRUNE (PG14-16) or, in PG17, PRUNE_ON_ACCESS / PRUNE_VACUUM_SCAN (the
  latter maybe also freezing survivors); redirect, dead and unused offsets are distinct
  existing LP_NORMAL tuples, redirects point at a tuple that stays;
* ``heap2_vacuum``: VACUUM (PG14-16) or, in PG17, PRUNE_VACUUM_CLEANUP without a cleanup
  lock: LP_DEAD line pointers (left by a prune, or on a drawn page) become unused;
* btree INSERT_LEAF on a leaf; NEWROOT at level 0 (an empty leaf root) or level 1-3 (a root
  with two downlinks); ``btree_insert_upper``: INSERT_UPPER or INSERT_META on an internal
  page (a new downlink after the first data key; the split's left child and the metapage are
  other block references).

Records that reference other blocks (the VM page, the other side of a cross-page update, a
btree child or the metapage) name blocks that are never the requested one, so redo leaves
those parts out, as the walredo process does.

Interleavings of concurrent callers come from :func:`schedules` (re-exported from
:mod:`pytest_walredo.interleave`, which runs them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from .interleave import Schedule, schedules
from .pg import rmgr
from .pg.btree_page import (
    BTP_LEAF,
    BTP_META,
    BTP_ROOT,
    INDEX_AM_RESERVED_BIT,
    BTPageOpaque,
    IndexTuple,
    btree_page_init,
)
from .pg.constants import VISIBILITYMAP_FORKNUM
from .pg.page import (
    LP_DEAD,
    LP_NORMAL,
    LP_REDIRECT,
    MAX_HEAP_TUPLES_PER_PAGE,
    PD_ALL_VISIBLE,
    PD_HAS_FREE_LINES,
    ItemId,
    Page,
    maxalign,
)
from .pg.redo import RedoError, redo_record
from .pg.rmgr.btree import XLOG_BTREE_INSERT_META, XLOG_BTREE_INSERT_UPPER
from .pg.rmgr.heap2_prune17 import (
    PRUNE_REASONS,
    XLHP_CLEANUP_LOCK,
    XLHP_HAS_CONFLICT_HORIZON,
    XLHP_HAS_DEAD_ITEMS,
    XLHP_HAS_FREEZE_PLANS,
    XLHP_HAS_NOW_UNUSED_ITEMS,
    XLHP_HAS_REDIRECTIONS,
    XLHP_IS_CATALOG_REL,
    XLOG_HEAP2_PRUNE_ON_ACCESS,
    XLOG_HEAP2_PRUNE_VACUUM_CLEANUP,
    XLOG_HEAP2_PRUNE_VACUUM_SCAN,
)
from .pg.tuple import (
    HEAP_HOT_UPDATED,
    HEAP_KEYS_UPDATED,
    HEAP_UPDATED,
    HEAP_XMAX_BITS,
    HEAP_XMAX_INVALID,
    HEAP_XMIN_FROZEN,
    HeapTupleHeader,
)
from .pg.version import DEFAULT_VERSION, Flavour
from .pg.visibilitymap import (
    VISIBILITYMAP_ALL_FROZEN,
    VISIBILITYMAP_ALL_VISIBLE,
    VISIBILITYMAP_XLOG_CATALOG_REL,
    map_block,
)
from .pg.xlogrecord import BlockRef, Compression, ImageRef, make_block
from .protocol import BLCKSZ, BufferTag, RedoRequest, RelTag

__all__ = [
    "RECORD_KINDS",
    "BlockTrace",
    "Schedule",
    "block_numbers",
    "btree_internal_pages",
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
    "heap2_vacuum",
    "heap2_visible",
    "heap2_freeze",
    "heap2_prune",
    "heap_update_old_block",
    "heap_update_new_block",
    "btree_insert_upper",
)
"""Every record kind :func:`record_sequences` can draw, simplest first (shrinking goes left)."""

_HEAP_KINDS = frozenset(k for k in RECORD_KINDS if k.startswith(("heap_", "heap2_")))
_INIT_KINDS = ("fpi", "heap_insert_init", "btree_newroot", "heap_update_new_block")
_MAX_U32 = 0xFFFFFFFF
DEFAULT_START_LSN = 0x0100_0000
"""Where drawn LSN ranges start (0/1000000); records end above it."""

_UPDATED_INFOMASK = HEAP_XMAX_INVALID | HEAP_UPDATED  # a new tuple version written by UPDATE


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
               blkno: int = 0, max_lsn: int = DEFAULT_START_LSN, max_dead: int = 2) -> bytes:
    """A heap page holding up to ``max_tuples`` tuples of up to ``max_tuple_size`` data bytes.

    Tuples are real heap tuples (23-byte header, t_hoff 24, ctid pointing at themselves);
    pd_lsn is in ``0..max_lsn``. Up to ``max_dead`` of the line pointers may be LP_DEAD
    without storage, as pruning leaves them for VACUUM (the page is then compacted like
    ``PageRepairFragmentation`` does). Shrinks to an empty page.

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
    n = page.max_offset()
    if n and max_dead > 0:
        dead = draw(st.lists(st.integers(1, n), max_size=max_dead, unique=True))
        for off in dead:
            page.set_item_id(off, ItemId(0, LP_DEAD, 0))
        if dead:
            page.repair_fragmentation()
            # the free gap keeps stale tuple bytes after compaction; zero it like a fresh
            # page's, so the page can be logged as an image with a hole
            page.data[page.lower : page.upper] = bytes(page.upper - page.lower)
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


@st.composite
def btree_internal_pages(draw: st.DrawFn, *, max_tuples: int = 8, max_key_size: int = 24,
                         max_level: int = 3, max_lsn: int = DEFAULT_START_LSN) -> bytes:
    """A btree internal page: level ``1..max_level``, not a leaf, holding 1..``max_tuples``
    downlinks: the first data item is the key-less "minus infinity" downlink, the others
    carry ascending keys of up to ``max_key_size`` bytes; downlinks point at distinct blocks
    >= 1 (block 0 is the metapage). A rightmost page (no right sibling) may be ``BTP_ROOT``;
    a page with a right sibling keeps its high key (above every key) at offset 1, so its
    data items start at offset 2 (``P_FIRSTDATAKEY``). Shrinks to a rightmost level-1 page
    with one downlink to block 1.

    >>> from pytest_walredo.pg.btree_page import BTPageOpaque
    >>> op = BTPageOpaque.unpack(btree_internal_pages().example())
    >>> op.level >= 1 and not op.flags & 1
    True
    """
    if max_tuples < 1 or max_level < 1:
        raise ValueError("an internal page has at least one downlink and level >= 1")
    page = Page()
    btree_page_init(page)
    level = draw(st.integers(1, max_level))
    right = draw(st.none() | st.integers(1, 1 << 16))  # the right sibling's block, if any
    root = right is None and draw(st.booleans())
    BTPageOpaque(0, right or 0, level, BTP_ROOT if root else 0, 0).write(page)
    page.lsn = draw(st.integers(0, max_lsn))
    children = draw(st.lists(st.integers(1, 1 << 16), min_size=1, max_size=max_tuples, unique=True))
    keys = sorted(draw(st.lists(st.binary(min_size=1, max_size=max(1, max_key_size)),
                                min_size=len(children) - 1, max_size=len(children) - 1)))
    items = [_downlink(child, key) for child, key in zip(children, [b"", *keys], strict=True)]
    if right is not None:
        # the high key: a pivot above every key on the page (its downlink is not used)
        items.insert(0, _downlink(right, (keys[-1] if keys else b"") + b"\xff"))
    for i, item in enumerate(items, start=1):
        if page.add_item(item, i) == 0:
            break
    return page.to_bytes()


def pages(*, max_tuples: int = 8) -> st.SearchStrategy[bytes]:
    """A valid page: empty, heap with tuples, btree leaf or btree internal page (shrinks
    toward empty)."""
    return st.one_of(empty_pages(), heap_pages(max_tuples=max_tuples),
                     btree_leaf_pages(max_tuples=max_tuples),
                     btree_internal_pages(max_tuples=max(1, max_tuples)))


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


def _xl_tuple(payload: bytes, cid: int | None, infomask: int = HEAP_XMAX_INVALID) -> rmgr.XlTuple:
    # data = the bytes from t_bits on: one padding byte up to t_hoff 24, then the payload.
    return rmgr.XlTuple(1, infomask, 24, b"\0" + payload, cid)


def _compressions(v: int) -> tuple[Compression, ...]:
    return (Compression.NONE, Compression.PGLZ) if v == 14 else tuple(Compression)


def _other_block(draw: st.DrawFn, avoid: Sequence[int], low: int = 0) -> int:
    """A block number ``>= low`` that is none of ``avoid`` (shrinks toward ``low``).

    Invariant: the result differs from every block in ``avoid``, so a block reference to it
    can never be the requested block (``avoid`` always holds the requested block number)."""
    n = draw(st.integers(low, low + 1000))
    while n in avoid:
        n += 1
    return n


def _insert_offsets(b: _Block, n: int) -> list[int]:
    """Where ``n`` new tuples go on the block's heap page, as ``PageAddItem`` without an
    offset chooses: while PD_HAS_FREE_LINES says there are unused line pointers (a prune or
    vacuum left them), the first unused one, then one past the end. An offset above
    MaxHeapTuplesPerPage means the page has no room for that many tuples."""
    p = b.view()
    free = ([off for off, lp in p.item_ids() if not lp.is_used and not lp.has_storage]
            if p.flags & PD_HAS_FREE_LINES else [])
    out: list[int] = []
    nxt = p.max_offset() + 1
    for _ in range(n):
        if free:
            out.append(free.pop(0))
        else:
            out.append(nxt)
            nxt += 1
    return out


def _all_visible_cleared(b: _Block) -> int:
    """1 when the block's page has PD_ALL_VISIBLE: heap INSERT/DELETE/UPDATE and
    MULTI_INSERT then log their ``*_ALL_VISIBLE_CLEARED`` flag (bit 0x01 in every one of
    them), as PostgreSQL does when it modifies an all-visible page."""
    return 1 if b.page is not None and b.view().flags & PD_ALL_VISIBLE else 0


def _downlink(child: int, key: bytes) -> bytes:
    """A btree pivot tuple pointing at ``child`` (PostgreSQL 12+: the TID's block is the
    downlink, its offset the number of key attributes, INDEX_ALT_TID_MASK set in t_info).
    An empty ``key`` is the "minus infinity" first downlink of an internal page."""
    size = maxalign(8 + len(key))
    return IndexTuple(child, 1 if key else 0, size | INDEX_AM_RESERVED_BIT,
                      key.ljust(size - 8, b"\0")).pack()


def _btree_opaque(b: _Block) -> BTPageOpaque | None:
    """The btree special space of the block's page (None when it is not a btree page)."""
    if b.page is None or b.kind != "btree":
        return None
    return BTPageOpaque.unpack(b.page)


def _is_btree_leaf(b: _Block) -> bool:
    op = _btree_opaque(b)
    return op is not None and bool(op.flags & BTP_LEAF)


def _is_btree_internal(b: _Block) -> bool:
    """An internal (level >= 1, not leaf, not metapage) btree page."""
    op = _btree_opaque(b)
    return op is not None and op.level >= 1 and not op.flags & (BTP_LEAF | BTP_META)


_XLHP_PART_FLAGS = (
    (XLHP_HAS_FREEZE_PLANS, "plans"),
    (XLHP_HAS_REDIRECTIONS, "redirected"),
    (XLHP_HAS_DEAD_ITEMS, "dead"),
    (XLHP_HAS_NOW_UNUSED_ITEMS, "unused"),
)


def _prune17(draw: st.DrawFn, op: int, *, cleanup_lock: bool, plans: tuple[rmgr.FreezePlan, ...] = (),
             redirected: tuple[tuple[int, int], ...] = (), dead: tuple[int, ...] = (),
             unused: tuple[int, ...] = ()) -> rmgr.Heap2PruneFreeze:
    """A PG17 PRUNE_* record; flags follow ``log_heap_prune_and_freeze``: one HAS_* bit per
    non-empty part, CLEANUP_LOCK when the caller held one, a conflict horizon only when
    drawn valid, IS_CATALOG_REL drawn (shrinks to unset)."""
    parts = {"plans": plans, "redirected": redirected, "dead": dead, "unused": unused}
    flags = sum(bit for bit, name in _XLHP_PART_FLAGS if parts[name])
    if cleanup_lock:
        flags |= XLHP_CLEANUP_LOCK
    if draw(st.booleans()):
        flags |= XLHP_IS_CATALOG_REL
    conflict = None if op == XLOG_HEAP2_PRUNE_VACUUM_CLEANUP else draw(st.none() | st.integers(3, _MAX_U32))
    if conflict is not None:
        flags |= XLHP_HAS_CONFLICT_HORIZON
    return rmgr.Heap2PruneFreeze(op, PRUNE_REASONS[op], flags, conflict, plans, redirected, dead, unused)


def _freeze_actions(draw: st.DrawFn, p: Page, offs: Sequence[int]) -> list[tuple[int, int, int, int, int]]:
    """What ``heap_prepare_freeze_tuple`` would decide for the tuples at ``offs``, as
    (offset, xmax, infomask2, infomask, frzflags): xmin frozen (HEAP_XMIN_FROZEN; PostgreSQL
    9.4+ keeps t_xmin itself), and, when drawn, xmax removed too (xmax 0, HEAP_XMAX_INVALID,
    no HOT_UPDATED / KEYS_UPDATED); otherwise the tuple's own xmax is kept."""
    out = []
    for off in offs:
        item = p.item(off)
        head = HeapTupleHeader.unpack(item)
        infomask, infomask2, xmax = head.infomask | HEAP_XMIN_FROZEN, head.infomask2, head.xmax
        if draw(st.booleans()):
            xmax = 0
            infomask = (infomask & ~HEAP_XMAX_BITS) | HEAP_XMAX_INVALID
            infomask2 &= ~(HEAP_HOT_UPDATED | HEAP_KEYS_UPDATED)
        out.append((off, xmax, infomask2, infomask, 0))
    return out


def _freeze_plans(actions: Sequence[tuple[int, int, int, int, int]]) -> tuple[rmgr.FreezePlan, ...]:
    """PG16+ deduplicated freeze plans, as ``heap_log_freeze_plan`` builds them: tuples with
    identical (xmax, infomask2, infomask, frzflags) share one plan, plans in that key's
    order, offsets ascending within a plan."""
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for off, xmax, m2, m, frz in actions:
        groups.setdefault((xmax, m2, m, frz), []).append(off)
    return tuple(rmgr.FreezePlan(xmax, m2, m, frz, tuple(sorted(offs)))
                 for (xmax, m2, m, frz), offs in sorted(groups.items()))


def _dead_offsets(b: _Block) -> list[int]:
    """LP_DEAD line pointers without storage on the block's heap page (what VACUUM's second
    pass marks unused)."""
    if b.page is None or b.kind != "heap":
        return []
    return [off for off, lp in b.view().item_ids() if lp.flags == LP_DEAD and not lp.has_storage]


def _draw_offsets(draw: st.DrawFn, candidates: Sequence[int], max_size: int = 4) -> list[int]:
    """1..``max_size`` distinct offsets among ``candidates`` (non-empty), ascending."""
    return sorted(draw(st.lists(st.sampled_from(tuple(candidates)), min_size=1,
                                max_size=min(max_size, len(candidates)), unique=True)))


_Drawn = tuple[rmgr.RmgrRecord, list[BlockRef]]
"""A drawn record body and its block references (block 0 first)."""


def _own_block(b: _Block) -> BlockRef:
    return make_block(0, b.rel3, b.tag.blknum, forknum=b.tag.rel.forknum)


def _draw_visible(draw: st.DrawFn, b: _Block) -> _Drawn | None:
    """VISIBLE: reference 0 is the visibility-map page covering this heap block, reference 1
    the heap page itself (the requested block), which redo marks PD_ALL_VISIBLE."""
    tag = b.tag
    if tag.rel.forknum == VISIBILITYMAP_FORKNUM:
        return None  # the VM block reference could then be the requested block itself
    flags = draw(st.sampled_from((VISIBILITYMAP_ALL_VISIBLE,
                                  VISIBILITYMAP_ALL_VISIBLE | VISIBILITYMAP_ALL_FROZEN)))
    if b.v >= 16 and draw(st.booleans()):
        flags |= VISIBILITYMAP_XLOG_CATALOG_REL
    vm = make_block(0, b.rel3, map_block(tag.blknum), forknum=VISIBILITYMAP_FORKNUM)
    heap = make_block(1, b.rel3, tag.blknum, forknum=tag.rel.forknum)
    return rmgr.Heap2Visible(draw(st.integers(0, _MAX_U32)), flags), [vm, heap]


def _draw_vacuum(draw: st.DrawFn, b: _Block) -> _Drawn | None:
    """VACUUM (PG14-16) / PRUNE_VACUUM_CLEANUP without a cleanup lock (PG17): some LP_DEAD
    line pointers become unused."""
    dead = _dead_offsets(b)
    if not dead:
        return None
    unused = tuple(_draw_offsets(draw, dead, max_size=8))
    if b.v >= 17:
        return _prune17(draw, XLOG_HEAP2_PRUNE_VACUUM_CLEANUP, cleanup_lock=False, unused=unused), [_own_block(b)]
    return rmgr.Heap2Vacuum(len(unused), unused), [_own_block(b)]


def _draw_freeze(draw: st.DrawFn, b: _Block) -> _Drawn | None:
    """FREEZE_PAGE (PG14/15 per tuple, PG16 plans) / PRUNE_VACUUM_SCAN with freeze plans only
    (PG17), freezing some existing LP_NORMAL tuples."""
    normals = b.normal_offsets()
    if not normals:
        return None
    v = b.v
    cutoff = draw(st.integers(0, _MAX_U32))
    actions = _freeze_actions(draw, b.view(), _draw_offsets(draw, normals))
    if v >= 17:
        return _prune17(draw, XLOG_HEAP2_PRUNE_VACUUM_SCAN, cleanup_lock=True,
                        plans=_freeze_plans(actions)), [_own_block(b)]
    if v == 16:
        plans = _freeze_plans(actions)
        catalog = draw(st.booleans())
        return rmgr.Heap2FreezePage(cutoff, len(plans), plans=plans,
                                    is_catalog_rel=catalog), [_own_block(b)]
    tuples = tuple(rmgr.FreezeTuple(xmax, off, m2, m, frz) for off, xmax, m2, m, frz in actions)
    return rmgr.Heap2FreezePage(cutoff, len(tuples), tuples=tuples), [_own_block(b)]


def _redirects(b: _Block) -> dict[int, int]:
    """The block's LP_REDIRECT line pointers: offset -> the offset it points at."""
    if b.page is None or b.kind != "heap":
        return {}
    return {off: lp.off for off, lp in b.view().item_ids() if lp.flags == LP_REDIRECT}


def _prune_candidates(b: _Block) -> list[int]:
    """Line pointers a prune may name directly: tuples that are not the member a redirect
    points at (that one goes with its chain), and the redirects (a chain's root)."""
    redirects = _redirects(b)
    targets = set(redirects.values())
    return sorted([off for off in b.normal_offsets() if off not in targets] + list(redirects))


def _draw_prune(draw: st.DrawFn, b: _Block) -> _Drawn | None:
    """PRUNE (PG14-16) / PRUNE_ON_ACCESS or PRUNE_VACUUM_SCAN with a cleanup lock (PG17).

    Invariants (those ``heap_page_prune_execute`` asserts in PostgreSQL's debug builds):

    * every offset is named once; a tuple named becomes a redirect, dead or unused;
    * a redirect points at an LP_NORMAL tuple no part of the record names, and no two
      redirects share a target, so after the record every redirect on the page points at a
      tuple (``page_verify_redirects``);
    * an existing redirect (a pruned chain's root) either becomes dead, its chain's tuple
      unused with it, or moves on to another surviving tuple, its old tuple unused.

    PG17's VACUUM_SCAN may also freeze tuples that survive."""
    candidates = _prune_candidates(b)
    if not candidates:
        return None
    v = b.v
    redirects = _redirects(b)
    horizon = draw(st.integers(0, _MAX_U32))
    picked = _draw_offsets(draw, candidates)
    targets = set(redirects.values())
    # tuples a new redirect may point at: not named, not already some redirect's target
    free_targets = [off for off in b.normal_offsets() if off not in picked and off not in targets]
    redirected: list[tuple[int, int]] = []
    dead: list[int] = []
    unused: list[int] = []
    for off in picked:
        action = draw(st.sampled_from(("dead", "unused", "redirect")))
        if action == "redirect" and free_targets:
            # a HOT chain's root now points at a surviving (heap-only) member of the chain
            to = free_targets.pop(draw(st.integers(0, len(free_targets) - 1)))
            redirected.append((off, to))
            if off in redirects:
                unused.append(redirects[off])  # the chain's old first member is gone
        elif action == "unused" and off not in redirects:
            unused.append(off)
        else:
            dead.append(off)
            if off in redirects:
                unused.append(redirects[off])  # the whole chain is dead
    survivors = [off for off in b.normal_offsets() if off not in unused and off not in dead
                 and off not in (frm for frm, _ in redirected)]
    if v >= 17:
        op = draw(st.sampled_from((XLOG_HEAP2_PRUNE_ON_ACCESS, XLOG_HEAP2_PRUNE_VACUUM_SCAN)))
        plans: tuple[rmgr.FreezePlan, ...] = ()
        if op == XLOG_HEAP2_PRUNE_VACUUM_SCAN and survivors and draw(st.booleans()):
            # VACUUM's first pass prunes and freezes what survives in one record
            plans = _freeze_plans(_freeze_actions(draw, b.view(), _draw_offsets(draw, survivors)))
        return _prune17(draw, op, cleanup_lock=True, plans=plans, redirected=tuple(redirected),
                        dead=tuple(dead), unused=tuple(sorted(unused))), [_own_block(b)]
    catalog = v == 16 and draw(st.booleans())
    return rmgr.Heap2Prune(horizon, len(redirected), len(dead), tuple(redirected), tuple(dead),
                           tuple(sorted(unused)), is_catalog_rel=catalog), [_own_block(b)]


_HEAP2_DRAWERS = {
    "heap2_visible": _draw_visible,
    "heap2_vacuum": _draw_vacuum,
    "heap2_freeze": _draw_freeze,
    "heap2_prune": _draw_prune,
}
"""Heap2 maintenance kinds: each returns None when the kind does not apply to the page."""


def _draw_cross_update(draw: st.DrawFn, b: _Block, kind: str,
                       max_tuple_size: int) -> _Drawn | None:
    """A non-HOT heap UPDATE whose old and new tuples are on different blocks.

    ``heap_update_new_block``: this block is block reference 0 and receives the new tuple
    (with INIT_PAGE when the block has no heap page yet, or when drawn); the old block is
    another block, reference 1. ``heap_update_old_block``: this block is reference 1 and its
    tuple at ``old_offnum`` gets the new xmax; reference 0 is another block (maybe
    initialized by the record). No prefix/suffix compression: PostgreSQL uses it only when
    both tuples share a page."""
    v, fl, tag = b.v, b.fl, b.tag
    other = _other_block(draw, (tag.blknum,))
    cid = _cid(draw, v, fl)
    infobits = draw(st.integers(0, 0x1F))
    old_xmax = draw(st.integers(0, _MAX_U32))
    if kind == "heap_update_new_block":
        init = b.page is None or b.kind != "heap" or draw(st.booleans())
        nextoff = 1 if init else _insert_offsets(b, 1)[0]
        room = BLCKSZ - 32 if init else b.room()
        if nextoff > MAX_HEAP_TUPLES_PER_PAGE or room < 24:
            return None
        data = draw(st.binary(max_size=min(max_tuple_size, room - 24)))
        flags = 0 if init else _all_visible_cleared(b) << 1  # XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED
        body = rmgr.HeapUpdate(old_xmax, draw(st.integers(1, 20)), 0, nextoff, infobits, flags,
                               False, init, cid, _xl_tuple(data, cid, _UPDATED_INFOMASK))
        return body, [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, will_init=init),
                      make_block(1, b.rel3, other, forknum=tag.rel.forknum)]
    normals = b.normal_offsets()
    if b.kind != "heap" or not normals:
        return None
    off = normals[draw(st.integers(0, len(normals) - 1))]
    init = draw(st.booleans())  # the new block is a fresh page the record initializes
    new_off = 1 if init else draw(st.integers(1, 20))
    data = draw(st.binary(max_size=max_tuple_size))
    body = rmgr.HeapUpdate(old_xmax, off, 0, new_off, infobits, _all_visible_cleared(b), False,
                           init, cid, _xl_tuple(data, cid, _UPDATED_INFOMASK))
    return body, [make_block(0, b.rel3, other, forknum=tag.rel.forknum, will_init=init),
                  make_block(1, b.rel3, tag.blknum, forknum=tag.rel.forknum)]


def _draw_btree_upper(draw: st.DrawFn, b: _Block) -> _Drawn | None:
    """INSERT_UPPER (or, drawn, INSERT_META) on an internal page: the downlink to the right
    half of a split child goes in at an offset after the page's first data key (the
    "minus infinity" downlink stays first; a page with a right sibling keeps its high key at
    offset 1); reference 1 is the split's left child (another block, whose INCOMPLETE_SPLIT
    flag redo clears); INSERT_META adds the metapage (block 0 of the relation,
    WILL_INIT) as reference 2 with this page as the fast root."""
    op = _btree_opaque(b)
    if op is None or not _is_btree_internal(b):
        return None
    tag = b.tag
    p = b.view()
    first = 1 if op.next == 0 else 2  # P_FIRSTDATAKEY
    maxoff = p.max_offset()
    off = draw(st.integers(first + 1 if maxoff >= first else first, maxoff + 1))
    key = b"" if off == first else draw(st.binary(max_size=min(24, max(0, b.room() - 8))))
    if maxalign(8 + len(key)) > b.room():
        return None
    left = _other_block(draw, (tag.blknum,), low=1)
    right = _other_block(draw, (tag.blknum, left), low=1)
    blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum),
              make_block(1, b.rel3, left, forknum=tag.rel.forknum)]
    if tag.blknum != 0 and draw(st.booleans()):
        root_here = bool(op.flags & BTP_ROOT)
        root = tag.blknum if root_here else _other_block(draw, (tag.blknum, 0), low=1)
        meta = rmgr.BtreeMetadata(4, root, op.level if root_here else op.level + 1, tag.blknum,
                                  op.level, 0, True)
        blocks.append(make_block(2, b.rel3, 0, forknum=tag.rel.forknum, will_init=True))
        return rmgr.BtreeInsert(off, _downlink(right, key), XLOG_BTREE_INSERT_META, meta), blocks
    return rmgr.BtreeInsert(off, _downlink(right, key), XLOG_BTREE_INSERT_UPPER), blocks


def _draw_newroot(draw: st.DrawFn, b: _Block) -> _Drawn | None:
    """NEWROOT: a root at level 0 (an empty leaf) or, drawn, at level 1..3 holding two
    downlinks (the old root, which is reference 1 and whose INCOMPLETE_SPLIT flag redo
    clears, under "minus infinity", and its new right sibling under a drawn key); the
    metapage (block 0, WILL_INIT) is reference 2."""
    tag = b.tag
    if tag.blknum == 0:
        return None  # the metapage is block 0; a root there would be the metapage itself
    level = draw(st.integers(0, 3))
    own = make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, will_init=True)
    metablock = make_block(2, b.rel3, 0, forknum=tag.rel.forknum, will_init=True)
    meta = rmgr.BtreeMetadata(4, tag.blknum, level, tag.blknum, level, 0, True)
    if level == 0:
        return rmgr.BtreeNewroot(tag.blknum, 0, b"", meta), [own, metablock]
    left = _other_block(draw, (tag.blknum,), low=1)
    right = _other_block(draw, (tag.blknum, left), low=1)
    key = draw(st.binary(max_size=24))
    # the root's tuple area as _bt_newroot logs it, from pd_upper: item 2, then item 1
    area = _downlink(right, key) + _downlink(left, b"")
    child = make_block(1, b.rel3, left, forknum=tag.rel.forknum)
    return rmgr.BtreeNewroot(tag.blknum, level, area, meta), [own, child, metablock]


def _draw_record(draw: st.DrawFn, b: _Block, kind: str, max_tuple_size: int) -> bytes | None:
    """Draw one raw record of ``kind`` for block ``b`` (None: the kind does not fit now).

    Sets ``b.kind`` for the kinds that initialize the block; the caller restores it when the
    record is dropped."""
    v, fl, tag = b.v, b.fl, b.tag
    xid = draw(st.integers(0, _MAX_U32))

    def built(body: rmgr.RmgrRecord, *, will_init: bool = False, extra: Sequence = ()) -> bytes:
        blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, will_init=will_init),
                  *extra]
        return rmgr.build(body, blocks, pg_version=v, flavour=fl, xid=xid).encode()

    def built_with(drawn: _Drawn | None) -> bytes | None:
        if drawn is None:
            return None
        body, blocks = drawn
        return rmgr.build(body, blocks, pg_version=v, flavour=fl, xid=xid).encode()

    def payload(limit: int) -> bytes | None:
        limit = min(max_tuple_size, limit - 24)
        return None if limit < 0 else draw(st.binary(max_size=limit))

    if kind == "fpi":
        page_kind = draw(st.sampled_from(("heap", "btree", "btree_internal")))
        if page_kind == "heap":
            image_page = draw(heap_pages(blkno=tag.blknum))
        else:
            image_page = draw(btree_leaf_pages() if page_kind == "btree" else btree_internal_pages())
        comp = draw(st.sampled_from(_compressions(v)))
        image = ImageRef.from_page(image_page, v, compression=comp)
        blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, image=image)]
        if draw(st.booleans()):  # a second block reference the walredo must leave alone
            other = ImageRef.from_page(draw(heap_pages(max_tuples=2)), v)
            blocks.append(make_block(1, b.rel3, (tag.blknum + 1) & _MAX_U32,
                                     forknum=tag.rel.forknum, image=other))
        for_hint = draw(st.booleans())
        b.kind = "heap" if page_kind == "heap" else "btree"
        return rmgr.build(rmgr.XlogFpi(for_hint), blocks, pg_version=v, flavour=fl, xid=xid).encode()
    if kind == "heap_insert_init":
        cid = _cid(draw, v, fl)
        data = payload(BLCKSZ - 32)
        assert data is not None
        b.kind = "heap"
        return built(rmgr.HeapInsert(1, 0, _xl_tuple(data, cid), True, cid), will_init=True)
    if kind == "btree_newroot":
        raw = built_with(_draw_newroot(draw, b))
        if raw is not None:
            b.kind = "btree"
        return raw
    if kind == "heap_update_new_block":
        raw = built_with(_draw_cross_update(draw, b, kind, max_tuple_size))
        if raw is not None:
            b.kind = "heap"
        return raw
    if b.page is None:
        return None
    if b.kind == "btree":
        if kind == "btree_insert_upper":
            return built_with(_draw_btree_upper(draw, b))
        if kind != "btree_insert" or not _is_btree_leaf(b):
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
    if kind in _HEAP2_DRAWERS:
        return built_with(_HEAP2_DRAWERS[kind](draw, b))
    if kind == "heap_update_old_block":
        return built_with(_draw_cross_update(draw, b, kind, max_tuple_size))
    p = b.view()
    normals = b.normal_offsets()
    nextoff = _insert_offsets(b, 1)[0]
    cleared = _all_visible_cleared(b)
    if kind in ("heap_insert", "heap_multi_insert", "heap_update", "heap_hot_update") and (
        nextoff > MAX_HEAP_TUPLES_PER_PAGE
    ):
        return None
    if kind == "heap_insert":
        data = payload(b.room())
        if data is None:
            return None
        cid = _cid(draw, v, fl)
        return built(rmgr.HeapInsert(nextoff, cleared, _xl_tuple(data, cid), False, cid))
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
        offsets = tuple(_insert_offsets(b, len(tuples)))
        if not tuples or max(offsets) > MAX_HEAP_TUPLES_PER_PAGE:
            return None
        rec_cid = None if per_tuple or fl is Flavour.VANILLA else draw(st.none() | st.integers(0, 100))
        return built(rmgr.Heap2MultiInsert(cleared, len(tuples), offsets, tuple(tuples), False, rec_cid))
    if not normals:
        return None
    off = normals[draw(st.integers(0, len(normals) - 1))]
    if kind == "heap_delete":
        cid = _cid(draw, v, fl)
        return built(rmgr.HeapDelete(draw(st.integers(0, _MAX_U32)), off,
                                     draw(st.integers(0, 0x1F)), cleared, cid))
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
                               draw(st.integers(0, 0x1F)), cleared, kind == "heap_hot_update", False,
                               cid, _xl_tuple(data, cid))
        return built(body)
    return None


_NEEDS_TUPLE = frozenset({"heap_delete", "heap_lock", "heap_confirm", "heap_inplace",
                          "heap_hot_update", "heap_update", "heap2_freeze", "heap2_prune",
                          "heap_update_old_block"})


def _applicable(b: _Block, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds that can apply to the block as it is now (keeps the order of ``kinds``)."""
    has_tuples = bool(b.normal_offsets())
    has_dead = bool(_dead_offsets(b))

    def fits(k: str) -> bool:
        if k in _INIT_KINDS:
            return True
        if b.kind == "heap" and k in _HEAP_KINDS:
            if k == "heap2_prune":
                return bool(_prune_candidates(b))
            if k in _NEEDS_TUPLE:
                return has_tuples
            if k == "heap2_vacuum":
                return has_dead
            if k == "heap2_visible":
                return b.tag.rel.forknum != VISIBILITYMAP_FORKNUM
            return True
        if k == "btree_insert":
            return _is_btree_leaf(b)
        if k == "btree_insert_upper":
            return _is_btree_internal(b)
        return False

    return tuple(k for k in kinds if fits(k)) or kinds


@st.composite
def _step(draw: st.DrawFn, b: _Block, kinds: tuple[str, ...], init_kinds: tuple[str, ...],
          lsn: int, max_tuple_size: int) -> tuple[str, int, bytes] | None:
    """Draw and apply one record to ``b``: (kind, end LSN, raw record), or None (and ``b``
    unchanged) when the drawn kind does not fit the page or the model rejects it."""
    choices = init_kinds if b.page is None else _applicable(b, kinds)
    if "heap2_vacuum" in choices and _dead_offsets(b) and draw(st.booleans()):
        # LP_DEAD line pointers are what VACUUM's second pass is for; among ~15 applicable
        # kinds it would otherwise rarely follow the prune that left them. The extra draw
        # happens only when vacuum applies and shrinks to "no".
        kind = "heap2_vacuum"
    else:
        kind = draw(st.sampled_from(choices))
    lsn += 8 * draw(st.integers(1, 1 << 10))
    saved_kind = b.kind
    raw = _draw_record(draw, b, kind, max_tuple_size)
    if raw is None or not b.apply(lsn, raw):
        b.kind = saved_kind
        return None
    return kind, lsn, raw


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
        # one span per record: the shrinker can then drop a record's draws as a whole
        step = draw(_step(b, kinds, init_kinds, lsn, max_tuple_size))
        if step is None:
            continue
        kind, lsn, raw = step
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
    ``btree_newroot``, ``heap_update_new_block``) are drawn, or the sequence starts with a
    pushed base image. Later kinds are drawn only when they apply to the page as it is
    (a tuple to delete, an LP_DEAD line pointer to vacuum, an internal btree page for
    ``btree_insert_upper``, ...).

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
