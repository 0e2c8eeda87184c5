"""Triage tools for failing walredo inputs: the ``pytest-walredo`` command.

Subcommands (``pytest-walredo SUBCOMMAND --help`` for each):

* ``inspect FILE``: decode a ``.walredo`` stream (every message; WAL records like pg_waldump)
  or summarize an 8192-byte page file (:mod:`.inspect`).
* ``replay FILE``: run a ``.walredo`` request through a walredo process and compare the answer
  with ``--expect`` or with the redo model's prediction (:mod:`.replay`).
* ``shrink FILE --until {crash,timeout,differs}``: delta-debug a failing request down to a
  minimal one (:mod:`.shrink`).
* ``diff A B``: structured difference of two pages (:mod:`.pagediff`).

Every error a user can cause (missing file, not a walredo stream, wrong page size, bad flag
value) is a :class:`TriageError` whose message is one sentence naming the file or flag at fault;
the command line prints it on one line and exits with status 2, never with a traceback.
"""

from __future__ import annotations

__all__ = ["TriageError"]


class TriageError(Exception):
    """A user-caused problem (bad file, bad flag value); ``str()`` is one clear sentence."""
