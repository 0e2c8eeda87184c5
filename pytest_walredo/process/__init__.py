"""Process / IO layer: sandboxed launch, stderr capture, the pipelined asyncio client, the sync
facade and ``.walredo`` dumps of failing inputs. See docs/ARCHITECTURE.md ("process layer")."""

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
    "WalredoLaunchError",
    "WalredoPoisoned",
    "WalredoProcess",
    "WalredoProcessError",
    "WalredoTimeout",
    "dump_name",
    "refserver_config",
]
