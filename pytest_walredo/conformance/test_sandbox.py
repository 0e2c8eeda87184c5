"""After its first request the walredo process runs under seccomp."""

from __future__ import annotations

import pytest

from pytest_walredo.protocol import BLCKSZ


def test_seccomp_after_first_request(walredo_pool, walredo_settings):
    client = walredo_pool.fresh()
    assert len(walredo_pool.ping()) == BLCKSZ
    mode = client.seccomp_mode_after_first_request
    if mode is None:
        pytest.skip("the process's seccomp mode could not be read from /proc")
    if mode == 0:
        why = "the walredo process runs without seccomp after its first request (Seccomp: 0)"
        if walredo_settings.require_seccomp:
            pytest.fail(why + " and --walredo-require-seccomp is set", pytrace=False)
        pytest.skip(why + "; pass --walredo-require-seccomp to make this a failure")
    assert mode == 2, f"unexpected seccomp mode {mode} (expected 2, filter)"
