"""Errors raised by the process layer.

Every error carries what is known about the failure so the plugin can report it without
reaching back into the process: ``dump_path`` (the saved request bytes), ``stderr_tail`` (the
last lines the process wrote on stderr), ``returncode`` (exit status, negative for a signal)
and ``request_no`` (the request's position on the pipe). ``str(error)`` is one sentence; when a
dump was written it names the file.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "WalredoError",
    "WalredoLaunchError",
    "WalredoPoisoned",
    "WalredoProcessError",
    "WalredoTimeout",
    "describe_returncode",
    "stderr_summary",
]


def describe_returncode(returncode: int | None) -> str:
    """``"exited with status 1"`` / ``"was killed by signal 9 (SIGKILL)"`` / ``"is still running"``."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


def last_line(text: str | None) -> str | None:
    """The last non-blank line of ``text``, or None."""
    if not text:
        return None
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return None


_SEVERITIES = ("PANIC:", "FATAL:", "ERROR:")


def stderr_summary(text: str | None, limit: int = 300) -> str | None:
    """The stderr line that best says what went wrong: the last PostgreSQL ``PANIC:``/
    ``FATAL:``/``ERROR:`` line if there is one, else the last non-blank line; cut to ``limit``
    characters."""
    if not text:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(_SEVERITIES):
            return line[:limit]
    return lines[-1][:limit] if lines else None


class WalredoError(Exception):
    """Base class of every failure talking to a walredo process.

    ``message`` is the sentence without its final period; ``dump_path`` may be filled in after
    construction (the dump is written before the error propagates) and then appears in ``str()``.
    """

    def __init__(
        self,
        message: str,
        *,
        dump_path: Path | None = None,
        stderr_tail: str | None = None,
        returncode: int | None = None,
        request_no: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.dump_path = dump_path
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        self.request_no = request_no

    def __str__(self) -> str:
        text = self.message
        if self.dump_path is not None:
            text += f"; the request bytes were saved to {self.dump_path}"
        return text


class WalredoLaunchError(WalredoError):
    """The walredo binary could not be started (missing, not executable, wrong format)."""


class WalredoProcessError(WalredoError):
    """The process died, closed its stdout early, sent a short or surplus answer, or an I/O call
    on its pipes failed."""


class WalredoTimeout(WalredoError):
    """A request did not complete within its timeout; the process was killed."""


class WalredoHang(WalredoTimeout):
    """A request's answer cannot come: the process consumed the request and sits idle waiting
    for input (see :mod:`~pytest_walredo.process.quiescence`); the process was killed. Found
    before the timeout, so it is a kind of :class:`WalredoTimeout`."""


class WalredoPoisoned(WalredoError):
    """The client refused a call because an earlier failure or cancellation left the pipe in an
    unknown state; ``cause`` is that earlier failure."""

    def __init__(self, message: str, *, cause: BaseException | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.cause = cause
