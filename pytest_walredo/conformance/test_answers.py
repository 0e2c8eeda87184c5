"""Answers of one caller at a time: pings, pushed images, determinism, split invariance,
full-page images, and agreement with the redo model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_walredo import strategies as ws
from pytest_walredo.conformance._util import fpi_record, require_same_page, with_lsn
from pytest_walredo.pg.xlogrecord import Compression
from pytest_walredo.protocol import BLCKSZ, RedoRequest


@given(n=st.integers(1, 4))
def test_ping_answers_8192_bytes(walredo_pool, walredo_recorder, n):
    """``H`` is answered with exactly one 8192-byte page, however many are pipelined."""
    with walredo_recorder.example("ping") as ex:
        ex.set_requests([None] * n)
        client = walredo_pool.client()

        async def pings():
            import asyncio

            return await asyncio.gather(*(client.ping() for _ in range(n)))

        answers = walredo_pool.run(pings())
        ex.set_pages(actual=list(answers))
        assert all(len(a) == BLCKSZ for a in answers), "[wrong-page] a ping answer is not 8192 bytes"


@given(tag=ws.buffer_tags(forks=(0, 1, 2, 3)), page=ws.raw_pages() | ws.pages())
def test_getpage_answers_the_pushed_image(walredo_pool, walredo_recorder, tag, page):
    """``B P G`` with no record answers the pushed page unchanged, whatever its bytes."""
    with walredo_recorder.example("pushed-image") as ex:
        req = RedoRequest(tag.rel, tag.blknum, page, ())
        ex.set_requests([req])
        ex.set_pages(expected=[page])
        got = walredo_pool.apply(req)
        ex.set_pages(actual=[got])
        require_same_page(page, got, "GetPage after PushPage")


@given(data=st.data())
def test_same_request_twice_gives_the_same_page(walredo_pool, walredo_recorder, pg_version, flavour,
                                                data):
    """Determinism: a request applied twice (one after the other) gives the same page."""
    req = data.draw(ws.redo_requests(pg_version=pg_version, flavour=flavour, max_records=4))
    with walredo_recorder.example("determinism") as ex:
        ex.set_requests([req, req])
        first = walredo_pool.apply(req)
        second = walredo_pool.apply(req)
        ex.set_pages(expected=[first, first], actual=[first, second])
        require_same_page(first, second, "the same request twice")


@given(data=st.data())
def test_full_page_image_is_restored_with_its_lsn(walredo_pool, walredo_recorder, pg_version,
                                                  flavour, data):
    """An XLOG_FPI record yields its image with pd_lsn set to the record's end LSN."""
    tag = data.draw(ws.buffer_tags(), label="tag")
    page = data.draw(ws.pages(), label="page")
    comps = (Compression.NONE, Compression.PGLZ) if pg_version == 14 else tuple(Compression)
    comp = data.draw(st.sampled_from(comps), label="compression")
    lsn = data.draw(ws.lsns(), label="end_lsn")
    base = data.draw(st.none() | ws.pages(), label="base")
    req = RedoRequest(tag.rel, tag.blknum, base,
                      ((lsn, fpi_record(tag, page, pg_version, flavour, comp)),))
    want = with_lsn(page, lsn)
    with walredo_recorder.example("fpi-identity") as ex:
        ex.set_requests([req])
        ex.set_pages(expected=[want])
        got = walredo_pool.apply(req)
        ex.set_pages(actual=[got])
        require_same_page(want, got, "full-page image")


@given(data=st.data())
def test_split_invariance(walredo_pool, walredo_recorder, pg_version, flavour, data):
    """Applying r1..rn at once equals applying r1..rk, pushing that page, then rk+1..rn."""
    req = data.draw(ws.redo_requests(pg_version=pg_version, flavour=flavour, min_records=2,
                                     max_records=5), label="request")
    k = data.draw(st.integers(0, len(req.records)), label="k")
    with walredo_recorder.example("split-invariance") as ex:
        whole = walredo_pool.apply(req)
        head = RedoRequest(req.rel, req.blknum, req.base_image, req.records[:k])
        middle = walredo_pool.apply(head)
        tail = RedoRequest(req.rel, req.blknum, middle, req.records[k:])
        split = walredo_pool.apply(tail)
        ex.set_requests([req, head, tail])
        ex.set_pages(expected=[whole, None, whole], actual=[whole, middle, split])
        require_same_page(whole, split, f"split at record {k}")


@given(data=st.data())
def test_pages_agree_with_the_model(walredo_pool, walredo_recorder, walredo_oracle, pg_version, flavour,
                                    data):
    """Model agreement: for records the model supports, the page equals the model's page. In
    differential mode the baseline binary is the oracle instead, and the requests also come from
    the session's corpus, of every record kind (the model need not support them)."""
    req = data.draw(walredo_oracle.requests(pg_version, flavour), label="request")
    with walredo_recorder.example("model-agreement") as ex:
        ex.set_requests([req])
        got = walredo_pool.judged(req)  # raises, with both pages recorded, on a disagreement
        ex.set_pages(actual=[got.page])
