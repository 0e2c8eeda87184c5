"""Blocking facade over :class:`~pytest_walredo.process.client.WalredoClient`.

The async client runs on a private event loop in a dedicated daemon thread; every blocking call
submits a coroutine there and waits for it. Several threads may call at once: their requests are
pipelined on the one loop exactly like concurrent tasks.

Processes are never spawned from the loop thread (``WalredoProcess.launch`` always spawns from
the module's long-lived spawner thread), so ending this thread does not fire the children's
parent-death signal.
"""

from __future__ import annotations

import asyncio
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="walredo-sync-client", daemon=True)
        self._thread.start()
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
        try:
            asyncio.run_coroutine_threadsafe(self.client.aclose(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> SyncWalredoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
