"""pytest plugin: options, fixtures and hooks (filled in by the walking-skeleton work)."""
