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

The simulated process is the reference server's own state machine,
:class:`~pytest_walredo.refserver.machine.WalredoMachine` (``shared/walredo-behaviour.md``), driven
in memory instead of from file descriptors: ``B`` names the current block, ``P`` stores a page for
its block, ``A`` applies one record to the current block, ``G`` answers the page of its block
(8192 zeros when there is none) and forgets every page of that relation, ``H`` answers 8192
zeros, and the reference's ``--fault=`` specs shape the answers. A malformed stream, a record the
model rejects or a fault stop makes it "exit": answers produced before stay readable, then the
stream ends; later writes fail with :class:`BrokenPipeError`. Unlike the reference server, an
unexpected exception inside the redo model (a bug of ours) propagates to the caller instead of
becoming a FATAL, and ``probe-open`` answers zeros (nothing is opened here).

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
from .process.memory import InMemoryStream
from .protocol import BLCKSZ, BufferTag, RedoRequest
from .refserver.faults import FaultPlan, Stop, parse_faults
from .refserver.machine import EOF_LINE, Fatal, RedoModel, WalredoMachine

__all__ = ["SimFatal", "SimTransport", "SimulatedWalredo", "model_page"]

ZERO_PAGE = bytes(BLCKSZ)
_MODEL = RedoModel(redo_record, RedoError)


class SimFatal(Exception):
    """The simulated process died; ``str(e)`` is its last stderr line (for an error, the FATAL
    message without ``FATAL:``); ``answers`` are the bytes it wrote before dying."""

    def __init__(self, message: str, answers: bytes = b"") -> None:
        super().__init__(message, answers)
        self.message = message
        self.answers = answers

    def __str__(self) -> str:
        return self.message


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
    """One walredo process in memory: bytes in, answer bytes out (a
    :class:`~pytest_walredo.refserver.machine.WalredoMachine` and its life and death).

    :meth:`feed` may be called with any split of the stream. After the process ended
    (:attr:`fatal` set: its last stderr line) :meth:`feed` raises :class:`SimFatal`.
    ``hung`` is set by a ``hang-after`` fault: the process then reads but never answers.
    """

    def __init__(self, *, pg_version: int = DEFAULT_VERSION, flavour: Flavour = Flavour.NEON,
                 faults: Sequence[str] = ()) -> None:
        self.pg_version = pg_version
        self.flavour = flavour
        self.plan: FaultPlan = parse_faults(list(faults))
        self.machine = WalredoMachine(pg_version=pg_version, flavour=flavour, faults=self.plan,
                                      model=lambda: _MODEL)
        self.fatal: str | None = None
        self.hung = False
        start = self.machine.start()
        if start is not None:
            self._stop(start)

    @property
    def answers(self) -> int:
        """How many ``G``/``H`` answers the process produced (the fault plan's ``N``)."""
        return self.machine.answers

    @property
    def pages(self) -> dict[BufferTag, bytes]:
        """The pages the process holds (pushed or built since the last ``G`` of their rel)."""
        return self.machine.pages

    def _stop(self, stop: Stop) -> None:
        if stop.hang:
            self.hung = True
        else:
            self.fatal = stop.line

    def _ended(self, stop: Stop | None) -> bytes:
        """The answers to hand out after the machine returned ``stop``; raise
        :class:`SimFatal` if it made the process exit."""
        if stop is not None:
            self._stop(stop)
            if self.fatal is not None:
                raise SimFatal(self.fatal, self.machine.take())
        return self.machine.take()

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; return what the process writes in response (maybe nothing).

        Raises :class:`SimFatal` when the process dies (the answers it wrote before dying are
        in ``e.answers``).
        """
        if self.fatal is not None:
            raise SimFatal(self.fatal)
        if self.hung:
            return b""
        try:
            stop = self.machine.feed(data)
        except Fatal as fatal:
            self.fatal = fatal.message
            raise SimFatal(self.fatal, self.machine.take()) from None
        return self._ended(stop)

    def end_of_input(self) -> bytes:
        """EOF on stdin: the process exits, as the reference does (a held swapped answer is
        released first); returns its last answers. Inside a message: :class:`SimFatal`."""
        if self.fatal is not None:
            raise SimFatal(self.fatal)
        if self.hung:
            self.fatal = EOF_LINE
            return b""
        try:
            stop = self.machine.end_of_input()
        except Fatal as fatal:
            self.fatal = fatal.message
            raise SimFatal(self.fatal, self.machine.take()) from None
        self._stop(stop)
        return self.machine.take()


class SimTransport(InMemoryStream):
    """:class:`~pytest_walredo.process.Transport` to a :class:`SimulatedWalredo`.

    ``write_all`` suspends once (``await asyncio.sleep(0)``, as a pipe write may) and then hands
    the whole buffer to the process; its answers become readable at once. When the process
    dies, the answers it wrote before stay readable and then reads see end of stream;
    writes after that raise :class:`BrokenPipeError`. ``fatal`` is the death message.
    """

    closed_message = "simulated walredo transport was aborted"

    def __init__(self, process: SimulatedWalredo | None = None) -> None:
        super().__init__()
        self.process = process if process is not None else SimulatedWalredo()
        self.written = bytearray()

    @property
    def fatal(self) -> str | None:
        return self.process.fatal

    async def write_all(self, data: bytes) -> None:
        if self._aborted:
            raise TransportClosed(self.closed_message)
        await asyncio.sleep(0)
        if self._aborted:
            raise TransportClosed(self.closed_message)
        if self._eof:
            raise BrokenPipeError(f"simulated walredo exited: {self.process.fatal}")
        self.written += data
        try:
            out = self.process.feed(bytes(data))
        except SimFatal as exc:
            self.feed(exc.answers)
            self.feed_eof()
            return
        if out:
            self.feed(out)

    @property
    def waiting_for_answer(self) -> bool:
        """A reader waits and no bytes will come (a hung or silent process): a deadlock."""
        return (self._waiter is not None and not self._waiter.done() and not self._eof
                and not self._aborted)
