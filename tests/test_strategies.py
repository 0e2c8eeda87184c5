"""Strategies: coherent sequences (the model accepts every record), increasing LSNs, valid
pages, and shrinking toward small examples."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pytest_walredo import strategies as ws
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.protocol import BufferTag, RelTag
from pytest_walredo.sim import model_page

TAG = BufferTag(RelTag(1663, 5, 16384), 3)
METAPAGE = BufferTag(RelTag(1663, 5, 16384), 0)  # btree_meta_cleanup applies to block 0 only


def any_block_sequences(**kw):
    """Record sequences for TAG or for block 0 (the btree metapage's block)."""
    return st.sampled_from((TAG, METAPAGE)).flatmap(lambda tag: ws.record_sequences(tag, **kw))


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


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(InvalidArgument, match="unknown record kind"):
        ws.record_sequences(TAG, kinds=("heap_frobnicate",))


def test_bad_arguments_fail_when_the_strategy_is_built_not_when_drawn():
    # Building raises at once (no draw happens), naming the bad value and the valid ones.
    with pytest.raises(InvalidArgument) as err:
        ws.redo_requests(kinds=["bogus"])
    assert "'bogus'" in str(err.value) and all(k in str(err.value) for k in ws.RECORD_KINDS)
    for build in (lambda: ws.redo_requests(pg_version=13), lambda: ws.redo_requests(flavour="oracle"),
                  lambda: ws.redo_requests(min_records=3, max_records=2),
                  lambda: ws.redo_requests(kinds="fpi"), lambda: ws.redo_requests(kinds=()),
                  lambda: ws.workloads(kinds=["bogus"]), lambda: ws.workloads(max_blocks=0),
                  lambda: ws.schedules(max_picks=-1), lambda: ws.btree_internal_pages(max_level=0),
                  lambda: ws.buffer_tags(forks=(7,))):
        with pytest.raises(InvalidArgument):
            build()


def test_drawing_does_not_import_the_process_layer():
    code = ("import sys, pytest_walredo.strategies as ws; ws.redo_requests().example(); "
            "ws.schedules().example(); "
            "print(sorted(m for m in sys.modules if m.startswith(('pytest_walredo.process', "
            "'pytest_walredo.interleave', 'pytest_walredo.refserver'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


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


@pytest.mark.parametrize("module", ["pytest_walredo.strategies", "pytest_walredo.strategies.pages",
                                    "pytest_walredo.strategies.sequences",
                                    "pytest_walredo.strategies.requests",
                                    "pytest_walredo.strategies.schedules"])
def test_docstring_examples_run(module):
    import doctest
    import importlib
    import warnings

    from hypothesis.errors import NonInteractiveExampleWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
