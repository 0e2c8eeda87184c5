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
from pytest_walredo.triage.inspect import load_page, load_request, page_summary, render_page_summary

__all__ = ["Prediction", "RunOutcome", "predict", "resolve_binary", "run_replay_command", "run_request"]

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


def run_request(binary: WalredoBinary, request: RedoRequest, timeout: float, workdir: Path) -> RunOutcome:
    """Run ``request`` in a fresh process of ``binary`` and classify what happened."""
    from pytest_walredo.process import (
        LaunchConfig,
        SyncWalredoClient,
        WalredoError,
        WalredoLaunchError,
        WalredoProcess,
        WalredoTimeout,
    )

    config = LaunchConfig(binary.path, args=binary.args, lib_dir=binary.lib_dir, workdir=workdir)
    try:
        proc = WalredoProcess.launch(config)
    except WalredoLaunchError as exc:
        return RunOutcome("launch-error", None, str(exc), exc.stderr_tail or "", exc.returncode)
    except OSError as exc:
        return RunOutcome("launch-error", None, f"{binary}: {exc.strerror or exc}", "", None)
    client = SyncWalredoClient(proc, timeout=timeout)
    status, page, message = "answered", None, None
    try:
        page = client.apply(request, timeout)
    except WalredoTimeout as exc:
        status, message = "timeout", str(exc)
    except WalredoError as exc:
        status, message = "crash", str(exc)
    finally:
        ended_by_itself = proc.poll() is not None
        client.close()  # kills the process if it is still running, reaps it, drains stderr
    returncode = proc.returncode if ended_by_itself or status != "answered" else None
    return RunOutcome(status, page, message, proc.stderr_tail(), returncode)


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


def run_replay_command(args: argparse.Namespace, out: TextIO) -> int:
    """``pytest-walredo replay``: returns 0 when the process behaved as expected, else 1."""
    request = load_request(args.file)
    expect = load_page(args.expect, "--expect page") if args.expect is not None else None
    with tempfile.TemporaryDirectory(prefix="walredo-replay-") as tmp:
        scratch = Path(tmp)
        binary = resolve_binary(args.walredo_bin, args.lib_dir, args.ref_fault, args.pg_version, args.flavour,
                                scratch)
        outcome = run_request(binary, request, args.timeout, scratch)
    if outcome.status == "launch-error":  # a bad --walredo-bin is a usage error, not a finding
        raise TriageError(f"the walredo process could not be started: {outcome.message}")

    expected_page: bytes | None
    expected_error: str | None
    unavailable: str | None
    if expect is not None:
        against, expected_page, expected_error = f"--expect {args.expect}", expect, None
        unavailable = None
    else:
        pred = predict(request, args.pg_version, args.flavour)
        against, expected_page, expected_error = "the redo model's prediction", pred.page, pred.error
        unavailable = pred.unavailable

    diffs = None
    if outcome.page is not None and expected_page is not None:
        diffs = diff_pages(expected_page, outcome.page)
    if outcome.status == "answered":
        if diffs is not None:
            verdict, ok = ("matches " + against, True) if not diffs else ("differs from " + against, False)
        elif expected_error is not None:
            verdict, ok = f"answered, but the model expects it to fail: {expected_error}", False
        else:
            verdict, ok = f"answered; nothing to compare with ({unavailable})", True
    else:
        if expected_error is not None:
            verdict, ok = f"failed, as the model expects ({expected_error})", True
        elif expected_page is not None:
            verdict, ok = f"failed, but {against} is a page", False
        else:  # a failure with nothing to compare is still a finding
            verdict, ok = f"failed; nothing to compare with ({unavailable})", False

    if args.json:
        doc: dict[str, Any] = {
            "file": str(args.file), "request": request.describe(), "binary": str(binary),
            "args": list(binary.args), "status": outcome.status, "message": outcome.message,
            "returncode": outcome.returncode, "stderr": outcome.stderr,
            "page": page_summary(outcome.page) if outcome.page is not None else None,
            "compared_with": against, "expected_error": expected_error, "prediction_unavailable": unavailable,
            "differences": diff_as_json(diffs) if diffs is not None else None,
            "summary": summarize_diff(diffs) if diffs is not None else None,
            "verdict": verdict, "ok": ok,
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
    out.write("\n".join(lines) + "\n")
    if diffs:
        out.write(render_diff(diffs, against, "answer"))
    stderr_rows = _tail(outcome.stderr, STDERR_LINES)
    out.write("stderr:" + ("" if stderr_rows else " (empty)") + "\n")
    for row in stderr_rows:
        out.write(f"  {row}\n")
    if outcome.returncode is not None:
        from pytest_walredo.process.errors import describe_returncode

        out.write(f"exit status: the process {describe_returncode(outcome.returncode)}\n")
    elif outcome.status == "answered":
        out.write("exit status: none (the process was still running after its answer; replay stopped it)\n")
    return 0 if ok else 1
