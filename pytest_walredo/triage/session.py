"""Session streams: everything one walredo process received since it was launched.

Some failures need the requests a process received before the failing one (answers swapped at
the second answer, a crash on the third request): the request alone, on a fresh process, passes.
The plugin then saves the stream as ``NAME.session.walredo`` beside the request's corpus entry;
``NAME.json`` has ``"session": {"file", "offset", "index"}``, where ``index`` is the failing
call's number in the stream (:mod:`pytest_walredo.corpus.format`).

A stream splits into *calls*, each ending with the message the process answers: a request
``B [P] A* G`` or a ping ``H``, exactly as the client sent them. :func:`run_calls` sends them, in
order, to one fresh process; ``replay`` checks the marked call's answer and ``shrink`` removes
earlier calls and records while the marked call keeps failing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_walredo.corpus.format import META_SUFFIX, SESSION_SUFFIX
from pytest_walredo.protocol import GetPage, Ping, ProtocolError, RedoRequest, decode_stream
from pytest_walredo.target import WalredoBinary
from pytest_walredo.triage import TriageError
from pytest_walredo.triage.inspect import read_input

__all__ = [
    "DEFAULT_HANG_CHECK",
    "CallResult",
    "SessionCall",
    "SessionRun",
    "load_calls",
    "marked_call",
    "run_calls",
    "session_beside",
    "split_calls",
]

DEFAULT_HANG_CHECK = 0.2
"""Seconds an answer is awaited before the triage tools ask whether the process sits idle with
every request consumed (a hang), as the plugin does."""


@dataclass(frozen=True)
class SessionCall:
    """One call of a stream: its exact bytes and, unless it is a ping, the request."""

    data: bytes
    request: RedoRequest | None

    def describe(self) -> str:
        return self.request.describe() if self.request is not None else "ping"


def split_calls(data: bytes, name: str) -> list[SessionCall]:
    """The calls of a stream (each ends with G or H); a :class:`TriageError` naming ``name``
    when it is not a stream of whole calls."""
    if not data:
        raise TriageError(f"{name} is empty, not a walredo stream")
    try:
        msgs = decode_stream(data)
    except ProtocolError as err:
        raise TriageError(f"{name} is not a valid walredo stream: {err}") from None
    calls: list[SessionCall] = []
    start = 0
    group: list[object] = []
    for offset, msg in msgs:
        if not group:
            start = offset
        group.append(msg)
        if isinstance(msg, (GetPage, Ping)):
            end = offset + len(msg.encode())
            chunk = bytes(data[start:end])
            if isinstance(msg, Ping) and len(group) == 1:
                calls.append(SessionCall(chunk, None))
            else:
                try:
                    calls.append(SessionCall(chunk, RedoRequest.decode(chunk)))
                except ValueError as err:
                    raise TriageError(f"{name}: the call at byte {start} is not one B [P] A* G request: "
                                      f"{err}") from None
            group = []
    if group:
        raise TriageError(f"{name}: the stream ends with {len(group)} message(s) after its last G or H; "
                          "nothing answers them")
    return calls


def load_calls(path: Path) -> list[SessionCall]:
    return split_calls(read_input(path), str(path))


def _entry_json(session_path: Path) -> Path | None:
    """``NAME.json`` beside ``NAME.session.walredo``."""
    name = session_path.name
    if not name.endswith(SESSION_SUFFIX):
        return None
    return session_path.with_name(name[: -len(SESSION_SUFFIX)] + META_SUFFIX)


def marked_call(path: Path, calls: Sequence[SessionCall]) -> tuple[int, str]:
    """Which call's answer counts: ``session.index`` of ``NAME.json`` beside a
    ``NAME.session.walredo``, else the last call; and where that came from (for the output)."""
    meta = _entry_json(path)
    if meta is not None and meta.is_file():
        try:
            doc = json.loads(read_input(meta, "entry metadata"))
            index = doc["session"]["index"]
        except (ValueError, KeyError, TypeError):
            index = None
        if isinstance(index, int) and not isinstance(index, bool):
            if not 0 <= index < len(calls):
                raise TriageError(f"{meta}: session index {index} is not a call of {path} "
                                  f"({len(calls)} call(s))")
            return index, f"call #{index}, as {meta.name} says"
    return len(calls) - 1, "the last call"


def session_beside(path: Path) -> Path | None:
    """The session stream saved with the request file ``NAME.walredo``, if there is one
    (``NAME.session.walredo``, or the file ``NAME.json`` names)."""
    name = path.name
    if not name.endswith(".walredo") or name.endswith(SESSION_SUFFIX):
        return None
    stem = name[: -len(".walredo")]
    meta = path.with_name(stem + META_SUFFIX)
    if meta.is_file():
        try:
            file = json.loads(read_input(meta, "entry metadata"))["session"]["file"]
            if isinstance(file, str) and path.with_name(file).is_file():
                return path.with_name(file)
        except (ValueError, KeyError, TypeError, TriageError):
            pass
    candidate = path.with_name(stem + SESSION_SUFFIX)
    return candidate if candidate.is_file() else None


@dataclass(frozen=True)
class CallResult:
    """``status``: ``answered`` (``page``), ``crash`` (the process died or broke the protocol),
    ``timeout`` (no answer in time, or a hang; the process was killed); ``message`` says why."""

    status: str
    page: bytes | None
    message: str | None

    def describe(self) -> str:
        if self.status == "answered":
            return "answered"
        return f"{'timed out' if self.status == 'timeout' else 'failed'}: {self.message}"


@dataclass(frozen=True)
class SessionRun:
    """What one process did with the calls: a result per call sent (it stops at the first
    failure), its stderr and exit status (None while it still ran after its last answer), or
    why it could not be launched."""

    results: list[CallResult]
    stderr: str
    returncode: int | None
    launch_error: str | None = None


def run_calls(binary: WalredoBinary, calls: Sequence[bytes], timeout: float, workdir: Path,
              hang_check: float | None = DEFAULT_HANG_CHECK) -> SessionRun:
    """Send ``calls`` in order to one fresh process of ``binary``, each answered before the
    next is sent; stop at the first failure."""
    from pytest_walredo.process import (
        LaunchConfig,
        SyncWalredoClient,
        WalredoError,
        WalredoLaunchError,
        WalredoProcess,
        WalredoTimeout,
    )

    config = LaunchConfig(binary.path, args=binary.args, lib_dir=binary.lib_dir, workdir=workdir)
    try:
        proc = WalredoProcess.launch(config)
    except WalredoLaunchError as exc:
        return SessionRun([], exc.stderr_tail or "", exc.returncode, str(exc))
    except OSError as exc:
        return SessionRun([], "", None, f"{binary}: {exc.strerror or exc}")
    client = SyncWalredoClient(proc, timeout=timeout, hang_check=hang_check)
    results: list[CallResult] = []
    try:
        for data in calls:
            try:
                results.append(CallResult("answered", client.apply_raw(data, timeout), None))
            except WalredoTimeout as exc:
                results.append(CallResult("timeout", None, str(exc)))
                break
            except WalredoError as exc:
                results.append(CallResult("crash", None, str(exc)))
                break
    finally:
        ended_by_itself = proc.poll() is not None
        client.close()  # kills the process if it is still running, reaps it, drains stderr
    failed = bool(results) and results[-1].status != "answered"
    returncode = proc.returncode if ended_by_itself or failed else None
    return SessionRun(results, proc.stderr_tail(), returncode)
