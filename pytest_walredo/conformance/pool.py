"""One walredo process per test, reused across Hypothesis examples, relaunched after failures.

Hypothesis runs a test body many times while pytest's function-scoped fixtures are set up once,
which is why Hypothesis warns about them. :class:`ProcessPool` makes that deliberate and safe:
the test asks it for a live client at the start of every example (:meth:`ProcessPool.client`);
a client that was poisoned, timed out or whose process died is replaced by a fresh process
first, so one failing example never leaks into the next. Processes come from the plugin's
``walredo_factory``, so they are sandboxed, dump failing inputs and are all killed when the test
ends.

When the binary carries counted ``--fault=`` arguments (the seeded-bug catalogue), its
behaviour depends on how many answers it has given; reusing it would make an example's outcome
depend on earlier examples and Hypothesis could not replay a failure. Such pools start a fresh
process for every example (``fresh_each_example``), with one spare launched ahead so the
start-up overlaps the current example.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from pytest_walredo.interleave import ScheduledClient
from pytest_walredo.process import WalredoClient
from pytest_walredo.protocol import RedoRequest

__all__ = ["ProcessPool"]

T = TypeVar("T")

_COUNTED_FAULTS = ("crash-after", "hang-after", "short-page", "garbage-page", "swap-responses",
                   "drop-response", "duplicate-response")


def has_counted_faults(args: tuple[str, ...]) -> bool:
    """Whether ``args`` hold a ``--fault=`` whose effect depends on the answer count."""
    return any(a.startswith("--fault=") and a[len("--fault="):].split(":")[0] in _COUNTED_FAULTS
               for a in args)


def _owes_answers(client: WalredoClient) -> bool:
    """Whether an earlier example left answers unread or untaken (only a broken client can:
    a correct one poisons itself when a caller abandons its answer). Such a process is not
    reused, so that every example's outcome depends on that example alone."""
    return bool(client.unclaimed())


class ProcessPool:
    """Live :class:`~pytest_walredo.interleave.ScheduledClient` s for one test.

    ``factory`` is the plugin's ``walredo_factory``; ``client_class`` drives the processes (a
    :class:`~.variant.SuiteVariant` may replace the real client: only the project's
    bug-catalogue tests do). Use :meth:`run` to run a coroutine on the pool's
    private event loop, and :meth:`close` at the end of the test.
    """

    def __init__(self, factory: Any, *, client_class: type[ScheduledClient] = ScheduledClient,
                 faults: tuple[str, ...] = (), fresh_each_example: bool | None = None,
                 timeout: float | None = None) -> None:
        self.factory = factory
        self.faults = tuple(faults)
        self.cls = client_class
        self.timeout = timeout if timeout is not None else factory.timeout
        if fresh_each_example is None:
            fresh_each_example = has_counted_faults(
                tuple(factory.binary.args) + tuple(f"--fault={f}" for f in self.faults))
        self.fresh_each_example = fresh_each_example
        self.loop = asyncio.new_event_loop()
        self._client: ScheduledClient | None = None
        self._spare: ScheduledClient | None = None
        self._solo: WalredoClient | None = None
        self.launches = 0
        self._stale = False  # a new example started since the current client was handed out

    def new_example(self) -> None:
        """Called at the start of every example (the recorder does it): with
        ``fresh_each_example`` the next :meth:`client` starts a fresh process."""
        self._stale = True

    def _launch(self) -> ScheduledClient:
        base: WalredoClient = self.factory(timeout=self.timeout, faults=self.faults)
        assert base.process is not None
        client = self.cls(base.process, timeout=self.timeout, dumper=base.dumper,
                          hang_check=base.hang_check)
        self.launches += 1
        return client

    def _take_spare(self) -> ScheduledClient:
        client = self._spare if self._spare is not None else self._launch()
        self._spare = self._launch() if self.fresh_each_example else None
        return client

    def client(self) -> ScheduledClient:
        """A client whose process is alive and not poisoned; with ``fresh_each_example``, a
        process that has served no earlier example. Within one example, the same client."""
        c = self._client
        stale, self._stale = self._stale, False
        if c is not None and ((stale and (self.fresh_each_example or _owes_answers(c))) or c.poisoned or
                              (c.process is not None and c.process.poll() is not None)):
            self.discard()
            c = None
        if c is None:
            c = self._client = self._take_spare()
        return c

    def fresh(self) -> ScheduledClient:
        """A client on a process that has not answered anything yet."""
        self.discard()
        return self.client()

    def discard(self) -> None:
        """Close the current client and its process (the next :meth:`client` relaunches)."""
        c, self._client = self._client, None
        if c is not None:
            c.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on the pool's event loop."""
        return self.loop.run_until_complete(coro)

    def apply(self, request: RedoRequest) -> bytes:
        """Apply one request alone on a live client (no scheduler) and return the page."""
        client = self.client()
        return self.run(client.apply(request))

    def solo(self, job: RedoRequest | None) -> bytes:
        """Run ``job`` (None: a ping) alone on the *solo* process: a second process of the same
        binary, without seeded faults or client mutant, used only one request at a time. It is
        the "same request run alone on a fresh process" of the concurrency property (requests
        are self-contained: ``B`` resets the block, ``G`` forgets the relation's pages, so one
        process serves every solo run)."""
        c = self._solo
        if c is None or c.poisoned or (c.process is not None and c.process.poll() is not None):
            if c is not None:
                c.close()
            c = self._solo = self.factory(timeout=self.timeout)
        return self.run(c.ping() if job is None else c.apply(job))

    def ping(self) -> bytes:
        """Ping on a live client and return the answer."""
        client = self.client()
        return self.run(client.ping())

    def close(self) -> None:
        self.discard()
        for extra in (self._spare, self._solo):
            if extra is not None:
                extra.close()
        self._spare = self._solo = None
        self.loop.close()
