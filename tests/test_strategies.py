"""Strategies: coherent sequences (the model accepts every record), increasing LSNs, valid
pages, and shrinking toward small examples."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from pytest_walredo import strategies as ws
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.protocol import BufferTag, RelTag
from pytest_walredo.sim import model_page

TAG = BufferTag(RelTag(1663, 5, 16384), 3)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("flavour", list(Flavour))
def test_sequences_are_coherent_for_every_version_and_flavour(version, flavour):
    @settings(max_examples=15, deadline=None)
    @given(ws.record_sequences(TAG, pg_version=version, flavour=flavour, min_records=1))
    def check(trace):
        lsns = [lsn for lsn, _ in trace.records]
        assert lsns == sorted(set(lsns))
        if trace.base_image is not None and lsns:
            assert lsns[0] > Page(trace.base_image).lsn
        # the model applies the whole sequence without error
        from pytest_walredo.protocol import RedoRequest

        model_page(RedoRequest(TAG.rel, TAG.blknum, trace.base_image, trace.records), version, flavour)

    check()


class _EveryKindSeen(Exception):
    """Raised from inside a property to stop generating once every kind was drawn."""


def draw_until_every_kind(strategy, kinds, *, max_examples=1500):
    """The kinds seen in the traces ``strategy`` draws, generating until all of ``kinds``
    were seen (or ``max_examples`` ran out). Generation only: raising to stop must not
    start a shrink."""
    seen: set[str] = set()

    @settings(max_examples=max_examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow])
    @given(strategy.map(lambda trace: trace.kinds))  # a short repr when generation stops
    def collect(drawn_kinds):
        seen.update(drawn_kinds)
        if seen >= set(kinds):
            raise _EveryKindSeen

    try:
        collect()
    except _EveryKindSeen:
        pass
    return seen


def test_every_record_kind_is_drawn():
    # Some kinds need earlier records (heap2_vacuum needs an LP_DEAD line pointer, from a
    # prune or a drawn page; btree_insert_upper an internal page), so a fixed number of
    # examples would sometimes miss one; generation stops as soon as every kind was seen.
    seen = draw_until_every_kind(ws.record_sequences(TAG, pg_version=16, min_records=3),
                                 ws.RECORD_KINDS)
    assert seen == set(ws.RECORD_KINDS)


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown record kind"):
        ws.record_sequences(TAG, kinds=("heap_frobnicate",))


@given(ws.end_lsns(min_size=1))
def test_end_lsns_increase(lsns):
    assert all(a < b for a, b in itertools.pairwise(lsns))


@settings(max_examples=30, deadline=None)
@given(ws.pages())
def test_pages_are_valid(page):
    p = Page(page)
    assert len(page) == 8192 and not p.is_new() and p.problem() is None


def test_requests_shrink_to_few_records_and_small_tuples():
    # the smallest request with at least two records that hold a heap tuple
    req = find(ws.redo_requests(pg_version=17, min_records=2),
               lambda r: len(r.records) >= 2, settings=settings(database=None, max_examples=200))
    assert len(req.records) == 2
    assert all(len(rec) < 300 for _, rec in req.records)


def test_workloads_shrink_to_one_request():
    w = find(ws.workloads(max_requests=6), lambda w: True, settings=settings(database=None))
    assert len(w) == 1


def test_raw_pages_shrink_to_zeros():
    assert find(ws.raw_pages(), lambda p: True) == bytes(8192)


def test_schedules_shrink_to_in_order_without_cancellation():
    s = find(st.builds(lambda x: x, ws.schedules()), lambda s: True)
    assert s.picks == () and not s.cancels
