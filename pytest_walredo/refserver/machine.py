"""The walredo state machine, sans-IO: request bytes in, answer bytes and an outcome out.

One :class:`WalredoMachine` is the whole behaviour of one walredo process apart from its I/O:
the reference server (:mod:`.server`) drives it from fds 0/1/2, and the simulated walredo
(:mod:`pytest_walredo.sim`) drives it from an in-memory transport. Nothing here reads a file,
a pipe or a clock (the only hook that may is ``ping_page``, which the caller supplies).

State, as in the real process: the block named by the last ``B`` (initially 0/0/0 fork 0 block
0, the zero-initialised tag of the C code), and the pages pushed or built since the last ``G`` of
their relation. ``P`` stores its page (any bytes) for its block; ``A`` applies one record to the
``B`` block through the redo model (:func:`pytest_walredo.pg.redo.redo_record`); ``G`` answers the
page of its block (8192 zeros if there is none) and then forgets every page of that relation, as
the real process drops its local buffers; ``H`` answers 8192 zeros. Answers go through the
fault plan's :class:`~.faults.AnswerShaper`.

How a driver uses it::

    stop = machine.start()                  # crash-after:0 / hang-after:0
    while stop is None:
        data = read()
        stop = machine.feed(data) if data else machine.end_of_input()   # may raise Fatal
        write(machine.take())
    write(machine.take()); then exit as ``stop`` says (status + line, or hang)

Invariants:

* (M1) :meth:`feed` and :meth:`end_of_input` either return ``None`` (keep reading), return a
  :class:`~.faults.Stop` (the process ends after writing :meth:`take`; :data:`EOF_STOP` is the
  clean end of input), or raise :class:`Fatal` (the process dies after writing :meth:`take`:
  answers to the requests before the failing one still reach the caller).
* (M2) :meth:`take` returns the answer bytes produced so far, in order, exactly once each.
* (M3) after a stop or a :class:`Fatal` the machine must not be fed again (the process is gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..pg.version import DEFAULT_VERSION, Flavour
from ..protocol import (
    BLCKSZ,
    ApplyRecord,
    BeginRedoForBlock,
    BufferTag,
    Decoder,
    ErrorKind,
    GetPage,
    Message,
    Ping,
    ProtocolError,
    PushPage,
    RelTag,
)
from .faults import AnswerShaper, FaultPlan, Stop

__all__ = [
    "EOF_LINE",
    "EOF_STOP",
    "Fatal",
    "RedoModel",
    "WalredoMachine",
    "import_model",
    "protocol_fatal",
]

ZERO_PAGE = bytes(BLCKSZ)
XLOG_RECORD_HEADER = 24  # sizeof(XLogRecord)
EOF_LINE = "LOG:  received EOF on stdin, shutting down"
EOF_STOP = Stop(False, 0, EOF_LINE)
"""End of input at a message boundary: the process says :data:`EOF_LINE` and exits 0."""


class Fatal(Exception):
    """An error that ends the process: ``FATAL:  message`` (+ ``CONTEXT:  context``), exit 1."""

    def __init__(self, message: str, context: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def lines(self) -> str:
        """The stderr text of this error, one line each, newline-terminated."""
        text = f"FATAL:  {self.message}\n"
        if self.context:
            text += f"CONTEXT:  {self.context}\n"
        return text


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def protocol_fatal(err: ProtocolError) -> Fatal | None:
    """The FATAL the real process prints for a malformed stream, or None for its EOF quirk.

    The real process keeps the tag in a C ``char``, signed on x86_64: a tag byte >= 0x80 prints
    as a negative number, and 0xFF equals ``EOF`` (-1), which it takes as end of input.
    """
    if err.kind is ErrorKind.UNKNOWN_TAG:
        tag = err.tag if err.tag is not None else 0
        signed = tag - 256 if tag >= 0x80 else tag
        if signed == -1:
            return None
        return Fatal(f"{ErrorKind.UNKNOWN_TAG.value} {signed}")
    return Fatal(err.kind.value)


@dataclass(frozen=True)
class RedoModel:
    """The redo model a machine applies records with.

    ``redo_record`` has the signature of :func:`pytest_walredo.pg.redo.redo_record`; an
    ``error`` it raises becomes a :class:`Fatal` with ``str(error)`` as the message and
    ``error.context`` (if any) as the CONTEXT line.
    """

    redo_record: Callable[..., bytes | None]
    error: type[Exception]


def import_model() -> RedoModel:
    """:mod:`pytest_walredo.pg.redo` as a :class:`RedoModel` (imported on first use)."""
    from ..pg.redo import RedoError, redo_record

    return RedoModel(redo_record, RedoError)


class WalredoMachine:
    """One walredo process's state and message handling, without I/O (see the module doc).

    ``model`` is called once, at the first ``A`` that needs it (the reference server imports
    the model lazily to start fast; it may raise :class:`Fatal`). ``ping_page`` makes the
    answer to ``H`` (default: 8192 zeros). ``on_model_bug`` turns an exception the model
    raises that is not its ``error`` into a :class:`Fatal`; without it such an exception
    propagates unchanged (a bug of ours stays loud in in-process use).
    """

    def __init__(
        self,
        *,
        pg_version: int = DEFAULT_VERSION,
        flavour: Flavour = Flavour.NEON,
        faults: FaultPlan | None = None,
        model: Callable[[], RedoModel] = import_model,
        ping_page: Callable[[], bytes] | None = None,
        on_model_bug: Callable[[Exception], Fatal] | None = None,
    ) -> None:
        self.pg_version = pg_version
        self.flavour = flavour
        self.plan = faults if faults is not None else FaultPlan()
        self.shaper = AnswerShaper(self.plan)
        self.tag = BufferTag(RelTag(0, 0, 0, 0), 0)
        self.pages: dict[BufferTag, bytes] = {}
        # Like the real process, a message is read whole before it is looked at: a length that
        # runs past the bytes sent so far is waited for (until EOF), not rejected.
        self._decoder = Decoder(whole_messages=True)
        self._load_model = model
        self._model: RedoModel | None = None
        self._ping_page = ping_page
        self._on_model_bug = on_model_bug

    @property
    def answers(self) -> int:
        """How many ``G`` and ``H`` answers were produced (the fault plan's ``N``)."""
        return self.shaper.count

    # ---------------------------------------------------------------- driving

    def start(self) -> Stop | None:
        """A stop due before anything is read (``crash-after:0``, ``hang-after:0``)."""
        return self.shaper.at_start()

    def feed(self, data: bytes) -> Stop | None:
        """Consume ``data`` (any split of the stream) and handle every complete message.

        Returns a :class:`~.faults.Stop` when the process must end (a fault, or tag 0xFF,
        which the real process takes as end of input), else None. Raises :class:`Fatal`.
        """
        decoder = self._decoder
        decoder.feed(data)
        handle = self.handle
        try:
            while (msg := decoder.next()) is not None:
                stop = handle(msg)
                if stop is not None:
                    return stop
        except ProtocolError as err:
            mapped = protocol_fatal(err)
            if mapped is None:  # tag 0xFF: the real process's EOF
                return EOF_STOP
            raise mapped from None
        return None

    def end_of_input(self) -> Stop:
        """EOF on stdin: :data:`EOF_STOP` at a message boundary, a swapped answer still held
        released; raises :class:`Fatal` (``unexpected EOF``) inside a message."""
        try:
            self._decoder.end_of_input()
        except ProtocolError as err:
            raise Fatal(err.kind.value) from None
        self.shaper.release_held()
        return EOF_STOP

    def take(self) -> bytes:
        """Remove and return the answer bytes produced so far (M2)."""
        return self.shaper.take()

    # ---------------------------------------------------------------- messages

    def handle(self, msg: Message) -> Stop | None:
        """Apply one message; raise :class:`Fatal` on an error the real process dies of."""
        if isinstance(msg, Ping):
            pong = ZERO_PAGE if self._ping_page is None else self._ping_page()
            return self.shaper.answer(pong, is_get=False)
        if isinstance(msg, GetPage):
            page = self.pages.get(msg.tag)
            rel = msg.tag.rel
            for key in [k for k in self.pages if (k.rel.spcnode, k.rel.dbnode, k.rel.relnode)
                        == (rel.spcnode, rel.dbnode, rel.relnode)]:
                del self.pages[key]
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
        raise AssertionError(f"decoder produced an unknown message {msg!r}")

    def _apply(self, msg: ApplyRecord) -> None:
        record = msg.record
        # Framing checks the real process makes before decoding (no CONTEXT line yet); they
        # hold with ignore-records too, and come before the model is loaded.
        if len(record) < XLOG_RECORD_HEADER:
            raise Fatal(ErrorKind.SHORT_PAYLOAD.value)
        tot_len = int.from_bytes(record[:4], "little")
        if tot_len != len(record):
            raise Fatal(f"mismatch between record ({_signed32(tot_len)}) and message size "
                        f"({len(record)})")
        if self.plan.ignore_records:
            return
        model = self._model
        if model is None:
            model = self._model = self._load_model()
        tag = self.tag
        page = self.pages.get(tag)
        try:
            new = model.redo_record(
                page, spcnode=tag.rel.spcnode, dbnode=tag.rel.dbnode, relnode=tag.rel.relnode,
                forknum=tag.rel.forknum, blkno=tag.blknum, end_lsn=msg.lsn, record=record,
                pg_version=self.pg_version, flavour=self.flavour,
            )
        except Exception as exc:
            if isinstance(exc, model.error):
                raise Fatal(str(exc), getattr(exc, "context", None)) from exc
            if self._on_model_bug is None:
                raise
            raise self._on_model_bug(exc) from exc
        if new is None:
            return
        if self.plan.no_lsn and new is not page:
            old_lsn = page[:8] if page is not None else bytes(8)
            new = old_lsn + bytes(new[8:])
        self.pages[tag] = bytes(new)
