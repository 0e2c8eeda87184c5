"""Oracles: what tells the conformance suite which answer is right. Chosen once per session
(fixture ``walredo_oracle``), bound to each test's process pool (:meth:`Oracle.bind`).

- :class:`ModelOracle` (the default): the redo model's page
  (:func:`pytest_walredo.sim.model_page`). Properties draw only record kinds the model
  implements.
- :class:`BaselineOracle` (``--walredo-baseline-bin``, differential mode): another walredo
  binary's answer. Every request the suite sends through the pool (generated, corpus,
  concurrency jobs) also runs on a process of the baseline binary, and the two must agree: the
  same page (byte for byte, or under the masking rule of the request's last record with
  ``--walredo-baseline-mask auto``), or both failing. Malformed input and pings are not
  compared: their properties judge them alone. The model-agreement property then also
  draws requests cut from the session's corpus, of every record kind (the baseline judges what
  the model cannot).

A corpus entry carries its own expected page (the corpus is the oracle of ``test_corpus``); the
baseline, when there is one, checks the same request besides.

A bound oracle (:class:`Judge`) has two duties, called by :class:`~.pool.ProcessPool`:
:meth:`Judge.judge` (for properties that need an expected page) and :meth:`Judge.cross_check`
(for every request the pool sends; nothing for the model). Each returns a
:class:`Disagreement` or None; the pool records it into the test's failing example (the
request, both pages, the oracle) and raises :class:`OracleMismatch`. Tests never branch on
which oracle they have.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

from pytest_walredo import strategies as ws
from pytest_walredo.conformance._util import explain
from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.judge import request_mask
from pytest_walredo.pg.mask import NO_MASK, masked_equal
from pytest_walredo.pg.version import Flavour
from pytest_walredo.plugin.example import ExampleRequest, FailingExample
from pytest_walredo.process import WalredoClient, WalredoError
from pytest_walredo.protocol import RedoRequest
from pytest_walredo.sim import model_page
from pytest_walredo.target import WalredoBinary

T = TypeVar("T")


class ProcessPool(Protocol):
    """What an oracle uses of the test's :class:`~.pool.ProcessPool`."""

    factory: Any
    timeout: float | None

    @property
    def pg_version(self) -> int: ...

    @property
    def flavour(self) -> Flavour: ...

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...

__all__ = ["Answer", "BaselineOracle", "Disagreement", "Judge", "ModelOracle", "Oracle", "OracleMismatch",
           "compare_with_baseline", "corpus_requests"]


@dataclass(frozen=True)
class Answer:
    """What a walredo (or the model) did with one request: a page, or the error it failed with."""

    page: bytes | None
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.page is None

    @property
    def error_text(self) -> str | None:
        if self.error is None:
            return None
        text = str(self.error).strip().splitlines()
        return f"{type(self.error).__name__}: {text[0] if text else ''}".rstrip(": ")

    def result(self) -> bytes:
        """The page, or raise the error."""
        if self.page is None:
            raise self.error if self.error is not None else AssertionError("no answer")
        return self.page


class OracleMismatch(AssertionError):
    """The walredo under test disagrees with the oracle on one request."""


@dataclass(frozen=True)
class Disagreement:
    """One request on which the walredo under test and an oracle disagree."""

    request: RedoRequest
    expected: Answer
    """What the oracle answered."""
    actual: Answer
    """What the walredo under test answered."""
    oracle: str
    message: str
    """One line starting with the failure category, e.g. ``[wrong-page] [baseline] ...``."""
    error: BaseException | None = None
    """Raised instead of :class:`OracleMismatch`: the process's own error says most (a hang, a
    crash) when the walredo failed where the oracle answered."""

    def record(self, example: FailingExample | None) -> None:
        """Make this request the test's failing example: the request, both pages (the artifacts
        writer adds their field-by-field diff), the error, which oracle judged."""
        if example is None:
            return
        example.requests = [ExampleRequest(self.request, self.expected.page, self.actual.page,
                                           self.actual.error_text)]
        example.oracle = self.oracle
        example.notes.append(self.message)
        if self.expected.failed:
            example.notes.append(f"the {self.oracle} failed: {self.expected.error_text}")


class Judge:
    """An oracle bound to one test's pool. The default judges nothing (see subclasses)."""

    name = "property"
    cross_checks = False
    """Whether :meth:`cross_check` looks at every request (the baseline does)."""

    def judge(self, request: RedoRequest, got: Answer) -> Disagreement | None:
        """Whether ``got`` is the right answer to ``request``, for properties that need an oracle."""
        return None

    def cross_check(self, request: RedoRequest, got: Answer) -> Disagreement | None:
        """Called for every request the pool sends."""
        return None

    def close(self) -> None:
        pass


class Oracle:
    """The session's choice of oracle (see the module docstring)."""

    name = "property"

    def requests(self, pg_version: int, flavour: Flavour) -> st.SearchStrategy[RedoRequest]:
        """What the model-agreement property draws."""
        raise NotImplementedError

    def bind(self, pool: ProcessPool) -> Judge:
        """The oracle for one test, using ``pool``'s factory and event loop."""
        raise NotImplementedError


def corpus_requests(entries: Sequence[Entry]) -> st.SearchStrategy[RedoRequest]:
    """A corpus entry's request cut after its first k records (k >= 1 when it has any): every
    such prefix is a valid request, the state of the block after those records. Shrinks toward
    the first entry and the shortest prefix."""
    def prefixes(entry: Entry) -> st.SearchStrategy[RedoRequest]:
        req = entry.decoded_request()
        n = len(req.records)
        return st.integers(min(1, n), n).map(
            lambda k: RedoRequest(req.rel, req.blknum, req.base_image, req.records[:k]))

    return st.sampled_from(list(entries)).flatmap(prefixes)


# ------------------------------------------------------------------------------------------
# The redo model
# ------------------------------------------------------------------------------------------


class ModelOracle(Oracle):
    """The redo model's page (exact comparison)."""

    name = "model"

    def requests(self, pg_version: int, flavour: Flavour) -> st.SearchStrategy[RedoRequest]:
        return ws.redo_requests(pg_version=pg_version, flavour=flavour, min_records=1)

    def bind(self, pool: ProcessPool) -> Judge:
        return _ModelJudge(pool.pg_version, pool.flavour)


class _ModelJudge(Judge):
    name = "model"

    def __init__(self, pg_version: int, flavour: Flavour) -> None:
        self.pg_version, self.flavour = pg_version, flavour

    def judge(self, request: RedoRequest, got: Answer) -> Disagreement | None:
        want = model_page(request, self.pg_version, self.flavour)  # a RedoError propagates: a bug of ours
        if got.failed:
            return Disagreement(request, Answer(want), got, self.name,
                                f"the walredo failed where the redo model answers a page: {got.error_text}",
                                got.error)
        assert got.page is not None
        if got.page == want:
            return None
        return Disagreement(request, Answer(want), got, self.name,
                            f"[wrong-page] the page differs from the redo model's: {explain(want, got.page)}")


# ------------------------------------------------------------------------------------------
# A baseline binary
# ------------------------------------------------------------------------------------------


class BaselineOracle(Oracle):
    """Another walredo binary's answers (differential mode). ``mask``: ``none`` or ``auto``;
    ``entries``: the session's corpus entries that apply to the binary under test (the
    model-agreement property draws their requests too)."""

    name = "baseline"

    def __init__(self, binary: WalredoBinary, mask: str = NO_MASK, entries: Sequence[Entry] = ()) -> None:
        if mask not in (NO_MASK, "auto"):
            raise ValueError(f"baseline mask {mask!r} is not 'none' or 'auto'")
        self.binary, self.mask, self.entries = binary, mask, tuple(entries)

    def requests(self, pg_version: int, flavour: Flavour) -> st.SearchStrategy[RedoRequest]:
        generated = ws.redo_requests(pg_version=pg_version, flavour=flavour, min_records=1)
        if not self.entries:
            return generated
        # Generated first: a failure shrinks toward a generated request when one shows it.
        return st.one_of(generated, corpus_requests(self.entries))

    def bind(self, pool: ProcessPool) -> Judge:
        return _BaselineJudge(self, pool)


class _BaselineJudge(Judge):
    name = "baseline"
    cross_checks = True

    def __init__(self, oracle: BaselineOracle, pool: ProcessPool) -> None:
        self.oracle, self.pool = oracle, pool
        self._client: WalredoClient | None = None

    def _live(self) -> WalredoClient:
        c = self._client
        if c is None or c.poisoned or (c.process is not None and c.process.poll() is not None):
            if c is not None:
                c.close()
            # Launched by the test's factory: sandboxed like the binary under test, dumps its
            # failing inputs, killed at teardown, its stderr in the failure artifacts.
            c = self._client = self.pool.factory(timeout=self.pool.timeout, binary=self.oracle.binary)
        return c

    def answer(self, request: RedoRequest) -> Answer:
        client = self._live()
        try:
            return Answer(self.pool.run(client.apply(request)))
        except WalredoError as exc:
            client.close()
            self._client = None
            return Answer(None, exc)

    def cross_check(self, request: RedoRequest, got: Answer) -> Disagreement | None:
        return compare_with_baseline(request, self.answer(request), got, self.oracle.mask, self.pool.pg_version)

    def judge(self, request: RedoRequest, got: Answer) -> Disagreement | None:
        return self.cross_check(request, got)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def compare_with_baseline(request: RedoRequest, want: Answer, got: Answer, mask: str,
                          pg_version: int) -> Disagreement | None:
    """The differential rule: the same page (under ``mask``: ``none``, or ``auto`` for the rule
    of the request's last record's rmgr, :func:`~pytest_walredo.corpus.judge.request_mask`), or
    both failing. ``want`` is the baseline's answer, ``got`` the walredo under test's."""
    if want.failed and got.failed:
        return None  # both fail: they agree (the property decides whether failing is allowed)
    if got.failed:
        why = f"[error] [baseline] the walredo under test failed where the baseline answered: {got.error_text}"
    elif want.failed:
        why = f"[error] [baseline] the baseline failed where the walredo under test answered: {want.error_text}"
    else:
        assert want.page is not None and got.page is not None
        rule = request_mask(request, pg_version) if mask == "auto" else NO_MASK
        if masked_equal(want.page, got.page, rule, request.blknum):
            return None
        why = (f"[wrong-page] [baseline] the page differs from the baseline's (mask {rule}): "
               f"{explain(want.page, got.page)}")
    return Disagreement(request, want, got, "baseline", why)
