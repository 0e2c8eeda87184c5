"""What a walredo stream, a WAL record or a page holds, as plain data and as text: the pure
views behind ``pytest-walredo inspect`` (:mod:`pytest_walredo.triage.inspect`, which adds file
reading) and the plugin's ``.decode.txt`` failure artifacts.

Two layers, so ``--json`` and the text output can never disagree:

* :func:`inspect_bytes` / :func:`page_summary` / :func:`record_summary` build plain
  JSON-ready dicts (the schema is documented on each function);
* :func:`render_report` / :func:`render_page_summary` turn those dicts into text.

Invariant: :func:`inspect_bytes` raises nothing but :class:`NotAStream` for its input. A stream
that does not decode at the protocol level is NotAStream (there is nothing to show); a message
that decodes but whose WAL record or page content is malformed is reported *inside* the result
(``"error"`` keys), because showing what is wrong with it is the point of inspecting it.
``tests/test_fuzz_decoder.py`` checks this on 10,000+ mutated inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_walredo.lsn import format_lsn
from pytest_walredo.pg import rmgr
from pytest_walredo.pg.btree_page import (
    BT_OPAQUE_SIZE,
    INDEX_NULL_MASK,
    INDEX_VAR_MASK,
    BTPageOpaque,
    IndexTuple,
)
from pytest_walredo.pg.constants import FORK_NAMES
from pytest_walredo.pg.page import (
    BLCKSZ,
    ITEM_ID_SIZE,
    LP_FLAG_NAMES,
    LP_NORMAL,
    PD_ALL_VISIBLE,
    PD_HAS_FREE_LINES,
    PD_PAGE_FULL,
    SIZE_OF_PAGE_HEADER,
    Page,
    PageView,
    page_header_problem,
    parse_page,
)
from pytest_walredo.pg.tuple import SIZEOF_HEAP_TUPLE_HEADER, HeapTupleHeader, infomask2_names, infomask_names
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.xlogrecord import (
    BKPBLOCK_HAS_DATA,
    BKPBLOCK_HAS_IMAGE,
    BKPBLOCK_SAME_REL,
    BKPBLOCK_WILL_INIT,
    BlockRef,
    DecodedRecord,
    ImageRef,
    decode_record,
    verify_crc,
)
from pytest_walredo.protocol import (
    ApplyRecord,
    BeginRedoForBlock,
    GetPage,
    Message,
    ProtocolError,
    PushPage,
    RequestShapeError,
    decode_stream,
    group_requests,
)

__all__ = [
    "FORK_NAMES",
    "NotAStream",
    "heap_tuple_summary",
    "index_tuple_summary",
    "inspect_bytes",
    "page_summary",
    "record_summary",
    "render_page_summary",
    "render_report",
]


_PD_FLAG_NAMES = ((PD_HAS_FREE_LINES, "HAS_FREE_LINES"), (PD_PAGE_FULL, "PAGE_FULL"),
                  (PD_ALL_VISIBLE, "ALL_VISIBLE"))
_BLOCK_FLAG_NAMES = ((BKPBLOCK_HAS_IMAGE, "HAS_IMAGE"), (BKPBLOCK_HAS_DATA, "HAS_DATA"),
                     (BKPBLOCK_WILL_INIT, "WILL_INIT"), (BKPBLOCK_SAME_REL, "SAME_REL"))

# Index tuples and btree special space come from the page model (pg/btree_page.py); telling a
# btree page from another index page is inspect's own business: a 16-byte special space is
# shared by btree, GiST and hash pages, and its last u16 tells them apart: GiST and hash store
# a page id there (GIST_PAGE_ID 0xFF81, HASHO_PAGE_ID 0xFF80), btree its vacuum cycle id
# (btpo_cycleid), which never exceeds MAX_BT_CYCLE_ID 0xFF7F.
_INDEX_TUPLE_HEADER_SIZE = len(IndexTuple(0, 0, 0).pack())  # sizeof(IndexTupleData)
_INDEX_INFO_NAMES = ((INDEX_VAR_MASK, "HAS_VARWIDTH"), (INDEX_NULL_MASK, "HAS_NULLS"))
_MAX_BT_CYCLE_ID = 0xFF7F
_SPECIAL_PAGE_IDS = {0xFF80: "hash", 0xFF81: "gist"}

PREVIEW_BYTES = 16
"""How many tuple data bytes the text output shows (``--json`` carries all of them)."""


def _names(value: int, table: Sequence[tuple[int, str]]) -> list[str]:
    return [name for bit, name in table if value & bit]


def _flag_text(value: int, names: Sequence[str], width: int = 4) -> str:
    return f"0x{value:0{width}X}" + (f" ({'|'.join(names)})" if names else "")


def _hex_preview(data: str, limit: int = PREVIEW_BYTES) -> str:
    """``data`` is hex; show at most ``limit`` bytes of it."""
    if len(data) <= 2 * limit:
        return data
    return f"{data[: 2 * limit]}... ({len(data) // 2} bytes)"


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def _page_kind(view: PageView, data: bytes) -> str:
    h = view.header
    if h.upper == 0 and not any(data):
        return "new"  # PageIsNew and all zeros: what a walredo returns for an unknown block
    if page_header_problem(data) is not None:
        return "corrupt"
    special_size = BLCKSZ - h.special
    if special_size == 0:
        return "heap"
    if special_size == BT_OPAQUE_SIZE:
        last = BTPageOpaque.unpack(data).cycleid  # or a GiST/hash page id in the same place
        return "btree" if last <= _MAX_BT_CYCLE_ID else _SPECIAL_PAGE_IDS.get(last, "index")
    return "index"


def heap_tuple_summary(item: bytes) -> dict[str, Any]:
    """The HeapTupleHeaderData fields of ``item`` plus its data after ``t_hoff``.

    Schema: ``t_xmin, t_xmax, t_cid, t_ctid [blk, off], t_infomask2, natts,
    infomask2_flags [names], t_infomask, infomask_flags [names], t_hoff, data_len, data (hex)``
    or ``{"error": reason}`` when the item is shorter than the 23-byte header.
    """
    if len(item) < SIZEOF_HEAP_TUPLE_HEADER:
        return {"error": f"item is {len(item)} bytes, shorter than a {SIZEOF_HEAP_TUPLE_HEADER}-byte heap "
                         f"tuple header"}
    h = HeapTupleHeader.unpack(item)
    data = item[min(max(h.hoff, SIZEOF_HEAP_TUPLE_HEADER), len(item)):]
    out: dict[str, Any] = {
        "t_xmin": h.xmin, "t_xmax": h.xmax, "t_cid": h.cid, "t_ctid": list(h.ctid),
        "t_infomask2": h.infomask2, "natts": h.natts, "infomask2_flags": infomask2_names(h.infomask2),
        "t_infomask": h.infomask, "infomask_flags": infomask_names(h.infomask),
        "t_hoff": h.hoff, "data_len": len(data), "data": data.hex(),
    }
    if h.hoff > len(item):
        out["error"] = f"t_hoff {h.hoff} is beyond the item's {len(item)} bytes"
    return out


def index_tuple_summary(item: bytes) -> dict[str, Any]:
    """IndexTupleData fields: ``t_tid [blk, off], t_info, size, info_flags, data_len, data``."""
    if len(item) < _INDEX_TUPLE_HEADER_SIZE:
        return {"error": f"item is {len(item)} bytes, shorter than an {_INDEX_TUPLE_HEADER_SIZE}-byte index "
                         f"tuple header"}
    t = IndexTuple.unpack(item)
    return {"t_tid": [t.tid_block, t.tid_offset], "t_info": t.info, "size": t.size,
            "info_flags": _names(t.info, _INDEX_INFO_NAMES), "data_len": len(t.data), "data": t.data.hex()}


def page_summary(page: bytes) -> dict[str, Any]:
    """A structured summary of any 8192 bytes.

    Schema::

        {"kind": "heap"|"btree"|"gist"|"hash"|"index"|"new"|"corrupt",
         "header": {"lsn", "checksum", "flags", "flag_names", "lower", "upper", "special",
                    "pagesize", "layout_version", "prune_xid"},
         "problem": str|None,         # why PageIsVerified-style checks fail, if they do
         "free_space": int,           # pd_upper - pd_lower (never negative)
         "line_pointers": [{"offnum", "flags", "off", "len"}],
         "tuples": [{"offnum", **heap_tuple_summary or index_tuple_summary}],
         "special": {...} | None}     # btree opaque fields, or the raw bytes' hex
    """
    if len(page) != BLCKSZ:
        raise ValueError(f"a page is {BLCKSZ} bytes, got {len(page)}")
    data = bytes(page)
    view = parse_page(data)
    h = view.header
    kind = _page_kind(view, data)
    out: dict[str, Any] = {
        "kind": kind,
        "header": {
            "lsn": format_lsn(h.lsn), "checksum": h.checksum, "flags": h.flags,
            "flag_names": _names(h.flags, _PD_FLAG_NAMES), "lower": h.lower, "upper": h.upper,
            "special": h.special, "pagesize": h.pagesize, "layout_version": h.layout_version,
            "prune_xid": h.prune_xid,
        },
        "problem": Page(data).problem(),
        "free_space": max(0, h.upper - h.lower),
        "line_pointers": [],
        "tuples": [],
        "special": None,
    }
    if kind == "new":
        return out
    for offnum, lp in enumerate(view.line_pointers, start=1):
        out["line_pointers"].append({"offnum": offnum, "flags": LP_FLAG_NAMES[lp.flags], "off": lp.off,
                                     "len": lp.len})
        if lp.flags != LP_NORMAL or not lp.has_storage:
            continue
        if lp.off < SIZE_OF_PAGE_HEADER + ITEM_ID_SIZE * len(view.line_pointers) or lp.off + lp.len > BLCKSZ:
            out["tuples"].append({"offnum": offnum, "error": f"line pointer points outside the tuple space "
                                                             f"(off {lp.off}, len {lp.len})"})
            continue
        item = data[lp.off: lp.off + lp.len]
        fields = heap_tuple_summary(item) if kind in ("heap", "corrupt") else index_tuple_summary(item)
        out["tuples"].append({"offnum": offnum, **fields})
    if SIZE_OF_PAGE_HEADER <= h.special < BLCKSZ:
        raw = data[h.special:]
        if kind == "btree":
            op = BTPageOpaque.unpack(data)  # the special space is exactly its 16 bytes here
            out["special"] = {"btpo_prev": op.prev, "btpo_next": op.next, "btpo_level": op.level,
                              "btpo_flags": op.flags, "btpo_flag_names": op.flag_names(),
                              "btpo_cycleid": op.cycleid}
        else:
            out["special"] = {"size": len(raw), "data": raw.hex()}
    return out


def render_page_summary(s: dict[str, Any], indent: str = "", title: str = "page") -> list[str]:
    """Text lines for a :func:`page_summary` dict; runs of UNUSED line pointers share a line."""
    h = s["header"]
    lines = [
        f"{indent}{title} ({s['kind']}): lsn {h['lsn']}, checksum 0x{h['checksum']:04X}, "
        f"flags {_flag_text(h['flags'], h['flag_names'])}, lower {h['lower']}, upper {h['upper']}, "
        f"special {h['special']}, pagesize {h['pagesize']}, version {h['layout_version']}, "
        f"prune_xid {h['prune_xid']}"
    ]
    if s["kind"] == "new":
        lines.append(f"{indent}  all zeros: a new (never initialized) page")
        return lines
    if s["problem"]:
        lines.append(f"{indent}  problem: {s['problem']}")
    counts: dict[str, int] = {}
    for lp in s["line_pointers"]:
        counts[lp["flags"]] = counts.get(lp["flags"], 0) + 1
    by_flag = ", ".join(f"{n} {flag}" for flag, n in counts.items())
    lines.append(f"{indent}  {len(s['line_pointers'])} line pointer(s)" + (f" ({by_flag})" if by_flag else "")
                 + f", free space {s['free_space']} bytes")
    tuples = {t["offnum"]: t for t in s["tuples"]}
    lps = s["line_pointers"]
    i = 0
    while i < len(lps):
        lp = lps[i]
        j = i
        # a run of plain unused slots (flags UNUSED, off 0, len 0) is shown as one line
        while (j + 1 < len(lps) and lp["flags"] == "UNUSED" and lp["off"] == lp["len"] == 0
               and lps[j + 1] == {**lp, "offnum": lps[j + 1]["offnum"]}):
            j += 1
        if j > i:
            lines.append(f"{indent}  lp {lp['offnum']}-{lps[j]['offnum']}: UNUSED off 0 len 0")
        else:
            text = f"{indent}  lp {lp['offnum']}: {lp['flags']} off {lp['off']} len {lp['len']}"
            t = tuples.get(lp["offnum"])
            if t is not None:
                text += " | " + _tuple_text(t)
            lines.append(text)
        i = j + 1
    sp = s["special"]
    if sp is not None:
        if "btpo_flags" in sp:
            lines.append(f"{indent}  special (btree): prev {sp['btpo_prev']}, next {sp['btpo_next']}, "
                         f"level {sp['btpo_level']}, flags {_flag_text(sp['btpo_flags'], sp['btpo_flag_names'])}, "
                         f"cycleid {sp['btpo_cycleid']}")
        else:
            lines.append(f"{indent}  special: {sp['size']} bytes {_hex_preview(sp['data'])}")
    return lines


def _tuple_text(t: dict[str, Any]) -> str:
    if "t_xmin" in t:
        text = (f"xmin {t['t_xmin']} xmax {t['t_xmax']} cid {t['t_cid']} ctid ({t['t_ctid'][0]},{t['t_ctid'][1]}) "
                f"natts {t['natts']} infomask2 {_flag_text(t['t_infomask2'], t['infomask2_flags'])} "
                f"infomask {_flag_text(t['t_infomask'], t['infomask_flags'])} hoff {t['t_hoff']} "
                f"data {_hex_preview(t['data'])}")
    elif "t_tid" in t:
        text = (f"tid ({t['t_tid'][0]},{t['t_tid'][1]}) size {t['size']} "
                f"info {_flag_text(t['t_info'], t['info_flags'])} data {_hex_preview(t['data'])}")
    else:
        text = ""
    if "error" in t:
        text += ("; " if text else "") + f"problem: {t['error']}"
    return text


# --------------------------------------------------------------------------------------------
# WAL records
# --------------------------------------------------------------------------------------------


def _image_summary(image: ImageRef) -> dict[str, Any]:
    flags = image.flags
    names = _names(image.bimg_info, ((flags.has_hole, "HAS_HOLE"), (flags.apply, "APPLY"),
                                     (flags.pglz, "COMPRESS_PGLZ" if image.pg_version > 14 else "IS_COMPRESSED"),
                                     (flags.lz4, "COMPRESS_LZ4"), (flags.zstd, "COMPRESS_ZSTD")))
    out: dict[str, Any] = {
        "length": image.length, "hole_offset": image.hole_offset, "hole_length": image.hole_length,
        "bimg_info": image.bimg_info, "flags": names, "apply": image.apply,
        "compression": image.compression.value, "page": None, "error": None,
    }
    try:
        out["page"] = page_summary(image.restore_page())
    except Exception as exc:  # corrupt compressed data can fail in many ways; show why
        out["error"] = f"image cannot be restored: {exc}"
    return out


def _block_summary(b: BlockRef) -> dict[str, Any]:
    return {
        "block_id": b.block_id, "spcnode": b.spcnode, "dbnode": b.dbnode, "relnode": b.relnode,
        "rel": f"{b.spcnode}/{b.dbnode}/{b.relnode}", "forknum": b.forknum,
        "fork": FORK_NAMES.get(b.forknum, f"fork{b.forknum}"), "blkno": b.blkno,
        "flags": _names(b.flags, _BLOCK_FLAG_NAMES), "data_len": len(b.data),
        "image": _image_summary(b.image) if b.image is not None else None,
    }


def record_summary(raw: bytes, end_lsn: int, pg_version: int, flavour: Flavour) -> dict[str, Any]:
    """pg_waldump-style fields of one raw XLogRecord.

    Schema: ``end_lsn, record_len, error`` (str or None) and, when the generic record decodes,
    ``rmid, rmgr, info, name, desc, desc_error, xid, prev, tot_len, rec_len (tot_len minus
    image bytes, as pg_waldump's "len (rec/tot)"), fpi_len, crc, crc_ok, main_data_len, origin,
    toplevel_xid, blocks [{block_id, rel, spcnode, dbnode, relnode, fork, forknum, blkno,
    flags, data_len, image {length, hole_offset, hole_length, bimg_info, flags, apply,
    compression, page, error} | None}]``.
    """
    out: dict[str, Any] = {"end_lsn": format_lsn(end_lsn), "record_len": len(raw), "error": None}
    try:
        rec: DecodedRecord = decode_record(raw, pg_version)
    except ValueError as exc:  # RecordDecodeError and the header-too-short case
        out["error"] = f"WAL record does not decode as PostgreSQL {pg_version} WAL: {exc}"
        out["decodes_as"] = others = decoding_versions(raw, pg_version, flavour)
        out["error"] += version_hint(others)
        return out
    fpi_len = sum(b.image.length for b in rec.blocks if b.image is not None)
    out.update({
        "rmid": rec.rmid, "rmgr": rmgr.rmgr_name(rec.rmid), "info": rec.info,
        "name": None, "desc": None, "desc_error": None,
        "xid": rec.xid, "prev": format_lsn(rec.prev), "tot_len": rec.tot_len,
        "rec_len": rec.tot_len - fpi_len, "fpi_len": fpi_len, "crc": rec.crc, "crc_ok": verify_crc(raw),
        "main_data_len": len(rec.main_data), "origin": rec.origin, "toplevel_xid": rec.toplevel_xid,
        "blocks": [_block_summary(b) for b in rec.blocks],
    })
    try:
        d = rmgr.describe_record(rec, pg_version, flavour)
        out["name"], out["desc"] = d.name, d.desc
    except (rmgr.UnsupportedRecord, rmgr.RmgrDecodeError, ValueError) as exc:
        out["name"] = f"UNKNOWN (info 0x{rec.info & 0xF0:02X})"
        out["decodes_as"] = others = decoding_versions(raw, pg_version, flavour)
        out["desc_error"] = str(exc) + version_hint(others)
    return out


def decoding_versions(raw: bytes, pg_version: int, flavour: Flavour) -> list[int]:
    """The other supported PostgreSQL versions under which ``raw`` decodes as a record with a
    description (a file decoded under the wrong ``--pg-version`` fails in confusing ways)."""
    out = []
    for v in SUPPORTED_VERSIONS:
        if v == pg_version:
            continue
        try:
            rmgr.describe_record(decode_record(raw, v), v, flavour)
        except (rmgr.UnsupportedRecord, rmgr.RmgrDecodeError, ValueError):
            continue
        out.append(v)
    return out


def version_hint(versions: Sequence[int]) -> str:
    """``"; it decodes as PostgreSQL 14 WAL (--pg-version 14)"``, or nothing."""
    if not versions:
        return ""
    names = " and ".join(str(v) for v in versions)
    return f"; it decodes as PostgreSQL {names} WAL (--pg-version {versions[0]})"


def _render_record(r: dict[str, Any], indent: str) -> list[str]:
    if r["error"]:
        return [f"{indent}{r['error']}"]
    desc = f"{r['name']} {r['desc'] or ''}".rstrip()
    lines = [
        f"{indent}rmgr: {r['rmgr']:<11} len (rec/tot): {r['rec_len']:>6}/{r['tot_len']:>6}, tx: {r['xid']:>10}, "
        f"end lsn: {r['end_lsn']}, prev {r['prev']}, desc: {desc}"
    ]
    if r["desc_error"]:
        lines.append(f"{indent}  (no description: {r['desc_error']})")
    if not r["crc_ok"]:
        lines.append(f"{indent}  xl_crc 0x{r['crc']:08X} does not match the record's contents")
    for b in r["blocks"]:
        text = (f"{indent}  blkref #{b['block_id']}: rel {b['rel']} fork {b['fork']} blk {b['blkno']}")
        extra = [f for f in b["flags"] if f not in ("HAS_IMAGE", "HAS_DATA", "SAME_REL")]
        if extra:
            text += " " + " ".join(extra)
        if b["data_len"]:
            text += f", data {b['data_len']} bytes"
        img = b["image"]
        if img is not None:
            text += (f"; FPI{'' if img['apply'] else ' (not applied: wal_consistency_checking)'}: "
                     f"length {img['length']}, hole offset {img['hole_offset']}, hole length {img['hole_length']}, "
                     f"bimg_info {_flag_text(img['bimg_info'], img['flags'], 2)}, compression {img['compression']}")
        lines.append(text)
        if img is not None:
            if img["error"]:
                lines.append(f"{indent}    {img['error']}")
            else:
                lines.extend(render_page_summary(img["page"], indent + "    ", "image"))
    if r["main_data_len"]:
        lines.append(f"{indent}  main data {r['main_data_len']} bytes")
    return lines


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


def _message_summary(offset: int, msg: Message, pg_version: int, flavour: Flavour) -> dict[str, Any]:
    out: dict[str, Any] = {"offset": offset, "tag": msg.TAG.decode(), "type": type(msg).__name__,
                           "describe": msg.describe()}
    if isinstance(msg, (BeginRedoForBlock, PushPage, GetPage)):
        rel = msg.tag.rel
        out["buffer_tag"] = {"rel": f"{rel.spcnode}/{rel.dbnode}/{rel.relnode}", "forknum": rel.forknum,
                             "fork": FORK_NAMES.get(rel.forknum, f"fork{rel.forknum}"), "blkno": msg.tag.blknum}
    if isinstance(msg, PushPage):
        out["page"] = page_summary(msg.page)
    elif isinstance(msg, ApplyRecord):
        out["record"] = record_summary(msg.record, msg.lsn, pg_version, flavour)
    return out


class NotAStream(ValueError):
    """Bytes that are neither a walredo stream nor a page; ``str()`` names them and says why."""


def inspect_bytes(data: bytes, name: str, pg_version: int, flavour: Flavour) -> dict[str, Any]:
    """Inspect the contents of a file called ``name``.

    A walredo stream decodes into ``{"file", "kind": "stream", "pg_version", "flavour",
    "messages": [...], "requests": [str] | None, "shape_error": str | None}``; bytes that are
    not a stream but exactly 8192 long are a page (``{"file", "kind": "page", "page": ...}``);
    anything else raises :class:`NotAStream` naming the file and the first bad byte. The
    bytes are decoded once: the requests are grouped from the decoded messages.
    """
    try:
        msgs = decode_stream(data) if data else None
    except ProtocolError as err:
        if len(data) == BLCKSZ:
            return {"file": name, "kind": "page", "page": page_summary(data)}
        raise NotAStream(
            f"{name} is neither a walredo stream ({err}) nor an {BLCKSZ}-byte page file "
            f"(it is {len(data)} bytes)"
        ) from None
    if msgs is None:
        raise NotAStream(f"{name} is empty, not a walredo stream or a page file")
    out: dict[str, Any] = {
        "file": name, "kind": "stream", "pg_version": pg_version, "flavour": flavour.value,
        "messages": [_message_summary(off, m, pg_version, flavour) for off, m in msgs],
        "requests": None, "shape_error": None,
    }
    try:
        out["requests"] = [r.describe() for r in group_requests([m for _, m in msgs])]
    except RequestShapeError as err:
        out["shape_error"] = str(err)
    return out


def render_report(report: dict[str, Any]) -> str:
    """The text form of an :func:`inspect_bytes` result."""
    if report["kind"] == "page":
        return "\n".join([f"{report['file']}: page file ({BLCKSZ} bytes)",
                          *render_page_summary(report["page"], "  ")]) + "\n"
    lines = [f"{report['file']}: walredo stream, {len(report['messages'])} message(s), decoded as "
             f"PostgreSQL {report['pg_version']} ({report['flavour']} flavour)"]
    if report["requests"] is not None:
        lines.extend(f"  {r}" for r in report["requests"])
    else:
        lines.append(f"  not a sequence of B [P] A* G requests: {report['shape_error']}")
    for m in report["messages"]:
        lines.append(f"[{m['offset']}] {m['describe']}")
        if "page" in m:
            lines.extend(render_page_summary(m["page"], "    "))
        if "record" in m:
            lines.extend(_render_record(m["record"], "    "))
    return "\n".join(lines) + "\n"

