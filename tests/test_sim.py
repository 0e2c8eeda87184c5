"""The simulated walredo: same answers as the reference model, the reference's faults, EOF."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_walredo import strategies as ws
from pytest_walredo.pg.version import Flavour
from pytest_walredo.process import WalredoClient, WalredoProcessError
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag
from pytest_walredo.sim import SimTransport, SimulatedWalredo, model_page


def _client(**kw) -> WalredoClient:
    return WalredoClient(SimTransport(SimulatedWalredo(pg_version=15, **kw)), timeout=None)


@settings(max_examples=30)
@given(reqs=st.lists(ws.redo_requests(pg_version=15, max_records=3), min_size=1, max_size=4))
def test_pipelined_answers_equal_the_model(reqs):
    async def main():
        return await _client().apply_many(reqs)

    assert asyncio.run(main()) == [model_page(r, 15, Flavour.NEON) for r in reqs]


def test_getpage_without_anything_is_zeros_and_ping_is_zeros():
    async def main():
        c = _client()
        return await c.apply(RedoRequest(RelTag(1, 2, 3), 0)), await c.ping()

    assert asyncio.run(main()) == (bytes(BLCKSZ), bytes(BLCKSZ))


def test_malformed_stream_ends_the_simulated_process():
    async def main():
        c = _client()
        await c.apply_raw(b"Z\x00\x00\x00\x04")

    with pytest.raises(WalredoProcessError, match=r"closed its stdout|stream ended"):
        asyncio.run(main())


def test_faults_shape_answers_like_the_reference():
    page = bytes(range(256)) * 32
    req = RedoRequest(RelTag(1, 2, 3), 0, page)

    async def main(faults):
        return await _client(faults=faults).apply(req)

    corrupted = asyncio.run(main(["corrupt-byte:7"]))
    assert corrupted[7] == page[7] ^ 0xFF and corrupted[:7] == page[:7]
    with pytest.raises(WalredoProcessError):
        asyncio.run(main(["crash-after:0"]))


def test_swapped_answers_reach_the_wrong_callers():
    reqs = [RedoRequest(RelTag(1, 2, 3), i, bytes([i]) * BLCKSZ) for i in range(3)]

    async def main():
        return await _client(faults=["swap-responses:1"]).apply_many(reqs)

    got = asyncio.run(main())
    assert got[0] == reqs[1].base_image and got[1] == reqs[0].base_image
