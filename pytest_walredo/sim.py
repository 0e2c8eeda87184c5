"""An in-memory simulated walredo process that applies the same redo model as the reference.

Two uses:

* :func:`model_page` -- the oracle: the page a correct walredo returns for one
  :class:`~pytest_walredo.protocol.RedoRequest` run alone, computed with
  :func:`pytest_walredo.pg.redo.redo_record` (or the :class:`~pytest_walredo.pg.redo.RedoError`
  it would die of).
* :class:`SimTransport` -- a :class:`~pytest_walredo.process.Transport` whose far end is a
  :class:`SimulatedWalredo` instead of a pipe. No threads, no timers, no real I/O: every step
  happens on the event loop in a fixed order, so a concurrent run over it is a pure function
  of the schedule (this is what makes :mod:`pytest_walredo.interleave` deterministic).

The simulated process follows the same rules as the reference server
(``pytest_walredo/refserver/server.py`` and ``shared/walredo-behaviour.md``): ``B`` names the
current block, ``P`` stores a page for its block, ``A`` applies one record to the current block,
``G`` answers the page of its block (8192 zeros when there is none) and forgets every page of
that relation, ``H`` answers 8192 zeros. A malformed stream or a record the model rejects makes
it "exit": answers produced before stay readable, then the stream ends; later writes fail with
:class:`BrokenPipeError`.

It also understands the reference server's ``--fault=`` specs (the answer-shaping ones through
the reference's own :class:`~pytest_walredo.refserver.faults.AnswerShaper`, plus
``ignore-records`` and ``no-lsn``), so the seeded-bug catalogue can be exercised without
processes.

>>> from pytest_walredo.protocol import RedoRequest, RelTag
>>> import asyncio
>>> from pytest_walredo.process import WalredoClient
>>> req = RedoRequest(RelTag(1663, 5, 16384), 0, b"x" * 8192)
>>> async def main():
...     client = WalredoClient(SimTransport(SimulatedWalredo(pg_version=15)), timeout=None)
...     return await client.apply(req)
>>> asyncio.run(main()) == b"x" * 8192
True
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .pg.redo import RedoError, redo_record
from .pg.version import DEFAULT_VERSION, Flavour
from .process.client import TransportClosed
from .protocol import (
    BLCKSZ,
    ApplyRecord,
    BeginRedoForBlock,
    BufferTag,
    Decoder,
    GetPage,
    Ping,
    ProtocolError,
    PushPage,
    RedoRequest,
    RelTag,
)
from .refserver.faults import AnswerShaper, parse_faults

__all__ = ["SimFatal", "SimTransport", "SimulatedWalredo", "model_page"]

ZERO_PAGE = bytes(BLCKSZ)
_XLOG_RECORD_HEADER = 24


class SimFatal(Exception):
    """The simulated process died; ``str(e)`` is its FATAL line (without ``FATAL:``)."""


def model_page(request: RedoRequest, pg_version: int = DEFAULT_VERSION,
               flavour: Flavour = Flavour.NEON) -> bytes:
    """The page a correct walredo answers for ``request`` alone. Raises :class:`RedoError`.

    ``GetPage`` of a block that was neither pushed nor built by a record is 8192 zeros.
    """
    page = request.base_image
    r = request.rel
    for lsn, record in request.records:
        page = redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode,
                           forknum=r.forknum, blkno=request.blknum, end_lsn=lsn, record=record,
                           pg_version=pg_version, flavour=flavour)
    return ZERO_PAGE if page is None else bytes(page)


class SimulatedWalredo:
    """The state machine of one walredo process: bytes in, answer bytes out.

    :meth:`feed` may be called with any split of the stream. After a fatal error
    (:attr:`fatal` set) the process is dead and :meth:`feed` raises :class:`SimFatal`.
    ``hung`` is set by a ``hang-after`` fault: the process then reads but never answers.
    """

    def __init__(self, *, pg_version: int = DEFAULT_VERSION, flavour: Flavour = Flavour.NEON,
                 faults: Sequence[str] = ()) -> None:
        self.pg_version = pg_version
        self.flavour = flavour
        self.plan = parse_faults(list(faults))
        self.shaper = AnswerShaper(self.plan)
        self.decoder = Decoder()
        self.tag = BufferTag(RelTag(0, 0, 0, 0), 0)
        self.pages: dict[BufferTag, bytes] = {}
        self.fatal: str | None = None
        self.hung = False
        self.answers = 0
        start = self.shaper.at_start()
        if start is not None:
            self._stop(start)

    def _stop(self, stop: object) -> None:
        hang = getattr(stop, "hang", False)
        if hang:
            self.hung = True
        else:
            self.fatal = getattr(stop, "line", "") or "stopped"

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; return what the process writes in response (maybe nothing).

        Raises :class:`SimFatal` when the process dies (the answers it wrote before dying are
        in ``e.args[1]``).
        """
        if self.fatal is not None:
            raise SimFatal(self.fatal, b"")
        if self.hung:
            return b""
        self.decoder.feed(data)
        try:
            while (msg := self.decoder.next()) is not None:
                stop = self._handle(msg)
                if stop is not None:
                    self._stop(stop)
                    if self.fatal is not None:
                        raise SimFatal(self.fatal, self.shaper.take())
                    return self.shaper.take()
        except ProtocolError as err:
            self.fatal = err.kind.value
            raise SimFatal(self.fatal, self.shaper.take()) from None
        except RedoError as err:
            self.fatal = str(err)
            raise SimFatal(self.fatal, self.shaper.take()) from None
        return self.shaper.take()

    def end_of_input(self) -> bytes:
        """EOF on stdin: a held (swapped) answer is released, as the reference does."""
        self.shaper.release_held()
        return self.shaper.take()

    def _handle(self, msg: object) -> object | None:
        if isinstance(msg, Ping):
            self.answers += 1
            return self.shaper.answer(ZERO_PAGE, is_get=False)
        if isinstance(msg, GetPage):
            page = self.pages.get(msg.tag)
            rel = msg.tag.rel
            key = (rel.spcnode, rel.dbnode, rel.relnode)
            for k in [k for k in self.pages if (k.rel.spcnode, k.rel.dbnode, k.rel.relnode) == key]:
                del self.pages[k]
            self.answers += 1
            return self.shaper.answer(ZERO_PAGE if page is None else page, is_get=True)
        if isinstance(msg, BeginRedoForBlock):
            self.tag = msg.tag
            return None
        if isinstance(msg, PushPage):
            self.pages[msg.tag] = msg.page
            return None
        if isinstance(msg, ApplyRecord):
            self._apply(msg)
            return None
        raise AssertionError(f"unknown message {msg!r}")

    def _apply(self, msg: ApplyRecord) -> None:
        record = msg.record
        if len(record) < _XLOG_RECORD_HEADER:
            raise RedoError("insufficient data left in message")
        if self.plan.ignore_records:
            tot_len = int.from_bytes(record[:4], "little")
            if tot_len != len(record):
                raise RedoError(f"mismatch between record ({tot_len}) and message size ({len(record)})")
            return
        tag = self.tag
        page = self.pages.get(tag)
        r = tag.rel
        new = redo_record(page, spcnode=r.spcnode, dbnode=r.dbnode, relnode=r.relnode,
                          forknum=r.forknum, blkno=tag.blknum, end_lsn=msg.lsn, record=record,
                          pg_version=self.pg_version, flavour=self.flavour)
        if new is None:
            return
        if self.plan.no_lsn and new is not page:
            new = (page[:8] if page is not None else bytes(8)) + bytes(new[8:])
        self.pages[tag] = bytes(new)


class SimTransport:
    """:class:`~pytest_walredo.process.Transport` to a :class:`SimulatedWalredo`.

    ``write_all`` suspends once (``await asyncio.sleep(0)``, as a pipe write may) and then hands
    the whole buffer to the process; its answers become readable at once. When the process
    dies, the answers it wrote before stay readable and then reads see end of stream;
    writes after that raise :class:`BrokenPipeError`. ``fatal`` is the death message.
    """

    def __init__(self, process: SimulatedWalredo | None = None) -> None:
        self.process = process if process is not None else SimulatedWalredo()
        self.written = bytearray()
        self._rbuf = bytearray()
        self._eof = False
        self._aborted = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def fatal(self) -> str | None:
        return self.process.fatal

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def write_all(self, data: bytes) -> None:
        if self._aborted:
            raise TransportClosed("simulated walredo transport was aborted")
        await asyncio.sleep(0)
        if self._aborted:
            raise TransportClosed("simulated walredo transport was aborted")
        if self._eof:
            raise BrokenPipeError(f"simulated walredo exited: {self.process.fatal}")
        self.written += data
        try:
            out = self.process.feed(bytes(data))
        except SimFatal as exc:
            self._rbuf += exc.args[1] if len(exc.args) > 1 else b""
            self._eof = True
            self._wake()
            return
        if out:
            self._rbuf += out
            self._wake()

    async def read_exactly(self, n: int) -> bytes:
        while len(self._rbuf) < n:
            if self._aborted:
                raise TransportClosed("simulated walredo transport was aborted")
            if self._eof:
                raise asyncio.IncompleteReadError(bytes(self._rbuf), n)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        out = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return out

    def buffered(self) -> int:
        return len(self._rbuf)

    @property
    def waiting_for_answer(self) -> bool:
        """A reader waits and no bytes will come (a hung or silent process): a deadlock."""
        return (self._waiter is not None and not self._waiter.done() and not self._eof
                and not self._aborted)

    def abort(self) -> None:
        self._aborted = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TransportClosed("simulated walredo transport was aborted"))
