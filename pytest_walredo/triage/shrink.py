"""``pytest-walredo shrink``: delta-debug a failing redo request down to a minimal one.

The search (:func:`shrink_request`) is independent of processes: it takes a predicate
``fails(request) -> bool`` and repeats three reductions until none makes progress (a fixpoint,
since e.g. dropping the base image can make more records removable):

1. **drop records**: ddmin (Zeller's delta debugging, complement-removal variant) over the
   list of ``A`` records: try removing chunks of halving size, keep any removal that still fails;
2. **drop the base image** (the ``P`` message);
3. **shorten tuple data**: for every tuple a record carries (heap INSERT/UPDATE tuples,
   MULTI_INSERT tuples, via the typed records of :mod:`pytest_walredo.pg.rmgr`), cut the bytes
   after the tuple header, from the end, as far as the failure persists; the record is rebuilt
   with a correct ``xl_tot_len`` and CRC.

Invariant: every request the search keeps has been *observed* to fail (the predicate said so);
the original must fail too or :func:`shrink_request` raises :class:`NothingToShrink`. Runs are
cached by request bytes, so no candidate is run twice; ``max_runs`` bounds the work.

The command (:func:`run_shrink_command`) makes the predicate from ``--until``: ``crash`` (the
process dies or breaks the protocol before answering), ``timeout`` (no answer within
``--timeout``), ``differs`` (an answer that differs from the redo model's prediction; a
candidate the model refuses does not count). ``--match TEXT`` additionally requires TEXT in
the failure message or stderr, to keep shrinking the *same* failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.rmgr.heap import XlTuple
from pytest_walredo.pg.rmgr.heap2 import MultiInsertTuple
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import decode_record, encode_record
from pytest_walredo.protocol import RedoRequest
from pytest_walredo.triage import TriageError

__all__ = ["Judged", "NothingToShrink", "ShrinkResult", "ddmin", "judge", "run_shrink_command", "shrink_request",
           "write_result_entry"]

Predicate = Callable[[RedoRequest], bool]


class NothingToShrink(Exception):
    """The original request does not fail, so there is no failure to preserve."""


@dataclass(frozen=True)
class _Rec:
    """A record of the working request, remembering its 1-based position in the original."""

    index: int
    lsn: int
    raw: bytes


@dataclass(frozen=True)
class _State:
    base: bytes | None
    records: tuple[_Rec, ...]


@dataclass
class ShrinkResult:
    """The minimal request found, what was removed (one sentence per reduction), and how many
    predicate runs it took (cached repeats not counted)."""

    original: RedoRequest
    request: RedoRequest
    removed: list[str] = field(default_factory=list)
    runs: int = 0
    exhausted: bool = False
    """True when ``max_runs`` stopped the search early (the result fails, but may not be minimal)."""
    kept_indices: tuple[int, ...] = ()
    """1-based positions, in the original, of the records the minimal request kept."""


class _RunLimit(Exception):
    pass


T = TypeVar("T")


def ddmin(items: list[T], fails: Callable[[list[T]], bool]) -> list[T]:
    """Zeller's delta debugging, complement-removal variant (the one that only ever shrinks):
    try removing chunks of ``items``, starting with halves; keep any removal for which
    ``fails`` still holds and coarsen again, else refine the chunks. ``fails(items)`` is
    assumed true; the result is a sublist, in order, for which ``fails`` was observed true."""
    n = 2
    while items:
        if len(items) == 1:
            if fails([]):
                items = []
            break
        chunk = -(-len(items) // n)  # ceil
        progressed = False
        for start in range(0, len(items), chunk):
            rest = items[:start] + items[start + chunk:]
            if fails(rest):
                items = rest
                n = max(n - 1, 2)
                progressed = True
                break
        if not progressed:
            if n >= len(items):
                break
            n = min(2 * n, len(items))
    return items


class _Search:
    def __init__(self, original: RedoRequest, fails: Predicate, max_runs: int, pg_version: int,
                 flavour: Flavour) -> None:
        self.original = original
        self.fails_fn = fails
        self.max_runs = max_runs
        self.pg_version = pg_version
        self.flavour = flavour
        self.cache: dict[bytes, bool] = {}
        self.runs = 0

    def request(self, s: _State) -> RedoRequest:
        return RedoRequest(self.original.rel, self.original.blknum, s.base,
                           tuple((r.lsn, r.raw) for r in s.records))

    def fails(self, s: _State) -> bool:
        req = self.request(s)
        key = req.encode()
        if key not in self.cache:
            if self.runs >= self.max_runs:
                raise _RunLimit
            self.runs += 1
            self.cache[key] = bool(self.fails_fn(req))
        return self.cache[key]

    # -- reductions -----------------------------------------------------------------------------

    def drop_records(self, s: _State) -> _State:
        """ddmin over the records (see :func:`ddmin`)."""
        kept = ddmin(list(s.records), lambda recs: self.fails(dataclasses.replace(s, records=tuple(recs))))
        return dataclasses.replace(s, records=tuple(kept))

    def drop_base(self, s: _State) -> _State:
        if s.base is None:
            return s
        cand = dataclasses.replace(s, base=None)
        return cand if self.fails(cand) else s

    def shorten_tuples(self, s: _State, cuts: dict[tuple[int, str, int | None], list[int]]) -> _State:
        """Cut each tuple's data from the end; ``cuts[(record index, field, item)]`` keeps
        ``[original length, current length]`` across passes."""
        for pos in range(len(s.records)):
            for path in _tuple_paths(s.records[pos].raw, self.pg_version, self.flavour):
                rec = s.records[pos]
                cur = _tuple_len(rec.raw, path, self.pg_version, self.flavour)
                key = (rec.index, *path)
                start_len = cur

                def with_len(n: int, s: _State = s, rec: _Rec = rec, pos: int = pos,
                             path: tuple[str, int | None] = path) -> _State | None:
                    raw = _with_tuple_len(rec.raw, path, n, self.pg_version, self.flavour)
                    if raw is None:
                        return None
                    recs = list(s.records)
                    recs[pos] = dataclasses.replace(rec, raw=raw)
                    return dataclasses.replace(s, records=tuple(recs))

                # cut from the end in halving steps: try removing `delta` bytes, halve on failure
                delta = cur
                while delta >= 1 and cur > 0:
                    cand = with_len(cur - delta)
                    if cand is not None and self.fails(cand):
                        cur -= delta
                        s = cand
                    else:
                        delta //= 2
                if cur < start_len:
                    cuts.setdefault(key, [start_len, cur])[1] = cur
        return s

    def run(self) -> ShrinkResult:
        start = _State(self.original.base_image,
                       tuple(_Rec(i, lsn, raw) for i, (lsn, raw) in enumerate(self.original.records, start=1)))
        if not self.fails(start):
            raise NothingToShrink("the original request does not fail")
        s = start
        cuts: dict[tuple[int, str, int | None], list[int]] = {}
        exhausted = False
        try:
            while True:
                before = self.request(s).encode()
                s = self.drop_records(s)
                s = self.drop_base(s)
                s = self.shorten_tuples(s, cuts)
                if self.request(s).encode() == before:
                    break
        except _RunLimit:
            exhausted = True
        removed: list[str] = []
        kept = {r.index for r in s.records}
        gone = [i for i in range(1, len(start.records) + 1) if i not in kept]
        if gone:
            removed.append(f"removed {len(gone)} of {len(start.records)} record(s): {_ranges_text(gone)}")
        if start.base is not None and s.base is None:
            removed.append("removed the base image (P message)")
        for (index, name, item), (full, cur) in sorted(cuts.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                   kv[0][2] or 0)):
            if index in kept:
                what = f"{name}[{item}]" if item is not None else name
                removed.append(f"shortened the {what} data of record #{index} from {full} to {cur} bytes")
        return ShrinkResult(self.original, self.request(s), removed, self.runs, exhausted,
                            tuple(r.index for r in s.records))


def _ranges_text(indices: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``#1-#3, #7`` (``indices`` sorted, not empty)."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"#{a}" if a == b else f"#{a}-#{b}" for a, b in runs)


# -- tuple data through the typed records ---------------------------------------------------------

_TUPLE_TYPES = (XlTuple, MultiInsertTuple)


def _parse(raw: bytes, pg_version: int, flavour: Flavour) -> tuple[Any, Any] | None:
    try:
        decoded = decode_record(raw, pg_version)
        return decoded, rmgr.parse(decoded, pg_version, flavour)
    except (ValueError, rmgr.UnsupportedRecord, rmgr.RmgrDecodeError):
        return None


def _tuple_paths(raw: bytes, pg_version: int, flavour: Flavour) -> list[tuple[str, int | None]]:
    """``(field, index)`` of every logged tuple with data in the typed record (index for
    tuple-valued fields such as MULTI_INSERT's ``tuples``)."""
    parsed = _parse(raw, pg_version, flavour)
    if parsed is None:
        return []
    body = parsed[1]
    out: list[tuple[str, int | None]] = []
    for f in dataclasses.fields(body):
        value = getattr(body, f.name)
        if isinstance(value, _TUPLE_TYPES) and value.data:
            out.append((f.name, None))
        elif isinstance(value, tuple):
            out.extend((f.name, i) for i, v in enumerate(value) if isinstance(v, _TUPLE_TYPES) and v.data)
    return out


def _tuple_len(raw: bytes, path: tuple[str, int | None], pg_version: int, flavour: Flavour) -> int:
    parsed = _parse(raw, pg_version, flavour)
    assert parsed is not None  # paths come from _tuple_paths of the same bytes
    value = getattr(parsed[1], path[0])
    return len((value if path[1] is None else value[path[1]]).data)


def _with_tuple_len(raw: bytes, path: tuple[str, int | None], n: int, pg_version: int,
                    flavour: Flavour) -> bytes | None:
    """``raw`` with the tuple at ``path`` cut to ``n`` data bytes, rebuilt (xl_tot_len, CRC) with
    the same xid, prev, origin, toplevel xid, low info bits and block references; None when the
    typed record refuses the change."""
    parsed = _parse(raw, pg_version, flavour)
    if parsed is None:
        return None
    decoded, body = parsed
    name, idx = path
    value = getattr(body, name)
    try:
        if idx is None:
            new_value = dataclasses.replace(value, data=value.data[:n])
        else:
            items = list(value)
            items[idx] = dataclasses.replace(items[idx], data=items[idx].data[:n])
            new_value = tuple(items)
        new_body = dataclasses.replace(body, **{name: new_value})
        rebuilt = rmgr.build(new_body, list(decoded.blocks), pg_version=pg_version, flavour=flavour,
                             xid=decoded.xid, prev=decoded.prev, origin=decoded.origin,
                             toplevel_xid=decoded.toplevel_xid, xl_info_low=decoded.info & 0x0F)
        return encode_record(rebuilt)
    except (ValueError, TypeError):
        return None


def shrink_request(
    request: RedoRequest, fails: Predicate, *, pg_version: int, flavour: Flavour, max_runs: int = 2000,
) -> ShrinkResult:
    """Shrink ``request`` while ``fails`` holds; see the module docstring. Raises
    :class:`NothingToShrink` when ``fails(request)`` is false."""
    return _Search(request, fails, max_runs, pg_version, flavour).run()


# -- the command ------------------------------------------------------------------------------------


def _default_output(path: Path) -> Path:
    name = path.name
    stem = name[: -len(".walredo")] if name.endswith(".walredo") else name
    return path.with_name(f"{stem}.min.walredo")


def _record_line(index: int, lsn: int, raw: bytes, pg_version: int, flavour: Flavour) -> str:
    parsed = _parse(raw, pg_version, flavour)
    if parsed is None:
        what = "(does not decode as a typed record)"
    else:
        try:
            d = rmgr.describe_record(parsed[0], pg_version, flavour)
            what = f"{d.rmgr} {d.name} {d.desc}".rstrip()
        except (ValueError, rmgr.UnsupportedRecord, rmgr.RmgrDecodeError) as exc:
            what = f"({exc})"
    return f"#{index} end lsn {format_lsn(lsn)}, {len(raw)} bytes: {what}"


@dataclass(frozen=True)
class Judged:
    """One run judged against ``--until``: whether it shows the failure, why, and the answer."""

    hit: bool
    why: str
    page: bytes | None


def judge(args: argparse.Namespace, status: str, page: bytes | None, message: str | None, stderr: str,
          request: RedoRequest | None) -> Judged:
    """Does a run (``status``/``page``/``message`` of the call that counts) fail as ``--until``
    asks (and, with ``--match``, say TEXT)?"""
    from pytest_walredo.triage.replay import predict

    if args.until in ("crash", "timeout"):
        hit = status == args.until
        why = message or ""
    else:
        pred = predict(request, args.pg_version, args.flavour) if request is not None else None
        hit = page is not None and pred is not None and pred.page is not None and page != pred.page
        why = "the answer differs from the redo model's prediction"
        if hit:
            from pytest_walredo.render.pagediff import diff_pages, summarize_diff

            why += f" ({summarize_diff(diff_pages(pred.page, page))})"  # type: ignore[arg-type,union-attr]
    match = getattr(args, "match", None)
    if hit and match is not None:
        hit = match in (message or "") or match in stderr
    return Judged(hit, why, page)


def nothing_to_shrink(args: argparse.Namespace, what: str) -> str:
    cond = {"crash": "crash", "timeout": "time out", "differs": "answer a page that differs from "
            "the redo model's prediction"}[args.until]
    match = getattr(args, "match", None)
    extra = f" with {match!r} in its message or stderr" if match is not None else ""
    return f"{args.file}: the walredo process does not {cond}{extra} on {what}; nothing to shrink\n"


def write_result_entry(stem: Path, request: RedoRequest | None, args: argparse.Namespace, *,
                       answer: bytes | None, session: tuple[bytes, int, int] | None = None,
                       request_path: Path | None = None) -> list[Path]:
    """The minimal failing input in the corpus layout (docs/CORPUS.md): ``STEM.walredo`` (the
    request), ``STEM.json``, ``STEM.expected.page`` (the redo model's answer, when it has one),
    ``STEM.actual.page`` (what the walredo answered) and, for a session, ``STEM.session.walredo``
    (``session``: the stream, and the request's offset and call number in it).
    ``request_path`` overrides where the request goes (``-o`` not ending in ``.walredo``)."""
    from pytest_walredo.corpus.folder import write_case
    from pytest_walredo.corpus.format import request_meta
    from pytest_walredo.triage.replay import predict

    meta = expected = None
    if request is not None:
        pred = predict(request, args.pg_version, args.flavour)
        expected = pred.page
        meta = request_meta(request, pg_version=args.pg_version, flavour=args.flavour,
                            source=f"pytest-walredo shrink {args.file.name} --until {args.until}",
                            extra={"shrunk_from": args.file.name, "outcome": args.until})
    try:
        files = write_case(stem.parent, stem.name, meta=meta, request=request.encode() if request else None,
                           expected=expected, actual=answer if request is not None else None, session=session,
                           session_extra={"needs_history": session[2] > 0} if session else None,
                           request_path=request_path)
    except OSError as exc:
        raise TriageError(f"cannot write {exc.filename or stem}: {exc.strerror or exc}; "
                          "choose another path with -o") from None
    return list(files.values())


def run_shrink_command(args: argparse.Namespace, out: TextIO, request: RedoRequest) -> int:
    """``pytest-walredo shrink`` of one request (``args.file``): 0 when the minimal request was
    written, 1 when the input does not fail as ``--until`` asks (nothing to shrink). A file of
    several calls (a session stream) goes to :mod:`.shrink_session` instead."""
    from pytest_walredo.triage.replay import predict, resolve_binary, run_request

    output = args.output if args.output is not None else _default_output(args.file)
    if output.exists() and output.resolve() == args.file.resolve():
        raise TriageError(f"-o {output} is the input file; choose another output path")
    from pytest_walredo.triage.replay import version_note

    note = version_note(request, args.pg_version, args.flavour)
    if args.until == "differs":
        probe = predict(request, args.pg_version, args.flavour)
        if probe.unavailable is not None:
            raise TriageError(f"--until differs compares answers with the redo model, but {probe.unavailable}"
                              + (f" ({note})" if note else ""))
    if note is not None:
        out.write(f"note: {note}\n")

    failures: dict[bytes, Judged] = {}  # request bytes -> the judged run, for every failing run

    with tempfile.TemporaryDirectory(prefix="walredo-shrink-") as tmp:
        scratch = Path(tmp)
        binary = resolve_binary(args.walredo_bin, args.lib_dir, args.ref_fault, args.pg_version, args.flavour,
                                scratch)

        def fails(req: RedoRequest) -> bool:
            outcome = run_request(binary, req, args.timeout, scratch, args.hang_check)
            if outcome.status == "launch-error":
                raise TriageError(f"the walredo process could not be started: {outcome.message}")
            judged = judge(args, outcome.status, outcome.page, outcome.message, outcome.stderr, req)
            if judged.hit:
                failures[req.encode()] = judged
            return judged.hit

        try:
            result = shrink_request(request, fails, pg_version=args.pg_version, flavour=args.flavour,
                                    max_runs=args.max_runs)
        except NothingToShrink:
            out.write(nothing_to_shrink(args, "this request"))
            return 1

    data = result.request.encode()
    stem = output.with_name(output.name.removesuffix(".walredo"))
    written = write_result_entry(stem, result.request, args, answer=failures[data].page, request_path=output)
    orig_size = len(result.original.encode())
    lines = [f"shrink {args.file} --until {args.until}: {result.original.describe()}",
             f"  original failure: {failures[result.original.encode()].why}"]
    lines.extend(f"  {r}" for r in result.removed or ["nothing could be removed: the request is already minimal"])
    lines.append(f"  kept: {result.request.describe()}")
    for idx, (lsn, raw) in zip(result.kept_indices, result.request.records, strict=True):
        lines.append(f"    {_record_line(idx, lsn, raw, args.pg_version, args.flavour)}")
    lines.append(f"  minimal failure: {failures[data].why}")
    if result.exhausted:
        lines.append(f"  stopped after --max-runs {args.max_runs} runs: the result fails but may not be minimal")
    lines.append(f"wrote {output} ({len(data)} bytes, was {orig_size}) after {result.runs} run(s)")
    lines.append(f"  with {', '.join(p.name for p in written if p != output)} (a corpus entry)")
    out.write("\n".join(lines) + "\n")
    return 0
