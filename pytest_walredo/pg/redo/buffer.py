"""Reading the requested block for redo: the prologue and epilogue every redo routine shares.

:class:`Apply` is the state of applying one record to one block, and its methods are the
walredo process's versions of PostgreSQL's buffer calls:

* Only the block named by (rel, fork, blkno) is touched. Like Neon's
  ``redo_read_buffer_filter``, every other block reference of the record reads as "already
  done" (``BLK_DONE``) and is skipped.
* ``XLogReadBufferForRedoExtended`` (:meth:`Apply.read_for_redo`): an image with
  BKPIMAGE_APPLY for the target block is restored (hole zero-filled) and pd_lsn set to the
  record's end LSN unless the restored page is new (pd_upper == 0): ``BLK_RESTORED``.
  Otherwise, for a block the routine initializes (WILL_INIT), the page is zeroed:
  ``BLK_NEEDS_REDO``; else the page is read and the record is ``BLK_DONE`` when its end LSN
  <= pd_lsn, ``BLK_NEEDS_REDO`` otherwise.
* ``PageSetLSN`` + ``MarkBufferDirty`` (:meth:`Apply.done`); pd_checksum is never recomputed.
* A block never pushed nor initialized is ``None``; reading it gives an all-zero page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.rmgr import RmgrRecord, rmgr_name
from pytest_walredo.pg.rmgr.ids import RM_XLOG_ID
from pytest_walredo.pg.rmgr.names import record_name
from pytest_walredo.pg.rmgr.xlog import xlog_record_name
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import BlockRef, DecodedRecord

__all__ = [
    "BLK_DONE",
    "BLK_NEEDS_REDO",
    "BLK_NOTFOUND",
    "BLK_RESTORED",
    "Apply",
    "RedoError",
    "Routine",
    "Target",
    "no_page_change",
    "record_context",
]

# XLogRedoAction
BLK_NEEDS_REDO = 0
BLK_DONE = 1
BLK_RESTORED = 2
BLK_NOTFOUND = 3


class RedoError(Exception):
    """A record the model cannot apply, as the walredo process would fail on it.

    ``str(e)`` is the one-line FATAL message; ``e.context`` is the
    ``WAL redo at X/Y for RMGR/INFO: ...`` line, or None when the failure comes before the
    record is decoded.
    """

    def __init__(self, message: str, context: str | None = None) -> None:
        super().__init__(message)
        self.context = context


@dataclass(frozen=True)
class Target:
    """The block the walredo process was asked for."""

    spcnode: int
    dbnode: int
    relnode: int
    forknum: int
    blkno: int

    def matches(self, b: BlockRef) -> bool:
        return (b.spcnode, b.dbnode, b.relnode, b.forknum, b.blkno) == (
            self.spcnode,
            self.dbnode,
            self.relnode,
            self.forknum,
            self.blkno,
        )

    def same_rel(self, b: BlockRef) -> bool:
        return (b.spcnode, b.dbnode, b.relnode) == (self.spcnode, self.dbnode, self.relnode)


def record_context(rec: DecodedRecord, body: RmgrRecord | None, end_lsn: int, pg_version: int,
                   flavour: Flavour) -> str:
    """PostgreSQL's ``CONTEXT:`` line for an error while applying ``rec``."""
    name = rmgr_name(rec.rmid)
    if body is None:  # the record did not parse: name it from its info bits, as rm_identify does
        known = record_name(rec.rmid, rec.info, pg_version) if rec.rmid != RM_XLOG_ID else \
            xlog_record_name(rec.info)
        if known is not None and known.startswith("UNKNOWN"):
            known = None  # pg_waldump's "UNKNOWN (f0)"; xlog_outdesc prints "UNKNOWN (F0)"
        what = f"{name}/{known or f'UNKNOWN ({rec.info & 0xF0:X})'}: "
    else:
        what = f"{name}/{body.identify(pg_version, flavour)}: {body.describe(pg_version, flavour)}"
    return f"WAL redo at {format_lsn(end_lsn)} for {what}"


class Apply:
    """The state of applying one record: the decoded record, the typed body, and the target
    page (a working copy, created when the redo routine first reads it)."""

    def __init__(
        self,
        page: bytes | None,
        target: Target,
        end_lsn: int,
        rec: DecodedRecord,
        body: RmgrRecord | None,
        pg_version: int,
        flavour: Flavour,
    ) -> None:
        self.original = page
        self.target = target
        self.lsn = end_lsn
        self.rec = rec
        self.body = body
        self.version = pg_version
        self.flavour = flavour
        self.work: Page | None = None  # the target page once read
        self.dirty = False

    # -- errors ---------------------------------------------------------------------------------
    @property
    def context(self) -> str:
        """The CONTEXT line; built only when an error needs it (describing every record
        would cost more than applying most of them)."""
        return record_context(self.rec, self.body, self.lsn, self.version, self.flavour)

    def fail(self, message: str) -> RedoError:
        return RedoError(message, self.context)

    # -- buffers ----------------------------------------------------------------------------------
    def current(self) -> Page:
        """The target page's working copy (read on first use; a missing block reads as zeros)."""
        if self.work is None:
            self.work = Page(self.original) if self.original is not None else Page()
        return self.work

    def block(self, block_id: int) -> BlockRef:
        b = self.rec.block(block_id)
        if b is None:
            raise self.fail(f"failed to locate backup block with ID {block_id} in WAL record")
        return b

    def has_block(self, block_id: int) -> bool:
        return self.rec.block(block_id) is not None

    def read_for_redo(self, block_id: int, *, zero: bool = False) -> tuple[int, Page | None]:
        """``XLogReadBufferForRedoExtended`` behind Neon's block filter.

        Returns (action, page): the page is the target's working copy, or None for any other
        block (skipped as ``BLK_DONE``). ``zero`` is RBM_ZERO_AND_LOCK (the caller
        initializes the page).
        """
        b = self.block(block_id)
        if not self.target.matches(b):
            return BLK_DONE, None
        willinit = b.will_init
        if willinit and not zero:
            raise self.fail(
                "block with WILL_INIT flag in WAL record must be zeroed by redo routine"
            )
        if zero and not willinit:
            raise self.fail(
                "block to be initialized in redo routine must be marked with WILL_INIT flag"
                " in the WAL record"
            )
        page = self.current()
        if b.apply_image:
            assert b.image is not None
            try:
                restored = b.image.restore_page()
            except ValueError as exc:
                raise self.fail(f"could not restore image at {format_lsn(self.lsn)}: {exc}") from None
            page.data[:] = restored
            if not page.is_new():
                page.lsn = self.lsn
            self.dirty = True
            return BLK_RESTORED, page
        if zero:
            page.data[:] = bytes(BLCKSZ)
            self.dirty = True
        if self.lsn <= page.lsn:
            return BLK_DONE, page
        return BLK_NEEDS_REDO, page

    def init_for_redo(self, block_id: int) -> Page | None:
        """``XLogInitBufferForRedo``: the zeroed target page (any image is restored first and
        then overwritten by the caller, as in PostgreSQL), or None for another block."""
        _action, page = self.read_for_redo(block_id, zero=True)
        if page is not None:
            page.data[:] = bytes(BLCKSZ)
            self.dirty = True
        return page

    def page_for_redo(self, block_id: int, *,
                      init: Callable[[Page], None] | None = None) -> Page | None:
        """The prologue every redo routine repeats for a block it changes: the target's page
        when the record must be replayed on it, else None (another block, an applied image,
        or end LSN <= pd_lsn: already done).

        ``init`` (``XLogInitBufferForRedo`` + the routine's ``PageInit``, e.g. for
        XLOG_HEAP_INIT_PAGE): the block is zeroed and ``init`` run on it, and it always needs
        redo. The epilogue is :meth:`done` after the change.
        """
        if init is not None:
            page = self.init_for_redo(block_id)
            if page is not None:
                init(page)
            return page
        action, page = self.read_for_redo(block_id)
        return page if action == BLK_NEEDS_REDO else None

    def done(self, page: Page, *, set_lsn: bool = True) -> None:
        """The redo routine changed ``page``: ``PageSetLSN`` + ``MarkBufferDirty``."""
        if set_lsn:
            page.lsn = self.lsn
        self.dirty = True

    def result(self) -> bytes | None:
        if self.work is None or not self.dirty:
            return self.original
        return self.work.to_bytes()


Routine = Callable[[Apply, Any], None]
"""A redo routine: applies a record whose typed body (second argument) is of its kind."""


def no_page_change(a: Apply, body: Any) -> None:
    """The routine of a record whose redo changes no page: it names no block (heap TRUNCATE,
    heap2 NEW_CID and REWRITE, btree REUSE_PAGE: logical decoding and hot-standby conflict
    records). The requested block stays as it is; never an error."""
