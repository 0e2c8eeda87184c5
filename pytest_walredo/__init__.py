"""pytest-walredo: property tests, fixtures and triage tools for Neon's WAL-redo process.

The names users import, from one place::

    from pytest_walredo import RedoRequest, RelTag, WalredoHang, walredo_fixture
    from pytest_walredo import strategies as ws

Everything in ``__all__`` is public; so are the modules the README names (``strategies``,
``sim``, ``interleave``, ``protocol``, ``pg``, ``process``, ``triage``, ``conformance``).
Names load on first use, so importing this package stays cheap (the reference walredo
process imports it at start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # the protocol
    "BufferTag": "pytest_walredo.protocol",
    "RedoRequest": "pytest_walredo.protocol",
    "RelTag": "pytest_walredo.protocol",
    "ProtocolError": "pytest_walredo.protocol",
    # talking to a walredo process
    "LaunchConfig": "pytest_walredo.process",
    "SyncWalredoClient": "pytest_walredo.process",
    "WalredoClient": "pytest_walredo.process",
    "WalredoProcess": "pytest_walredo.process",
    "WalredoBinary": "pytest_walredo.target",
    # errors a walredo client raises
    "WalredoError": "pytest_walredo.process",
    "WalredoHang": "pytest_walredo.process",
    "WalredoLaunchError": "pytest_walredo.process",
    "WalredoPoisoned": "pytest_walredo.process",
    "WalredoProcessError": "pytest_walredo.process",
    "WalredoTimeout": "pytest_walredo.process",
    # the model's answer
    "model_page": "pytest_walredo.sim",
    # the plugin: fixture factories, settings, failing examples
    "WalredoFactory": "pytest_walredo.plugin.factories",
    "walredo_fixture": "pytest_walredo.plugin.factories",
    "WalredoSettings": "pytest_walredo.plugin.settings",
    "ExampleRequest": "pytest_walredo.plugin.example",
    "FailingExample": "pytest_walredo.plugin.example",
    "record_failure": "pytest_walredo.plugin.example",
}

__all__ = [
    "BufferTag",
    "ExampleRequest",
    "FailingExample",
    "LaunchConfig",
    "ProtocolError",
    "RedoRequest",
    "RelTag",
    "SyncWalredoClient",
    "WalredoBinary",
    "WalredoClient",
    "WalredoError",
    "WalredoFactory",
    "WalredoHang",
    "WalredoLaunchError",
    "WalredoPoisoned",
    "WalredoProcess",
    "WalredoProcessError",
    "WalredoSettings",
    "WalredoTimeout",
    "__version__",
    "model_page",
    "record_failure",
    "walredo_fixture",
]
"""Every name in ``_EXPORTS`` (tests/test_layers.py checks the two agree)."""

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from .plugin.example import ExampleRequest, FailingExample, record_failure
    from .plugin.factories import WalredoFactory, walredo_fixture
    from .plugin.settings import WalredoSettings
    from .process import (
        LaunchConfig,
        SyncWalredoClient,
        WalredoClient,
        WalredoError,
        WalredoHang,
        WalredoLaunchError,
        WalredoPoisoned,
        WalredoProcess,
        WalredoProcessError,
        WalredoTimeout,
    )
    from .protocol import BufferTag, ProtocolError, RedoRequest, RelTag
    from .sim import model_page
    from .target import WalredoBinary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_walredo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
