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
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import pytest

from ..process import (
    FailureDumper,
    LaunchConfig,
    SyncWalredoClient,
    WalredoClient,
    WalredoError,
    WalredoProcess,
    WalredoTimeout,
)
from ..target import BinaryError, WalredoBinary

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
                 limits: Mapping[str, Any] | None = None, *, flag: str = "--walredo-bin") -> None:
    """Launch ``binary`` once and ping it; raise :class:`BinaryError` naming it (as given with
    ``flag``) if that fails.

    Catches the usual ways a wrong ``--walredo-bin`` fails: it cannot be executed, it exits at
    once (not a walredo build, missing libraries), or it never answers a ping.
    """
    with tempfile.TemporaryDirectory(prefix="walredo-probe-") as tmp:
        try:
            process = WalredoProcess.launch(_launch_config(binary, Path(tmp), "probe", limits))
        except (OSError, WalredoError) as exc:
            raise BinaryError(f"{flag} {binary.path}: cannot be started: {exc}") from None
        client = SyncWalredoClient(process, timeout=timeout)
        try:
            page = client.ping(timeout=timeout)
        except WalredoError as exc:
            tail = process.stderr_tail().strip().splitlines()
            said = f"; it said: {tail[-1][:200]}" if tail else ""
            code = process.poll()
            if isinstance(exc, WalredoTimeout) or code is None:
                how = f"did not answer a ping within {timeout:g} s"
            else:
                how = f"exited with status {code} before answering a ping"
            raise BinaryError(
                f"{flag} {binary.path}: {how} (started as "
                f"'{binary.path.name} --wal-redo'){said}"
            ) from None
        finally:
            client.close()
        if len(page) != 8192:
            raise BinaryError(f"{flag} {binary.path}: answered a ping with {len(page)} bytes, not 8192")


class WalredoFactory:
    """Starts sandboxed walredo processes for one test and closes them all in :meth:`close_all`."""

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
        self._clients: list[WalredoClient | SyncWalredoClient] = []
        self._counter = itertools.count()

    @overload
    def __call__(
        self, *, faults: Sequence[str] = ..., args: Sequence[str] = ..., sync: Literal[False] = ...,
        timeout: float | None = ..., binary: WalredoBinary | None = ...,
    ) -> WalredoClient: ...

    @overload
    def __call__(
        self, *, faults: Sequence[str] = ..., args: Sequence[str] = ..., sync: Literal[True],
        timeout: float | None = ..., binary: WalredoBinary | None = ...,
    ) -> SyncWalredoClient: ...

    def __call__(
        self,
        *,
        faults: Sequence[str] = (),
        args: Sequence[str] = (),
        sync: bool = False,
        timeout: float | None = None,
        binary: WalredoBinary | None = None,
    ) -> WalredoClient | SyncWalredoClient:
        """Start one more process. ``faults`` only work with the reference walredo."""
        target = binary or self.binary
        try:
            target = target.with_faults(faults).with_args(args)
        except BinaryError as exc:
            pytest.skip(str(exc))
        n = next(self._counter)
        workdir = self.workdir_root / f"walredo-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        process = WalredoProcess.launch(
            _launch_config(target, workdir, f"test-{os.getpid()}-{n}", self.limits))
        dumper = FailureDumper(self.dump_dir, on_dump=self.on_dump)
        t = self.timeout if timeout is None else timeout
        client: WalredoClient | SyncWalredoClient
        if sync:
            client = SyncWalredoClient(process, timeout=t, dumper=dumper,
                                       hang_check=self.hang_check)
        else:
            client = WalredoClient(process, timeout=t, dumper=dumper, hang_check=self.hang_check)
        self._clients.append(client)
        return client

    @property
    def clients(self) -> list[WalredoClient | SyncWalredoClient]:
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
            inner = client.client if isinstance(client, SyncWalredoClient) else client
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
    def _fixture(walredo_factory: WalredoFactory) -> Iterator[WalredoClient | SyncWalredoClient]:
        target = None
        if binary is not None:
            from ..target import user_binary

            base = walredo_factory.binary
            try:
                target = user_binary(Path(binary), None, base.pg_version, base.flavour, flag="binary=")
            except BinaryError as exc:
                pytest.fail(str(exc), pytrace=False)
        yield walredo_factory(faults=faults, args=args, sync=sync, timeout=timeout, binary=target)  # type: ignore[call-overload]

    return _fixture
