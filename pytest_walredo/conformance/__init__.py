"""The walredo conformance suite: property tests any walredo binary must pass.

Run it against the embedded reference walredo, or your own build::

    pytest -p no:cacheprovider --pyargs pytest_walredo.conformance [--walredo-bin PATH]

Properties (one module each):

* ``test_answers``: a ping answers 8192 bytes; GetPage before any record answers the pushed
  image; the same request twice gives the same page; full-page images are restored with
  pd_lsn set; split invariance; every page agrees with the redo model.
* ``test_concurrency``: N callers (1..16) share one process through our client under drawn
  interleavings with cancellations; each caller gets exactly the page of its own request
  (compared with the request run alone).
* ``test_malformed``: malformed input makes the process exit instead of hanging or answering,
  the client reports a clear error, and the next test gets a fresh process.
* ``test_sandbox``: after the first request the process runs under seccomp.

Within one Hypothesis test the process is reused across examples and relaunched after a
failing one (:mod:`.pool`). The current example is recorded for reports (:mod:`.recorder`).
"""
