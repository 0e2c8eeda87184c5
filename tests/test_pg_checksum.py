"""pg_checksum_page: checked against pages a real ``initdb --data-checksums`` wrote, plus the
properties the algorithm guarantees."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_walredo.pg.checksum import pg_checksum_block, pg_checksum_page
from pytest_walredo.pg.page import BLCKSZ, Page


@pytest.mark.needs_postgres
def test_checksums_equal_what_postgres_stored(initdb_cluster: Path) -> None:
    checked = 0
    multi_block = 0
    for f in sorted((initdb_cluster / "base" / "1").iterdir()):
        raw = f.read_bytes()
        for blk in range(len(raw) // BLCKSZ):
            page = raw[blk * BLCKSZ : (blk + 1) * BLCKSZ]
            p = Page(page)
            if p.is_new():
                continue  # PostgreSQL does not checksum new pages
            assert pg_checksum_page(page, blk) == p.checksum, f"{f.name} block {blk}"
            checked += 1
            multi_block += blk > 0
    # heap, index, fsm and vm pages, including blocks > 0 (the block number is mixed in)
    assert checked > 200 and multi_block > 20


def _page() -> bytearray:
    page = Page.initialized()
    page.add_item(b"some tuple bytes")
    return page.data


def test_stored_checksum_does_not_count() -> None:
    page = _page()
    before = pg_checksum_page(page, 3)
    page[8:10] = b"\x12\x34"
    assert pg_checksum_page(page, 3) == before


def test_block_number_and_every_word_matter() -> None:
    page = _page()
    base = pg_checksum_page(page, 0)
    assert pg_checksum_page(page, 1) != base
    for pos in (0, 4, 100, 4096, BLCKSZ - 1):
        changed = bytearray(page)
        changed[pos] ^= 0x01
        assert pg_checksum_page(changed, 0) != base, pos


def test_range_is_1_to_65535() -> None:
    for blk in range(200):
        assert 1 <= pg_checksum_page(_page(), blk) <= 65535


def test_block_hash_xors_the_block_number_in_before_reducing() -> None:
    # pg_checksum_page = ((block hash with pd_checksum zeroed) ^ blkno) % 65535 + 1
    page = _page()
    h = pg_checksum_block(page)
    assert pg_checksum_page(page, 0x1234) == ((h ^ 0x1234) % 65535) + 1


def test_wrong_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="8192 bytes, got 10"):
        pg_checksum_page(b"x" * 10, 0)
    with pytest.raises(ValueError, match="does not fit in 32 bits"):
        pg_checksum_page(bytes(BLCKSZ), 1 << 32)
