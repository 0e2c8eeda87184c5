"""Drawers for GiST page splits, from each page a split touches: ``gist_split`` (this page is
one of the split's new pages, rebuilt from the logged tuples: the original page, whose own
tuples plus new ones are spread over the new pages, a later page of the split, or the root,
which in a root split keeps only downlinks to the new pages) and ``gist_finish_split`` (this
page is the left half of an earlier split, F_FOLLOW_RIGHT set: its parent takes the right
half's downlink in a PAGE_UPDATE or in a split of its own, and redo sets this page's NSN to
the record's LSN and clears the flag, also after restoring an image of it).

Splits are drawn the way ``gistplacetopage`` writes them: 2-3 pages, each page's tuples
fitting on it, the original page first (the root first in a root split), the original right
link and NSN carried over.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.constants import BLCKSZ
from ...pg.gist_page import GIST_OPAQUE_SIZE, GIST_ROOT_BLKNO, INVALID_BLOCK
from ...pg.rmgr.gist import GistPageSplit, GistPageUpdate
from ...pg.xlogrecord import BlockRef
from ..block import Block, other_block
from .gist import follows_right, gist_image, gist_items, gist_opaque, gist_ref, gist_tuple, room_for
from .spec import Drawn, RecordKind

__all__ = ["KINDS"]

_CAPACITY = BLCKSZ - 24 - GIST_OPAQUE_SIZE  # an empty GiST page's free space


def _chunks(draw: st.DrawFn, tuples: list[bytes], n: int) -> list[list[bytes]] | None:
    """``tuples`` cut into ``n`` consecutive runs, each fitting on a page (None when they do not)."""
    if len(tuples) < n:
        return None
    cuts = sorted(draw(st.sets(st.integers(1, len(tuples) - 1), min_size=n - 1, max_size=n - 1)))
    runs = [tuples[i:j] for i, j in zip([0, *cuts], [*cuts, len(tuples)], strict=True)]
    return runs if all(room_for(r, _CAPACITY) for r in runs) else None


def _split(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """PAGE_SPLIT with this page among the new pages (references 1..npage, WILL_INIT).

    The first page listed is the page that split (``gistplacetopage``): when this page is
    drawn first and holds a live GiST page, its tuples plus 1-2 new ones are spread over the
    pages in order, and its right link and NSN are the record's; a page listed later, or a
    page that held no GiST page, gets drawn tuples. Block 0 of the relation is the root: a
    split there is a root split, the root listed first with downlinks to the others, which
    take its tuples; this page may also be a later page of a root split. Reference 0, drawn
    on internal splits, is the child whose own split the new downlink completes."""
    tag = b.tag
    op = gist_opaque(b)
    live = op is not None and not op.is_deleted
    npage = draw(st.integers(2, 3))
    root = tag.blknum == GIST_ROOT_BLKNO
    others = [other_block(draw, (tag.blknum, GIST_ROOT_BLKNO), low=1)]
    while len(others) < npage:
        others.append(other_block(draw, (tag.blknum, GIST_ROOT_BLKNO, *others), low=1))
    rootsplit = root or draw(st.integers(0, 3)) == 3  # the odds below favour what is common
    at = 0 if root else draw(st.integers(1 if rootsplit else 0, npage - 1))
    original = at == 0 and live
    leaf = op.is_leaf if original and op is not None else draw(st.integers(0, 3)) < 3
    rlink = op.rightlink if original and op is not None else draw(st.sampled_from((INVALID_BLOCK, others[-1] + 1)))
    nsn = op.nsn if original and op is not None else draw(st.integers(0, 1 << 40))
    if rootsplit:
        rlink = INVALID_BLOCK  # the root has no right sibling
    if original:
        grown = gist_items(b) + [gist_tuple(draw, leaf, others[0]) for _ in range(draw(st.integers(1, 2)))]
    else:
        grown = [gist_tuple(draw, leaf, others[0]) for _ in range(draw(st.integers(npage, 8)))]
    # a root split keeps downlinks on the root; the tuples go to the other pages
    runs = _chunks(draw, grown, npage - 1 if rootsplit else npage)
    if runs is None:
        return None
    blknos = others[:npage]
    blknos[at] = tag.blknum
    if rootsplit:
        blknos[0] = GIST_ROOT_BLKNO
        runs.insert(0, [gist_tuple(draw, False, blk) for blk in blknos[1:]])
    blocks: list[BlockRef] = []
    if not leaf and draw(st.booleans()):
        blocks.append(gist_ref(0, b, other_block(draw, (tag.blknum, GIST_ROOT_BLKNO, *blknos), low=1)))
    blocks += [b.own_block(i + 1, will_init=True) if blk == tag.blknum else gist_ref(i + 1, b, blk, will_init=True)
               for i, blk in enumerate(blknos)]
    follow = draw(st.integers(0, 3)) < 3  # markfollowright is false only in buffered index builds
    body = GistPageSplit(rlink, nsn, leaf, npage, follow, tuple(tuple(p) for p in runs))
    return Drawn(body, blocks, "gist")


def _finish_split(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn | None:
    """The parent takes the downlink to this page's right half: a PAGE_UPDATE of the parent
    (this page is reference 1) or a split of the parent (this page is reference 0). The
    reference may carry an image of this page (a checkpoint came between), which redo
    restores before setting the NSN."""
    if not follows_right(b):
        return None
    tag = b.tag
    parent = other_block(draw, (tag.blknum, GIST_ROOT_BLKNO), low=1)
    right = other_block(draw, (tag.blknum, parent), low=1)
    image = gist_image(draw, b) if draw(st.booleans()) else None
    downlinks = (gist_tuple(draw, False, tag.blknum), gist_tuple(draw, False, right))
    if draw(st.booleans()):
        body: GistPageUpdate | GistPageSplit = GistPageUpdate(1, 2, (draw(st.integers(1, 20)),), downlinks)
        return Drawn(body, [gist_ref(0, b, parent), b.own_block(1) if image is None else gist_ref(1, b, tag.blknum,
                                                                                              image=image)])
    sibling = other_block(draw, (tag.blknum, parent, right), low=1)
    body = GistPageSplit(INVALID_BLOCK, draw(st.integers(0, 1 << 40)), False, 2, True,
                         ((downlinks[0],), (downlinks[1],)))
    own = b.own_block(0) if image is None else gist_ref(0, b, tag.blknum, image=image)
    return Drawn(body, [own, gist_ref(1, b, parent, will_init=True), gist_ref(2, b, sibling, will_init=True)])


KINDS = (
    RecordKind("gist_split", 1400, _split, on=None),
    RecordKind("gist_finish_split", 1440, _finish_split, on="gist", applies=follows_right, favoured=follows_right),
)
"""The GiST split kinds."""
