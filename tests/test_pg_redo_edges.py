"""Edges of the heap redo routines that the record-by-record tests of test_pg_redo.py leave
open: the exact offset where PostgreSQL panics, flags a record does NOT carry (what they must
leave alone), the delete variants (super-deletion, partition move), the visibility map of
either page of an update, the "locked only" rule, Neon's logged command ids and its
HEAP_COMBOCID infobit, and the errors of line pointers that hold no tuple.

Every expected page is written from PostgreSQL's heapam.c redo routines (heap_xlog_*,
fix_infomask_from_infobits, HEAP_XMAX_IS_LOCKED_ONLY, visibilitymap_clear), never from the
model's own output.
"""

from __future__ import annotations

import pytest
from test_pg_redo import (
    LSN,
    UPDATED,
    XMAX_INVALID,
    XMIN_COMMITTED,
    block,
    heap_page,
    record,
    redo,
    tuple_bytes,
)

from pytest_walredo.pg import rmgr
from pytest_walredo.pg import xlogrecord as xr
from pytest_walredo.pg.redo import RedoError


def test_update_whose_block_1_names_the_new_block_is_an_update_on_one_page() -> None:
    # heap_xlog_update takes the old block from block 1 when there is one, then treats
    # oldblk == newblk as one page: both tuples on block 0's page, the prefix from the old tuple
    old = tuple_bytes(xmin=3, ctid=(0, 1), infomask=XMIN_COMMITTED | XMAX_INVALID, data=b"AAAAold")
    new = rmgr.XlTuple(2, XMAX_INVALID | UPDATED, 24, b"\x00new")
    body = rmgr.HeapUpdate(old_xmax=20, old_offnum=1, new_xmax=0, new_offnum=2, flags=0x20, new_tuple=new,
                           prefixlen=4)
    raw = record(body, [block(0), block(0, block_id=1)], xid=20)
    out = redo(heap_page(old).to_bytes(), raw)
    expected = heap_page(tuple_bytes(xmin=3, xmax=20, ctid=(0, 2), infomask=XMIN_COMMITTED, data=b"AAAAold"),
                         lsn=LSN)
    expected.add_item(tuple_bytes(xmin=20, ctid=(0, 2), infomask=XMAX_INVALID | UPDATED, data=b"AAAAnew"))
    expected.prune_xid = 20
    assert out == expected.to_bytes()


# --------------------------------------------------------------------------- framework: messages and CONTEXT lines


@pytest.mark.parametrize(("rmid", "info", "context"), [
    (11, 0xF0, "Btree/UNKNOWN (F0): "),  # xlog_outdesc's "UNKNOWN (%X)", upper case (not pg_waldump's %x)
    (12, 0xD2, "Hash/UNKNOWN (D0): "),  # the info's low bits are not part of the opcode
    (0, 0xC0, "XLOG/UNKNOWN (C0): "),
    (1, 0x00, "Transaction/UNKNOWN (0): "),
])
def test_the_context_of_a_record_of_an_unknown_opcode(rmid: int, info: int, context: str) -> None:
    raw = xr.make_record(rmid=rmid, info=info, main_data=b"\x01", blocks=[block(0)]).encode()
    with pytest.raises(RedoError) as err:
        redo(heap_page().to_bytes(), raw)
    assert err.value.context == f"WAL redo at 1/2000 for {context}"
