"""Starting walredo processes for tests, and fixture factories in the style of pytest-postgresql.

:class:`WalredoFactory` starts sandboxed processes and remembers them so that all are killed and
reaped when the test ends. :func:`walredo_fixture` makes a named fixture with its own settings::

    # conftest.py
    from pytest_walredo import walredo_fixture

    crashing_walredo = walredo_fixture(faults=["crash-after:2"], sync=True)

    def test_crash_is_reported(crashing_walredo): ...
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import pytest

from ..process import (
    LaunchConfig,
    SyncWalredoClient,
    WalredoError,
    WalredoHang,
    WalredoProcess,
    WalredoTimeout,
)
from ..protocol import Ping
from ..target import BinaryError, WalredoBinary
from .capture import CaptureDumper, TestCapture
from .managed import ManagedClient, ManagedSyncClient

__all__ = ["WalredoFactory", "probe_binary", "walredo_fixture"]

OnDump = Callable[[Path, bytes, str], None]


def _launch_config(binary: WalredoBinary, workdir: Path, tenant: str,
                   limits: Mapping[str, Any] | None = None) -> LaunchConfig:
    return LaunchConfig(
        binary=binary.path,
        args=tuple(binary.args),
        lib_dir=binary.lib_dir,
        workdir=workdir,
        tenant_shard_id=tenant,
        **(limits or {}),
    )


def probe_binary(binary: WalredoBinary, timeout: float = 10.0,
                 limits: Mapping[str, Any] | None = None, *, flag: str = "--walredo-bin",
                 hang_check: float | None = 0.2) -> None:
    """Launch ``binary`` once and ping it; raise :class:`BinaryError` naming it (as given with
    ``flag``) if that fails.

    Catches the usual ways a wrong ``--walredo-bin`` fails: it cannot be executed, it exits at
    once (not a walredo build, missing libraries, a wrapper script whose command is not found),
    or it never answers a ping. With ``hang_check`` (seconds) a binary that read the ping and
    sits idle waiting for more input is reported as a hang at once, not after ``timeout``.
    """
    with tempfile.TemporaryDirectory(prefix="walredo-probe-") as tmp:
        try:
            process = WalredoProcess.launch(_launch_config(binary, Path(tmp), "probe", limits))
        except (OSError, WalredoError) as exc:
            raise BinaryError(f"{flag} {binary.path}: cannot be started: {exc}") from None
        client = SyncWalredoClient(process, timeout=timeout, hang_check=hang_check)
        try:
            page = client.ping(timeout=timeout)
        except WalredoError as exc:
            raise BinaryError(_probe_failure(binary, process, exc, timeout, hang_check, flag)) from None
        finally:
            client.close()
        if len(page) != 8192:
            raise BinaryError(f"{flag} {binary.path}: answered a ping with {len(page)} bytes, not 8192")


SHELL_NOT_FOUND = 127
"""The exit status of a shell whose command was not found."""


def _probe_failure(binary: WalredoBinary, process: WalredoProcess, exc: WalredoError, timeout: float,
                   hang_check: float | None, flag: str) -> str:
    """One sentence: how the probe's ping failed, naming the binary."""
    tail = process.stderr_tail().strip().splitlines()
    said = f"; it said: {tail[-1][:200]}" if tail else ""
    code = process.poll()
    started = f"(started as '{binary.path.name} --wal-redo')"
    if isinstance(exc, WalredoHang):
        got = ""
        m = re.search(r"after (\d+) of 8192 bytes", exc.message)
        if m:
            got = f" and wrote {m.group(1)} of the 8192 bytes of its answer"
        return (f"{flag} {binary.path}: hangs: it read the whole ping ({len(Ping().encode())} bytes: "
                f"H){got} and sits idle waiting for more input instead of answering (found by the hang check "
                f"after {hang_check:g} s) {started}{said}")
    if isinstance(exc, WalredoTimeout) or code is None:
        return f"{flag} {binary.path}: did not answer a ping within {timeout:g} s {started}{said}"
    hint = ""
    if code == SHELL_NOT_FOUND:
        hint = ("; status 127 is a shell's 'command not found': the sandbox clears PATH, so a wrapper "
                "script must call every program by its absolute path")
    return f"{flag} {binary.path}: exited with status {code} before answering a ping {started}{said}{hint}"


class WalredoFactory:
    """Starts sandboxed walredo processes for one test and closes them all in :meth:`close_all`.

    Every client it hands out is managed (:mod:`.managed`): it records its calls into the
    test's ``capture`` (:mod:`.capture`), and the call after a failure runs on a fresh process.
    """

    def __init__(
        self,
        binary: WalredoBinary,
        *,
        timeout: float,
        workdir_root: Path,
        dump_dir: Path,
        on_dump: OnDump | None = None,
        hang_check: float | None = None,
        limits: Mapping[str, Any] | None = None,
        capture: TestCapture | None = None,
    ) -> None:
        """``limits``: :class:`~pytest_walredo.process.LaunchConfig` resource-limit fields
        (``rlimit_as``, ``rlimit_cpu``, ``core_dumps``, ``no_new_privs``) for every process."""
        self.binary = binary
        self.limits = dict(limits or {})
        self.timeout = timeout
        self.hang_check = hang_check
        self.workdir_root = workdir_root
        self.dump_dir = dump_dir
        self.on_dump = on_dump
        self.capture = capture if capture is not None else TestCapture(str(dump_dir))
        self.dumper = CaptureDumper(dump_dir, self.capture, on_dump=on_dump)
        """Shared by every client: failing requests land in ``dump_dir``, at most a few per test."""
        self._clients: list[ManagedClient | ManagedSyncClient] = []
        self._counter = itertools.count()

    @overload
    def __call__(
        self, *, faults: Sequence[str] = ..., args: Sequence[str] = ..., sync: Literal[False] = ...,
        timeout: float | None = ..., binary: WalredoBinary | None = ..., label: str | None = ...,
    ) -> ManagedClient: ...

    @overload
    def __call__(
        self, *, faults: Sequence[str] = ..., args: Sequence[str] = ..., sync: Literal[True],
        timeout: float | None = ..., binary: WalredoBinary | None = ..., label: str | None = ...,
    ) -> ManagedSyncClient: ...

    def __call__(
        self,
        *,
        faults: Sequence[str] = (),
        args: Sequence[str] = (),
        sync: bool = False,
        timeout: float | None = None,
        binary: WalredoBinary | None = None,
        label: str | None = None,
    ) -> ManagedClient | ManagedSyncClient:
        """Start one more process. ``faults`` only work with the reference walredo; ``label``
        names the client in logs and failure artifacts (default ``walredo_factory #N``)."""
        target = binary or self.binary
        try:
            target = target.with_faults(faults).with_args(args)
        except BinaryError as exc:
            pytest.skip(str(exc))
        n = next(self._counter)
        workdir = self.workdir_root / f"walredo-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = _launch_config(target, workdir, f"test-{os.getpid()}-{n}", self.limits)

        def launch() -> WalredoProcess:
            return WalredoProcess.launch(config)

        t = self.timeout if timeout is None else timeout
        managed = ManagedClient(launch, self.capture, label=label or f"walredo_factory #{n}", timeout=t,
                                dumper=self.dumper, hang_check=self.hang_check)
        client: ManagedClient | ManagedSyncClient = ManagedSyncClient(managed) if sync else managed
        self._clients.append(client)
        return client

    @property
    def clients(self) -> list[ManagedClient | ManagedSyncClient]:
        """The clients started so far and not yet closed, oldest first."""
        return list(self._clients)

    def seccomp_report(self) -> list[tuple[int, int | None]]:
        """``(pid, seccomp mode after the first request)`` for every process that answered one.

        The mode comes from ``/proc/PID/status`` (0 off, 1 strict, 2 filter); None means the
        process answered but its status could not be read.
        """
        out = []
        for client in self._clients:
            process = client.process
            inner = client.client if isinstance(client, ManagedSyncClient) else client
            if process is not None and inner.requests_sent:
                out.append((process.pid, client.seccomp_mode_after_first_request))
        return out

    def close_all(self) -> None:
        """Kill and reap every process this factory started, with every process they started
        (idempotent). Descendants that could not be killed are reported with a warning."""
        errors: list[BaseException] = []
        leftovers: list[str] = []
        while self._clients:
            client = self._clients.pop()
            try:
                client.close()
            except Exception as exc:  # keep closing the others
                errors.append(exc)
            process = client.process
            if process is not None and process.leftovers:
                leftovers.append(f"walredo pid {process.pid}: {process.leftovers}")
        if leftovers:
            import warnings

            warnings.warn(pytest.PytestWarning(
                "descendants of the walredo binary survived SIGKILL and were left running: "
                + "; ".join(leftovers)), stacklevel=2)
        if errors:
            raise errors[0]


def walredo_fixture(
    *,
    faults: Sequence[str] = (),
    args: Sequence[str] = (),
    sync: bool = False,
    timeout: float | None = None,
    binary: str | os.PathLike[str] | None = None,
) -> Any:
    """Make a function-scoped fixture that yields a walredo client with these settings.

    ``binary`` overrides ``--walredo-bin`` for this fixture; ``faults`` need the reference.
    """

    @pytest.fixture
    def _fixture(request: pytest.FixtureRequest,
                 walredo_factory: WalredoFactory) -> Iterator[ManagedClient | ManagedSyncClient]:
        target = None
        if binary is not None:
            from ..target import user_binary

            base = walredo_factory.binary
            try:
                target = user_binary(Path(binary), None, base.pg_version, base.flavour, flag="binary=")
            except BinaryError as exc:
                pytest.fail(str(exc), pytrace=False)
        yield walredo_factory(faults=faults, args=args, sync=sync, timeout=timeout, binary=target,  # type: ignore[call-overload]
                              label=request.fixturename)

    return _fixture
