"""Redo of Generic records (``generic_redo`` in ``generic_xlog.c``, PostgreSQL 14-17).

For each block reference: read it for redo (an applied full image is restored and that is
all; a block that is not the requested one is skipped); when it needs redo, write the delta's
fragments over the page in order, then zero the hole between the page's (new) pd_lower and
pd_upper, and stamp the record's end LSN.

PostgreSQL copies the fragments and zeroes the hole without checking them against the page
(it never logs such a delta); here a fragment past the page's end, or pd_lower above
pd_upper after the delta, is an error instead of memory corruption.
"""

from __future__ import annotations

from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.redo.buffer import BLK_NEEDS_REDO, Apply, Routine
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.generic import GenericRecord

__all__ = ["ROUTINES"]


def _generic(a: Apply, body: GenericRecord) -> None:
    for b in a.rec.blocks:
        action, page = a.read_for_redo(b.block_id)
        if action != BLK_NEEDS_REDO or page is None:
            continue
        for off, data in body.delta(b.block_id):
            if off + len(data) > BLCKSZ:
                raise a.fail(f"generic delta fragment at offset {off}, length {len(data)} runs past the page")
            page.data[off : off + len(data)] = data
        lower, upper = page.lower, page.upper
        if lower > upper:
            raise a.fail(f"generic delta left pd_lower {lower} above pd_upper {upper}")
        page.data[lower:upper] = bytes(upper - lower)
        a.done(page)


ROUTINES: dict[type[RmgrRecord], Routine] = {GenericRecord: _generic}
"""The redo routine of each Generic record kind."""
