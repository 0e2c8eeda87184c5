"""Replay corpus entries through a walredo process and judge each answer (process layer).

One long-lived process serves the entries in order (every request starts with ``B``, as the
pageserver sends them); after a failure (the process died, broke the protocol or timed out) the
next entry gets a fresh process. Against the embedded reference walredo, entries the redo model
does not implement are ``unsupported`` and not sent at all (see :mod:`.judge`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_walredo.corpus.format import Entry
from pytest_walredo.corpus.judge import EntryResult, judge_answer, model_unsupported
from pytest_walredo.process import LaunchConfig, SyncWalredoClient, WalredoError, WalredoProcess
from pytest_walredo.target import WalredoBinary, reference_binary

__all__ = ["reference_for", "replay_entries"]


def reference_for(entries: Sequence[Entry], directory: Path, faults: Sequence[str] = ()) -> WalredoBinary:
    """The embedded reference walredo for ``entries`` (which must share one PostgreSQL version
    and flavour), with ``faults``; its launcher is written into ``directory``."""
    versions = {(e.meta.pg_version, e.meta.flavour) for e in entries}
    if len(versions) > 1:
        raise ValueError(f"entries of several versions/flavours {sorted(versions)}: replay them separately")
    version, flavour = next(iter(versions)) if versions else (15, None)
    from pytest_walredo.pg.version import Flavour

    return reference_binary(directory, version, flavour or Flavour.VANILLA).with_faults(list(faults))


def replay_entries(entries: Sequence[Entry], binary: WalredoBinary, *, timeout: float = 10.0,
                   model_oracle: bool | None = None,
                   on_result: Callable[[EntryResult], None] | None = None) -> list[EntryResult]:
    """Send every entry's request to ``binary`` and judge the answers.

    ``model_oracle``: entries whose records the redo model does not implement are
    ``unsupported`` (default: when ``binary`` is the reference walredo, which answers through
    the model; pass False to judge a faulty reference that bypasses the model, such as
    ``--fault=ignore-records``, on every entry)."""
    if model_oracle is None:
        model_oracle = binary.is_reference
    results: list[EntryResult] = []
    client: SyncWalredoClient | None = None
    with tempfile.TemporaryDirectory(prefix="walredo-corpus-replay-") as work:
        config = LaunchConfig(binary.path, args=binary.args, lib_dir=binary.lib_dir, workdir=Path(work))
        try:
            for entry in entries:
                unsupported = model_unsupported(entry) if model_oracle else None
                page, error = None, None
                if unsupported is not None:  # skipped: the oracle cannot judge it
                    result = judge_answer(entry, None, unsupported=unsupported)
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
                    continue
                try:
                    if client is None:
                        client = SyncWalredoClient(WalredoProcess.launch(config), timeout=timeout)
                    page = client.apply(entry.decoded_request(), timeout)
                except WalredoError as exc:
                    error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    if client is not None:
                        client.close()
                    client = None
                result = judge_answer(entry, page, error, unsupported=unsupported)
                results.append(result)
                if on_result is not None:
                    on_result(result)
        finally:
            if client is not None:
                client.close()
    return results
