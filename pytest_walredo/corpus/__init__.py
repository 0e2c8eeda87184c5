"""Corpora of real PostgreSQL WAL: walredo requests with the page PostgreSQL itself logged as the
answer (``wal_consistency_checking``).

- :mod:`.format` / :mod:`.folder`: the corpus layout (``NAME.walredo``, ``NAME.expected.page``,
  ``NAME.json``), read, written and validated.
- :mod:`.cutter`: real WAL records in, entries out (pure).
- :mod:`.judge`: verdicts under the masking rules of :mod:`pytest_walredo.pg.mask`, what the redo
  model supports, the per-kind table (pure).
- :mod:`.server` / :mod:`.builder`: a throwaway PostgreSQL server running workloads
  (``workloads/*.sql``), the ``pytest-walredo corpus build`` implementation.
- :mod:`.replay`: entries through a walredo process, judged.
- :mod:`.default`: the corpora shipped with the package.
"""
