"""pytest-walredo: property tests, fixtures and triage tools for Neon's WAL-redo process."""

__version__ = "0.1.0"
