"""``python -m pytest_walredo.triage``: the same as the ``pytest-walredo`` console script."""

from __future__ import annotations

import sys

from pytest_walredo.triage.cli import main

if __name__ == "__main__":
    sys.exit(main())
