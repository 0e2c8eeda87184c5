"""The reference walredo server: a separate process that speaks the walredo protocol like
``postgres --wal-redo`` (Neon's ``walredoproc``) and applies records with :mod:`pytest_walredo.pg.redo`.

Run it as ``walredo-ref --wal-redo [--tenant-shard-id ID] [--disable-seccomp] [--pg-version N]
[--flavour neon|vanilla] [--fault=SPEC ...]`` or ``python -m pytest_walredo.refserver --wal-redo
...``. It needs no data directory, writes no files, works in any directory and prints nothing at
start-up. ``--pg-version`` (14-17, default 17) and ``--flavour`` (default ``neon``) choose the WAL
format the model decodes; the real binary knows its version from how it was built.
``--fault=SPEC`` seeds a bug (:mod:`.faults`).

Behaviour that matches the real process (``shared/walredo-behaviour.md``):

- ``H`` answers 8192 zero bytes; ``G`` answers the block's page (pushed with ``P`` and changed by
  ``A``, or 8192 zeros); ``B``, ``P`` and ``A`` are never answered. Any number of ``B``..``G``
  cycles per process.
- Errors: one ``FATAL:  <message>`` line on stderr (``CONTEXT:  WAL redo at X/Y for ...`` after
  it for errors while applying a record), exit status 1, no bytes for the failing request;
  answers to earlier requests are written first. Messages: ``invalid frontend message type N``
  (decimal; a tag byte >= 0x80 prints negative, as the real one's signed ``char`` does on x86_64,
  and tag 0xFF is taken as end of input as there), ``invalid message length``, ``unexpected
  EOF``, ``insufficient data left in message``, ``mismatch between record (T) and message size
  (M)``, and whatever :class:`pytest_walredo.pg.redo.RedoError` says.
- EOF on stdin at a message boundary: ``LOG:  received EOF on stdin, shutting down``, status 0.
- Seccomp (unless ``--disable-seccomp``): ``/proc/PID/status`` shows ``Seccomp: 2`` before the
  first request is read (:mod:`.seccomp`).

Where it differs from the real process (on purpose or by nature):

- Start-up: through the process layer's shim server (the default), the launcher that
  ``target.reference_binary`` writes is not exec'd: the server imported this package once
  (:func:`.__main__.prefork`) and the walredo's process, forked from its shim, calls
  :func:`.__main__.main`; launch to first ping then costs about what a C binary's does
  (``benchmarks/bench_reference.py``). Its ``/proc/PID/cmdline`` is then the shim server's, not
  ``walredo-ref --wal-redo ...``. Exec'd (no shim server, or ``python -m
  pytest_walredo.refserver``), start-up is CPython's own plus the imports: tens of milliseconds
  with ``--disable-seccomp`` (the model is imported at the first ``A``), more with seccomp on
  (the model is imported before the filter, which forbids opening module files).
- An unknown resource manager id: a clean ``FATAL`` naming the id (the real one segfaults).
- An unexpected exception inside the model (a bug of ours): ``FATAL:  reference redo model
  failed: ...`` naming the source line, status 1.
- Unknown command-line arguments are a usage error (status 2); the real one ignores them.
  Without ``--wal-redo`` first: a one-line usage error, status 2 (the real ``postgres`` would
  start in another mode).
- Malformed streams are judged as soon as the 5-byte header arrives (sans-IO decoder): an unknown
  tag or bad length is reported without waiting for the payload, where the real process first
  reads ``length - 4`` payload bytes (so with a truncated payload it says ``unexpected EOF``, and
  on an open pipe it waits). A ``B``/``G``/``P``/``H`` payload longer than its fields is
  ``invalid message format`` here; the real one ignores the extra bytes.
- Answers of a batch of pipelined messages leave in one ``write`` (the real one writes each page
  as it is produced); callers cannot tell except by timing.
- Seccomp: the allow-list is what CPython needs (read, write, memory, futex, signals, exit), not
  the real one's (read, write, select, brk, mmap, getpid, exit_group), and a forbidden syscall
  fails with EPERM instead of killing the process (see :mod:`.seccomp`). There are no "extra
  internal fds" with ``--disable-seccomp``.
- ``G`` forgets the pages of its relation (like the real one's local-buffer drop) but the model of
  the buffer cache is a dictionary: there is no buffer eviction and no ``REDO accessing
  unexpected page`` warning.
"""
