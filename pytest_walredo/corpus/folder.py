"""Corpora on disk: read, write and iterate entries in the layout of
:mod:`pytest_walredo.corpus.format`. The only file-system code of the format layer.

A corpus is a folder of entries, or a tar archive of such a folder (``.tar``, ``.tar.gz``,
``.tgz``, ``.tar.xz``, ``.txz``, ``.tar.bz2``), read in memory without extracting anything: the
shipped corpora are ``.tar.xz`` archives (real pages compress about 30 to 1). Entry files may
sit at any depth inside an archive; an entry is the files that share a member path stem.
"""

from __future__ import annotations

import io
import lzma
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_walredo.corpus.format import (
    ACTUAL_SUFFIX,
    EXPECTED_SUFFIX,
    META_SUFFIX,
    REQUEST_SUFFIX,
    SESSION_SUFFIX,
    CorpusError,
    Entry,
    EntryMeta,
    entry_files,
    parse_entry,
    render_meta,
)

__all__ = ["ARCHIVE_SUFFIXES", "entry_names", "is_archive", "iter_corpus", "load_corpus", "read_entry",
           "write_archive", "write_case", "write_entry"]

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: missing") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_entry(folder: str | Path, name: str) -> Entry:
    """Read and validate entry ``name`` of ``folder``; raises :class:`CorpusError` naming the file."""
    base = Path(folder)
    meta = _read(base / (name + META_SUFFIX))
    request = _read(base / (name + REQUEST_SUFFIX))
    expected_path = base / (name + EXPECTED_SUFFIX)
    expected = _read(expected_path) if expected_path.exists() else None
    return parse_entry(name, meta, request, expected, where=str(base / name))


def write_entry(folder: str | Path, entry: Entry) -> list[Path]:
    """Write ``entry``'s files into ``folder`` (created if needed); returns the paths."""
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    out = []
    for fname, data in entry_files(entry).items():
        path = base / fname
        path.write_bytes(data)
        out.append(path)
    return out


def is_archive(path: str | Path) -> bool:
    """Whether ``path`` names a corpus archive (by its suffix)."""
    return Path(path).name.endswith(ARCHIVE_SUFFIXES)


def entry_names(folder: str | Path) -> list[str]:
    """Names of the entries in ``folder`` (one per ``NAME.json``), sorted."""
    base = Path(folder)
    if not base.is_dir():
        raise CorpusError(f"{base}: not a corpus folder (no such directory)")
    return sorted(p.name[: -len(META_SUFFIX)] for p in base.iterdir()
                  if p.name.endswith(META_SUFFIX) and p.is_file() and not p.name.startswith("."))


def _iter_archive(archive: Path) -> Iterator[Entry]:
    """The entries of a tar archive, in name order, read in memory."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile() or Path(name).name.startswith("."):
                    continue
                f = tar.extractfile(member)
                if f is not None:
                    files[name] = f.read()
    except FileNotFoundError:
        raise CorpusError(f"{archive}: not a corpus folder or archive (no such file)") from None
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
        raise CorpusError(f"{archive}: not a readable tar archive ({exc})") from None
    stems = sorted((n[: -len(META_SUFFIX)] for n in files if n.endswith(META_SUFFIX)),
                   key=lambda stem: (Path(stem).name, stem))
    for stem in stems:
        where = f"{archive}:{stem}"
        request = files.get(stem + REQUEST_SUFFIX)
        if request is None:
            raise CorpusError(f"{where}{REQUEST_SUFFIX}: missing")
        yield parse_entry(Path(stem).name, files[stem + META_SUFFIX], request, files.get(stem + EXPECTED_SUFFIX),
                          where=where)


def iter_corpus(source: str | Path) -> Iterator[Entry]:
    """Every entry of a corpus folder or archive in name order; the first malformed one raises
    :class:`CorpusError`."""
    path = Path(source)
    if is_archive(path) and not path.is_dir():
        yield from _iter_archive(path)
        return
    if path.is_file():
        raise CorpusError(f"{path}: not a corpus folder or archive (a tar archive ends in "
                          f"{', '.join(ARCHIVE_SUFFIXES)})")
    for name in entry_names(path):
        yield read_entry(path, name)


def load_corpus(source: str | Path) -> list[Entry]:
    return list(iter_corpus(source))


def write_archive(folder: str | Path, archive: str | Path) -> Path:
    """Pack the corpus ``folder`` into a tar archive (compressed as its suffix says) under one
    top folder named like ``folder``. The bytes depend only on the files: names sorted, times,
    owners and modes fixed; xz at its highest preset."""
    base, out = Path(folder), Path(archive)
    if not is_archive(out):
        raise CorpusError(f"{out}: an archive name ends in {', '.join(ARCHIVE_SUFFIXES)}")
    entry_names(base)  # a clear error when it is not a folder
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for p in sorted(q for q in base.iterdir() if q.is_file() and not q.name.startswith(".")):
            info = tarfile.TarInfo(f"{base.name}/{p.name}")
            data = p.read_bytes()
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    name = out.name
    if name.endswith((".tar.xz", ".txz")):
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    elif name.endswith((".tar.gz", ".tgz")):
        import gzip

        data = gzip.compress(data, compresslevel=9, mtime=0)
    elif name.endswith(".tar.bz2"):
        import bz2

        data = bz2.compress(data, 9)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def write_case(folder: str | Path, name: str, *, meta: EntryMeta | None, request: bytes | None = None,
               expected: bytes | None = None, actual: bytes | None = None,
               session: tuple[bytes, int, int] | None = None, session_extra: dict[str, Any] | None = None,
               request_path: Path | None = None) -> dict[str, Path]:
    """Write a failing input in the corpus layout: ``NAME.walredo`` (``request``; None: it is
    there already), ``NAME.expected.page``, ``NAME.json`` (``meta``; None for bytes that are not
    one request) and the extra files ``NAME.actual.page`` and ``NAME.session.walredo``
    (``session``: the stream, the request's byte offset and call number in it, written in the
    JSON's ``session`` key with ``session_extra``). ``request_path`` overrides where the request
    goes. Returns the files written, by kind (``walredo``, ``expected``, ``actual``, ``session``,
    ``json``)."""
    base = Path(folder)
    extra: dict[str, Any] = dict(meta.extra) if meta is not None else {}
    files: dict[str, tuple[Path, bytes]] = {}
    if request is not None:
        files["walredo"] = (request_path or base / (name + REQUEST_SUFFIX), request)
    if expected is not None:
        files["expected"] = (base / (name + EXPECTED_SUFFIX), expected)
    if actual is not None:
        files["actual"] = (base / (name + ACTUAL_SUFFIX), actual)
        extra["actual_page"] = name + ACTUAL_SUFFIX
    if session is not None:
        stream, offset, index = session
        files["session"] = (base / (name + SESSION_SUFFIX), stream)
        extra["session"] = {"file": name + SESSION_SUFFIX, "offset": offset, "index": index,
                            **(session_extra or {})}
    if meta is not None:
        from dataclasses import replace

        files["json"] = (base / (name + META_SUFFIX), render_meta(replace(meta, extra=extra)).encode())
    for path, data in files.values():  # the folder must exist: a wrong -o is the caller's error
        path.write_bytes(data)
    return {kind: path for kind, (path, _) in files.items()}
