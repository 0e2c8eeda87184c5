"""Judging corpus entries (pure): does an entry apply to a walredo of a given version and
flavour, does an answer match the expected page under the entry's mask, does the redo model
support the entry's records, what does the model answer, and the per-kind table of verdicts.

Verdicts: ``matched`` (the answer equals the expected page under the mask), ``differing``
(it does not), ``failed`` (no answer: the walredo died, broke the protocol or timed out),
``unsupported`` (the oracle cannot judge the entry: when the walredo under test is our embedded
reference, an entry with a record kind the model does not implement is reported so, whatever
the answer, never as a pass).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_walredo.corpus.format import Entry
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.constants import BLCKSZ
from pytest_walredo.pg.mask import NO_MASK, RULES, masked_equal
from pytest_walredo.pg.rmgr.ids import RM_XLOG_ID
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import RecordDecodeError, decode_header, decode_record
from pytest_walredo.protocol import RedoRequest

__all__ = ["EntryResult", "Verdict", "entry_applies", "judge_answer", "kind_table", "model_answer",
           "model_unsupported", "request_mask"]


class Verdict(str, enum.Enum):
    MATCHED = "matched"
    DIFFERING = "differing"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class EntryResult:
    """One entry's verdict; ``detail`` says why (the error, the unsupported record...)."""

    name: str
    kind: str
    verdict: Verdict
    detail: str = ""


def entry_applies(entry: Entry, pg_version: int, flavour: Flavour) -> str | None:
    """Why ``entry`` does not apply to a walredo of PostgreSQL ``pg_version`` and ``flavour``
    (None: it applies). The one rule for every corpus replay:

    - the major version must match: WAL is not compatible across major versions;
    - the flavour must match only when a record of the request is laid out differently in
      vanilla and Neon WAL (:func:`pytest_walredo.pg.rmgr.flavour_dependent_layout`: heap
      records with ``t_cid`` in PG14/15, Neon's rmgr 134 in PG16/17). Every other entry, every
      non-heap rmgr's included, applies to both flavours; where the flavours' redo differs on
      those records (heap2 VISIBLE's pd_lsn, btree split cycle ids) the masking rules hide it.
    """
    meta = entry.meta
    if meta.pg_version != pg_version:
        return f"the entry is PostgreSQL {meta.pg_version} WAL, the walredo replays PostgreSQL {pg_version}"
    if meta.flavour is flavour:
        return None
    for lsn, raw in entry.decoded_request().records:
        try:
            _tot, _xid, _prev, info, rmid, _pad, _crc = decode_header(raw)
        except (RecordDecodeError, ValueError) as exc:
            return f"a record cannot be decoded: {exc}"
        if rmgr.flavour_dependent_layout(rmid, info, pg_version):
            from pytest_walredo.lsn import format_lsn
            from pytest_walredo.pg.rmgr.names import record_name

            name = record_name(rmid, info, pg_version) or f"info 0x{info & 0xF0:02X}"
            return (f"the entry is {meta.flavour.value} WAL and its record {rmgr.rmgr_name(rmid)}/{name} "
                    f"at {format_lsn(lsn)} is laid out differently for a {flavour.value} walredo")
    return None


def request_mask(request: RedoRequest, pg_version: int) -> str:
    """The masking rule for an answer to ``request``: the rule of the rmgr of its last record
    that is not an XLOG record (full-page images carry no page type), or ``none`` (byte for
    byte) when there is no such record or no rule for its rmgr."""
    for _lsn, raw in reversed(request.records):
        try:
            rmid = decode_header(raw)[4]
        except (RecordDecodeError, ValueError):
            return NO_MASK
        if rmid == RM_XLOG_ID:
            continue
        name = rmgr.rmgr_name(rmid)
        return name if name in RULES else NO_MASK
    return NO_MASK


def model_unsupported(entry: Entry) -> str | None:
    """Why the redo model cannot replay ``entry`` (the first record kind it does not implement,
    as ``rmgr/NAME``), or None when it implements every record of the request. A record whose
    image for the requested block is applied needs no redo routine: the model restores it."""
    meta = entry.meta
    req = entry.decoded_request()
    known = set(rmgr.supported_records(meta.pg_version, meta.flavour))
    target = (req.rel.spcnode, req.rel.dbnode, req.rel.relnode, req.rel.forknum, req.blknum)
    for _lsn, raw in req.records:
        try:
            rec = decode_record(raw, meta.pg_version)
        except RecordDecodeError as exc:
            return f"a record cannot be decoded: {exc}"
        mine = [b for b in rec.blocks if (b.spcnode, b.dbnode, b.relnode, b.forknum, b.blkno) == target]
        if mine and all(b.apply_image for b in mine):
            continue
        try:
            body = rmgr.parse(rec, meta.pg_version, meta.flavour)
        except (rmgr.UnsupportedRecord, rmgr.RmgrDecodeError, ValueError):
            body = None
        if body is None or type(body) not in known:
            from pytest_walredo.pg.rmgr.names import record_name

            name = record_name(rec.rmid, rec.info, meta.pg_version) or f"info 0x{rec.info & 0xF0:02X}"
            return f"{rmgr.rmgr_name(rec.rmid)}/{name} is not implemented by the redo model"
    return None


def model_answer(entry: Entry) -> bytes:
    """The redo model's page for ``entry`` (an all-zero page when nothing initializes it).
    Raises the model's ``RedoError`` when it refuses a record."""
    from pytest_walredo.pg.redo import redo_record

    req = entry.decoded_request()
    page = req.base_image
    for lsn, raw in req.records:
        page = redo_record(page, spcnode=req.rel.spcnode, dbnode=req.rel.dbnode, relnode=req.rel.relnode,
                           forknum=req.rel.forknum, blkno=req.blknum, end_lsn=lsn, record=raw,
                           pg_version=entry.meta.pg_version, flavour=entry.meta.flavour)
    return bytes(BLCKSZ) if page is None else bytes(page)


def judge_answer(entry: Entry, page: bytes | None, error: str | None = None, *,
                 unsupported: str | None = None) -> EntryResult:
    """The verdict for ``entry`` given the walredo's answer ``page`` (None with ``error`` when it
    gave none). ``unsupported``: the oracle cannot judge this entry (see :func:`model_unsupported`)
    and the verdict is ``unsupported`` whatever the answer."""
    kind = entry.meta.kind
    if unsupported is not None:
        return EntryResult(entry.name, kind, Verdict.UNSUPPORTED, unsupported)
    if page is None:
        return EntryResult(entry.name, kind, Verdict.FAILED, error or "no answer")
    if entry.expected is None:
        return EntryResult(entry.name, kind, Verdict.UNSUPPORTED, "the entry has no expected page")
    if masked_equal(entry.expected, page, entry.meta.mask, entry.meta.blk):
        return EntryResult(entry.name, kind, Verdict.MATCHED)
    return EntryResult(entry.name, kind, Verdict.DIFFERING, f"differs from the expected page under mask "
                                                            f"{entry.meta.mask}")


def kind_table(results: Iterable[EntryResult]) -> str:
    """A text table: one row per kind with its matched / differing / failed / unsupported
    counts, and a total row."""
    counts: dict[str, Counter[Verdict]] = {}
    for r in results:
        counts.setdefault(r.kind, Counter())[r.verdict] += 1
    cols = list(Verdict)
    width = max([len("kind"), len("total"), *map(len, counts)])
    lines = [f"{'kind':{width}} " + " ".join(f"{v.value:>11}" for v in cols)]
    total: Counter[Verdict] = Counter()
    for kind in sorted(counts):
        total.update(counts[kind])
        lines.append(f"{kind:{width}} " + " ".join(f"{counts[kind][v]:>11}" for v in cols))
    lines.append(f"{'total':{width}} " + " ".join(f"{total[v]:>11}" for v in cols))
    return "\n".join(lines) + "\n"
