"""The corpus format: entries round-trip through files; every missing or malformed key, file or
request is one CorpusError naming the file; unknown keys are kept and otherwise ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_walredo.corpus.folder import (
    entry_names,
    iter_corpus,
    load_corpus,
    read_entry,
    write_archive,
    write_entry,
)
from pytest_walredo.corpus.format import CorpusError, Entry, EntryMeta, entry_name, parse_entry, render_meta
from pytest_walredo.pg.page import Page
from pytest_walredo.pg.version import Flavour
from pytest_walredo.protocol import RedoRequest, RelTag

REL = (1663, 5, 16384)


def _entry(name: str = "e", *, expected: bool = True, extra: dict[str, object] | None = None) -> Entry:
    page = Page.initialized().to_bytes()
    req = RedoRequest(RelTag(*REL, 0), 3, page, ((0x16A9388, b"\x18" + bytes(23)),))
    meta = EntryMeta(15, Flavour.VANILLA, "Heap/INSERT", REL, 0, 3, 0x16A9388, "Heap", "a test",
                     dict(extra or {}))
    return Entry(name, meta, req.encode(), page if expected else None)


def test_round_trip_through_a_folder(tmp_path: Path) -> None:
    a, b = _entry("a", extra={"note": [1, 2]}), _entry("b", expected=False)
    write_entry(tmp_path, a)
    write_entry(tmp_path, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.expected.page", "a.json", "a.walredo", "b.json", "b.walredo"]
    assert entry_names(tmp_path) == ["a", "b"]
    got = load_corpus(tmp_path)
    assert [(e.meta, e.request, e.expected) for e in got] == [(a.meta, a.request, a.expected),
                                                             (b.meta, b.request, None)]
    assert got[0].meta.extra == {"note": [1, 2]}
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["end_lsn"] == "0/16A9388" and doc["rel"] == list(REL) and doc["note"] == [1, 2]
    assert got[0].decoded_request().blknum == 3 and got[0].meta.rmgr == "Heap"


def _meta_doc() -> dict[str, object]:
    return json.loads(render_meta(_entry().meta))


@pytest.mark.parametrize("key", ["pg_version", "flavour", "kind", "rel", "fork", "blk", "end_lsn", "mask",
                                 "source"])
def test_a_missing_key_names_the_file_and_the_key(key: str) -> None:
    doc = _meta_doc()
    del doc[key]
    e = _entry()
    with pytest.raises(CorpusError, match=rf"^dir/x\.json: missing key\(s\) {key}$"):
        parse_entry("dir/x", json.dumps(doc), e.request, e.expected)


@pytest.mark.parametrize(("key", "value", "says"), [
    ("pg_version", 13, "pg_version"), ("pg_version", "15", "pg_version"), ("flavour", "aurora", "flavour"),
    ("kind", "INSERT", "kind"), ("kind", 5, "kind"), ("rel", [1, 2], "rel"), ("rel", [1, 2, -3], "rel"),
    ("fork", 4, "fork"), ("fork", True, "fork"), ("blk", 2**32, "blk"), ("end_lsn", 5, "end_lsn"),
    ("end_lsn", "0/XYZ", "end_lsn"), ("mask", "heap", "mask"), ("source", None, "source"),
])
def test_a_malformed_key_is_one_error_naming_it(key: str, value: object, says: str) -> None:
    doc = _meta_doc()
    doc[key] = value
    e = _entry()
    with pytest.raises(CorpusError, match=rf"^x\.json: key '{says}' must ") as err:
        parse_entry("x", json.dumps(doc), e.request, e.expected)
    assert "\n" not in str(err.value)


def test_unknown_keys_are_ignored() -> None:
    doc = _meta_doc()
    doc["future_field"] = {"anything": True}
    e = _entry()
    got = parse_entry("x", json.dumps(doc), e.request, e.expected)
    assert got.meta == e.meta and got.meta.extra == {"future_field": {"anything": True}}


def test_bad_json_and_bad_files(tmp_path: Path) -> None:
    e = _entry()
    with pytest.raises(CorpusError, match=r"^x\.json: not valid JSON"):
        parse_entry("x", "{", e.request, e.expected)
    with pytest.raises(CorpusError, match=r"^x\.json: expected a JSON object"):
        parse_entry("x", "[]", e.request, e.expected)
    with pytest.raises(CorpusError, match=r"^x\.walredo: not one walredo request"):
        parse_entry("x", render_meta(e.meta), e.request[:-3], e.expected)
    with pytest.raises(CorpusError, match=r"^x\.walredo: not one walredo request"):
        parse_entry("x", render_meta(e.meta), e.request + e.request, e.expected)
    with pytest.raises(CorpusError, match=r"^x\.expected\.page: 100 bytes"):
        parse_entry("x", render_meta(e.meta), e.request, bytes(100))
    other = RedoRequest(RelTag(*REL, 0), 4, None, ((0x16A9388, b"\x18" + bytes(23)),)).encode()
    with pytest.raises(CorpusError, match=r"^x\.walredo: the request is for .* but x\.json says .* blk 3"):
        parse_entry("x", render_meta(e.meta), other, e.expected)
    later = RedoRequest(RelTag(*REL, 0), 3, None, ((0x16A9390, b"\x18" + bytes(23)),)).encode()
    with pytest.raises(CorpusError, match=r"ends at 0/16A9390, but x\.json says end_lsn 0/16A9388"):
        parse_entry("x", render_meta(e.meta), later, e.expected)
    write_entry(tmp_path, e)
    (tmp_path / "e.walredo").unlink()
    with pytest.raises(CorpusError, match=rf"^{tmp_path}/e\.walredo: missing$"):
        read_entry(tmp_path, "e")
    with pytest.raises(CorpusError, match="not a corpus folder"):
        list(iter_corpus(tmp_path / "nope"))


def test_entry_names_are_safe_and_sort_by_kind_then_lsn() -> None:
    a = entry_name("Heap/INSERT+INIT", 0x1_0000_0010, (1663, 5, 16384), 0, 7)
    b = entry_name("Heap/INSERT+INIT", 0x2_0000_0000, (1663, 5, 16384), 0, 7)
    assert a == "Heap.INSERT+INIT.1-00000010.16384.0.7" and a < b
    assert "/" not in entry_name("Gin/UNKNOWN (ff)", 1, (1, 2, 3), 0, 0)


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.xz", ".tar.bz2"])
def test_an_archive_reads_like_its_folder(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "mine"
    for e in (_entry("a", extra={"note": 1}), _entry("b", expected=False)):
        write_entry(folder, e)
    archive = write_archive(folder, tmp_path / f"mine{suffix}")
    assert write_archive(folder, tmp_path / f"again{suffix}").read_bytes() == archive.read_bytes()
    got, want = load_corpus(archive), load_corpus(folder)
    assert [(e.name, e.meta, e.request, e.expected) for e in got] == \
           [(e.name, e.meta, e.request, e.expected) for e in want]
    assert [e.name for e in got] == ["a", "b"]


def test_archive_errors_name_the_archive_and_the_member(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    write_entry(folder, _entry("a"))
    (folder / "a.walredo").unlink()
    archive = write_archive(folder, tmp_path / "c.tar.xz")
    with pytest.raises(CorpusError, match=rf"^{archive}:c/a\.walredo: missing$"):
        load_corpus(archive)
    (folder / "a.json").write_text("{")
    (folder / "a.walredo").write_bytes(b"")
    archive = write_archive(folder, tmp_path / "c.tar.xz")
    with pytest.raises(CorpusError, match=rf"^{archive}:c/a\.json: not valid JSON"):
        load_corpus(archive)
    (tmp_path / "junk.tar.xz").write_bytes(b"not xz")
    with pytest.raises(CorpusError, match=r"junk\.tar\.xz: not a readable tar archive"):
        load_corpus(tmp_path / "junk.tar.xz")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CorpusError, match=r"file\.txt: not a corpus folder or archive"):
        load_corpus(tmp_path / "file.txt")
    with pytest.raises(CorpusError, match=r"nope\.tar\.xz: not a corpus folder or archive \(no such file"):
        load_corpus(tmp_path / "nope.tar.xz")
    with pytest.raises(CorpusError, match="an archive name ends in"):
        write_archive(folder, tmp_path / "out.zip")
