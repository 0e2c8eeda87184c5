"""Redo of XLOG records: full-page images (``xlog_redo`` for XLOG_FPI / XLOG_FPI_FOR_HINT); every
other XLOG record names no block and leaves the requested page as it is (in a real server
``xlog_redo`` updates shared state from them: next OID, checkpoint fields, parameters)."""

from __future__ import annotations

from pytest_walredo.pg.redo.buffer import BLK_DONE, BLK_RESTORED, Apply, Routine, no_page_change
from pytest_walredo.pg.rmgr import RmgrRecord
from pytest_walredo.pg.rmgr.xlog import XlogFpi, XlogNoPage

__all__ = ["ROUTINES"]


def _fpi(a: Apply, body: XlogFpi) -> None:
    """Restore every image; a block of this record that is not the target is skipped
    (Neon's filter answers BLK_DONE)."""
    for b in a.rec.blocks:
        if b.image is None:
            if not body.for_hint:
                raise a.fail("XLOG_FPI record did not contain a full-page image")
            continue
        action, _page = a.read_for_redo(b.block_id)
        if action not in (BLK_RESTORED, BLK_DONE):
            raise a.fail("unexpected XLogReadBufferForRedo result when restoring backup block")


ROUTINES: dict[type[RmgrRecord], Routine] = {XlogFpi: _fpi, XlogNoPage: no_page_change}
"""The redo routine of each XLOG record kind."""
