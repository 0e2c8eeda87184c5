"""Hypothesis strategies for walredo tests: tags, LSNs, pages, WAL records, requests, workloads,
and interleavings of concurrent callers.

Import this one module in your own properties::

    from hypothesis import given
    from pytest_walredo import strategies as ws
    from pytest_walredo.sim import model_page

    @given(req=ws.redo_requests(pg_version=17))
    def test_my_binary_agrees_with_the_model(walredo, req):
        walredo.expect(req, model_page(req, 17))

    @given(reqs=ws.workloads(max_requests=4), schedule=ws.schedules())
    def test_many_callers(walredo_process, reqs, schedule): ...

Examples of what they draw:

>>> from pytest_walredo import strategies as ws
>>> ws.buffer_tags().example()  # doctest: +SKIP
BufferTag(rel=RelTag(spcnode=1663, dbnode=1, relnode=1, forknum=0), blknum=0)
>>> len(ws.heap_pages().example())
8192
>>> req = ws.redo_requests(pg_version=15, kinds=["heap_insert_init", "heap_delete"]).example()
>>> len(req.records) <= 6
True
>>> ws.redo_requests(kinds=["bogus"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
hypothesis.errors.InvalidArgument: unknown record kind(s) ['bogus']; known: fpi, heap_insert, ...

Everything here shrinks toward the simplest failing input: fewer records, fewer and smaller
tuples, lower offsets and block numbers, small LSN steps, and simpler record kinds (the kinds
are listed simplest first in :data:`RECORD_KINDS`; a drawn kind shrinks toward the front).
Arguments are checked when a strategy is built: a bad one raises
:class:`hypothesis.errors.InvalidArgument` at once, naming it.

Record sequences are *coherent for one block*: the block is initialized first (a pushed base
image, a full-page image, or an ``INIT_PAGE`` record), end LSNs strictly increase and are above
the page's pd_lsn, and every offset a record names refers to a tuple that exists at that point
(:mod:`.sequences`). Every record kind the model supports is drawn, for PostgreSQL 14-17,
vanilla and Neon flavours, under version-neutral names (:mod:`.kinds`, one module per resource
manager: what each kind draws and when it applies). Records that reference other blocks (the
VM page, the other side of a cross-page update, a btree child or the metapage) name blocks
that are never the requested one, so redo leaves those parts out, as the walredo process does.

Modules: :mod:`.tags` (tags, block numbers, LSNs), :mod:`.pages`, :mod:`.block` (the drawing
state of one block), :mod:`.kinds`, :mod:`.sequences`, :mod:`.requests` (requests,
workloads), :mod:`.schedules` (interleavings; run them with :mod:`pytest_walredo.interleave`).
Drawing imports only the PostgreSQL model and the protocol codec, never the process layer.
"""

from __future__ import annotations

from .kinds import RECORD_KINDS
from .pages import (
    btree_internal_pages,
    btree_leaf_pages,
    empty_pages,
    heap_pages,
    heap_tuple_count,
    pages,
    raw_pages,
)
from .requests import redo_requests, workloads
from .schedules import STEPS, Schedule, schedules
from .sequences import BlockTrace, record_sequences
from .tags import DEFAULT_START_LSN, block_numbers, buffer_tags, end_lsns, lsns, rel_tags

__all__ = [
    "DEFAULT_START_LSN",
    "RECORD_KINDS",
    "STEPS",
    "BlockTrace",
    "Schedule",
    "block_numbers",
    "btree_internal_pages",
    "btree_leaf_pages",
    "buffer_tags",
    "empty_pages",
    "end_lsns",
    "heap_pages",
    "heap_tuple_count",
    "lsns",
    "pages",
    "raw_pages",
    "record_sequences",
    "redo_requests",
    "rel_tags",
    "schedules",
    "workloads",
]
