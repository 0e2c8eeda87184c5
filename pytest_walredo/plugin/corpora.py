"""The session's corpus: the entries the conformance suite's ``test_corpus`` turns into tests and
its baseline oracle draws from.

``--walredo-corpus DIR|ARCHIVE ...`` names them; without it, the corpus shipped for
``--walredo-pg-version`` (``pytest_walredo/corpus/data/pgNN.tar.xz``) is used, so the suite
judges real WAL on a fresh machine; ``--walredo-corpus off`` runs none. Loaded once per
process (each xdist worker loads the same entries in the same order, so the test ids agree).
A corpus that cannot be read is one usage error naming the file, at session start: the plugin
loads the corpora given with ``--walredo-corpus`` when it configures the session.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ..corpus.default import load_shipped, shipped_corpus
from ..corpus.folder import load_corpus
from ..corpus.format import CorpusError, Entry
from .runstate import SETTINGS_KEY

__all__ = ["SessionCorpus", "entry_id", "session_corpus"]


@dataclass(frozen=True)
class SessionCorpus:
    entries: tuple[Entry, ...]
    sources: tuple[str, ...]
    """Where the entries come from (for messages)."""

    @property
    def ids(self) -> list[str]:
        return [entry_id(e) for e in self.entries]


def entry_id(entry: Entry) -> str:
    """A test id from the entry's kind and name: the name when it starts with the kind (as the
    builder names entries), else ``Kind.NAME:name`` (a failure artifact dropped into a corpus)."""
    kind = entry.meta.kind.replace("/", ".")
    return entry.name if entry.name.startswith(kind + ".") else f"{kind}:{entry.name}"


_KEY = pytest.StashKey[SessionCorpus]()


def session_corpus(config: pytest.Config) -> SessionCorpus:
    """The session's corpus entries (see the module docstring); raises :class:`pytest.UsageError`
    for a corpus that cannot be read."""
    if _KEY in config.stash:
        return config.stash[_KEY]
    settings = config.stash[SETTINGS_KEY]
    entries: list[Entry] = []
    try:
        if settings.corpus is None:
            path = shipped_corpus(settings.pg_version)
            sources: tuple[str, ...] = ()
            if path.exists():
                entries, sources = list(load_shipped(settings.pg_version)), (str(path),)
        else:
            sources = tuple(str(p) for p in settings.corpus)
            for source in settings.corpus:
                entries += load_corpus(source)
    except CorpusError as exc:
        raise pytest.UsageError(f"--walredo-corpus: {exc}") from None
    config.stash[_KEY] = corpus = SessionCorpus(tuple(entries), sources)
    return corpus
