"""Malformed input makes the process exit (not hang, not answer), the client reports a clear
error, and what comes next gets a fresh process."""

from __future__ import annotations

import os
import struct
import time

import pytest

from pytest_walredo.process import LaunchConfig, WalredoError, WalredoProcess
from pytest_walredo.protocol import BLCKSZ, BufferTag, RelTag

_TAG = BufferTag(RelTag(1663, 5, 16384), 0).encode()


def _msg(tag: bytes, payload: bytes, length: int | None = None) -> bytes:
    return tag + struct.pack(">I", len(payload) + 4 if length is None else length) + payload


def _record_with_tot_len(tot_len: int, size: int = 24) -> bytes:
    return struct.pack("<IIQBBHI", tot_len, 0, 0, 0xB0, 0, 0, 0) + bytes(size - 24)


CASES = {
    "unknown tag": _msg(b"B", _TAG) + _msg(b"Z", b"") + _msg(b"G", _TAG),
    "length below 4": _msg(b"B", _TAG) + _msg(b"G", b"", length=2),
    "B payload too short": _msg(b"B", _TAG[:10]) + _msg(b"G", _TAG),
    "P page too short": _msg(b"B", _TAG) + _msg(b"P", _TAG + bytes(100)) + _msg(b"G", _TAG),
    "truncated message": _msg(b"B", _TAG, length=4 + 17 + 30) + _msg(b"G", _TAG),
    "record length disagrees with message": _msg(b"B", _TAG)
    + _msg(b"A", struct.pack(">Q", 0x1000000) + _record_with_tot_len(0, 24)) + _msg(b"G", _TAG),
    "record shorter than its header": _msg(b"B", _TAG)
    + _msg(b"A", struct.pack(">Q", 0x1000000) + bytes(10)) + _msg(b"G", _TAG),
}


CUT_SHORT = {"truncated message"}
"""Cases whose last message runs past the bytes sent. A real walredo reads a message whole
before looking at it, so it waits for the rest while stdin is open: the property ends the input
after the bytes (EOF), and then the process must say ``unexpected EOF`` and exit, answering
nothing."""


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_makes_the_process_exit(walredo_pool, case):
    """The client gets a WalredoError naming the exit, not an answer and not a timeout;
    the pool's next client is a fresh process that answers."""
    client = walredo_pool.client()
    first = client.process
    try:
        page = walredo_pool.run(client.apply_raw(CASES[case], what=case, end_input=case in CUT_SHORT))
    except WalredoError as exc:
        err = exc
    else:
        pytest.fail(f"[error] {case}: the process answered ({len(page)} bytes) instead of exiting")
    assert type(err).__name__ not in ("WalredoTimeout", "WalredoHang"), \
        f"[hang] {case}: the process neither exited nor answered ({err})"
    assert "exited" in str(err) or "closed" in str(err) or "signal" in str(err), \
        f"[error] {case}: unclear error {err}"
    assert first is not None and first.wait(5) is not None, f"[hang] {case}: the process did not exit"
    again = walredo_pool.client()
    assert again.process is not first
    assert len(walredo_pool.ping()) == BLCKSZ


def test_eof_inside_a_message_ends_the_process(walredo_bin, tmp_path):
    """Raw pipe: stdin closed in the middle of a message -> the process exits, answering
    nothing."""
    config = LaunchConfig(binary=walredo_bin.path, args=tuple(walredo_bin.args),
                          lib_dir=walredo_bin.lib_dir, workdir=tmp_path)
    with WalredoProcess.launch(config) as proc:
        os.write(proc.stdin_fd, _msg(b"B", _TAG) + _msg(b"G", _TAG)[:9])
        # Replace our only write end of the pipe by /dev/null: the child sees EOF, and the
        # process object still owns (and later closes) a valid fd under that number.
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, proc.stdin_fd)
        finally:
            os.close(null)
        code = proc.wait(10)
        assert code is not None, "[hang] the process kept running after EOF inside a message"
        os.set_blocking(proc.stdout_fd, False)
        try:
            out = os.read(proc.stdout_fd, BLCKSZ)
        except BlockingIOError:
            out = b""
        assert out == b"", f"[error] the process answered {len(out)} bytes to a truncated GetPage"
        assert code != 0 or "EOF" in proc.stderr_tail(), f"exit status {code}"
    time.sleep(0)
