"""The reference walredo server's I/O loop: read messages from fd 0, write pages to fd 1.

What the process does with the bytes is :class:`~.machine.WalredoMachine` (state, message
handling, faults, the redo model); this module only moves bytes between the fds and the machine,
prints its stderr lines and chooses the exit status. It adds the two things that need the
operating system: importing the redo model up front (before the seccomp filter forbids opening
files) and the ``probe-open`` fault's ``open()``.

Throughput: stdin is read in chunks of up to 1 MiB, every complete message in the buffer is
handled, and the answers of all of them leave in one ``write`` before the next blocking read. A
pipelined caller therefore pays one pair of syscalls per batch, not per page.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..pg.version import DEFAULT_VERSION, Flavour
from ..protocol import BLCKSZ
from .faults import FaultPlan, Stop
from .machine import EOF_LINE, Fatal, RedoModel, WalredoMachine

__all__ = ["Fatal", "Options", "RefServer"]

READ_CHUNK = 1 << 20
_NOT_PRELOADED = frozenset({"waldump", "walsegment"})  # pg modules redo never needs


@dataclass(frozen=True)
class Options:
    """What the command line chose."""

    pg_version: int = DEFAULT_VERSION
    flavour: Flavour = Flavour.NEON
    seccomp: bool = True
    faults: FaultPlan = field(default_factory=FaultPlan)


def _model_bug(exc: BaseException) -> Fatal:
    """A FATAL for an exception the redo model should never raise, naming where it came from."""
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        where = f" (at {os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name})"
        tb = tb.tb_next
    return Fatal(f"reference redo model failed: {type(exc).__name__}: {exc}{where}")


# What load_model() found, once per process (a process forked from one that loaded the model,
# as the fork server's children are, inherits it and skips the walk).
_loaded: tuple[Callable[..., bytes | None], type[Exception]] | None = None
_load_error: Fatal | None = None


def load_model() -> tuple[Callable[..., bytes | None], type[Exception]]:
    """Import the redo model and every module it may import later; return ``(redo_record,
    RedoError)``. Raises :class:`Fatal` (the same one again on every later call)."""
    global _loaded, _load_error
    if _loaded is not None:
        return _loaded
    if _load_error is not None:
        raise _load_error
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
        _load_error = Fatal(
            "reference redo model (pytest_walredo.pg.redo) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        )
        raise _load_error from exc
    _loaded = (redo.redo_record, redo.RedoError)
    return _loaded


class RefServer:
    """One server process: a :class:`~.machine.WalredoMachine` driven from fds; :meth:`serve`
    returns the exit status."""

    def __init__(self, options: Options, *, rfd: int = 0, wfd: int = 1, efd: int = 2) -> None:
        self.options = options
        self.rfd, self.wfd, self.efd = rfd, wfd, efd
        # pytest_walredo.pg.redo.redo_record and RedoError, imported on first use
        self._redo: Callable[..., bytes | None] | None = None
        self._redo_error: type[Exception] = Exception
        self.machine = WalredoMachine(
            pg_version=options.pg_version, flavour=options.flavour, faults=options.faults,
            model=self._model,
            ping_page=self._probe_open_page if options.faults.probe_open else None,
            on_model_bug=_model_bug,
        )

    # ---------------------------------------------------------------- model

    def load_model(self) -> None:
        """Import the redo model and everything it may import later (:func:`load_model`).

        Called on the first ``A`` without a sandbox; called before the seccomp filter goes on
        otherwise, since the filter forbids opening module files. Raises :class:`Fatal`.
        """
        if self._redo is None:
            self._redo, self._redo_error = load_model()

    def preload(self) -> None:
        """Import the model now if possible; a failure is kept and reported at the first ``A``."""
        try:
            self.load_model()
        except Fatal:
            pass

    def _model(self) -> RedoModel:
        """The machine's model loader: :meth:`load_model`, then what it loaded."""
        self.load_model()
        assert self._redo is not None
        return RedoModel(self._redo, self._redo_error)

    def _probe_open_page(self) -> bytes:
        """The ``probe-open`` fault's ping answer: whether ``open()`` is allowed here."""
        try:
            fd = os.open("/proc/self/status", os.O_RDONLY)
        except OSError as exc:
            outcome = f"probe-open: errno {exc.errno}"
        else:
            os.close(fd)
            outcome = "probe-open: ok"
        return outcome.encode().ljust(BLCKSZ, b"\0")

    # ---------------------------------------------------------------- output

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _flush(self) -> None:
        data = self.machine.take()
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

    # ---------------------------------------------------------------- endings

    def _die(self, fatal: Fatal) -> int:
        try:
            self._flush()  # answers produced before the error still reach a pipelined caller
        except Fatal:
            pass
        self._say(fatal.lines())
        return 1

    def _stop(self, stop: Stop) -> int:
        """Write what is queued, then exit as ``stop`` says (a fault, or EOF: status 0)."""
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
                self._say(EOF_LINE + "\n")
                return 0

    # ---------------------------------------------------------------- loop

    def serve(self) -> int:
        """Run until EOF, an error or a fault stop; return the exit status."""
        machine = self.machine
        stop = machine.start()
        while stop is None:
            try:
                data = os.read(self.rfd, READ_CHUNK)
            except OSError as exc:
                return self._die(Fatal(f"could not read message: {os.strerror(exc.errno or 0)}"))
            try:
                stop = machine.feed(data) if data else machine.end_of_input()
                if stop is None:
                    self._flush()
            except Fatal as fatal:
                return self._die(fatal)
        return self._stop(stop)
