"""Edges of the Sequence, Generic and XLOG redo routines: a sequence tuple that does not fit,
a generic record on a page that is already newer, on its second block, with a fragment past
the page or a pd_lower above pd_upper; XLOG_FPI without an image, and FPI_FOR_HINT with an
image after a block without one. Messages follow seq_redo, xlog_redo and the model's
documented refusals of deltas PostgreSQL never logs (generic_xlog.c would corrupt memory)."""

from __future__ import annotations

import pytest
from test_pg_redo import LSN, OLD_LSN, block, heap_page, record, redo, tuple_bytes

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo import RedoError


def _fails(message: str, page: bytes | None, raw: bytes, **kw: int) -> None:
    with pytest.raises(RedoError, match=f"^{message}$") as err:
        redo(page, raw, **kw)
    assert err.value.context is not None


def test_a_sequence_tuple_that_does_not_fit_is_an_error() -> None:
    raw = record(rmgr.SeqLog((1663, 5, 16384), bytes(8200)), [block(0, will_init=True)])
    _fails("seq_redo: failed to add item to page", None, raw)


def _generic(frags: tuple[tuple[int, bytes], ...], *, block_id: int = 0) -> rmgr.GenericRecord:
    return rmgr.GenericRecord(((block_id, frags),))


def test_a_generic_record_older_than_the_page_changes_nothing() -> None:
    page = heap_page(lsn=LSN).to_bytes()
    raw = record(_generic(((100, b"xyz"),)), [block(0)])
    assert redo(page, raw) is page


def test_a_generic_record_changes_its_second_block_when_that_is_the_target() -> None:
    page = heap_page(tuple_bytes(data=b"row"))
    body = rmgr.GenericRecord(((0, ((8000, b"zz"),)), (1, ((8170, b"AB"),))))
    out = redo(page.to_bytes(), record(body, [block(9), block(4, block_id=1)]), blkno=4)
    expected = Page(page.to_bytes())
    expected.data[8170:8172] = b"AB"
    expected.lsn = LSN
    assert out == expected.to_bytes()


def test_a_generic_fragment_past_the_page_is_an_error() -> None:
    raw = record(_generic(((8190, b"abcd"),)), [block(0)])
    _fails("generic delta fragment at offset 8190, length 4 runs past the page", heap_page().to_bytes(), raw)


def test_a_generic_delta_that_leaves_pd_lower_above_pd_upper_is_an_error() -> None:
    raw = record(_generic(((12, (9000).to_bytes(2, "little")),)), [block(0)])
    _fails("generic delta left pd_lower 9000 above pd_upper 8192", heap_page().to_bytes(), raw)


def test_xlog_fpi_without_an_image_is_an_error() -> None:
    raw = record(rmgr.XlogFpi(False), [block(0)])
    _fails("XLOG_FPI record did not contain a full-page image", heap_page().to_bytes(), raw)


def test_fpi_for_hint_skips_a_block_without_an_image_and_restores_the_next() -> None:
    image = heap_page(tuple_bytes(data=b"imaged"))
    blocks = [block(3), block(0, block_id=1, image=xr.ImageRef.from_page(image.to_bytes(), 17))]
    out = redo(heap_page(lsn=OLD_LSN).to_bytes(), record(rmgr.XlogFpi(True), blocks))
    expected = Page(image.to_bytes())
    expected.lsn = LSN
    assert out == expected.to_bytes()
