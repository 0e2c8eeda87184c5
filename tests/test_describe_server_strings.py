"""Our record descriptions against the format strings of each version's own server binary.

PostgreSQL compiles its rmgr description routines into the server (they print the CONTEXT line
of a failed redo), so the literal parts of every description a version can print are in that
version's ``postgres`` binary. pg_waldump judges our descriptions for 15 and 17 (tests that run
it); 14 and 16 ship no pg_waldump here, and this test is their judge: every literal fragment of
the description of a drawn record (the text between numbers, lists and flags) must occur in
the binary's strings. It found PG16's descriptions printing isCatalogRel, which only 17 prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_corpus_versions import server_bin

import pytest_walredo.strategies as ws
from pytest_walredo.corpus.server import DEFAULT_BIN_DIR
from pytest_walredo.pg.rmgr import describe_record
from pytest_walredo.pg.version import Flavour
from pytest_walredo.pg.xlogrecord import decode_record

# What separates the literal parts of a description: numbers, list and plan brackets,
# redirects, the T/F of flags and ", " between flag names (PostgreSQL appends each flag's name
# with its own string).
_SEPARATORS = re.compile(r"-?\d+|[\[\]{}()]|->|, | [TF]\b")
# Descriptions that are (mostly) drawn text: a restore point's name.
_FREE_TEXT = {"RESTORE_POINT"}


def _strings(binary: Path) -> str:
    """The printable runs of 4+ bytes of a binary (like strings(1)), one per line."""
    data = binary.read_bytes()
    return "\n".join(m.decode() for m in re.findall(rb"[\x20-\x7e]{4,}", data))


def _flag_words(piece: str) -> list[str]:
    """14 and 15 print flags as words each appended with its own string ("IS_MULTI ",
    "LOCK_ONLY ", "cascade "): a run of them is judged word by word."""
    return [word for word in piece.replace(";", " ").split() if len(word) >= 3]


@pytest.mark.parametrize("version", [14, 15, 16, 17])
def test_descriptions_use_only_the_servers_format_strings(version: int) -> None:
    bin_dir = DEFAULT_BIN_DIR if version == 15 else server_bin(version)
    if not (bin_dir / "postgres").exists():
        pytest.skip(f"no PostgreSQL {version} server at {bin_dir}")
    text = _strings(bin_dir / "postgres")
    strange: dict[str, set[str]] = {}
    kinds: set[str] = set()
    seen: dict[str, bool] = {}

    def known(piece: str) -> bool:
        """``piece`` occurs in the binary as whole words ("isCatalogRel" is not known from
        "GlobalVisCatalogRels"). An underscore may come before it: the linker keeps one copy
        of a string that ends another ("infobits" lives in "old_infobits")."""
        if piece not in seen:
            seen[piece] = re.search(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?!\w)", text) is not None
        return seen[piece]

    @settings(max_examples=600, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        req = data.draw(ws.redo_requests(pg_version=version, flavour=Flavour.VANILLA,
                                         min_records=1, max_records=4))
        for _lsn, raw in req.records:
            desc = describe_record(decode_record(raw, version), version)
            kinds.add(desc.name)
            if desc.name in _FREE_TEXT:
                continue
            for piece in _SEPARATORS.split(desc.desc):
                piece = piece.strip(" ,;:")
                if len(piece) >= 5 and not known(piece) and not all(map(known, _flag_words(piece))):
                    strange.setdefault(desc.name, set()).add(piece)

    check()
    assert len(kinds) >= 40, f"only {len(kinds)} record names drawn: {sorted(kinds)}"
    assert not strange, f"PostgreSQL {version}'s server has no such text: {strange}"
