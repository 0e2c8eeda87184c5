"""The real pg_waldump reads hash records as we write them: batches of drawn hash records only
(every record, its blocks as PostgreSQL registers them, data left out where an image is
applied) through pg_waldump 15 and, for PG17's forms (VACUUM_ONE_PAGE's layout and
description), the pg_waldump 17 fetched into ``.tools/pg/17``. Real hash WAL:
test_corpus_hash.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pg_rmgr_hash import HASH_KINDS, hash_case
from test_pg_waldump import WALDUMP17, _check_agreement, _dump, _passed, needs_waldump

from pytest_walredo.pg.rmgr import build


@st.composite
def _hash_batch(draw: st.DrawFn, pg: int) -> list[bytes]:
    out = []
    for kind in draw(st.lists(st.sampled_from(HASH_KINDS), min_size=1, max_size=30)):
        body, blocks = hash_case(draw, kind, pg)
        rec = build(body, blocks, pg_version=pg, xid=draw(st.integers(0, 2**32 - 1)),
                    xl_info_low=draw(st.sampled_from([0, 0x02])))
        out.append(rec.encode())
    return out


@needs_waldump
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_hash_batch(15))
def test_pg_waldump_15_reads_hash_records(records: list[bytes]) -> None:
    result, seg = _dump(records)
    _check_agreement(result, seg)
    _passed(result)


@pytest.mark.needs_postgres
@pytest.mark.skipif(not WALDUMP17.exists(), reason=f"no PostgreSQL 17 pg_waldump at {WALDUMP17} "
                    "(scripts/fetch_pg_servers.sh fetches one)")
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_hash_batch(17))
def test_pg_waldump_17_reads_hash_records(records: list[bytes]) -> None:
    result, seg = _dump(records, pg=17, binary=WALDUMP17)
    _check_agreement(result, seg, 17)
    _passed(result)
