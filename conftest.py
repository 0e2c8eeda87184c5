"""Project-level test configuration: where the shared test vectors live.

The vectors (``short_v14.walredo`` and friends) are real inputs from Neon's tests. They are read
from ``../shared/vectors`` next to the checkout (``WALREDO_VECTORS_DIR`` overrides the path) and
never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VECTORS_ENV = "WALREDO_VECTORS_DIR"
ROOT = Path(__file__).resolve().parent


def vectors_path() -> Path:
    """The vectors folder: ``$WALREDO_VECTORS_DIR`` or ``<checkout>/../shared/vectors``."""
    override = os.environ.get(VECTORS_ENV)
    return Path(override) if override else ROOT.parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The shared vectors folder; skips the test (with the reason) only when it is absent."""
    path = vectors_path()
    if not path.is_dir():
        pytest.skip(f"shared vectors folder {path} is absent (set {VECTORS_ENV} to its path)")
    return path
