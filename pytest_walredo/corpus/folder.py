"""Corpus folders on disk: read, write and iterate entries in the layout of
:mod:`pytest_walredo.corpus.format`. The only file-system code of the format layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pytest_walredo.corpus.format import (
    EXPECTED_SUFFIX,
    META_SUFFIX,
    REQUEST_SUFFIX,
    CorpusError,
    Entry,
    entry_files,
    parse_entry,
)

__all__ = ["entry_names", "iter_corpus", "load_corpus", "read_entry", "write_entry"]


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
    return parse_entry(str(base / name), meta, request, expected)


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


def entry_names(folder: str | Path) -> list[str]:
    """Names of the entries in ``folder`` (one per ``NAME.json``), sorted."""
    base = Path(folder)
    if not base.is_dir():
        raise CorpusError(f"{base}: not a corpus folder (no such directory)")
    return sorted(p.name[: -len(META_SUFFIX)] for p in base.iterdir()
                  if p.name.endswith(META_SUFFIX) and p.is_file() and not p.name.startswith("."))


def iter_corpus(folder: str | Path) -> Iterator[Entry]:
    """Every entry of ``folder`` in name order; the first malformed one raises :class:`CorpusError`."""
    for name in entry_names(folder):
        yield read_entry(folder, name)


def load_corpus(folder: str | Path) -> list[Entry]:
    return list(iter_corpus(folder))
