"""Drawers for Generic records, on pages shaped like contrib ``bloom``'s (the extension that
writes generic WAL): an 8-byte special space (maxoff, flags, unused, page id 0xFB81) and
fixed-size tuples packed from the end of the page header up to pd_lower.

- ``generic_full_image`` starts the block: a generic record whose block carries a full image
  (``GENERIC_XLOG_FULL_IMAGE``, as bloom logs a new page), maybe with a delta for a second,
  unrelated block the walredo must leave alone;
- ``generic_delta``: the page changed as bloom changes it (tuples added, tuples removed and the
  rest packed down, flags set) or scribbled over, logged as the delta PostgreSQL computes
  (:func:`~pytest_walredo.pg.rmgr.generic.page_delta`).
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from ...pg.constants import BLCKSZ
from ...pg.page import SIZE_OF_PAGE_HEADER, Page
from ...pg.rmgr.generic import GenericRecord, page_delta
from ...pg.xlogrecord import Compression, ImageRef, make_block
from ..block import Block, other_block
from .spec import Drawn, RecordKind

__all__ = ["KINDS", "bloom_like_page"]

BLOOM_PAGE_ID = 0xFB81
BLOOM_DELETED = 1 << 1
_SPECIAL = struct.Struct("<HHHH")  # maxoff, flags, unused, bloom_page_id


def _compressions(v: int) -> tuple[Compression, ...]:
    return (Compression.NONE, Compression.PGLZ) if v == 14 else tuple(Compression)


def bloom_like_page(tuples: list[bytes], flags: int = 0) -> Page:
    """A page laid out as bloom's: tuples packed from the header on, pd_lower after them."""
    page = Page.initialized(_SPECIAL.size)
    pos = SIZE_OF_PAGE_HEADER
    for t in tuples:
        page.data[pos : pos + len(t)] = t
        pos += len(t)
    page.lower = pos
    _SPECIAL.pack_into(page.data, page.special, len(tuples), flags, 0, BLOOM_PAGE_ID)
    return page


def _tuples(page: Page) -> tuple[list[bytes], int, int]:
    """The page's tuples, their size and the page flags (read back from the layout)."""
    maxoff, flags, _unused, _id = _SPECIAL.unpack_from(page.data, page.special)
    size = (page.lower - SIZE_OF_PAGE_HEADER) // maxoff if maxoff else 0
    at = SIZE_OF_PAGE_HEADER
    return [bytes(page.data[at + i * size : at + (i + 1) * size]) for i in range(maxoff)], size, flags


def _is_bloom_like(b: Block) -> bool:
    if b.page is None:
        return False
    p = b.view()
    if not (p.special == BLCKSZ - _SPECIAL.size and SIZE_OF_PAGE_HEADER <= p.lower <= p.upper):
        return False
    maxoff, _flags, _unused, page_id = _SPECIAL.unpack_from(p.data, p.special)
    used = p.lower - SIZE_OF_PAGE_HEADER
    return page_id == BLOOM_PAGE_ID and (used == 0 if maxoff == 0 else used % maxoff == 0 and used > 0)


def _full_image(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    size = draw(st.integers(8, 40))
    tuples = draw(st.lists(st.binary(min_size=size, max_size=size), max_size=12))
    page = bloom_like_page(tuples, draw(st.sampled_from((0, BLOOM_DELETED))))
    image = ImageRef.from_page(page.to_bytes(), b.v, compression=draw(st.sampled_from(_compressions(b.v))))
    tag = b.tag
    blocks = [make_block(0, b.rel3, tag.blknum, forknum=tag.rel.forknum, image=image)]
    deltas: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...] = ()
    if draw(st.booleans()):  # bloom's insert: the new page's image and the metapage's delta
        blocks.append(make_block(1, b.rel3, other_block(draw, [tag.blknum]), forknum=tag.rel.forknum))
        deltas = ((1, ((SIZE_OF_PAGE_HEADER, draw(st.binary(min_size=1, max_size=16))),)),)
    return Drawn(GenericRecord(deltas), blocks, "generic")


def _changed(draw: st.DrawFn, page: Page) -> Page:
    """The page after a change bloom makes (or bytes scribbled over its used regions)."""
    tuples, size, flags = _tuples(page)
    how = draw(st.sampled_from(("insert", "vacuum", "flags", "scribble")))
    if how == "insert":
        size = size or draw(st.integers(8, 40))
        room = (page.upper - page.lower) // size
        n = draw(st.integers(0, min(3, room)))
        tuples += [draw(st.binary(min_size=size, max_size=size)) for _ in range(n)]
    elif how == "vacuum" and tuples:
        keep = draw(st.lists(st.booleans(), min_size=len(tuples), max_size=len(tuples)))
        tuples = [t for t, k in zip(tuples, keep, strict=True) if k]
    elif how == "flags":
        flags ^= BLOOM_DELETED
    target = bloom_like_page(tuples, flags)
    target.data[: SIZE_OF_PAGE_HEADER] = page.data[: SIZE_OF_PAGE_HEADER]
    target.lower = SIZE_OF_PAGE_HEADER + sum(len(t) for t in tuples)
    # stale bytes in the hole stay as the primary's page had them (they are not logged)
    target.data[target.lower : page.lower] = page.data[target.lower : page.lower]
    if how == "scribble" and target.lower > SIZE_OF_PAGE_HEADER:  # over the tuples, not the layout
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(SIZE_OF_PAGE_HEADER, target.lower - 1))
            data = draw(st.binary(min_size=1, max_size=min(24, target.lower - at)))
            target.data[at : at + len(data)] = data
    return target


def _delta(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    if not _is_bloom_like(b):
        return None
    cur = b.view()
    target = _changed(draw, cur)
    frags = page_delta(cur.to_bytes(), target.to_bytes())
    tag = b.tag
    blocks = [b.own_block()]
    if draw(st.booleans()):  # a second page of the same record, not the requested one
        blocks.append(make_block(1, b.rel3, other_block(draw, [tag.blknum]), forknum=tag.rel.forknum))
    return Drawn(GenericRecord(((0, frags),)), blocks)


KINDS = (
    RecordKind("generic_full_image", 1520, _full_image, on=None),
    RecordKind("generic_delta", 1530, _delta, on="generic", applies=_is_bloom_like, favoured=_is_bloom_like),
)
"""The Generic record kinds."""
