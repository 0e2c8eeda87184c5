"""A variant of the suite's run: which client class drives the process, which reference
``--fault=`` specs it starts with, and whether the run is a hunt.

The suite's normal run has none: the real client (:class:`~pytest_walredo.interleave.ScheduledClient`)
and the binary as configured. The project's bug catalogue (:mod:`pytest_walredo.testing.mutants`)
registers a subclass with ``pytest.main([...], plugins=[variant])``; the suite's conftest finds
it among the run's plugins by type, so nothing the suite ships depends on the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_walredo.interleave import ScheduledClient

__all__ = ["SuiteVariant", "registered_variant"]


class SuiteVariant:
    """``client_class``: drives every pooled process (a subclass of ScheduledClient);
    ``faults``: reference ``--fault=`` specs every pooled process starts with; ``hunt``: the run
    measures how fast the suite finds a seeded bug (no example database, no explain phase)."""

    def __init__(self, *, client_class: type[ScheduledClient] = ScheduledClient,
                 faults: Sequence[str] = (), hunt: bool = False) -> None:
        if not (isinstance(client_class, type) and issubclass(client_class, ScheduledClient)):
            raise TypeError(f"client_class {client_class!r} is not a ScheduledClient subclass")
        self.client_class = client_class
        self.faults = tuple(faults)
        self.hunt = hunt


def registered_variant(config: pytest.Config) -> SuiteVariant | None:
    """The variant a caller registered with this run, if any."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, SuiteVariant):
            return plugin
    return None
