"""One request of a failing example, written in the corpus layout (docs/CORPUS.md).

``NAME.walredo`` (the request), ``NAME.json`` (the corpus metadata, plus keys saying where
the entry comes from and how it failed), ``NAME.expected.page`` when the test said what it
expected, and, as extra files a corpus folder ignores, ``NAME.actual.page`` (what the process
answered), ``NAME.decode.txt``, ``NAME.diff.txt`` and ``NAME.session.walredo`` (everything the
process received up to this request, when earlier calls went to the same process). So a
triaged failure drops into a corpus folder unchanged.

Invariant: the JSON written for a request passes :func:`pytest_walredo.corpus.format.parse_entry`
with the request and expected page beside it (``tests/test_capture.py`` reads them back with
:func:`pytest_walredo.corpus.folder.read_entry`). Raw bytes that are not one request (malformed
input) cannot be a corpus entry: they get the ``.walredo`` file and no JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..corpus.folder import write_case
from ..corpus.format import request_meta
from ..pg.version import Flavour
from ..protocol import RedoRequest
from .example import ExampleRequest

__all__ = ["Focus", "outcome_of", "write_entry_files"]


@dataclass(frozen=True)
class Focus:
    """The request the "next steps" commands aim at."""

    dump: Path
    until: str
    expected: Path | None = None
    actual: Path | None = None
    session: Path | None = None
    needs_history: bool | None = None


def outcome_of(req: ExampleRequest) -> str:
    """``differs``, ``matches``, ``answered``, ``crash``, ``timeout``, ``poisoned`` or ``error``."""
    if req.failure is not None:
        return req.failure
    if req.error is not None:
        return "error"
    if req.expected is not None and req.actual is not None:
        return "differs" if req.expected != req.actual else "matches"
    return "answered"


def write_entry_files(path: Path, req: ExampleRequest, *, pg_version: int, flavour: Flavour,
                      source: str, extra: dict[str, Any]) -> dict[str, Path]:
    """Write the files of the request whose ``.walredo`` is at ``path`` (already written);
    returns them by kind (``json``, ``expected``, ``actual``, ``session``)."""
    extra = dict(extra)
    extra["outcome"] = outcome_of(req)
    if req.error:
        extra["error"] = req.error
    meta = None
    if isinstance(req.request, RedoRequest):
        meta = request_meta(req.request, pg_version=pg_version, flavour=flavour, source=source, extra=extra)
    s = req.session
    return write_case(path.parent, path.name.removesuffix(".walredo"), meta=meta, expected=req.expected,
                      actual=req.actual, session=(s.stream, s.offset, s.index) if s is not None else None,
                      session_extra={"pid": s.pid, "needs_history": s.needs_history} if s is not None else None)
