"""``pytest-walredo replay``: run one ``.walredo`` request through a walredo process.

The building blocks are shared with ``shrink``:

* :func:`resolve_binary`: ``--walredo-bin`` (checked by :func:`pytest_walredo.target.user_binary`)
  or the embedded reference walredo, with ``--ref-fault`` specs validated up front;
* :func:`run_request`: launch a fresh sandboxed process (the process layer), send the request,
  wait at most ``timeout`` for the page, and classify the outcome (answered / crash / timeout /
  launch error) together with the stderr tail and exit status;
* :func:`predict`: the redo model's answer for the request (``pytest_walredo.pg.redo``), or the
  error the model says the process must fail with.

One process per run: a crashed or hung process never leaks state into the next run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pytest_walredo.pg.page import BLCKSZ
from pytest_walredo.pg.version import Flavour
from pytest_walredo.protocol import RedoRequest
from pytest_walredo.render.pagediff import diff_as_json, diff_pages, render_diff, summarize_diff
from pytest_walredo.target import BinaryError, WalredoBinary, reference_binary, user_binary
from pytest_walredo.triage import TriageError
from pytest_walredo.triage.inspect import load_page, page_summary, render_page_summary
from pytest_walredo.triage.session import (
    DEFAULT_HANG_CHECK,
    SessionCall,
    load_calls,
    marked_call,
    run_calls,
    session_beside,
)

__all__ = ["Prediction", "RunOutcome", "predict", "resolve_binary", "run_replay_command", "run_request",
           "version_note"]

ZERO_PAGE = bytes(BLCKSZ)
STDERR_LINES = 20
"""How many stderr lines the text output of replay shows (``--json`` carries the whole tail)."""


def resolve_binary(
    walredo_bin: Path | None, lib_dir: Path | None, ref_faults: list[str], pg_version: int, flavour: Flavour,
    scratch: Path,
) -> WalredoBinary:
    """The binary to run: ``walredo_bin`` if given, else the reference walredo (launcher written
    into ``scratch``) with ``ref_faults``. Raises :class:`TriageError` naming the bad flag."""
    if walredo_bin is not None:
        if ref_faults:
            raise TriageError("--ref-fault only applies to the reference walredo; drop it or drop --walredo-bin")
        try:
            return user_binary(walredo_bin, lib_dir, pg_version, flavour)
        except BinaryError as exc:
            raise TriageError(str(exc)) from None
    if lib_dir is not None:
        raise TriageError("--lib-dir only applies to --walredo-bin")
    from pytest_walredo.refserver.faults import FaultSpecError, parse_faults

    try:
        parse_faults(list(ref_faults))
    except FaultSpecError as exc:
        raise TriageError(f"--ref-fault: {exc}") from None
    return reference_binary(scratch, pg_version, flavour).with_faults(ref_faults)


@dataclass(frozen=True)
class RunOutcome:
    """What one run of a request did.

    ``status``: ``answered`` (``page`` holds the 8192 bytes), ``crash`` (the process died or
    broke the protocol before answering), ``timeout`` (no answer within the limit; the process
    was killed) or ``launch-error`` (it could not be started). ``message`` is the error sentence
    (None when answered); ``returncode`` is the exit status when the process ended on its own
    (None while it was still running when we stopped it after its answer).
    """

    status: str
    page: bytes | None
    message: str | None
    stderr: str
    returncode: int | None

    def describe(self) -> str:
        if self.status == "answered":
            return f"answered with a {BLCKSZ}-byte page"
        if self.status == "timeout":
            return f"timed out: {self.message}"
        if self.status == "launch-error":
            return f"could not be launched: {self.message}"
        return f"failed: {self.message}"


def run_request(binary: WalredoBinary, request: RedoRequest, timeout: float, workdir: Path,
                hang_check: float | None = DEFAULT_HANG_CHECK) -> RunOutcome:
    """Run ``request`` in a fresh process of ``binary`` and classify what happened."""
    run = run_calls(binary, [request.encode()], timeout, workdir, hang_check)
    if run.launch_error is not None:
        return RunOutcome("launch-error", None, run.launch_error, run.stderr, run.returncode)
    r = run.results[0]
    return RunOutcome(r.status, r.page, r.message, run.stderr, run.returncode)


def version_note(request: RedoRequest, pg_version: int, flavour: Flavour) -> str | None:
    """When a record of ``request`` does not decode under ``pg_version``: which record, why,
    and which other version decodes it (the files say nothing about their version)."""
    from pytest_walredo.pg import rmgr
    from pytest_walredo.pg.xlogrecord import decode_record
    from pytest_walredo.render.stream import decoding_versions, version_hint

    for i, (_lsn, raw) in enumerate(request.records, start=1):
        try:
            rmgr.describe_record(decode_record(raw, pg_version), pg_version, flavour)
        except (rmgr.UnsupportedRecord, rmgr.RmgrDecodeError, ValueError) as exc:
            others = decoding_versions(raw, pg_version, flavour)
            if not others and isinstance(exc, (rmgr.UnsupportedRecord, rmgr.RmgrDecodeError)):
                continue  # a record our model does not describe in any version: not a version problem
            hint = version_hint(others) or "; no other version (14-17) decodes it either"
            return f"record #{i} does not decode as PostgreSQL {pg_version} WAL ({exc}){hint}"
    return None


@dataclass(frozen=True)
class Prediction:
    """The redo model's answer: ``page`` or, when the model refuses a record, ``error`` (the
    FATAL line a walredo process would print). ``unavailable`` says why there is no
    prediction at all (the model cannot be imported or crashed)."""

    page: bytes | None = None
    error: str | None = None
    unavailable: str | None = None


def predict(request: RedoRequest, pg_version: int, flavour: Flavour) -> Prediction:
    """Apply the request's records with ``pytest_walredo.pg.redo.redo_record`` in-process.

    Like ``G`` on a block never initialized, a request whose records leave no page predicts an
    all-zero page.
    """
    try:
        from pytest_walredo.pg.redo import RedoError, redo_record
    except Exception as exc:  # the model is another layer; a missing/broken one is reported, not fatal
        return Prediction(unavailable=f"the redo model (pytest_walredo.pg.redo) cannot be imported: "
                                      f"{type(exc).__name__}: {exc}")
    page = request.base_image
    rel = request.rel
    try:
        for lsn, record in request.records:
            page = redo_record(page, spcnode=rel.spcnode, dbnode=rel.dbnode, relnode=rel.relnode,
                               forknum=rel.forknum, blkno=request.blknum, end_lsn=lsn, record=record,
                               pg_version=pg_version, flavour=flavour)
    except RedoError as exc:
        return Prediction(error=str(exc))
    except Exception as exc:  # a model bug must not hide the process's answer
        return Prediction(unavailable=f"the redo model failed: {type(exc).__name__}: {exc}")
    return Prediction(page=ZERO_PAGE if page is None else bytes(page))


def _tail(text: str, lines: int) -> list[str]:
    rows = text.rstrip("\n").splitlines()
    return rows[-lines:] if rows else []


def _expectation(args: argparse.Namespace, request: RedoRequest | None,
                 expect: bytes | None) -> tuple[str, bytes | None, str | None, str | None]:
    """What the answer is compared with: (name, page, error the model expects, why there is
    nothing to compare with)."""
    if expect is not None:
        return f"--expect {args.expect}", expect, None, None
    if request is None:
        return "a ping's answer (8192 bytes)", None, None, None
    pred = predict(request, args.pg_version, args.flavour)
    return "the redo model's prediction", pred.page, pred.error, pred.unavailable


def _verdict(status: str, page: bytes | None, against: str, expected_page: bytes | None,
             expected_error: str | None, unavailable: str | None) -> tuple[str, bool, Any]:
    """(verdict, ok, page differences or None)."""
    diffs = None
    if page is not None and expected_page is not None:
        diffs = diff_pages(expected_page, page)
    if status == "answered":
        if diffs is not None:
            return ("matches " + against, True, diffs) if not diffs else ("differs from " + against, False, diffs)
        if expected_error is not None:
            return f"answered, but the model expects it to fail: {expected_error}", False, None
        if unavailable is None and page is not None and len(page) == BLCKSZ:
            return f"answered with {BLCKSZ} bytes", True, None
        return f"answered; nothing to compare with ({unavailable})", True, None
    if expected_error is not None:
        return f"failed, as the model expects ({expected_error})", True, None
    if expected_page is not None:
        return f"failed, but {against} is a page", False, None
    return f"failed; nothing to compare with ({unavailable})", False, None


def _write_tail(out: TextIO, stderr: str, returncode: int | None, answered: bool) -> None:
    stderr_rows = _tail(stderr, STDERR_LINES)
    out.write("stderr:" + ("" if stderr_rows else " (empty)") + "\n")
    for row in stderr_rows:
        out.write(f"  {row}\n")
    if returncode is not None:
        from pytest_walredo.process.errors import describe_returncode

        out.write(f"exit status: the process {describe_returncode(returncode)}\n")
    elif answered:
        out.write("exit status: none (the process was still running after its answer; replay stopped it)\n")


def run_replay_command(args: argparse.Namespace, out: TextIO) -> int:
    """``pytest-walredo replay``: returns 0 when the process behaved as expected, else 1. A
    file of several calls (a session stream) is replayed in one process and its marked call
    is checked."""
    calls = load_calls(args.file)
    expect = load_page(args.expect, "--expect page") if args.expect is not None else None
    if len(calls) > 1 or calls[0].request is None:
        return _replay_session(args, out, calls, expect)
    request = calls[0].request
    with tempfile.TemporaryDirectory(prefix="walredo-replay-") as tmp:
        scratch = Path(tmp)
        binary = resolve_binary(args.walredo_bin, args.lib_dir, args.ref_fault, args.pg_version, args.flavour,
                                scratch)
        outcome = run_request(binary, request, args.timeout, scratch, args.hang_check)
    if outcome.status == "launch-error":  # a bad --walredo-bin is a usage error, not a finding
        raise TriageError(f"the walredo process could not be started: {outcome.message}")

    against, expected_page, expected_error, unavailable = _expectation(args, request, expect)
    verdict, ok, diffs = _verdict(outcome.status, outcome.page, against, expected_page, expected_error,
                                  unavailable)
    notes = []
    note = version_note(request, args.pg_version, args.flavour)
    if note is not None:
        notes.append(note)
    session = session_beside(args.file)
    if ok and session is not None:
        notes.append(f"this request passes alone on a fresh process; its failure may need the calls its "
                     f"process received before it: pytest-walredo replay {session}")

    if args.json:
        doc: dict[str, Any] = {
            "file": str(args.file), "request": request.describe(), "binary": str(binary),
            "args": list(binary.args), "status": outcome.status, "message": outcome.message,
            "returncode": outcome.returncode, "stderr": outcome.stderr,
            "page": page_summary(outcome.page) if outcome.page is not None else None,
            "compared_with": against, "expected_error": expected_error, "prediction_unavailable": unavailable,
            "differences": diff_as_json(diffs) if diffs is not None else None,
            "summary": summarize_diff(diffs) if diffs is not None else None,
            "verdict": verdict, "ok": ok, "notes": notes,
            "session": str(session) if session is not None else None,
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0 if ok else 1

    lines = [f"replay {args.file}: {request.describe()}",
             f"  walredo: {binary}" + (f" {' '.join(binary.args)}" if binary.args else ""),
             f"  outcome: {outcome.describe()}"]
    if outcome.page is not None:
        lines.extend(render_page_summary(page_summary(outcome.page), "  ", "answer"))
    lines.append(f"  verdict: {verdict}")
    lines.extend(f"  note: {n}" for n in notes)
    out.write("\n".join(lines) + "\n")
    if diffs:
        out.write(render_diff(diffs, against, "answer"))
    _write_tail(out, outcome.stderr, outcome.returncode, outcome.status == "answered")
    return 0 if ok else 1


def _replay_session(args: argparse.Namespace, out: TextIO, calls: list[SessionCall],
                    expect: bytes | None) -> int:
    """Replay every call up to the marked one in one process; check the marked call."""
    marked, why = marked_call(args.file, calls)
    target = calls[marked]
    with tempfile.TemporaryDirectory(prefix="walredo-replay-") as tmp:
        scratch = Path(tmp)
        binary = resolve_binary(args.walredo_bin, args.lib_dir, args.ref_fault, args.pg_version, args.flavour,
                                scratch)
        run = run_calls(binary, [c.data for c in calls[:marked + 1]], args.timeout, scratch, args.hang_check)
    if run.launch_error is not None:
        raise TriageError(f"the walredo process could not be started: {run.launch_error}")
    against, expected_page, expected_error, unavailable = _expectation(args, target.request, expect)
    last = run.results[-1]
    diffs = None
    if len(run.results) <= marked:  # an earlier call failed: the marked one was never answered
        verdict, ok = (f"call #{len(run.results) - 1} failed before the marked call #{marked} was sent: "
                       f"{last.message}"), False
    else:
        verdict, ok, diffs = _verdict(last.status, last.page, against, expected_page, expected_error,
                                      unavailable)
    if args.json:
        doc: dict[str, Any] = {
            "file": str(args.file), "calls": [c.describe() for c in calls], "marked": marked,
            "binary": str(binary), "args": list(binary.args),
            "results": [{"status": r.status, "message": r.message} for r in run.results],
            "returncode": run.returncode, "stderr": run.stderr,
            "page": page_summary(last.page) if last.page is not None else None,
            "compared_with": against, "expected_error": expected_error, "prediction_unavailable": unavailable,
            "differences": diff_as_json(diffs) if diffs is not None else None,
            "verdict": verdict, "ok": ok,
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0 if ok else 1
    lines = [f"replay {args.file}: a session stream of {len(calls)} call(s) sent to one process; "
             f"checking {why}",
             f"  walredo: {binary}" + (f" {' '.join(binary.args)}" if binary.args else "")]
    for i, c in enumerate(calls[:marked + 1]):
        result = run.results[i].describe() if i < len(run.results) else "not sent"
        lines.append(f"  {'>' if i == marked else ' '}#{i} {c.describe()}: {result}")
    if len(calls) > marked + 1:
        lines.append(f"   ({len(calls) - marked - 1} call(s) after the marked one not sent)")
    if last.page is not None and len(run.results) > marked and target.request is not None:
        lines.extend(render_page_summary(page_summary(last.page), "  ", "answer"))
    lines.append(f"  verdict: {verdict}")
    if target.request is not None:
        note = version_note(target.request, args.pg_version, args.flavour)
        if note is not None:
            lines.append(f"  note: {note}")
    out.write("\n".join(lines) + "\n")
    if diffs:
        out.write(render_diff(diffs, against, "answer"))
    _write_tail(out, run.stderr, run.returncode, last.status == "answered")
    return 0 if ok else 1
