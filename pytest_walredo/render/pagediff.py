"""The structured difference of two 8192-byte pages (``pytest-walredo diff``, and the plugin's
``.diff.txt`` failure artifacts).

Instead of a hexdump wall, differences are named the way PostgreSQL's page layout names them:
header fields (``pd_lsn``, ``pd_lower``...), line pointers (``lp 3``), tuple header fields
(``tuple 3 t_xmax``), tuple data (first differing byte with a short hex window on each side),
the special space, and finally any remaining bytes that belong to no item on either page
(free space, padding, stale bytes) as byte ranges.

Invariant (tested): :func:`diff_pages` returns no :class:`Difference` iff the two pages are
byte-for-byte equal. Header, line pointers, items and special space are compared field by
field; every byte not inside one of those on either page is compared raw. A byte inside an
item on one page is "explained" by that item's line pointer and tuple comparison, so a moved
tuple shows up as a changed ``lp N`` rather than as hundreds of changed bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pytest_walredo.pg.page import BLCKSZ, ITEM_ID_SIZE, SIZE_OF_PAGE_HEADER
from pytest_walredo.render.stream import page_summary

__all__ = ["Difference", "diff_as_json", "diff_pages", "render_diff", "summarize_diff"]

WINDOW = 8
"""Bytes of context shown on each side of the first differing data byte."""
MERGE_GAP = 8
"""Differing byte ranges closer than this are reported as one range."""


@dataclass(frozen=True)
class Difference:
    """One named difference. ``section`` is header | line_pointer | tuple | special | bytes;
    ``where`` names the field (``pd_lsn``, ``lp 3``, ``tuple 3 t_xmax``, ``bytes 100..131``);
    ``a`` and ``b`` are the two values as text; ``note`` adds detail (may be empty)."""

    section: str
    where: str
    a: str
    b: str
    note: str = ""


def _lp_text(lp: dict[str, Any] | None) -> str:
    return "(absent)" if lp is None else f"{lp['flags']} off {lp['off']} len {lp['len']}"


def _header_value(name: str, value: Any, names: list[str] | None = None) -> str:
    if name in ("checksum", "flags"):
        return f"0x{value:04X}" + (f" ({'|'.join(names)})" if names else "")
    if name == "pagesize_version":
        return f"0x{value:04X}"
    return str(value)


def _ranges(positions: list[int]) -> list[tuple[int, int, int]]:
    """Group differing ``positions`` (sorted) into (start, end exclusive, count) ranges."""
    out: list[tuple[int, int, int]] = []
    for p in positions:
        if out and p - out[-1][1] < MERGE_GAP:
            s, _, n = out[-1]
            out[-1] = (s, p + 1, n + 1)
        else:
            out.append((p, p + 1, 1))
    return out


def _window(data: bytes, at: int) -> str:
    lo, hi = max(0, at - WINDOW), min(len(data), at + WINDOW + 1)
    return ("..." if lo else "") + data[lo:at].hex() + "[" + data[at:at + 1].hex() + "]" + \
        data[at + 1:hi].hex() + ("..." if hi < len(data) else "")


def _bytes_diff(section: str, where: str, a: bytes, b: bytes) -> list[Difference]:
    """Compare two byte strings (tuple data, special space): lengths, count, first difference."""
    if a == b:
        return []
    common = min(len(a), len(b))
    diff_at = [i for i in range(common) if a[i] != b[i]]
    parts = []
    if len(a) != len(b):
        parts.append(f"length {len(a)} -> {len(b)}")
    if diff_at:
        first = diff_at[0]
        rng = _ranges(diff_at)
        shown = ", ".join(f"{s}..{e - 1}" for s, e, _ in rng[:4]) + (", ..." if len(rng) > 4 else "")
        parts.append(f"{len(diff_at)} of {common} common byte(s) differ at {shown}")
        return [Difference(section, where, _window(a, first), _window(b, first),
                           "; ".join(parts) + f"; first at byte {first}")]
    # one is a prefix of the other
    longer, which = (a, "a") if len(a) > len(b) else (b, "b")
    extra = longer[common:common + 2 * WINDOW].hex() + ("..." if len(longer) > common + 2 * WINDOW else "")
    return [Difference(section, where, f"{len(a)} bytes", f"{len(b)} bytes",
                       "; ".join(parts) + f"; the shorter is a prefix, {which} continues {extra}")]


def _tuple_diff(offnum: int, ta: dict[str, Any], tb: dict[str, Any], ia: bytes, ib: bytes) -> list[Difference]:
    where = f"tuple {offnum}"
    if "error" in ta or "error" in tb or set(ta) != set(tb):
        return _bytes_diff("tuple", f"{where} bytes", ia, ib)
    out: list[Difference] = []
    for key in ta:
        if key in ("offnum", "data", "data_len", "natts", "size") or key.endswith("_flags"):
            continue  # derived from the fields compared below, or compared as bytes
        if ta[key] != tb[key]:
            va, vb = ta[key], tb[key]
            if key in ("t_infomask", "t_infomask2", "t_info"):
                flag_key = {"t_infomask": "infomask_flags", "t_infomask2": "infomask2_flags",
                            "t_info": "info_flags"}[key]
                va = f"0x{va:04X} ({'|'.join(ta[flag_key]) or '-'})"
                vb = f"0x{vb:04X} ({'|'.join(tb[flag_key]) or '-'})"
            elif key in ("t_ctid", "t_tid"):
                va, vb = f"({va[0]},{va[1]})", f"({vb[0]},{vb[1]})"
            out.append(Difference("tuple", f"{where} {key}", str(va), str(vb)))
    out.extend(_bytes_diff("tuple", f"{where} data", bytes.fromhex(ta["data"]), bytes.fromhex(tb["data"])))
    return out


def _item_range(lp: dict[str, Any], n_lps: int) -> tuple[int, int] | None:
    start, end = lp["off"], lp["off"] + lp["len"]
    if lp["len"] == 0 or start < SIZE_OF_PAGE_HEADER + ITEM_ID_SIZE * n_lps or end > BLCKSZ:
        return None
    return start, end


def diff_pages(a: bytes, b: bytes) -> list[Difference]:
    """The structured differences between pages ``a`` and ``b`` (each exactly 8192 bytes)."""
    if len(a) != BLCKSZ or len(b) != BLCKSZ:
        raise ValueError(f"pages must be {BLCKSZ} bytes, got {len(a)} and {len(b)}")
    if a == b:
        return []
    sa, sb = page_summary(a), page_summary(b)
    out: list[Difference] = []
    covered = bytearray(BLCKSZ)  # 1 = compared structurally above

    # header
    covered[:SIZE_OF_PAGE_HEADER] = b"\1" * SIZE_OF_PAGE_HEADER
    ha, hb = sa["header"], sb["header"]
    for key in ("lsn", "checksum", "flags", "lower", "upper", "special", "prune_xid"):
        if ha[key] != hb[key]:
            names_a = ha["flag_names"] if key == "flags" else None
            names_b = hb["flag_names"] if key == "flags" else None
            out.append(Difference("header", f"pd_{key}", _header_value(key, ha[key], names_a),
                                  _header_value(key, hb[key], names_b)))
    va = ha["pagesize"] | ha["layout_version"]
    vb = hb["pagesize"] | hb["layout_version"]
    if va != vb:
        out.append(Difference("header", "pd_pagesize_version", _header_value("pagesize_version", va),
                              _header_value("pagesize_version", vb)))
    if sa["kind"] != sb["kind"]:
        out.append(Difference("header", "page kind", sa["kind"], sb["kind"]))

    # line pointers (a new page has none in the summary, but its bytes are zeros: compare them)
    lpa = {lp["offnum"]: lp for lp in sa["line_pointers"]}
    lpb = {lp["offnum"]: lp for lp in sb["line_pointers"]}
    n_a, n_b = len(lpa), len(lpb)
    lp_end = SIZE_OF_PAGE_HEADER + ITEM_ID_SIZE * max(n_a, n_b)
    covered[SIZE_OF_PAGE_HEADER:lp_end] = b"\1" * (lp_end - SIZE_OF_PAGE_HEADER)
    for offnum in range(1, max(n_a, n_b) + 1):
        la, lb = lpa.get(offnum), lpb.get(offnum)
        if la is None or lb is None:
            out.append(Difference("line_pointer", f"lp {offnum}", _lp_text(la), _lp_text(lb)))
        elif la != lb:
            out.append(Difference("line_pointer", f"lp {offnum}", _lp_text(la), _lp_text(lb)))

    # items
    ta = {t["offnum"]: t for t in sa["tuples"]}
    tb = {t["offnum"]: t for t in sb["tuples"]}
    for lps, n, tuples in ((lpa, n_a, ta), (lpb, n_b, tb)):
        for offnum, lp in lps.items():
            rng = _item_range(lp, n)
            if rng is not None and offnum in tuples:
                covered[rng[0]:rng[1]] = b"\1" * (rng[1] - rng[0])
    for offnum in sorted(set(ta) & set(tb)):
        ra, rb = _item_range(lpa[offnum], n_a), _item_range(lpb[offnum], n_b)
        ia = a[ra[0]:ra[1]] if ra else b""
        ib = b[rb[0]:rb[1]] if rb else b""
        out.extend(_tuple_diff(offnum, ta[offnum], tb[offnum], ia, ib))
    for offnum in sorted(set(ta) ^ set(tb)):
        t = ta.get(offnum) or tb[offnum]
        side = "a" if offnum in ta else "b"
        out.append(Difference("tuple", f"tuple {offnum}", "present" if side == "a" else "(absent)",
                              "present" if side == "b" else "(absent)",
                              f"only on {side}: {t.get('data_len', '?')} data bytes"))

    # special space: fields when both are btree pages, bytes otherwise
    spa, spb = sa["special"], sb["special"]
    if spa is not None and spb is not None and ha["special"] == hb["special"]:
        start = ha["special"]
        covered[start:] = b"\1" * (BLCKSZ - start)
        if "btpo_flags" in spa and "btpo_flags" in spb:
            for key in ("btpo_prev", "btpo_next", "btpo_level", "btpo_flags", "btpo_cycleid"):
                if spa[key] != spb[key]:
                    out.append(Difference("special", key, str(spa[key]), str(spb[key])))
        else:
            out.extend(_bytes_diff("special", "special space", a[start:], b[start:]))

    # everything else, raw
    positions = [i for i in range(BLCKSZ) if not covered[i] and a[i] != b[i]]
    # region names come from the pages that have a layout (a new page has pd_upper 0)
    laid_out = [h for h, s in ((ha, sa), (hb, sb)) if s["kind"] != "new"] or [ha]
    free_lo = max(h["lower"] for h in laid_out)
    free_hi = min(h["upper"] for h in laid_out)
    special = min(h["special"] for h in laid_out)
    for start, end, count in _ranges(positions):
        if free_lo <= start and end <= free_hi:
            region = "free space"
        elif SIZE_OF_PAGE_HEADER <= special <= start:
            region = "special space"
        else:
            region = "between or beside tuples, in no line pointer's item"
        out.append(Difference("bytes", f"bytes {start}..{end - 1}", _window(a, start), _window(b, start),
                              f"{count} byte(s) differ ({region})"))
    if not out:  # the invariant above; keep it loud if a future change breaks it
        raise AssertionError("pages differ but no difference was found")
    return out


def summarize_diff(diffs: list[Difference]) -> str:
    """One line: how many differences of each section, or ``pages are identical``."""
    if not diffs:
        return "pages are identical"
    counts: dict[str, int] = {}
    for d in diffs:
        counts[d.section] = counts.get(d.section, 0) + 1
    labels = {"header": "header field(s)", "line_pointer": "line pointer(s)", "tuple": "tuple difference(s)",
              "special": "special space difference(s)", "bytes": "other byte range(s)"}
    return "pages differ: " + ", ".join(f"{n} {labels[k]}" for k, n in counts.items())


def _lp_number(d: Difference) -> int | None:
    if d.section != "line_pointer":
        return None
    return int(d.where.split()[1])


def render_diff(diffs: list[Difference], label_a: str = "a", label_b: str = "b") -> str:
    """Text: a summary line, then one line per difference ``where: A -> B  (note)``.

    Consecutive line pointers with the same change (``lp 3-18: (absent) -> UNUSED off 0 len
    0``) share one line.
    """
    lines = [summarize_diff(diffs)]
    if diffs:
        lines.append(f"  ({label_a} -> {label_b})")
    i = 0
    while i < len(diffs):
        d = diffs[i]
        j = i
        first = _lp_number(d)
        while first is not None and j + 1 < len(diffs):
            nxt = diffs[j + 1]
            if _lp_number(nxt) != first + (j + 1 - i) or (nxt.a, nxt.b, nxt.note) != (d.a, d.b, d.note):
                break
            j += 1
        where = d.where if j == i else f"lp {first}-{_lp_number(diffs[j])}"
        lines.append(f"  {where}: {d.a} -> {d.b}" + (f"  ({d.note})" if d.note else ""))
        i = j + 1
    return "\n".join(lines) + "\n"


def diff_as_json(diffs: list[Difference]) -> list[dict[str, str]]:
    """The differences as JSON-ready dicts (the :class:`Difference` fields)."""
    return [asdict(d) for d in diffs]
