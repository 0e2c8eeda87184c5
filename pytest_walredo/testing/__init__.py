"""For testing pytest-walredo itself: test doubles and seeded bugs. Nothing the conformance
suite or the plugin ships depends on this package.

* :mod:`.fake`: a tiny misbehaving walredo (``python -m pytest_walredo.testing.fake``) for the
  process layer's own tests;
* :mod:`.wrappers`: the reference walredo behind a shell script (an opaque ``--walredo-bin``,
  optionally with seeded faults);
* :mod:`.mutants`: deliberately broken clients, the seeded-bug catalogue and :func:`~.mutants.hunt`,
  used by ``tests/test_bug_catalogue.py`` and ``benchmarks/bug_table.py``.
"""
