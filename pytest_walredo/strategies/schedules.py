"""Interleavings of concurrent callers: :class:`Schedule` and the :func:`schedules` strategy.

A schedule is pure data (which parked caller runs at each decision, which caller to cancel at
which step); :mod:`pytest_walredo.interleave` runs it against a real or simulated client.
Kept here, apart from the runner, so that drawing schedules never imports the process layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

__all__ = ["STEPS", "Schedule", "schedules"]


STEPS: tuple[str, ...] = ("start", "stdin", "write", "stdout", "read")
"""The checkpoints of a caller, in the order it reaches them: before starting its call, before
queuing for the stdin lock, before writing its request (its number is assigned by then),
before queuing for the stdout lock, and before reading each answer."""


@dataclass(frozen=True)
class Schedule:
    """The drawn choices of one interleaving.

    ``picks`` choose among the callers parked at each decision: decision ``i`` resumes the
    parked caller at position ``picks[i]`` modulo their number, the parked callers ordered by
    caller number; once the picks are used up, every later decision uses ``rest``. With the
    defaults (no picks, ``rest`` 0) the lowest-numbered parked caller always runs: the callers
    run one after another. ``rest`` gives a short example a whole run's worth of
    interleaving (``rest=1``: always the second-lowest parked caller) and shrinks to 0.

    ``cancels`` holds ``(caller, step)`` pairs: when caller ``k`` is to be resumed at
    checkpoint ``step`` (one of :data:`STEPS`; the first time it gets there), it is cancelled
    instead. A pair naming a caller that does not exist does nothing. Naming the step rather
    than a decision number keeps the meaning of a cancellation when shrinking removes other
    callers' decisions, and lets the strategy aim at the steps whose cancellation matters.
    """

    picks: tuple[int, ...] = ()
    cancels: frozenset[tuple[int, str]] = frozenset()
    rest: int = 0

    def pick(self, decision: int) -> int:
        return self.picks[decision] if decision < len(self.picks) else self.rest

    def __str__(self) -> str:
        r = f" then {self.rest}" if self.rest else ""
        c = "".join(f", cancel c{k} at {step}" for k, step in sorted(self.cancels))
        return f"picks {list(self.picks)}{r}{c}"


def schedules(*, max_picks: int = 48, max_pick: int = 15, cancellations: bool = True,
              max_cancels: int = 1, max_caller: int = 15) -> st.SearchStrategy[Schedule]:
    """Interleavings: which parked caller runs at each decision, and which caller to cancel at
    which step.

    Shrinks toward no picks (the callers run one after another in order) and no cancellation;
    a cancellation shrinks toward caller 0 and toward the earliest step (``start``, where
    cancelling is harmless).

    >>> s = schedules().example()
    >>> all(0 <= p <= 15 for p in s.picks)
    True
    >>> all(step in STEPS for _caller, step in s.cancels)
    True
    """
    for name, value in (("max_picks", max_picks), ("max_pick", max_pick), ("max_cancels", max_cancels),
                        ("max_caller", max_caller)):
        if not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{name}={value!r} must be an int >= 0")
    if cancellations and max_cancels < 1:
        raise InvalidArgument("max_cancels must be >= 1 when cancellations=True")
    # Most cancellations aim at one of the first callers (examples have few callers), and
    # most at the steps after numbering, where a cancellation leaves an answer without an
    # owner (the client must poison itself); the harmless early steps stay reachable.
    caller = st.integers(0, min(2, max_caller)) | st.integers(0, max_caller)
    step = st.sampled_from(STEPS) | st.sampled_from(STEPS[2:])
    target = st.tuples(caller, step)
    none: frozenset[tuple[int, str]] = frozenset()
    cancels = (st.just(none) | st.frozensets(target, min_size=1, max_size=max_cancels)
               if cancellations else st.just(none))
    return st.builds(Schedule, st.lists(st.integers(0, max_pick), max_size=max_picks).map(tuple),
                     cancels, st.integers(0, max_pick))
