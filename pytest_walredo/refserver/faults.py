"""Seeded bugs for the reference walredo server: ``--fault=SPEC`` (any number of them).

Each fault makes the server misbehave in one deterministic way, so that the conformance suite can
prove it notices (a test suite that passes against a broken server proves nothing).

Answers are counted from 1 over everything the server answers, ``G`` and ``H`` alike; ``N`` below
is that count. A spec that does not parse is a one-line error naming it (exit status 2).

The catalogue (spec and effect of each) is :data:`CATALOGUE`; ``walredo-ref --help`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pg.constants import BLCKSZ

__all__ = ["CATALOGUE", "AnswerShaper", "FaultPlan", "FaultSpecError", "Stop", "parse_faults"]

CATALOGUE: tuple[tuple[str, str], ...] = (
    ("crash-after:N", "after the Nth answer is written, print 'FATAL:  fault injected: crash-after:N' and "
                      "exit 1 (N=0: before reading anything)"),
    ("hang-after:N", "after the Nth answer, answer nothing more but keep reading (and discarding) stdin; EOF "
                     "still ends the process normally"),
    ("short-page:N", "the Nth answer is cut to half a page, then FATAL and exit 1"),
    ("garbage-page:N", "the Nth answer is 8192 pseudo-random bytes (the same bytes every run)"),
    ("swap-responses:N", "answers N and N+1 are written in the opposite order (a caller that waits for answer "
                         "N before sending request N+1 sees a hang)"),
    ("drop-response:N", "the Nth answer is never written (every later answer arrives one early)"),
    ("duplicate-response:N", "the Nth answer is written twice"),
    ("ignore-records", "A messages are accepted and ignored: G returns the base image"),
    ("truncate-page[:LEN]", "every answer is cut to LEN bytes (default 4096); the process goes on until EOF, so "
                            "the caller sees its stream out of step, then EOF"),
    ("no-lsn", "after applying a record, pd_lsn keeps the value it had before it"),
    ("corrupt-byte:OFFSET", "byte OFFSET (0..8191) of every G answer is inverted (xor 0xFF)"),
    ("probe-open", "diagnostic, not a bug: each H answer starts with the outcome of "
                   "open(\"/proc/self/status\") ('probe-open: ok' or 'probe-open: errno N'), to show the "
                   "sandbox forbids opening files"),
)
"""Every ``--fault=`` spec and what it does; answers are counted from 1 over everything the
server answers, ``G`` and ``H`` alike (``N``)."""

_COUNTED = ("crash-after", "hang-after", "short-page", "garbage-page", "swap-responses",
            "drop-response", "duplicate-response")
_FLAGS = ("ignore-records", "no-lsn", "probe-open")
KNOWN_FAULTS = (*_COUNTED, "truncate-page", "corrupt-byte", *_FLAGS)


class FaultSpecError(ValueError):
    """A ``--fault=`` value that does not parse; the message names it."""


@dataclass(frozen=True)
class FaultPlan:
    """The parsed faults; ``None``/``False`` means the fault is off."""

    crash_after: int | None = None
    hang_after: int | None = None
    short_page: int | None = None
    garbage_page: int | None = None
    swap_responses: int | None = None
    drop_response: int | None = None
    duplicate_response: int | None = None
    truncate_page: int | None = None
    corrupt_byte: int | None = None
    ignore_records: bool = False
    no_lsn: bool = False
    probe_open: bool = False
    specs: tuple[str, ...] = field(default=())

    @property
    def shapes_answers(self) -> bool:
        """Whether any fault changes what is written (else answers pass straight through)."""
        return any(
            v is not None
            for v in (self.crash_after, self.hang_after, self.short_page, self.garbage_page,
                      self.swap_responses, self.drop_response, self.duplicate_response,
                      self.truncate_page, self.corrupt_byte)
        )


def _number(spec: str, text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise FaultSpecError(f"invalid --fault={spec}: {text!r} is not a decimal number") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise FaultSpecError(f"invalid --fault={spec}: {value} is out of range ({bound})")
    return value


def parse_faults(specs: list[str] | tuple[str, ...]) -> FaultPlan:
    """Parse ``--fault=`` values into a :class:`FaultPlan`; raise :class:`FaultSpecError`."""
    values: dict[str, int | bool] = {}
    for spec in specs:
        name, sep, arg = spec.partition(":")
        if name not in KNOWN_FAULTS:
            raise FaultSpecError(
                f"invalid --fault={spec}: unknown fault {name!r}; known: {', '.join(KNOWN_FAULTS)}"
            )
        key = name.replace("-", "_")
        if key in values:
            raise FaultSpecError(f"invalid --fault={spec}: fault {name!r} is given twice")
        if name in _FLAGS:
            if sep:
                raise FaultSpecError(f"invalid --fault={spec}: {name} takes no argument")
            values[key] = True
        elif name == "truncate-page":
            values[key] = _number(spec, arg, 0, BLCKSZ - 1) if sep else BLCKSZ // 2
        elif not sep:
            what = "OFFSET" if name == "corrupt-byte" else "N"
            raise FaultSpecError(f"invalid --fault={spec}: expected {name}:{what}")
        elif name == "corrupt-byte":
            values[key] = _number(spec, arg, 0, BLCKSZ - 1)
        else:
            # crash/hang count answers already given (0 allowed); the others name an answer
            values[key] = _number(spec, arg, 0 if name in ("crash-after", "hang-after") else 1)
    return FaultPlan(**values, specs=tuple(specs))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Stop:
    """What the server must do after flushing: exit with ``status`` printing ``line`` (or hang)."""

    hang: bool
    status: int = 0
    line: str = ""


def garbage(n: int) -> bytes:
    """The deterministic 'random' page of ``garbage-page:N`` (xorshift64*, seeded by N).

    Hand-written rather than ``random.Random(n).randbytes``: importing :mod:`random` costs
    start-up time for every server, and this page only has to be the same every run and look
    nothing like a PostgreSQL page.
    """
    x = (0x9E3779B97F4A7C15 ^ n) & 0xFFFFFFFFFFFFFFFF or 1
    out = bytearray()
    mask = 0xFFFFFFFFFFFFFFFF
    while len(out) < BLCKSZ:
        x ^= x >> 12
        x ^= (x << 25) & mask
        x ^= x >> 27
        out += ((x * 0x2545F4914F6CDD1D) & mask).to_bytes(8, "little")
    return bytes(out)


class AnswerShaper:
    """Turns the pages the server computed into the bytes it writes, applying the faults.

    Invariant: ``pending`` holds the bytes to write next, in order; the server writes them all
    before it blocks on a read, and after :meth:`answer` returns a :class:`Stop` it writes them
    and then stops. Without answer-shaping faults, each answer is appended unchanged.
    """

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.count = 0
        self.pending: list[bytes] = []
        self._held: bytes | None = None
        self._plain = not plan.shapes_answers  # computed once: answer() is the hot path

    def at_start(self) -> Stop | None:
        """A stop due before the first request (``crash-after:0``, ``hang-after:0``)."""
        return self._after(0)

    def answer(self, page: bytes, *, is_get: bool) -> Stop | None:
        """Queue the answer to one ``G`` (``is_get``) or ``H``; maybe ask the server to stop."""
        plan = self.plan
        self.count = n = self.count + 1
        if self._plain:
            self.pending.append(page)
            return None
        if is_get and plan.corrupt_byte is not None:
            buf = bytearray(page)
            buf[plan.corrupt_byte] ^= 0xFF
            page = bytes(buf)
        if plan.garbage_page == n:
            page = garbage(n)
        if plan.truncate_page is not None:
            page = page[: plan.truncate_page]
        if plan.short_page == n:
            self.pending.append(page[: BLCKSZ // 2])
            return Stop(False, 1, f"FATAL:  fault injected: short-page:{n}")
        if plan.drop_response == n:
            pass
        elif plan.swap_responses == n:
            self._held = page
        else:
            self.pending.append(page)
            if plan.duplicate_response == n:
                self.pending.append(page)
        if self._held is not None and plan.swap_responses == n - 1:
            self.pending.append(self._held)
            self._held = None
        return self._after(n)

    def _after(self, n: int) -> Stop | None:
        if self.plan.crash_after == n:
            return Stop(False, 1, f"FATAL:  fault injected: crash-after:{n}")
        if self.plan.hang_after == n:
            return Stop(True)
        return None

    def take(self) -> bytes:
        """Remove and return everything queued (the held half of a swap stays held)."""
        data = b"".join(self.pending)
        self.pending.clear()
        return data

    def release_held(self) -> None:
        """At EOF: a swapped answer still held is written after all (its partner never came)."""
        if self._held is not None:
            self.pending.append(self._held)
            self._held = None
