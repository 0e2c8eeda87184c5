"""An in-memory :class:`~pytest_walredo.process.client.Transport` for deterministic tests.

No process, no pipe, no timing: what the client writes goes to a *responder* (by default
:class:`EchoResponder`, which answers like a walredo with echo semantics), and the answers are
either readable at once (``auto=True``) or held until the test calls :meth:`MemoryTransport.release`
(``auto=False``), which lets a test decide exactly when and in what pieces answers arrive, in
between any two steps of the callers. Use it from one event loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..protocol import BLCKSZ, BeginRedoForBlock, Decoder, GetPage, Ping, PushPage
from .client import TransportClosed

__all__ = ["EchoResponder", "InMemoryStream", "MemoryTransport"]


class EchoResponder:
    """Turns request bytes into answer bytes: ``G`` -> the page pushed for that block since its
    ``B`` (zeros if none), ``H`` -> zeros. Records are ignored. Stateful across calls, so
    requests may be split anywhere."""

    def __init__(self) -> None:
        self._decoder = Decoder()
        self._pages: dict[object, bytes] = {}

    def __call__(self, data: bytes) -> bytes:
        self._decoder.feed(data)
        out = bytearray()
        for msg in self._decoder:
            if isinstance(msg, BeginRedoForBlock):
                self._pages.pop(msg.tag, None)
            elif isinstance(msg, PushPage):
                self._pages[msg.tag] = msg.page
            elif isinstance(msg, GetPage):
                out += self._pages.get(msg.tag, bytes(BLCKSZ))
            elif isinstance(msg, Ping):
                out += bytes(BLCKSZ)
        return bytes(out)


class InMemoryStream:
    """The reading half of an in-memory transport, and its :meth:`abort`.

    The writing side (a subclass) makes bytes readable with :meth:`feed` and ends the stream
    with :meth:`feed_eof`. Invariants: ``read_exactly`` returns bytes in the order they were
    fed, each once; a cancelled ``read_exactly`` loses nothing (bytes stay in the buffer until
    a read returns them); at most one reader waits at a time (the client reads from one task).
    ``closed_message`` is the :class:`TransportClosed` text after :meth:`abort`.
    """

    closed_message = "in-memory transport was aborted"

    def __init__(self) -> None:
        self._rbuf = bytearray()
        self._eof = False
        self._aborted = False
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        """Make ``data`` readable now."""
        self._rbuf += data
        self._wake()

    def feed_eof(self) -> None:
        """End the stream: readers get :class:`asyncio.IncompleteReadError` once it is drained."""
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read_exactly(self, n: int) -> bytes:
        while len(self._rbuf) < n:
            if self._aborted:
                raise TransportClosed(self.closed_message)
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

    def abort(self) -> None:
        self._aborted = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TransportClosed(self.closed_message))


class MemoryTransport(InMemoryStream):
    """A scripted stand-in for the walredo pipes.

    ``written`` accumulates everything the client wrote, in ``write_chunk`` pieces. A responder
    raising ``ValueError`` (e.g. :class:`~pytest_walredo.protocol.ProtocolError` on garbled
    input) ends the stream as a dying process would: answers so far are delivered, then EOF,
    and writes fail with ``BrokenPipeError``. With ``auto=False`` answers pile up in ``held``
    until :meth:`release`; :meth:`feed` injects arbitrary bytes (garbage, short pages) and
    :meth:`feed_eof` ends the stream.
    """

    closed_message = "memory transport was aborted"

    def __init__(self, responder: Callable[[bytes], bytes] | None = None, *,
                 auto: bool = True, write_chunk: int = 4096) -> None:
        super().__init__()
        self.responder = responder if responder is not None else EchoResponder()
        self.auto = auto
        self.write_chunk = write_chunk
        self.written = bytearray()
        self.held = bytearray()
        self._broken = False

    # -- test side ------------------------------------------------------------------------------

    def release(self, n: int | None = None) -> None:
        """Make the first ``n`` held bytes (all if None) readable."""
        n = len(self.held) if n is None else n
        self.feed(bytes(self.held[:n]))
        del self.held[:n]

    # -- Transport ------------------------------------------------------------------------------

    async def write_all(self, data: bytes) -> None:
        # Like a pipe, a large write goes in pieces with suspension points in between, so a
        # client that lets two writers overlap produces interleaved (garbled) bytes here too.
        for start in range(0, len(data), self.write_chunk):
            await asyncio.sleep(0)
            if self._aborted:
                raise TransportClosed(self.closed_message)
            if self._broken:
                raise BrokenPipeError("memory walredo stopped reading (malformed input)")
            piece = bytes(data[start:start + self.write_chunk])
            self.written += piece
            try:
                answer = self.responder(piece)
            except ValueError:
                # Malformed stream: like the real process, stop and close the answer stream.
                self._broken = True
                self.feed(bytes(self.held))
                self.held.clear()
                self.feed_eof()
                raise BrokenPipeError("memory walredo stopped reading (malformed input)") from None
            if self.auto:
                self.feed(answer)
            else:
                self.held += answer
