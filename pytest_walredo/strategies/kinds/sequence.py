"""Drawers for Sequence records: ``sequence_log`` (XLOG_SEQ_LOG), which rebuilds the block
whatever it held, so it applies to any block and starts one that has no page yet.

The logged tuple is shaped like PostgreSQL's (a frozen heap tuple, ``t_hoff`` 24, three
attributes: last_value, log_cnt, is_called), with drawn values; the relation in the record is
the block's own, as the primary writes it.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ...pg.rmgr.sequence import SEQ_DATA, SeqLog
from ...pg.tuple import HEAP_XMAX_INVALID, HEAP_XMIN_FROZEN, HeapTupleHeader
from ..block import Block
from .spec import Drawn, RecordKind

__all__ = ["KINDS", "sequence_tuple"]

_FROZEN_XID = 2  # FrozenTransactionId, the xmin of every sequence tuple
_I64 = st.integers(-(2**63), 2**63 - 1)


def sequence_tuple(last_value: int, log_cnt: int, is_called: bool) -> bytes:
    """The heap tuple a sequence page holds (``fill_seq_fork_with_data``): 24-byte header,
    then FormData_pg_sequence_data."""
    head = HeapTupleHeader(xmin=_FROZEN_XID, ctid_offset=1, infomask2=3,
                           infomask=HEAP_XMIN_FROZEN | HEAP_XMAX_INVALID, bits=b"\0")
    return head.pack() + SEQ_DATA.pack(last_value, log_cnt, is_called)


def _seq_log(draw: st.DrawFn, b: Block, max_tuple_size: int) -> Drawn:
    tup = sequence_tuple(draw(_I64), draw(st.integers(0, 32)), draw(st.booleans()))
    return Drawn(SeqLog(b.rel3, tup), [b.own_block(will_init=True)], "sequence")


KINDS = (RecordKind("sequence_log", 1510, _seq_log, on=None),)
"""The Sequence record kinds."""
