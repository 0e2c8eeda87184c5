"""The three per-rmgr tables agree: every typed record has a redo routine, every module that
defines records, routines or drawable kinds is joined into its layer's table, and every kind
the strategies draw decodes into a record the redo model applies. What makes "adding a record
kind touches its rmgr's three files" true (docs/ADDING_A_RECORD_KIND.md)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_walredo import strategies as ws
from pytest_walredo.pg import redo, rmgr
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.xlogrecord import decode_record
from pytest_walredo.protocol import BufferTag, RelTag
from pytest_walredo.strategies import kinds


def _modules(package: object) -> list[object]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [importlib.import_module(m.name) for m in pkgutil.iter_modules(path, prefix)]


def test_every_module_with_records_is_joined() -> None:
    defined = {c for m in _modules(rmgr) for c in getattr(m, "RECORDS", ())}
    supported = {c for v in SUPPORTED_VERSIONS for c in rmgr.supported_records(v)}
    assert defined == supported and defined


def test_every_module_with_routines_is_joined() -> None:
    defined = {c for m in _modules(redo) for c in getattr(m, "ROUTINES", {})}
    assert defined == set(redo.ROUTINES)


def test_every_module_with_kinds_is_joined() -> None:
    defined = {k.name for m in _modules(kinds) for k in getattr(m, "KINDS", ())}
    assert defined == set(ws.RECORD_KINDS) == set(kinds.KINDS)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_typed_record_has_a_redo_routine(version: int) -> None:
    missing = [c.__name__ for c in rmgr.supported_records(version) if c not in redo.ROUTINES]
    assert not missing, f"records without a redo routine in PostgreSQL {version}: {missing}"


@pytest.mark.parametrize("flavour", list(Flavour))
@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_every_drawn_kind_decodes_into_a_record_with_a_routine(version: int, flavour: Flavour) -> None:
    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(ws.record_sequences(BufferTag(RelTag(1663, 5, 16384), 3), pg_version=version,
                               flavour=flavour, min_records=1))
    def check(trace: ws.BlockTrace) -> None:
        for kind, (_lsn, raw) in zip(trace.kinds, trace.records, strict=True):
            body = rmgr.parse(decode_record(raw, version), version, flavour)
            assert type(body) in redo.ROUTINES, (kind, type(body).__name__)
            assert type(body) in rmgr.supported_records(version, flavour), (kind, type(body).__name__)

    check()
