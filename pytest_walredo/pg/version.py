"""PostgreSQL major versions and WAL flavours the model supports."""

from __future__ import annotations

import enum

__all__ = ["DEFAULT_VERSION", "SUPPORTED_VERSIONS", "Flavour", "check_version"]

SUPPORTED_VERSIONS = (14, 15, 16, 17)
DEFAULT_VERSION = 17


class Flavour(str, enum.Enum):
    """Whose PostgreSQL wrote the WAL.

    ``NEON``: Neon's fork. In PG14/15 its heap records carry an extra ``t_cid`` (uint32) in
    xl_heap_header, xl_heap_delete, xl_heap_update, xl_heap_lock and xl_multi_insert_tuple; in
    PG16/17 heap INSERT/DELETE/UPDATE/HOT_UPDATE/LOCK/MULTI_INSERT are logged through Neon's own
    resource manager (rmid 134) instead. ``VANILLA``: upstream PostgreSQL.
    """

    NEON = "neon"
    VANILLA = "vanilla"

    @classmethod
    def parse(cls, value: str | Flavour) -> Flavour:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown WAL flavour {value!r}; expected 'neon' or 'vanilla'") from None


def check_version(version: int) -> int:
    """Return ``version`` if the model supports it, else raise a one-line ValueError."""
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"PostgreSQL version {version} is not supported; expected one of {SUPPORTED_VERSIONS}"
        )
    return version
