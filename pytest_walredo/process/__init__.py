"""Process / IO layer: sandboxed launch, stderr capture, the pipelined asyncio client, the sync
facade and ``.walredo`` dumps of failing inputs. See docs/ARCHITECTURE.md ("process layer").

Typical use::

    config = LaunchConfig(Path("/usr/local/pgsql/bin/postgres"), workdir=tmp_path)
    # or refserver_config(tmp_path, pg_version=15) for the reference server
    dumper = FailureDumper(tmp_path / "dumps", on_dump=attach)   # attach(path, data, tail)
    async with WalredoClient(WalredoProcess.launch(config), timeout=10, dumper=dumper) as c:
        page = await c.apply(request)          # many tasks may do this at once
    # blocking code: SyncWalredoClient.launch(config, timeout=10, dumper=dumper)

Modules: ``sandbox`` (launch, limits, stderr, the process tree), ``_shim`` (the supervisor
script started per walredo), ``client`` (asyncio client, pipe transport), ``sync``
(blocking facade), ``dump`` (failing inputs), ``errors``, ``memory`` (in-memory transport for
deterministic tests). The tiny misbehaving walredo this layer's own tests launch is
:mod:`pytest_walredo.testing.fake`. Throughput is measured by
``benchmarks/bench_client.py``, not here.
"""

from .client import (
    DEFAULT_TIMEOUT,
    Call,
    PipeTransport,
    Transport,
    TransportClosed,
    WalredoClient,
)
from .dump import DumpCallback, FailureDumper, dump_name
from .errors import (
    WalredoError,
    WalredoHang,
    WalredoLaunchError,
    WalredoPoisoned,
    WalredoProcessError,
    WalredoTimeout,
)
from .memory import EchoResponder, MemoryTransport
from .sandbox import (
    DEFAULT_TENANT_SHARD_ID,
    LaunchConfig,
    WalredoProcess,
    refserver_config,
)
from .sync import SyncWalredoClient

__all__ = [
    "DEFAULT_TENANT_SHARD_ID",
    "DEFAULT_TIMEOUT",
    "Call",
    "DumpCallback",
    "EchoResponder",
    "FailureDumper",
    "LaunchConfig",
    "MemoryTransport",
    "PipeTransport",
    "SyncWalredoClient",
    "Transport",
    "TransportClosed",
    "WalredoClient",
    "WalredoError",
    "WalredoHang",
    "WalredoLaunchError",
    "WalredoPoisoned",
    "WalredoProcess",
    "WalredoProcessError",
    "WalredoTimeout",
    "dump_name",
    "refserver_config",
]
