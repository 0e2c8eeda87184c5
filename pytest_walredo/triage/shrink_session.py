"""``pytest-walredo shrink`` of a session stream: the calls a process received up to a failing one.

The marked call (:func:`~.session.marked_call`) must keep failing as ``--until`` asks, with every
call before it answered, when the stream is sent to one fresh process. The search
(:func:`shrink_session`) drops the calls after the marked one, then repeats until nothing
changes: ddmin over the earlier calls (:func:`~.shrink.ddmin`), then each kept request shrunk
like a single request (:func:`~.shrink.shrink_request`: records, base image, tuple data) with
the rest of the stream around it. A bug that needs the second answer (answers swapped at
answer 2) keeps exactly one earlier call.

Invariant, as for single requests: every stream the search keeps was observed to fail; runs are
cached by the stream's bytes and bounded by ``--max-runs``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pytest_walredo.corpus.format import SESSION_SUFFIX
from pytest_walredo.pg.version import Flavour
from pytest_walredo.protocol import RedoRequest
from pytest_walredo.triage import TriageError
from pytest_walredo.triage.session import SessionCall, marked_call, run_calls
from pytest_walredo.triage.shrink import (
    Judged,
    NothingToShrink,
    _ranges_text,
    ddmin,
    judge,
    nothing_to_shrink,
    shrink_request,
    write_result_entry,
)

__all__ = ["SessionShrinkResult", "run_session_shrink", "shrink_session"]

StreamPredicate = Callable[[list[SessionCall]], bool]


class _Exhausted(Exception):
    pass


@dataclass
class SessionShrinkResult:
    """The minimal stream (its last call is the marked one), what was removed, the runs made."""

    original: list[SessionCall]
    calls: list[SessionCall]
    removed: list[str] = field(default_factory=list)
    runs: int = 0
    exhausted: bool = False


def _key(calls: list[SessionCall]) -> bytes:
    return b"".join(c.data for c in calls)


def shrink_session(calls: list[SessionCall], fails: StreamPredicate, *, pg_version: int, flavour: Flavour,
                   max_runs: int = 2000) -> SessionShrinkResult:
    """Shrink ``calls`` (the last one is the call that must keep failing) while ``fails`` holds;
    raises :class:`~.shrink.NothingToShrink` when ``fails(calls)`` is false."""
    cache: dict[bytes, bool] = {}
    runs = 0

    def check(candidate: list[SessionCall]) -> bool:
        nonlocal runs
        key = _key(candidate)
        if key not in cache:
            if runs >= max_runs:
                raise _Exhausted
            runs += 1
            cache[key] = bool(fails(candidate))
        return cache[key]

    original = list(calls)
    if not check(original):
        raise NothingToShrink("the original stream does not fail")
    cur = original
    positions = list(range(len(original)))  # original call number of each current call
    removed_records: dict[int, list[str]] = {}
    exhausted = False
    try:
        while True:
            before = _key(cur)
            last = cur[-1]
            pairs = list(zip(positions[:-1], cur[:-1], strict=True))

            def without(ps: list[tuple[int, SessionCall]], last: SessionCall = last) -> bool:
                return check([*(c for _, c in ps), last])

            kept = ddmin(pairs, without)
            positions = [p for p, _ in kept] + [positions[-1]]
            cur = [c for _, c in kept] + [last]
            for i, c in enumerate(cur):
                if c.request is None:
                    continue

                def with_request(r: RedoRequest, i: int = i, around: list[SessionCall] = cur) -> list[SessionCall]:
                    return [*around[:i], SessionCall(r.encode(), r), *around[i + 1:]]

                def fails_with(r: RedoRequest, f: Callable[[RedoRequest], list[SessionCall]] = with_request) -> bool:
                    return check(f(r))

                result = shrink_request(c.request, fails_with,
                                        pg_version=pg_version, flavour=flavour,
                                        max_runs=max(1, max_runs - runs + 1))
                if result.request != c.request:
                    cur = with_request(result.request)
                    removed_records.setdefault(positions[i], []).extend(result.removed)
                if result.exhausted:
                    raise _Exhausted
            if _key(cur) == before:
                break
    except (_Exhausted, NothingToShrink):
        exhausted = True
    removed = []
    gone = [i for i in range(len(original) - 1) if i not in positions]
    if gone:
        removed.append(f"removed {len(gone)} of {len(original) - 1} earlier call(s): "
                       f"{_ranges_text([g + 1 for g in gone]).replace('#', 'call ').replace('-call ', '-')}"
                       " (counted from 1)")
    for pos, lines in sorted(removed_records.items()):
        removed.extend(f"call {pos + 1}: {line}" for line in lines)
    return SessionShrinkResult(original, cur, removed, runs, exhausted)


def _stem_for(args: argparse.Namespace) -> Path:
    """``NAME.min`` for ``NAME.session.walredo`` (or ``-o``): the stem of the files written."""
    out = args.output
    if out is not None:
        name = out.name
        for suffix in (SESSION_SUFFIX, ".walredo"):
            if name.endswith(suffix):
                return out.with_name(name[: -len(suffix)])
        return out
    name = args.file.name
    for suffix in (SESSION_SUFFIX, ".walredo"):
        if name.endswith(suffix):
            return args.file.with_name(name[: -len(suffix)] + ".min")
    return args.file.with_name(name + ".min")


def run_session_shrink(args: argparse.Namespace, out: TextIO, calls: list[SessionCall]) -> int:
    """``pytest-walredo shrink`` of a stream of several calls: 0 when the minimal stream was
    written, 1 when the marked call does not fail as ``--until`` asks."""
    from pytest_walredo.triage.replay import resolve_binary

    marked, why_marked = marked_call(args.file, calls)
    calls = calls[:marked + 1]
    stem = _stem_for(args)
    session_out = stem.with_name(stem.name + SESSION_SUFFIX)
    if session_out.exists() and session_out.resolve() == args.file.resolve():
        raise TriageError(f"-o {args.output} would overwrite the input file; choose another output path")
    failures: dict[bytes, Judged] = {}

    with tempfile.TemporaryDirectory(prefix="walredo-shrink-") as tmp:
        scratch = Path(tmp)
        binary = resolve_binary(args.walredo_bin, args.lib_dir, args.ref_fault, args.pg_version, args.flavour,
                                scratch)

        def fails(candidate: list[SessionCall]) -> bool:
            run = run_calls(binary, [c.data for c in candidate], args.timeout, scratch, args.hang_check)
            if run.launch_error is not None:
                raise TriageError(f"the walredo process could not be started: {run.launch_error}")
            if len(run.results) < len(candidate):  # an earlier call failed: not this failure
                return False
            last = run.results[-1]
            judged = judge(args, last.status, last.page, last.message, run.stderr, candidate[-1].request)
            if judged.hit:
                failures[_key(candidate)] = judged
            return judged.hit

        try:
            result = shrink_session(calls, fails, pg_version=args.pg_version, flavour=args.flavour,
                                    max_runs=args.max_runs)
        except NothingToShrink:
            out.write(nothing_to_shrink(args, f"{why_marked} of this stream (every call before it answered)"))
            return 1

    stream = _key(result.calls)
    offset = len(stream) - len(result.calls[-1].data)
    written = write_result_entry(stem, result.calls[-1].request, args, answer=failures[stream].page,
                                 session=(stream, offset, len(result.calls) - 1))
    lines = [f"shrink {args.file} --until {args.until}: a session stream of {len(result.original)} call(s) "
             f"up to {why_marked}",
             f"  original failure: {failures[_key(result.original)].why}"]
    lines.extend(f"  {r}" for r in result.removed or ["nothing could be removed: the stream is already minimal"])
    lines.append(f"  kept {len(result.calls)} call(s):")
    lines.extend(f"    #{i} {c.describe()}" for i, c in enumerate(result.calls))
    lines.append(f"  minimal failure: {failures[stream].why}")
    if result.exhausted:
        lines.append(f"  stopped after --max-runs {args.max_runs} runs: the result fails but may not be minimal")
    lines.append(f"wrote {session_out} ({len(stream)} bytes, was {len(_key(result.original))}) after "
                 f"{result.runs} run(s)")
    others = [p.name for p in written if p != session_out]
    if others:
        lines.append(f"  with {', '.join(others)} (the failing call as a corpus entry)")
    out.write("\n".join(lines) + "\n")
    return 0
