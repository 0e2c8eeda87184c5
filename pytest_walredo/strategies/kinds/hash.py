"""Drawers for hash records that create pages (``hash_init_meta`` on block 0;
``hash_new_page``: an empty bitmap, bucket or overflow page, or the full image of a bucket
or overflow page a split filled, up to capacity) and INSERT into a
bucket or overflow page; and what the other hash drawer modules (:mod:`.hash_meta`,
:mod:`.hash_vacuum`) share: questions about the block, tuples, and the builders of the
records with many block references (ADD_OVFL_PAGE, SQUEEZE_PAGE, MOVE_PAGE_CONTENTS) that
put the requested block at any one of their references.

Invariant: the metapage is always block 0 and no other hash page is. The kinds that create
one refuse the other's block, so a record's metapage reference never names the requested
block unless the requested block is the metapage, and other references (:func:`blocks_for`)
never name block 0. Tuples on a page stay in hash-code order: new ones go where
``_hash_binsearch`` puts them.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.hash_page import (
    INVALID_BLOCK,
    LH_BITMAP_PAGE,
    LH_BUCKET_BEING_POPULATED,
    LH_BUCKET_BEING_SPLIT,
    LH_BUCKET_PAGE,
    LH_META_PAGE,
    LH_OVERFLOW_PAGE,
    LH_PAGE_HAS_DEAD_TUPLES,
    HashOpaque,
    binsearch,
    hash_tuple,
    spare_index,
)
from ...pg.page import Page, PageError
from ...pg.rmgr.hash import (
    HashAddOvflPage,
    HashInitBitmapPage,
    HashInitMetaPage,
    HashInsert,
    HashSplitAllocatePage,
    HashSplitPage,
)
from ...pg.rmgr.hash_vacuum import HashMovePageContents, HashSqueezePage
from ...pg.rmgr.hash_xlog import XLH_SPLIT_META_UPDATE_MASKS, XLH_SPLIT_META_UPDATE_SPLITPOINT
from ...pg.xlogrecord import BlockRef, Compression, ImageRef, make_block
from ..block import Block, other_block
from ..hash_pages import hash_tuple_pages
from ..tags import MAX_U32
from .spec import Drawn, RecordKind

__all__ = [
    "KINDS",
    "META",
    "add_ovfl_record",
    "add_tuples",
    "blocks_for",
    "hash_opaque",
    "holds_tuples",
    "is_bitmap",
    "is_bucket",
    "is_meta",
    "is_overflow",
    "items",
    "move_record",
    "new_tuples",
    "squeeze_record",
]

META = 0  # HASH_METAPAGE


# -- what the block holds ----------------------------------------------------------------------


def hash_opaque(b: Block) -> HashOpaque | None:
    """The hash special space of the block's page (None when it is not a hash page)."""
    if b.page is None or b.kind != "hash":
        return None
    try:
        return HashOpaque.unpack(b.page)
    except PageError:
        return None


def _type_is(b: Block, ptype: int) -> bool:
    op = hash_opaque(b)
    return op is not None and op.page_type == ptype


def is_meta(b: Block) -> bool:
    return _type_is(b, LH_META_PAGE)


def is_bitmap(b: Block) -> bool:
    return _type_is(b, LH_BITMAP_PAGE)


def is_bucket(b: Block) -> bool:
    """A primary bucket page."""
    return _type_is(b, LH_BUCKET_PAGE)


def is_overflow(b: Block) -> bool:
    return _type_is(b, LH_OVERFLOW_PAGE)


def holds_tuples(b: Block) -> bool:
    """A bucket or overflow page (which may be empty) that is not at block 0: a pushed page
    there is left to the kinds that initialize the block (the metapage's block)."""
    return b.tag.blknum != META and (is_bucket(b) or is_overflow(b))


def items(b: Block) -> list[tuple[int, bytes]]:
    """(offset, tuple) of a bucket or overflow page."""
    if not holds_tuples(b):
        return []
    p = b.view()
    return [(off, p.item(off)) for off in range(1, p.max_offset() + 1)]


# -- tuples ---------------------------------------------------------------------------------------


def new_tuples(draw: st.DrawFn, n: int) -> list[bytes]:
    """``n`` hash index tuples with drawn hash codes and heap TIDs (maybe marked as moved by a
    split)."""
    keys = draw(st.lists(st.integers(0, MAX_U32), min_size=n, max_size=n))
    moved = draw(st.booleans())
    return [hash_tuple(k, draw(st.integers(0, 1000)), draw(st.integers(1, 200)), moved_by_split=moved)
            for k in keys]


def add_tuples(page: Page, tuples: list[bytes]) -> list[int] | None:
    """``_hash_pgaddmultitup`` on a scratch copy: each tuple where ``_hash_binsearch`` puts it;
    the offsets, or None when they do not all fit."""
    scratch = Page(page.data)
    out = []
    for t in tuples:
        off = binsearch(scratch, struct.unpack_from("<I", t, 8)[0])
        if scratch.add_item(t, off) == 0:
            return None
        out.append(off)
    return out


# -- records with many block references ----------------------------------------------------------


def blocks_for(draw: st.DrawFn, b: Block, own: int, ids: list[int], *, meta: int | None = None,
               fixed: dict[int, int] | None = None, will_init: tuple[int, ...] = ()) -> list[BlockRef]:
    """Block references ``ids`` (in id order) with the requested block as reference ``own``,
    the metapage (block 0) as reference ``meta``, the ``fixed`` block numbers where they are
    distinct and not taken, and distinct other blocks >= 1 for the rest."""
    blknos = {own: b.tag.blknum}
    if meta is not None and meta != own:
        blknos[meta] = META
    for i, n in (fixed or {}).items():
        if i not in blknos and i in ids and n not in (0, INVALID_BLOCK, *blknos.values()):
            blknos[i] = n
    for i in ids:
        if i not in blknos:
            blknos[i] = other_block(draw, tuple(blknos.values()), low=1)
    return [make_block(i, b.rel3, blknos[i], forknum=b.tag.rel.forknum, will_init=i in will_init)
            for i in sorted(ids)]


def add_ovfl_record(draw: st.DrawFn, b: Block, own: int, *, bmsize: int = 4096, bit: int | None = None) -> Drawn:
    """ADD_OVFL_PAGE with the requested block as reference ``own``: 0 the new overflow page,
    1 the page before it in the chain, 2 the bitmap page of a recycled page (its bit set),
    3 a new bitmap page (added with a page past the end), 4 the metapage."""
    found = own == 2 or (own != 3 and draw(st.booleans()))
    new_map = own == 3 or (not found and draw(st.booleans()))
    if found and bit is None:
        bit = draw(st.integers(0, bmsize * 8 - 1))
    body = HashAddOvflPage(bmsize, found, draw(st.integers(0, 1000)), bit if found else None,
                           draw(st.integers(0, 1 << 20)))
    ids = [0, 1, 4] + ([2] if found else []) + ([3] if new_map else [])
    return Drawn(body, blocks_for(draw, b, own, ids, meta=4, will_init=(0, 3)))


def squeeze_record(draw: st.DrawFn, b: Block, own: int, *, tuples: list[bytes] | None = None,
                   towrite: list[int] | None = None, is_prim: bool | None = None, is_prev: bool | None = None,
                   fixed: dict[int, int] | None = None, bit: int | None = None) -> Drawn | None:
    """SQUEEZE_PAGE with the requested block as reference ``own`` (0 the primary bucket page
    when it is not the write page, 1 the write page taking ``tuples`` at ``towrite``, 2 the
    freed overflow page, 3 the page before it when that is not the write page, 4 the page
    after it, 5 the bitmap page, 6 the metapage). References are present as
    ``_hash_freeovflpage`` registers them (PostgreSQL 17 leaves out a write page nothing is
    written to); ``bit`` is the bitmap bit cleared (drawn when None); None when ``own``
    would not be one of the references."""
    if is_prim is None:
        is_prim = own != 0 and draw(st.booleans())
    if is_prev is None:
        is_prev = own != 3 and draw(st.booleans())
    if tuples is None:
        tuples = new_tuples(draw, draw(st.integers(0, 3)))
    if towrite is None:
        towrite = list(range(1, len(tuples) + 1))
    ids = [2, 5]
    ids += [0] if not is_prim else []
    ids += [1] if (b.v < 17 or tuples or is_prim or is_prev) else []
    ids += [3] if not is_prev else []
    ids += [4] if own == 4 or (fixed or {}).get(4, INVALID_BLOCK) != INVALID_BLOCK or draw(st.booleans()) else []
    ids += [6] if own == 6 or draw(st.booleans()) else []
    if own not in ids:
        return None
    blocks = blocks_for(draw, b, own, ids, meta=6, fixed=fixed)
    by_id = {r.block_id: r.blkno for r in blocks}
    prevblkno = by_id.get(1, 1) if is_prev else by_id[3]
    body = HashSqueezePage(prevblkno, by_id.get(4, INVALID_BLOCK), len(tuples), is_prim, is_prev,
                           tuple(towrite) if tuples else None, tuple(tuples) if tuples else None,
                           draw(st.integers(0, 32767)) if bit is None else bit,
                           draw(st.integers(0, 1 << 20)) if 6 in ids else None)
    return Drawn(body, blocks)


def move_record(draw: st.DrawFn, b: Block, own: int, *, tuples: list[bytes], towrite: list[int],
                deleted: list[int], is_prim: bool) -> Drawn:
    """MOVE_PAGE_CONTENTS with the requested block as reference ``own`` (0 the primary bucket
    page when it is not the write page, 1 the write page taking ``tuples`` at ``towrite``,
    2 the page they leave, at ``deleted``)."""
    body = HashMovePageContents(len(tuples), is_prim, tuple(towrite), tuple(tuples), tuple(deleted))
    return Drawn(body, blocks_for(draw, b, own, [1, 2] + ([] if is_prim else [0])))


# -- the pages records create --------------------------------------------------------------------


def _compressions(v: int) -> tuple[Compression, ...]:
    return (Compression.NONE, Compression.PGLZ) if v == 14 else tuple(Compression)


def _init_meta(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INIT_META_PAGE: the metapage (block 0) of a new index sized for a drawn tuple count at
    a drawn fill factor (10..409 tuples per bucket, as hash derives it from fillfactor)."""
    if b.tag.blknum != META:
        return None
    num_tuples = draw(st.sampled_from((0.0, 1.0)) | st.integers(0, 5_000_000).map(float)
                      | st.floats(0, 1e12, allow_nan=False, allow_infinity=False))
    procid = draw(st.sampled_from((450, 400)) | st.integers(0, MAX_U32))
    body = HashInitMetaPage(num_tuples, procid, draw(st.integers(10, 409)))
    return Drawn(body, [b.own_block(0, will_init=True)], "hash")


def _new_page(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """A page a record writes whole: an empty overflow page (ADD_OVFL_PAGE, reference 0: of
    the logged bucket, linked back to the page before it, reference 1); a new bucket's empty
    primary page (SPLIT_ALLOCATE_PAGE, reference 1: flagged as being populated,
    hasho_prevblkno the new maxbucket; reference 0 is the old bucket, 2 the metapage, with
    drawn mask and splitpoint changes); a bitmap page, every bit set (INIT_BITMAP_PAGE,
    reference 0, the metapage is reference 1; or ADD_OVFL_PAGE past the end of the last
    bitmap's range, reference 3); or a page of a new bucket a split filled (SPLIT_PAGE: its
    full image, maybe compressed, which redo must apply: the record has nothing else)."""
    if b.tag.blknum == META:
        return None
    how = draw(st.sampled_from(("overflow", "bucket", "bitmap", "split_page")))
    if how == "split_page":
        page = draw(hash_tuple_pages(blkno=b.tag.blknum))
        image = ImageRef.from_page(page, b.v, compression=draw(st.sampled_from(_compressions(b.v))))
        own = make_block(0, b.rel3, b.tag.blknum, forknum=b.tag.rel.forknum, image=image)
        return Drawn(HashSplitPage(), [own], "hash")
    if how == "bitmap":
        bmsize = draw(st.sampled_from((4096, 2048, 16)))
        if draw(st.booleans()):
            return Drawn(HashInitBitmapPage(bmsize), blocks_for(draw, b, 0, [0, 1], meta=1, will_init=(0,)), "hash")
        drawn = add_ovfl_record(draw, b, 3, bmsize=bmsize)
    elif how == "overflow":
        drawn = add_ovfl_record(draw, b, 0)
    else:
        new_bucket = draw(st.integers(1, 5000))
        old_flag = LH_BUCKET_PAGE | LH_BUCKET_BEING_SPLIT | draw(st.sampled_from((0, LH_PAGE_HAS_DEAD_TUPLES)))
        masks = draw(st.none() | st.just((new_bucket >> 1, new_bucket | (new_bucket >> 1))))
        splitpoint = draw(st.none() | st.tuples(st.just(spare_index(new_bucket + 1)), st.integers(0, 50)))
        flags = ((XLH_SPLIT_META_UPDATE_MASKS if masks else 0)
                 | (XLH_SPLIT_META_UPDATE_SPLITPOINT if splitpoint else 0))
        body = HashSplitAllocatePage(new_bucket, old_flag, LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED, flags,
                                     masks, splitpoint)
        drawn = Drawn(body, blocks_for(draw, b, 1, [0, 1, 2], meta=2, will_init=(1,)))
    return Drawn(drawn.body, drawn.blocks, "hash")


def _insert(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """INSERT into a bucket or overflow page: a tuple with a drawn hash code where
    ``_hash_binsearch`` puts it; the metapage is reference 1."""
    if not holds_tuples(b):
        return None
    (tup,) = new_tuples(draw, 1)
    offs = add_tuples(b.view(), [tup])
    if offs is None:
        return None
    return Drawn(HashInsert(offs[0], tup), blocks_for(draw, b, 0, [0, 1], meta=1))


KINDS = (
    RecordKind("hash_init_meta", 1301, _init_meta, on=None),
    RecordKind("hash_new_page", 1304, _new_page, on=None),
    RecordKind("hash_insert", 1316, _insert, on="hash", applies=holds_tuples, favoured=holds_tuples),
)
"""The hash kinds that create pages or insert (the metapage's and bitmap's side and the
bucket flags: :mod:`.hash_meta`; moving and removing tuples: :mod:`.hash_vacuum`)."""
