"""Drawers for the hash records seen from the pages they only update in passing: the
metapage (``hash_meta_count``: the tuple count of INSERT, VACUUM_ONE_PAGE and
UPDATE_META_PAGE; ``hash_meta_layout``: buckets, masks, splitpoints, spares, bitmaps and
firstfree of INIT_BITMAP_PAGE, ADD_OVFL_PAGE, SPLIT_ALLOCATE_PAGE and SQUEEZE_PAGE), bitmap
pages (``hash_bitmap``: a bit set by ADD_OVFL_PAGE or cleared by SQUEEZE_PAGE), the links of
a bucket chain (``hash_chain_link``) and the split flags of primary bucket pages
(``hash_split_flags``: SPLIT_ALLOCATE_PAGE, SPLIT_COMPLETE, SPLIT_CLEANUP).

Metapage changes follow what the metapage says now, as ``_hash_expandtable`` and
``_hash_addovflpage`` compute them: the next bucket, a doubling's masks, a new splitpoint.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.hash_page import (
    HASH_MAX_BITMAPS,
    HASH_MAX_SPLITPOINTS,
    LH_BUCKET_BEING_POPULATED,
    LH_BUCKET_BEING_SPLIT,
    LH_BUCKET_NEEDS_SPLIT_CLEANUP,
    LH_BUCKET_PAGE,
    HashMeta,
    bitmap_bit,
    spare_index,
)
from ...pg.rmgr.hash import HashInitBitmapPage, HashInsert, HashSplitAllocatePage, HashSplitComplete
from ...pg.rmgr.hash_vacuum import HashSplitCleanup, HashUpdateMetaPage, HashVacuumOnePage
from ...pg.rmgr.hash_xlog import XLH_SPLIT_META_UPDATE_MASKS, XLH_SPLIT_META_UPDATE_SPLITPOINT
from ..block import Block
from ..tags import MAX_U32
from .hash import (
    add_ovfl_record,
    blocks_for,
    hash_opaque,
    holds_tuples,
    is_bitmap,
    is_bucket,
    is_meta,
    is_overflow,
    new_tuples,
    squeeze_record,
)
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]

_SPLIT_FLAGS = LH_BUCKET_BEING_SPLIT | LH_BUCKET_BEING_POPULATED | LH_BUCKET_NEEDS_SPLIT_CLEANUP


def _meta_count(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The metapage's tuple count: one more (INSERT; the metapage is reference 1), some fewer
    (VACUUM_ONE_PAGE, reference 1) or a new count (UPDATE_META_PAGE after VACUUM)."""
    if not is_meta(b):
        return None
    how = draw(st.sampled_from(("insert", "vacuum_one_page", "update")))
    if how == "insert":
        (tup,) = new_tuples(draw, 1)
        return Drawn(HashInsert(draw(st.integers(1, 300)), tup), blocks_for(draw, b, 1, [0, 1]))
    if how == "vacuum_one_page":
        deleted = tuple(sorted(draw(st.sets(st.integers(1, 300), min_size=1, max_size=20))))
        body = HashVacuumOnePage(draw(st.integers(0, MAX_U32)), len(deleted), deleted,
                                 b.v >= 16 and draw(st.booleans()))
        return Drawn(body, blocks_for(draw, b, 1, [0, 1]))
    ntuples = draw(st.integers(0, 10_000_000).map(float) | st.floats(0, 1e12, allow_nan=False, allow_infinity=False))
    return Drawn(HashUpdateMetaPage(ntuples), [b.own_block(0)])


def _meta_layout(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The metapage's bookkeeping: INIT_BITMAP_PAGE lists a bitmap page (reference 1);
    ADD_OVFL_PAGE moves firstfree and, for a page past the end, counts a spare (two, and lists
    the bitmap page, with a new bitmap page; reference 4); SPLIT_ALLOCATE_PAGE adds bucket
    maxbucket + 1, with new masks when it starts a doubling and a new splitpoint when it
    starts one (reference 2); SQUEEZE_PAGE moves firstfree back (reference 6)."""
    if not is_meta(b):
        return None
    meta = HashMeta.unpack(b.page or b"")
    room = meta.nmaps < HASH_MAX_BITMAPS and meta.ovflpoint < HASH_MAX_SPLITPOINTS
    how = draw(st.sampled_from(("init_bitmap", "add_ovfl", "split_allocate", "squeeze")))
    if how == "init_bitmap":
        if not room:
            return None
        return Drawn(HashInitBitmapPage(meta.bmsize), blocks_for(draw, b, 1, [0, 1], will_init=(0,)))
    if how == "add_ovfl":
        if not room:
            return None
        return add_ovfl_record(draw, b, 4, bmsize=meta.bmsize)
    if how == "split_allocate":
        new_bucket = (meta.maxbucket + 1) & MAX_U32
        ndx = spare_index(new_bucket + 1)
        if not room or ndx >= HASH_MAX_SPLITPOINTS:
            return None
        masks = (meta.highmask, new_bucket | meta.highmask) if new_bucket > meta.highmask else None
        splitpoint = (ndx, HashMeta.spare(b.page or b"", meta.ovflpoint)) if ndx > meta.ovflpoint else None
        flags = (XLH_SPLIT_META_UPDATE_MASKS if masks else 0) | (XLH_SPLIT_META_UPDATE_SPLITPOINT if splitpoint else 0)
        body = HashSplitAllocatePage(new_bucket, LH_BUCKET_PAGE | LH_BUCKET_BEING_SPLIT,
                                     LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED, flags, masks, splitpoint)
        return Drawn(body, blocks_for(draw, b, 2, [0, 1, 2], will_init=(1,)))
    return squeeze_record(draw, b, 6)


def _bitmap(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """A bitmap page's bit: set when ADD_OVFL_PAGE recycles the overflow page it stands for
    (reference 2), cleared when SQUEEZE_PAGE frees one (reference 5); mostly a bit that
    changes."""
    if not is_bitmap(b) or b.page is None:
        return None
    nbits = max(1, (b.view().lower - 24) * 8)
    bit = draw(st.integers(0, nbits - 1))
    setting = draw(st.booleans())
    if draw(st.booleans()):  # look for one that changes near the drawn one
        for cand in range(bit, min(nbits, bit + 64)):
            if bitmap_bit(b.page, cand) != setting:
                bit = cand
                break
    if setting:
        return add_ovfl_record(draw, b, 2, bit=bit)
    return squeeze_record(draw, b, 5, bit=bit)


def _chain_link(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """A link of a bucket chain: the next link of the page a new overflow page is chained
    after (ADD_OVFL_PAGE, reference 1) or of the page before a freed one (SQUEEZE_PAGE,
    reference 3); the previous link of the overflow page after a freed one (SQUEEZE_PAGE,
    reference 4)."""
    if not holds_tuples(b):
        return None
    how = draw(st.sampled_from(("add_ovfl", "squeeze_prev", "squeeze_next") if is_overflow(b)
                               else ("add_ovfl", "squeeze_prev")))
    if how == "add_ovfl":
        return add_ovfl_record(draw, b, 1)
    return squeeze_record(draw, b, 3 if how == "squeeze_prev" else 4)


def _mid_split(b: Block) -> bool:
    """A primary bucket page a split is not done with (being split or populated, or
    needing cleanup)."""
    op = hash_opaque(b)
    return op is not None and is_bucket(b) and bool(op.flag & _SPLIT_FLAGS)


def _split_flags(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """A primary bucket page's split flags, as each step of a split sets them: the old bucket
    marked being split, its hasho_prevblkno the new maxbucket (SPLIT_ALLOCATE_PAGE, reference
    0); then marked as needing cleanup (SPLIT_COMPLETE, reference 0) or, as the new bucket, no
    longer being populated (SPLIT_COMPLETE, reference 1); then cleaned up (SPLIT_CLEANUP)."""
    op = hash_opaque(b)
    if op is None or not is_bucket(b):
        return None
    how = draw(st.sampled_from(("allocate", "complete_old", "complete_new", "cleanup")))
    if how == "allocate":
        new_bucket = draw(st.integers(op.bucket + 1, op.bucket + 5000))
        body = HashSplitAllocatePage(new_bucket & MAX_U32, op.flag | LH_BUCKET_BEING_SPLIT,
                                     LH_BUCKET_PAGE | LH_BUCKET_BEING_POPULATED, 0)
        return Drawn(body, blocks_for(draw, b, 0, [0, 1, 2], meta=2, will_init=(1,)))
    if how == "complete_old":
        old = (op.flag & ~LH_BUCKET_BEING_SPLIT) | LH_BUCKET_NEEDS_SPLIT_CLEANUP
        return Drawn(HashSplitComplete(old, LH_BUCKET_PAGE), blocks_for(draw, b, 0, [0, 1]))
    if how == "complete_new":
        old = LH_BUCKET_PAGE | LH_BUCKET_NEEDS_SPLIT_CLEANUP
        return Drawn(HashSplitComplete(old, op.flag & ~LH_BUCKET_BEING_POPULATED), blocks_for(draw, b, 1, [0, 1]))
    return Drawn(HashSplitCleanup(), [b.own_block(0)])


KINDS = (
    RecordKind("hash_meta_count", 1319, _meta_count, on="hash", applies=is_meta, favoured=is_meta),
    RecordKind("hash_meta_layout", 1322, _meta_layout, on="hash", applies=is_meta, favoured=is_meta),
    RecordKind("hash_bitmap", 1325, _bitmap, on="hash", applies=is_bitmap, favoured=is_bitmap),
    RecordKind("hash_chain_link", 1328, _chain_link, on="hash", applies=holds_tuples, favoured=holds_tuples),
    RecordKind("hash_split_flags", 1331, _split_flags, on="hash", applies=is_bucket, favoured=_mid_split),
)
"""The hash kinds seen from the metapage, bitmap pages, chain links and bucket flags. A
bitmap page is only for ``hash_bitmap``, and a bucket a split is not done with is favoured
for the split's next step."""
