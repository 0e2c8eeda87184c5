"""The old import path of the fixture factories, kept so existing conftest files work.

Prefer ``from pytest_walredo import walredo_fixture``; the code lives in
:mod:`pytest_walredo.plugin.factories`.
"""

from .plugin.factories import WalredoFactory, walredo_fixture

__all__ = ["WalredoFactory", "walredo_fixture"]
