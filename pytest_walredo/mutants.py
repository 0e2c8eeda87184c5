"""Client-side mutants: deliberately broken variants of our own client, for the bug catalogue.

Each mutant is a mixin that overrides exactly one small step of
:class:`~pytest_walredo.process.WalredoClient` (the steps are separate methods for this
purpose) and goes in front of :class:`~pytest_walredo.interleave.ScheduledClient`, so the
conformance suite's interleaving property drives it like the real client. They exist to prove
that the suite notices each bug; nothing outside the project's own tests can select them:
there is no option or environment variable, only :func:`client_class` called by a test
that registers a :class:`SeededBugPlugin` with the pytest run.

=================  ===========================================================================
name               the bug
=================  ===========================================================================
``pop-front``      take the oldest unread-by-owner answer instead of answer #n, so a caller
                   that reaches stdout before an earlier one gets the earlier one's page
``off-by-one``     request numbers start at 1, so every caller waits for the answer after its
                   own
``no-poison``      cancelling a caller after its request number was assigned leaves the client
                   usable, so later callers wait for / take answers that are out of step
``early-release``  the stdin lock is released before the request is written, so another
                   caller's request can enter the pipe first while the numbers stay in order
=================  ===========================================================================
"""

from __future__ import annotations

from .interleave import ScheduledClient
from .process.client import Call

__all__ = ["MUTANTS", "SeededBugPlugin", "client_class"]


class PopFront:
    """``_take_response`` pops the front of the pending queue (the bug the pageserver had to
    avoid: see the take-semantics docstring in ``process/client.py``)."""

    def _take_response(self, request_no: int) -> bytes:
        pending = self._pending  # type: ignore[attr-defined]
        while pending and pending[0] is None:  # skip holes like the real trim would
            pending.popleft()
            self._n_processed += 1  # type: ignore[attr-defined]
        page = pending.popleft()
        self._n_processed += 1  # type: ignore[attr-defined]
        sched = getattr(self, "scheduler", None)
        if sched is not None:
            sched.note("take", request_no)
        return bytes(page)


class OffByOne:
    """Request numbers start at 1 instead of 0."""

    def _assign_request_number(self) -> int:
        self._n_requests += 1  # type: ignore[attr-defined]
        return self._n_requests  # type: ignore[attr-defined,no-any-return]


class NoPoison:
    """A cancellation after numbering does not poison the client."""

    def _poison_on_cancellation(self, call: Call, phase: str) -> None:
        return None


class EarlyRelease:
    """The stdin lock is released before the write instead of after it."""

    async def _write_request(self, call: Call) -> None:
        self._stdin_lock.release()  # type: ignore[attr-defined]
        await super()._write_request(call)  # type: ignore[misc]

    def _release_stdin_after_write(self) -> None:
        return None


MUTANTS: dict[str, type] = {
    "pop-front": PopFront,
    "off-by-one": OffByOne,
    "no-poison": NoPoison,
    "early-release": EarlyRelease,
}


def client_class(mutant: str | None) -> type[ScheduledClient]:
    """The scheduled client class with mutant ``mutant`` mixed in (None: the real client)."""
    if mutant is None:
        return ScheduledClient
    try:
        mixin = MUTANTS[mutant]
    except KeyError:
        raise ValueError(f"unknown client mutant {mutant!r}; known: {', '.join(MUTANTS)}") from None
    return type(f"Mutant_{mixin.__name__}", (mixin, ScheduledClient), {})


class SeededBugPlugin:
    """Register with ``pytest.main([...], plugins=[SeededBugPlugin(mutant="pop-front")])`` (or
    ``faults=["swap-responses:2"]``) to make the conformance suite test a seeded bug: its
    process pool then drives the mutant client and/or launches the process under test with
    these reference ``--fault=`` specs. Looked up by the suite under the name :attr:`NAME`.
    """

    NAME = "walredo-seeded-bug"

    def __init__(self, *, mutant: str | None = None, faults: tuple[str, ...] = ()) -> None:
        client_class(mutant)  # validate
        self.mutant = mutant
        self.faults = tuple(faults)
