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

Every request the pool sends goes past the test's oracle (:mod:`.oracle`): :meth:`ProcessPool.apply`
and :meth:`ProcessPool.solo` have it cross-checked (in differential mode the baseline binary
runs it too and must agree), :meth:`ProcessPool.judged` has it judged (the model's page, or the
baseline's), :meth:`ProcessPool.attempt` leaves judging to the caller (a corpus entry's own
expected page). A disagreement is recorded as the test's failing example and raised as
:class:`~.oracle.OracleMismatch`. ``oracles`` collects the names of what judged the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from pytest_walredo.conformance.oracle import Answer, Disagreement, Judge, OracleMismatch
from pytest_walredo.interleave import ScheduledClient
from pytest_walredo.pg.version import Flavour
from pytest_walredo.plugin.example import FailingExample
from pytest_walredo.process import WalredoClient, WalredoError
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
        self.judge = Judge()
        """The test's oracle (set by the ``walredo_pool`` fixture; the default judges nothing)."""
        self.current_example: Callable[[], FailingExample | None] = lambda: None
        """Where a disagreement is recorded (the recorder's current example)."""
        self.oracles: set[str] = set()
        """What judged this test so far: ``model``, ``baseline``, ``corpus``."""

    @property
    def pg_version(self) -> int:
        return int(self.factory.binary.pg_version)

    @property
    def flavour(self) -> Flavour:
        return Flavour(self.factory.binary.flavour)

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

    def attempt(self, request: RedoRequest) -> Answer:
        """Apply one request alone on a live client (no scheduler): its page or its error. Not
        cross-checked: the caller judges it and then calls :meth:`cross_check`."""
        client = self.client()
        try:
            return Answer(self.run(client.apply(request)))
        except WalredoError as exc:
            return Answer(None, exc)

    def cross_check(self, request: RedoRequest, got: Answer) -> Disagreement | None:
        """What the oracle's cross-check says of ``got`` (None: agreement, or no cross-check)."""
        if self.judge.cross_checks:
            self.oracles.add(self.judge.name)
        return self.judge.cross_check(request, got)

    def fail(self, disagreement: Disagreement) -> NoReturn:
        """Record ``disagreement`` as the test's failing example and raise it."""
        disagreement.record(self.current_example())
        if disagreement.error is not None:
            raise disagreement.error
        raise OracleMismatch(disagreement.message)

    def apply(self, request: RedoRequest) -> bytes:
        """Apply one request alone on a live client (no scheduler), cross-checked, and return the
        page (raise the process's error, or :class:`~.oracle.OracleMismatch`)."""
        got = self.attempt(request)
        disagreement = self.cross_check(request, got)
        if disagreement is not None:
            self.fail(disagreement)
        return got.result()

    def judged(self, request: RedoRequest) -> Answer:
        """Apply one request and have the oracle judge the answer (raise on a disagreement). A
        failed answer is returned only when the oracle failed too (the baseline can)."""
        got = self.attempt(request)
        self.oracles.add(self.judge.name)
        disagreement = self.judge.judge(request, got)
        if disagreement is not None:
            self.fail(disagreement)
        return got

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
        if job is None:
            return self.run(c.ping())
        try:
            got = Answer(self.run(c.apply(job)))
        except WalredoError as exc:
            got = Answer(None, exc)
        disagreement = self.cross_check(job, got)
        if disagreement is not None:
            self.fail(disagreement)
        return got.result()

    def ping(self) -> bytes:
        """Ping on a live client and return the answer."""
        client = self.client()
        return self.run(client.ping())

    def close(self) -> None:
        self.judge.close()
        self.discard()
        for extra in (self._spare, self._solo):
            if extra is not None:
                extra.close()
        self._spare = self._solo = None
        self.loop.close()
