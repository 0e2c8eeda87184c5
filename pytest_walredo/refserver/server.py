"""The reference walredo server's loop: read messages from fd 0, write pages to fd 1.

State, as in the real process: the block named by the last ``B`` (initially 0/0/0 fork 0 block
0, the zero-initialised tag of the C code), and the pages pushed or built since the last ``G`` of
their relation. ``P`` stores its page (any bytes) for its block; ``A`` applies one record to the
``B`` block through :func:`pytest_walredo.pg.redo.redo_record`; ``G`` answers the page of its
block (8192 zeros if there is none) and then forgets every page of that relation, as the real
process drops its local buffers; ``H`` answers 8192 zeros.

Throughput: stdin is read in chunks of up to 1 MiB, every complete message in the buffer is
handled, and the answers of all of them leave in one ``write`` before the next blocking read. A
pipelined caller therefore pays one pair of syscalls per batch, not per page.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

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

__all__ = ["Fatal", "Options", "RefServer"]

READ_CHUNK = 1 << 20
ZERO_PAGE = bytes(BLCKSZ)
XLOG_RECORD_HEADER = 24  # sizeof(XLogRecord)
EOF_LINE = "LOG:  received EOF on stdin, shutting down"
_NOT_PRELOADED = frozenset({"waldump", "walsegment"})  # pg modules redo never needs


@dataclass(frozen=True)
class Options:
    """What the command line chose."""

    pg_version: int = DEFAULT_VERSION
    flavour: Flavour = Flavour.NEON
    seccomp: bool = True
    faults: FaultPlan = field(default_factory=FaultPlan)


class Fatal(Exception):
    """An error that ends the process: ``FATAL:  message`` (+ ``CONTEXT:  context``), exit 1."""

    def __init__(self, message: str, context: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def lines(self) -> str:
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


def _model_bug(exc: BaseException) -> Fatal:
    """A FATAL for an exception the redo model should never raise, naming where it came from."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        where = f" (at {os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name})"
        tb = tb.tb_next
    return Fatal(f"reference redo model failed: {type(exc).__name__}: {exc}{where}")


class RefServer:
    """One server process's state and loop; :meth:`serve` returns the exit status."""

    def __init__(self, options: Options, *, rfd: int = 0, wfd: int = 1, efd: int = 2) -> None:
        self.options = options
        self.rfd, self.wfd, self.efd = rfd, wfd, efd
        self.tag = BufferTag(RelTag(0, 0, 0, 0), 0)
        self.pages: dict[BufferTag, bytes] = {}
        self.shaper = AnswerShaper(options.faults)
        # pytest_walredo.pg.redo.redo_record and RedoError, imported on first use
        self._redo: Callable[..., bytes | None] | None = None
        self._redo_error: type[Exception] = Exception
        self._load_error: Fatal | None = None

    # ---------------------------------------------------------------- model

    def load_model(self) -> None:
        """Import the redo model and everything it may import later.

        Called on the first ``A`` without a sandbox; called before the seccomp filter goes on
        otherwise, since the filter forbids opening module files. Raises :class:`Fatal`.
        """
        if self._redo is not None:
            return
        if self._load_error is not None:
            raise self._load_error
        try:
            import importlib
            import pkgutil

            from .. import pg
            from ..pg import redo

            # The model may import submodules or compression codecs lazily (a compressed image,
            # a rarely used resource manager); with the sandbox on that would fail later, so
            # import them all now -- except the WAL file readers, which redo never uses and
            # which cost start-up time.
            for info in pkgutil.walk_packages(pg.__path__, pg.__name__ + "."):
                if info.name.rsplit(".", 1)[-1] not in _NOT_PRELOADED:
                    importlib.import_module(info.name)
            for optional in ("lz4.block", "zstandard"):
                try:
                    importlib.import_module(optional)
                except ImportError:
                    pass
        except Exception as exc:  # a missing or broken model must be one clear line
            self._load_error = Fatal(
                "reference redo model (pytest_walredo.pg.redo) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            )
            raise self._load_error from exc
        self._redo = redo.redo_record
        self._redo_error = redo.RedoError

    def preload(self) -> None:
        """Import the model now if possible; a failure is kept and reported at the first ``A``."""
        try:
            self.load_model()
        except Fatal:
            pass

    # ---------------------------------------------------------------- messages

    def handle(self, msg: Message) -> Stop | None:
        """Apply one message; raise :class:`Fatal` on an error the real process dies of."""
        if isinstance(msg, Ping):
            return self.shaper.answer(self._ping_page(), is_get=False)
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

    def _ping_page(self) -> bytes:
        if not self.options.faults.probe_open:
            return ZERO_PAGE
        try:
            fd = os.open("/proc/self/status", os.O_RDONLY)
        except OSError as exc:
            outcome = f"probe-open: errno {exc.errno}"
        else:
            os.close(fd)
            outcome = "probe-open: ok"
        return outcome.encode().ljust(BLCKSZ, b"\0")

    def _apply(self, msg: ApplyRecord) -> None:
        record = msg.record
        # Framing checks the real process makes before decoding (no CONTEXT line yet).
        if len(record) < XLOG_RECORD_HEADER:
            raise Fatal(ErrorKind.SHORT_PAYLOAD.value)
        tot_len = int.from_bytes(record[:4], "little")
        if tot_len != len(record):
            raise Fatal(f"mismatch between record ({_signed32(tot_len)}) and message size "
                        f"({len(record)})")
        if self.options.faults.ignore_records:
            return
        self.load_model()
        tag = self.tag
        page = self.pages.get(tag)
        try:
            assert self._redo is not None
            new = self._redo(
                page, spcnode=tag.rel.spcnode, dbnode=tag.rel.dbnode, relnode=tag.rel.relnode,
                forknum=tag.rel.forknum, blkno=tag.blknum, end_lsn=msg.lsn, record=record,
                pg_version=self.options.pg_version, flavour=self.options.flavour,
            )
        except Exception as exc:
            if isinstance(exc, self._redo_error):
                raise Fatal(str(exc), getattr(exc, "context", None)) from exc
            raise _model_bug(exc) from exc
        if new is None:
            return
        if self.options.faults.no_lsn and new is not page:
            old_lsn = page[:8] if page is not None else bytes(8)
            new = old_lsn + bytes(new[8:])
        self.pages[tag] = bytes(new)

    # ---------------------------------------------------------------- loop

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _flush(self) -> None:
        data = self.shaper.take()
        if data:
            try:
                self._write(self.wfd, data)
            except OSError as exc:
                raise Fatal(f"could not write to stdout: {os.strerror(exc.errno or 0)}") from exc

    def _say(self, text: str) -> None:
        try:
            self._write(self.efd, text.encode("utf-8", "replace"))
        except OSError:
            pass  # nobody is listening; the exit status still tells

    def _die(self, fatal: Fatal) -> int:
        try:
            self._flush()  # answers produced before the error still reach a pipelined caller
        except Fatal:
            pass
        self._say(fatal.lines())
        return 1

    def _eof(self) -> int:
        self._say(EOF_LINE + "\n")
        return 0

    def _stop(self, stop: Stop) -> int:
        try:
            self._flush()
        except Fatal as fatal:
            return self._die(fatal)
        if stop.hang:
            return self._hang()
        self._say(stop.line + "\n")
        return stop.status

    def _hang(self) -> int:
        while True:
            try:
                data = os.read(self.rfd, READ_CHUNK)
            except OSError:
                return 1
            if not data:
                return self._eof()

    def serve(self) -> int:
        """Run until EOF, an error or a fault stop; return the exit status."""
        start = self.shaper.at_start()
        if start is not None:
            return self._stop(start)
        decoder = Decoder()
        handle = self.handle
        while True:
            try:
                data = os.read(self.rfd, READ_CHUNK)
            except OSError as exc:
                return self._die(Fatal(f"could not read message: {os.strerror(exc.errno or 0)}"))
            if not data:
                try:
                    decoder.end_of_input()
                except ProtocolError as err:
                    return self._die(Fatal(err.kind.value))
                self.shaper.release_held()
                try:
                    self._flush()
                except Fatal as fatal:
                    return self._die(fatal)
                return self._eof()
            decoder.feed(data)
            try:
                while (msg := decoder.next()) is not None:
                    stop = handle(msg)
                    if stop is not None:
                        return self._stop(stop)
                self._flush()
            except ProtocolError as err:
                mapped = protocol_fatal(err)
                if mapped is None:  # tag 0xFF: the real process's EOF
                    try:
                        self._flush()
                    except Fatal as f:
                        return self._die(f)
                    return self._eof()
                return self._die(mapped)
            except Fatal as fatal:
                return self._die(fatal)
