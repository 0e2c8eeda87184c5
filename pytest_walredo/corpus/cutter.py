"""Cut walredo test cases out of a stream of real WAL records (pure: records in, entries out).

For every block reference of the main fork whose record carries a consistency image (an image
without BKPIMAGE_APPLY, which ``wal_consistency_checking`` adds: the page as the primary had it
right after the change) we know the expected answer. We cut a request for it when we also
know what the pageserver would send before it:

- the block's state is tracked from its first sight: an XLOG full-page image (the pageserver
  stores it as a page image: the base ``P``, pd_lsn set to the record's end unless the page is
  new), a record that initializes the block (WILL_INIT) or restores it from an applicable image
  (the first ``A`` of the request, no ``P``), or, when nothing else is known, the consistency
  image of the record before (the page as the primary had it, pd_lsn set to that record's end);
- records touching the block since then are the request's ``A`` messages, up to
  ``max_records``; a longer chain is rebased on the latest consistency image;
- a record that initializes the block starts a request of its own (``B A G``).

Forgetting: Storage CREATE and TRUNCATE records drop what is known of the relation (a new or
truncated file). Only the main fork is cut: a visibility-map page would be compared under the
heap rule, which masks its whole bitmap, so it would test nothing.

Selection: :func:`cut_entries` walks the records twice; the first walk counts the candidates of
each kind (``rmgr/NAME``), the second keeps up to ``per_kind`` of each, spread evenly over the
run (the first, the last and evenly spaced ones between).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pytest_walredo.corpus.format import Entry, EntryMeta, entry_name
from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg.constants import BLCKSZ, MAIN_FORKNUM
from pytest_walredo.pg.mask import RULES, masked_equal
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.rmgr.ids import RM_SMGR_ID, RM_XLOG_ID, rmgr_name
from pytest_walredo.pg.rmgr.names import record_name
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import DecodedRecord, ImageRef, RecordDecodeError, decode_record
from pytest_walredo.protocol import RedoRequest, RelTag

__all__ = ["CutError", "CutOptions", "CutStats", "cut_entries", "spread"]

XLOG_SMGR_CREATE = 0x10
XLOG_SMGR_TRUNCATE = 0x20

Records = Callable[[], Iterable[tuple[int, bytes]]]
"""Returns a fresh iterator of (end LSN as walredo receives it, raw XLogRecord), in WAL order."""


class CutError(ValueError):
    """A record that cannot be decoded; the message names its LSN."""


@dataclass(frozen=True)
class CutOptions:
    """``per_kind``: entries kept per kind; ``max_records``: A messages per request at most;
    ``source``: the entries' source text; ``labels``: (first LSN, workload name) in LSN order,
    appended to the source of entries whose record ends at or after that LSN."""

    per_kind: int = 3
    max_records: int = 4
    source: str = "real PostgreSQL WAL"
    labels: tuple[tuple[int, str], ...] = ()

    def source_at(self, end_lsn: int) -> str:
        i = bisect.bisect_right([lsn for lsn, _ in self.labels], end_lsn) - 1
        return self.source if i < 0 else f"{self.source}, workload {self.labels[i][1]}"


@dataclass
class CutStats:
    """What the walk saw: records, candidates per kind, entries kept per kind, and candidates
    examined and dropped because they test nothing."""

    records: int = 0
    candidates: Counter[str] | None = None
    kept: Counter[str] | None = None
    tests_nothing: Counter[str] | None = None


_Image = tuple[ImageRef, int]
"""A page image as logged, and the end LSN of its record; restored only when an entry needs it
(restoring means decompressing, which a walk over every record should not pay for)."""


@dataclass
class _State:
    base: _Image | None  # the P message (materialized), or None
    records: list[tuple[int, bytes]]  # the A messages so far
    last_image: _Image | None  # latest image of the page after the last record


def _materialize(image: _Image) -> bytes:
    """A page image as the pageserver would hold it after the record ending at the image's
    LSN: pd_lsn set to it, except on a new page (pd_upper 0), which keeps its LSN."""
    page = Page(image[0].restore_page())
    if page.upper:
        page.lsn = image[1]
    return page.to_bytes()


def spread(n: int, k: int) -> set[int]:
    """``k`` indices out of ``range(n)``, evenly spaced, first and last included."""
    if n <= k:
        return set(range(n))
    if k == 1:
        return {n // 2}
    return {round(i * (n - 1) / (k - 1)) for i in range(k)}


def _forget_rel(states: dict[tuple[int, int, int, int, int], _State], rec: DecodedRecord) -> None:
    main = rec.main_data
    info = rec.info & 0xF0
    if info == XLOG_SMGR_CREATE and len(main) >= 12:
        rel = tuple(int.from_bytes(main[i:i + 4], "little") for i in (0, 4, 8))
        first = 0
    elif info == XLOG_SMGR_TRUNCATE and len(main) >= 16:
        first = int.from_bytes(main[0:4], "little")
        rel = tuple(int.from_bytes(main[i:i + 4], "little") for i in (4, 8, 12))
    else:
        return
    for key in [k for k in states if k[:3] == rel and k[4] >= first]:
        del states[key]


def _walk(records: Iterable[tuple[int, bytes]], pg_version: int, flavour: Flavour, options: CutOptions,
          want: Callable[[str, int], bool], emit: Callable[[Entry, int], None]) -> tuple[int, Counter[str]]:
    """Track every main-fork block through ``records``; for each candidate (index ``i`` of its
    kind) that ``want(kind, i)``, build the entry and call ``emit(entry, i)``. Returns the number of
    records and the candidates per kind."""
    states: dict[tuple[int, int, int, int, int], _State] = {}
    seen: Counter[str] = Counter()
    count = 0
    for end_lsn, raw in records:
        count += 1
        try:
            rec = decode_record(raw, pg_version)
        except RecordDecodeError as exc:
            raise CutError(f"the record ending at {format_lsn(end_lsn)} cannot be decoded: {exc}") from None
        if rec.rmid == RM_SMGR_ID:
            _forget_rel(states, rec)
            continue
        rmgr = rmgr_name(rec.rmid)
        done: set[tuple[int, int, int, int, int]] = set()
        for b in rec.blocks:
            key = (b.spcnode, b.dbnode, b.relnode, b.forknum, b.blkno)
            if b.forknum != MAIN_FORKNUM or key in done:
                continue
            done.add(key)
            img = b.image
            if rec.rmid == RM_XLOG_ID:
                if img is not None and img.apply:
                    states[key] = _State((img, end_lsn), [], None)
                else:
                    states.pop(key, None)
                continue
            if img is not None and img.apply:
                states[key] = _State(None, [(end_lsn, raw)], (img, end_lsn))
                continue
            check = img  # the consistency image (no APPLY), if any
            after = (check, end_lsn) if check is not None else None
            state = states.get(key)
            if b.will_init:
                prior = _State(None, [], None)
            elif state is None:
                if after is not None:  # unknown before, known from here on
                    states[key] = _State(after, [], None)
                continue
            else:
                prior = state
                if len(prior.records) >= options.max_records and prior.last_image is not None:
                    prior = _State(prior.last_image, [], None)
            chain = [*prior.records, (end_lsn, raw)]
            states[key] = _State(prior.base, chain, after)
            if check is None or rmgr not in RULES:
                continue
            name = record_name(rec.rmid, rec.info, pg_version) or f"UNKNOWN ({rec.info & 0xF0:x})"
            kind = f"{rmgr}/{name}"
            index = seen[kind]
            seen[kind] += 1
            if not want(kind, index):
                continue
            rel = (b.spcnode, b.dbnode, b.relnode)
            base = _materialize(prior.base) if prior.base is not None else None
            request = RedoRequest(RelTag(*rel, b.forknum), b.blkno, base, tuple(chain))
            meta = EntryMeta(pg_version, flavour, kind, rel, b.forknum, b.blkno, end_lsn, rmgr,
                             options.source_at(end_lsn))
            entry = Entry(entry_name(kind, end_lsn, rel, b.forknum, b.blkno), meta, request.encode(),
                          check.restore_page())
            emit(entry, index)
    return count, seen


def _tests_nothing(entry: Entry, base: bytes | None) -> bool:
    """Whether the expected page equals, under the entry's mask, what a walredo that ignores
    every record answers (the pushed page, or a zero page): such an entry cannot fail."""
    assert entry.expected is not None
    return masked_equal(entry.expected, base if base is not None else bytes(BLCKSZ), entry.meta.mask,
                        entry.meta.blk)


def cut_entries(records: Records, *, pg_version: int, flavour: Flavour | str = Flavour.VANILLA,
                options: CutOptions = CutOptions()) -> tuple[list[Entry], CutStats]:
    """Entries cut from the WAL ``records()`` yields (called twice), up to ``options.per_kind``
    per kind, with the statistics of the walk. Raises :class:`CutError` for an undecodable
    record.

    An entry that tests nothing (its expected page equals, under its mask, the page a walredo
    that ignores every record answers) is never kept: the next candidate of its kind takes its
    place. So a walredo that answers the pushed image alone fails every entry.
    """
    fl = Flavour.parse(flavour)
    if options.per_kind < 1 or options.max_records < 1:
        raise ValueError("per_kind and max_records must be at least 1")
    _n, counts = _walk(records(), pg_version, fl, options, lambda _k, _i: False, lambda _e, _i: None)
    targets = {kind: spread(n, options.per_kind) for kind, n in counts.items()}
    owed: Counter[str] = Counter()  # targets that tested nothing, to be replaced by later candidates
    skipped: Counter[str] = Counter()
    out: list[Entry] = []

    def want(kind: str, index: int) -> bool:
        return index in targets[kind] or owed[kind] > 0

    def emit(entry: Entry, index: int) -> None:
        kind = entry.meta.kind
        is_target = index in targets[kind]
        if _tests_nothing(entry, entry.decoded_request().base_image):
            skipped[kind] += 1
            owed[kind] += is_target
            return
        owed[kind] -= not is_target
        out.append(entry)

    n, _ = _walk(records(), pg_version, fl, options, want, emit)
    kept = Counter(e.meta.kind for e in out)
    return out, CutStats(n, counts, kept, skipped)
