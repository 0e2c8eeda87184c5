"""The corpus format: one layout for every walredo test case we write (pure: bytes and text
in, typed entries out; reading and writing folders is :mod:`pytest_walredo.corpus.folder`).

An entry named NAME is up to three files side by side:

- ``NAME.walredo``: the exact request stream, one ``B [P] A* G`` request (protocol.py).
- ``NAME.expected.page`` (optional): the 8192-byte page a correct walredo answers, compared
  under the entry's mask.
- ``NAME.json``: what the entry is. Keys (unknown keys are kept in ``extra`` and otherwise
  ignored; a missing or malformed key is one :class:`CorpusError` naming the file):

  ============  ===============================================================================
  pg_version    14, 15, 16 or 17: the PostgreSQL major version whose WAL the records are
  flavour       ``vanilla`` or ``neon`` (record layouts, see pg/version.py)
  kind          the record that made the entry, ``rmgr/NAME`` as pg_waldump names it
                (``Btree/SPLIT_L``, ``Heap/INSERT+INIT``)
  rel           [spcnode, dbnode, relnode] of the block; must match the request's B message
  fork          fork number (0 main, 1 fsm, 2 vm, 3 init)
  blk           block number
  end_lsn       the end LSN of the entry's record, ``X/Y`` (``0/16A9388``); equal to the last
                A message's LSN when the request has records
  mask          the rule the expected page is compared under: an rmgr name as pg_waldump
                prints it (``Heap``, ``Btree``, ``Gin``...) or ``none`` (byte for byte); see
                pg/mask
  source        free text: where the entry comes from
  ============  ===============================================================================

Invariant (checked by :func:`parse_entry`): a valid entry's request decodes as exactly one
request for (rel, fork, blk), and its expected page, when present, is 8192 bytes.

Other files may sit beside an entry and are ignored by corpus readers; the failure artifacts
of the plugin and ``pytest-walredo shrink`` write two: ``NAME.actual.page`` (what the walredo
under test answered) and ``NAME.session.walredo`` (everything its process received up to the
request; ``NAME.json`` then has a ``session`` key: ``{"file", "offset", "index"}``, the byte
offset and the call number of the request in that stream). :func:`request_meta` makes the
metadata of such a request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_walredo.lsn import format_lsn, parse_lsn
from pytest_walredo.pg.constants import BLCKSZ, MAX_FORKNUM
from pytest_walredo.pg.mask import RULES
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.protocol import ProtocolError, RedoRequest, RelTag

__all__ = [
    "ACTUAL_SUFFIX",
    "EXPECTED_SUFFIX",
    "META_SUFFIX",
    "NO_RECORDS_KIND",
    "REQUEST_SUFFIX",
    "SESSION_SUFFIX",
    "CorpusError",
    "Entry",
    "EntryMeta",
    "entry_files",
    "entry_name",
    "parse_entry",
    "parse_meta",
    "render_meta",
    "request_kind",
    "request_meta",
]

REQUEST_SUFFIX = ".walredo"
EXPECTED_SUFFIX = ".expected.page"
META_SUFFIX = ".json"
ACTUAL_SUFFIX = ".actual.page"
SESSION_SUFFIX = ".session.walredo"
NO_RECORDS_KIND = "none/NO_RECORDS"
"""``kind`` of a request without records."""

_KEYS = ("pg_version", "flavour", "kind", "rel", "fork", "blk", "end_lsn", "mask", "source")
_U32 = 0xFFFFFFFF
_KIND_RE = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_+ ()]+$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


class CorpusError(ValueError):
    """A corpus entry that is missing a file or has a malformed one; ``str()`` is one sentence
    naming the file."""


@dataclass(frozen=True)
class EntryMeta:
    """The contents of ``NAME.json``. ``extra`` keeps unknown keys (written back unchanged)."""

    pg_version: int
    flavour: Flavour
    kind: str
    rel: tuple[int, int, int]
    fork: int
    blk: int
    end_lsn: int
    mask: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rmgr(self) -> str:
        """The rmgr half of ``kind``."""
        return self.kind.split("/", 1)[0]


@dataclass(frozen=True)
class Entry:
    """One corpus entry: its name, metadata, request and optional expected page."""

    name: str
    meta: EntryMeta
    request: bytes = field(repr=False)
    expected: bytes | None = field(default=None, repr=False)

    def decoded_request(self) -> RedoRequest:
        """The request as a :class:`RedoRequest` (valid by construction of :func:`parse_entry`)."""
        return RedoRequest.decode(self.request)


def entry_name(kind: str, end_lsn: int, rel: tuple[int, int, int], fork: int, blk: int) -> str:
    """A file-system-safe name that sorts by kind, then LSN: ``Btree.SPLIT_L.0-016A9388.16384.0.3``."""
    base = f"{kind.replace('/', '.')}.{end_lsn >> 32:X}-{end_lsn & _U32:08X}.{rel[2]}.{fork}.{blk}"
    return _NAME_UNSAFE.sub("_", base)


def _fail(where: str, what: str) -> CorpusError:
    return CorpusError(f"{where}: {what}")


def _int(doc: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"key {key!r} must be an integer in {low}..{high}, got {value!r}")
    return value


def parse_meta(text: str | bytes, where: str) -> EntryMeta:
    """Parse and validate ``NAME.json``; ``where`` names the file in errors."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(where, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _fail(where, f"expected a JSON object, got {type(doc).__name__}")
    missing = [k for k in _KEYS if k not in doc]
    if missing:
        raise _fail(where, f"missing key(s) {', '.join(missing)}")
    pg_version = doc["pg_version"]
    if pg_version not in SUPPORTED_VERSIONS or isinstance(pg_version, bool):
        raise _fail(where, f"key 'pg_version' must be one of {SUPPORTED_VERSIONS}, got {pg_version!r}")
    try:
        flavour = Flavour.parse(doc["flavour"])
    except ValueError:
        raise _fail(where, f"key 'flavour' must be 'vanilla' or 'neon', got {doc['flavour']!r}") from None
    kind = doc["kind"]
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise _fail(where, f"key 'kind' must be rmgr/NAME like 'Btree/SPLIT_L', got {kind!r}")
    rel = doc["rel"]
    if (not isinstance(rel, list) or len(rel) != 3
            or any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= _U32 for x in rel)):
        raise _fail(where, f"key 'rel' must be [spcnode, dbnode, relnode] (u32 each), got {rel!r}")
    fork = _int(doc, "fork", where, 0, MAX_FORKNUM)
    blk = _int(doc, "blk", where, 0, _U32 - 1)
    end_lsn_text = doc["end_lsn"]
    if not isinstance(end_lsn_text, str) or "/" not in end_lsn_text:
        raise _fail(where, f"key 'end_lsn' must be an LSN like '0/16A9388', got {end_lsn_text!r}")
    try:
        end_lsn = parse_lsn(end_lsn_text)
    except ValueError:
        raise _fail(where, f"key 'end_lsn' must be an LSN like '0/16A9388', got {end_lsn_text!r}") from None
    mask = doc["mask"]
    if mask not in RULES:
        raise _fail(where, f"key 'mask' must be one of {', '.join(RULES)}, got {mask!r}")
    source = doc["source"]
    if not isinstance(source, str):
        raise _fail(where, f"key 'source' must be a string, got {source!r}")
    extra = {k: v for k, v in doc.items() if k not in _KEYS}
    return EntryMeta(pg_version, flavour, kind, (rel[0], rel[1], rel[2]), fork, blk, end_lsn, mask,
                     source, extra)


def render_meta(meta: EntryMeta) -> str:
    """``NAME.json`` text for ``meta`` (known keys first, then ``extra``)."""
    doc: dict[str, Any] = {
        "pg_version": meta.pg_version, "flavour": meta.flavour.value, "kind": meta.kind,
        "rel": list(meta.rel), "fork": meta.fork, "blk": meta.blk,
        "end_lsn": format_lsn(meta.end_lsn), "mask": meta.mask, "source": meta.source,
    }
    doc.update({k: v for k, v in meta.extra.items() if k not in doc})
    return json.dumps(doc, indent=1) + "\n"


def parse_entry(name: str, meta_text: str | bytes, request: bytes, expected: bytes | None, *,
                where: str | None = None) -> Entry:
    """Validate one entry's three parts (see the module docstring) into an :class:`Entry` named
    ``name``. ``where`` (default ``name``) is how errors name the files: ``where`` + suffix."""
    base = name if where is None else where
    meta = parse_meta(meta_text, base + META_SUFFIX)
    where = base + REQUEST_SUFFIX
    try:
        req = RedoRequest.decode(request)
    except (ProtocolError, ValueError) as exc:
        raise _fail(where, f"not one walredo request: {exc}") from None
    want = RelTag(*meta.rel, meta.fork)
    if req.rel != want or req.blknum != meta.blk:
        raise _fail(where, f"the request is for {req.tag}, but {base + META_SUFFIX} says "
                           f"rel {list(meta.rel)} fork {meta.fork} blk {meta.blk}")
    if req.records and req.records[-1][0] != meta.end_lsn:
        raise _fail(where, f"the last record ends at {format_lsn(req.records[-1][0])}, but "
                           f"{base + META_SUFFIX} says end_lsn {format_lsn(meta.end_lsn)}")
    if expected is not None and len(expected) != BLCKSZ:
        raise _fail(base + EXPECTED_SUFFIX, f"{len(expected)} bytes, expected a {BLCKSZ}-byte page")
    return Entry(name, meta, bytes(request), None if expected is None else bytes(expected))


def entry_files(entry: Entry) -> dict[str, bytes]:
    """File name -> contents of ``entry`` (two or three files)."""
    files = {entry.name + REQUEST_SUFFIX: entry.request,
             entry.name + META_SUFFIX: render_meta(entry.meta).encode()}
    if entry.expected is not None:
        files[entry.name + EXPECTED_SUFFIX] = entry.expected
    return files


def request_kind(request: RedoRequest, pg_version: int) -> str:
    """The ``kind`` of any request: its last record as pg_waldump names it (``Heap/INSERT``),
    :data:`NO_RECORDS_KIND` without records, ``unknown/UNDECODABLE`` when it does not decode."""
    if not request.records:
        return NO_RECORDS_KIND
    from pytest_walredo.pg.rmgr.ids import rmgr_name
    from pytest_walredo.pg.rmgr.names import record_name
    from pytest_walredo.pg.xlogrecord import decode_record

    try:
        rec = decode_record(request.records[-1][1], pg_version)
    except ValueError:
        return "unknown/UNDECODABLE"
    name = record_name(rec.rmid, rec.info, pg_version) or f"UNKNOWN (0x{rec.info & 0xF0:02X})"
    return f"{rmgr_name(rec.rmid)}/{name}"


def request_meta(request: RedoRequest, *, pg_version: int, flavour: Flavour, source: str,
                 mask: str = "none", extra: dict[str, Any] | None = None) -> EntryMeta:
    """The metadata of an entry for ``request`` (a failing input rather than a record cut from
    WAL): its kind, block and end LSN from the request; ``mask`` ``none`` by default (compared
    byte for byte, as a test compares pages)."""
    rel = request.rel
    end = request.records[-1][0] if request.records else 0
    return EntryMeta(pg_version, flavour, request_kind(request, pg_version),
                     (rel.spcnode, rel.dbnode, rel.relnode), rel.forknum, request.blknum, end, mask,
                     source, dict(extra or {}))
