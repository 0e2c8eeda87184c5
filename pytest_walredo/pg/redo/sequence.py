"""Redo of Sequence records (``seq_redo`` in ``commands/sequence.c``, PostgreSQL 14-17).

XLOG_SEQ_LOG always rebuilds the page: ``XLogInitBufferForRedo`` (block 0 must be WILL_INIT),
then a fresh page (``PageInit`` with the 4-byte ``sequence_magic`` special space, MAXALIGNed
to 8) holding the magic 0x1717 and the logged tuple as item 1, stamped with the record's end
LSN. Whatever the page held before (an applied image included) is replaced; the LSN
interlock does not apply, since the page is initialized.
"""

from __future__ import annotations

import struct

from pytest_walredo.pg.page import Page
from pytest_walredo.pg.redo.buffer import Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.sequence import SeqLog

__all__ = ["ROUTINES", "SEQ_MAGIC", "SEQ_SPECIAL_SIZE"]

SEQ_MAGIC = 0x1717
SEQ_SPECIAL_SIZE = 4  # sizeof(sequence_magic)


def _seq_log(a: Apply, body: SeqLog) -> None:
    page = a.init_for_redo(0)
    if page is None:
        return  # another block: Neon's filter skips it
    # PostgreSQL builds the page in local memory and copies it over the buffer whole.
    local = Page.initialized(SEQ_SPECIAL_SIZE)
    struct.pack_into("<I", local.data, local.special, SEQ_MAGIC)
    if local.add_item(body.tuple, 1) == 0:
        raise a.fail("seq_redo: failed to add item to page")
    page.data[:] = local.data
    a.done(page)


ROUTINES: dict[type[RmgrRecord], Routine] = {SeqLog: _seq_log}
"""The redo routine of each Sequence record kind."""
