"""Blocking facade over :class:`~pytest_walredo.process.client.WalredoClient`.

The async client runs on an event loop in a daemon thread shared by every sync client
(:func:`_shared_loop`); every blocking call submits a coroutine there and waits for it. Several threads may call at once: their requests are
pipelined on the one loop exactly like concurrent tasks.

Processes are never spawned from the loop thread (``WalredoProcess.launch`` always spawns from
the module's long-lived spawner thread), so ending this thread does not fire the children's
parent-death signal.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from ..protocol import RedoRequest
from .client import DEFAULT_TIMEOUT, Transport, WalredoClient
from .dump import FailureDumper
from .errors import WalredoError
from .sandbox import LaunchConfig, WalredoProcess

__all__ = ["SyncWalredoClient"]

T = TypeVar("T")


_loop_lock = threading.Lock()
_loop_and_thread: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None


def _shared_loop() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    """The event loop every sync client runs on, in one daemon thread started on first use.
    One loop for all (rather than a loop and a thread per client) makes a client cheap to
    create and close, which matters once per test; clients on one loop do not wait for each
    other, and a client is bound to one loop anyway."""
    global _loop_and_thread
    with _loop_lock:
        if _loop_and_thread is None or not _loop_and_thread[1].is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="walredo-sync-client",
                                      daemon=True)
            thread.start()
            _loop_and_thread = (loop, thread)
        return _loop_and_thread


def _forget_loop_after_fork() -> None:
    # A forked child has the loop object but not its thread: start afresh when needed.
    global _loop_and_thread, _loop_lock
    _loop_and_thread = None
    _loop_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loop_after_fork)


class SyncWalredoClient:
    """The same calls as :class:`WalredoClient` (``apply``, ``apply_raw``, ``ping``,
    ``apply_many``, ``close``), blocking. Also a context manager."""

    def __init__(
        self,
        target: WalredoProcess | Transport,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        dumper: FailureDumper | None = None,
        process: WalredoProcess | None = None,
        owns_process: bool = True,
        hang_check: float | None = None,
    ) -> None:
        self.client = WalredoClient(target, timeout=timeout, dumper=dumper, process=process,
                                    owns_process=owns_process, hang_check=hang_check)
        self._loop, self._thread = _shared_loop()
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def launch(cls, config: LaunchConfig, **kw: Any) -> SyncWalredoClient:
        """Launch a process and wrap it."""
        return cls(WalredoProcess.launch(config), **kw)

    @property
    def process(self) -> WalredoProcess | None:
        return self.client.process

    @property
    def poisoned(self) -> bool:
        return self.client.poisoned

    @property
    def seccomp_mode_after_first_request(self) -> int | None:
        return self.client.seccomp_mode_after_first_request

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("SyncWalredoClient is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("SyncWalredoClient called from its own event-loop thread")
        __tracebackhide__ = True
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        except WalredoError as err:
            # The frames are the loop thread's, not the caller's: report from here.
            raise err.with_traceback(None) from None

    def apply(self, request: RedoRequest, timeout: float | None = None) -> bytes:
        __tracebackhide__ = True
        return self._run(self.client.apply(request, timeout))

    def apply_raw(self, data: bytes, timeout: float | None = None) -> bytes:
        __tracebackhide__ = True
        return self._run(self.client.apply_raw(data, timeout))

    def ping(self, timeout: float | None = None) -> bytes:
        __tracebackhide__ = True
        return self._run(self.client.ping(timeout))

    def apply_many(self, requests: Iterable[RedoRequest],
                   timeout: float | None = None) -> list[bytes]:
        __tracebackhide__ = True
        return self._run(self.client.apply_many(list(requests), timeout))

    def close(self) -> None:
        """Close the client (killing an owned process) and stop the loop thread. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        asyncio.run_coroutine_threadsafe(self.client.aclose(), self._loop).result()

    def __enter__(self) -> SyncWalredoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
