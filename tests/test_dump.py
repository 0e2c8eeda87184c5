"""``.walredo`` dumps of failing requests (``pytest_walredo.process.dump``)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path

import pytest

from pytest_walredo.process import (
    FailureDumper,
    WalredoClient,
    WalredoPoisoned,
    WalredoProcess,
    WalredoProcessError,
    dump_name,
)
from pytest_walredo.process import dump as dump_module
from pytest_walredo.protocol import BLCKSZ, RedoRequest, RelTag
from pytest_walredo.testing.fake import fake_config

NAME = re.compile(r"walredo-(\d+)-(\d+)-(\d+)\.walredo")


def _request(i: int) -> RedoRequest:
    return RedoRequest(RelTag(1663, 1, 1259), i, bytes([i % 256]) * BLCKSZ,
                       ((0x16A9388, b"\x01" * 30),))


def test_name_format_and_exact_bytes(tmp_path: Path) -> None:
    dumper = FailureDumper(tmp_path / "d")  # created on first use
    data = b"\x42" * 1234
    path = dumper.dump(data, "tail")
    assert path is not None and path.parent == tmp_path / "d"
    m = NAME.fullmatch(path.name)
    assert m is not None and int(m.group(2)) == 1234
    assert path.read_bytes() == data
    assert dump_name(5, 6, 7) == "walredo-5-6-7.walredo"
    assert dumper.written == [path]


def test_collisions_bump_seq_and_never_overwrite(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dump_module.time, "time_ns", lambda: 1_700_000_000_123_456_789)
    millis = 1_700_000_000_123
    taken = tmp_path / dump_name(millis, 3, 0)
    taken.write_bytes(b"old")  # e.g. written by another xdist worker
    # Two dumpers stand for two processes: both start their sequence at 0.
    a, b = FailureDumper(tmp_path), FailureDumper(tmp_path)
    paths = [a.dump(b"aaa"), b.dump(b"bbb"), a.dump(b"ccc")]
    assert taken.read_bytes() == b"old"
    assert len({p for p in paths}) == 3 and taken not in paths
    assert sorted(p.read_bytes() for p in paths if p) == [b"aaa", b"bbb", b"ccc"]
    assert all(p is not None and p.name.startswith(f"walredo-{millis}-3-") for p in paths)


def test_on_dump_gets_path_bytes_and_stderr_tail(tmp_path: Path) -> None:
    seen: list[tuple[Path, bytes, str]] = []
    dumper = FailureDumper(tmp_path, on_dump=lambda p, d, t: seen.append((p, d, t)))
    path = dumper.dump(b"xyz", "FATAL:  boom")
    assert seen == [(path, b"xyz", "FATAL:  boom")]


def test_unwritable_directory_is_logged_not_raised(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    dumper = FailureDumper(blocker / "sub")
    with caplog.at_level(logging.ERROR, logger="pytest_walredo.process.dump"):
        assert dumper.dump(b"abc") is None
    assert any("could not save the failing walredo input" in r.getMessage()
               for r in caplog.records)


def test_failing_callback_does_not_hide_the_dump(tmp_path: Path) -> None:
    def broken(p: Path, d: bytes, t: str) -> None:
        raise RuntimeError("attachment failed")

    path = FailureDumper(tmp_path, on_dump=broken).dump(b"abc")
    assert path is not None and path.read_bytes() == b"abc"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipes")
@pytest.mark.asyncio
async def test_failing_request_is_dumped_before_the_error_propagates(tmp_path: Path) -> None:
    events: list[str] = []

    def on_dump(path: Path, data: bytes, tail: str) -> None:
        assert path.read_bytes() == data
        events.append(f"dumped {path.name} with tail {tail.splitlines()[-1]!r}")

    dumper = FailureDumper(tmp_path / "dumps", on_dump=on_dump)
    workdir = tmp_path / "work"
    workdir.mkdir()
    proc = WalredoProcess.launch(fake_config(workdir, "--crash-at", "1"))
    client = WalredoClient(proc, timeout=60, dumper=dumper)
    try:
        ok, bad = _request(1), _request(2)
        assert await client.apply(ok) == ok.base_image
        assert dumper.written == []  # successes are not dumped
        with pytest.raises(WalredoProcessError) as e:
            await client.apply(bad)
        events.append("raised")
        err = e.value
        assert err.dump_path is not None
        assert events == [
            f"dumped {err.dump_path.name} with tail 'FATAL:  injected crash at answer 1'",
            "raised",
        ]
        assert err.dump_path is not None and err.dump_path.read_bytes() == bad.encode()
        assert str(err.dump_path) in str(err)
        # A call refused up front (never sent) is not dumped.
        with pytest.raises(WalredoPoisoned) as p:
            await client.apply(ok)
        assert p.value.dump_path is None and len(dumper.written) == 1
    finally:
        await client.aclose()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipes")
@pytest.mark.asyncio
async def test_every_in_flight_request_of_a_crash_is_dumped_and_pings_are_not(
    tmp_path: Path,
) -> None:
    dumper = FailureDumper(tmp_path / "dumps")
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = WalredoClient(WalredoProcess.launch(fake_config(workdir, "--crash-at", "0")),
                           timeout=60, dumper=dumper)
    try:
        reqs = [_request(i) for i in range(4)]
        results = await asyncio.gather(client.ping(), *(client.apply(r) for r in reqs),
                                       return_exceptions=True)
        assert all(isinstance(r, (WalredoProcessError, WalredoPoisoned)) for r in results)
        assert results[0].dump_path is None  # type: ignore[union-attr]
        dumped = sorted(p.read_bytes() for p in dumper.written)
        assert dumped == sorted(r.encode() for r in reqs)
        for res in results[1:]:
            assert res.dump_path is not None and str(res.dump_path) in str(res)  # type: ignore[union-attr]
    finally:
        await client.aclose()
