"""The sans-IO walredo machine shared by the reference server and the simulated walredo."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from pytest_walredo.protocol import (
    BLCKSZ,
    ApplyRecord,
    BeginRedoForBlock,
    BufferTag,
    GetPage,
    Ping,
    PushPage,
    RelTag,
    encode_messages,
)
from pytest_walredo.refserver.faults import Stop, parse_faults
from pytest_walredo.refserver.machine import (
    EOF_STOP,
    Fatal,
    RedoModel,
    WalredoMachine,
)

ZERO = bytes(BLCKSZ)
REL = RelTag(1663, 5, 16384)
TAG = BufferTag(REL, 3)
RECORD = struct.pack("<IIQBBHI", 24, 0, 0, 0, 0, 0, 0)  # well framed; content up to the model


class _StandInError(Exception):
    def __init__(self, message: str, context: str | None = None) -> None:
        super().__init__(message)
        self.context = context


def _machine(redo: Callable[..., bytes | None] | None = None, **kw: Any) -> tuple[WalredoMachine, list[int]]:
    """A machine whose model is ``redo`` (default: stamp every byte 0x07); counts model loads."""
    loads: list[int] = []

    def load() -> RedoModel:
        loads.append(1)
        return RedoModel(redo or (lambda page, **_: b"\x07" * BLCKSZ), _StandInError)

    return WalredoMachine(model=load, **kw), loads


def test_answers_come_out_for_any_split_of_the_stream() -> None:
    page = bytes(range(256)) * 32
    stream = encode_messages([BeginRedoForBlock(TAG), PushPage(TAG, page), GetPage(TAG), Ping()])
    for split in (1, 7, 5000, len(stream)):
        m, loads = _machine()
        out = b""
        for i in range(0, len(stream), split):
            assert m.feed(stream[i:i + split]) is None
            out += m.take()
        assert out == page + ZERO
        assert m.take() == b""  # M2: each byte once
        assert m.answers == 2 and loads == []  # no record: the model is never loaded


def test_get_forgets_every_page_of_its_relation_only() -> None:
    other = BufferTag(RelTag(1663, 5, 99999), 0)
    m, _ = _machine()
    m.feed(encode_messages([PushPage(TAG, b"a" * BLCKSZ), PushPage(BufferTag(REL, 9), b"b" * BLCKSZ),
                            PushPage(other, b"c" * BLCKSZ), GetPage(TAG)]))
    assert m.take() == b"a" * BLCKSZ
    assert set(m.pages) == {other}


def test_record_applies_to_the_b_block_and_the_model_loads_once() -> None:
    seen: list[dict] = []

    def redo(page: bytes | None, **kw: Any) -> bytes:
        seen.append(dict(kw, page=page))
        return b"\x07" * BLCKSZ

    m, loads = _machine(redo, pg_version=15)
    m.feed(encode_messages([BeginRedoForBlock(TAG), ApplyRecord(0x10, RECORD),
                            ApplyRecord(0x20, RECORD), GetPage(TAG)]))
    assert m.take() == b"\x07" * BLCKSZ
    assert loads == [1]
    assert [s["end_lsn"] for s in seen] == [0x10, 0x20]
    assert seen[0]["page"] is None and seen[1]["page"] == b"\x07" * BLCKSZ
    assert (seen[0]["relnode"], seen[0]["blkno"], seen[0]["pg_version"]) == (16384, 3, 15)


@pytest.mark.parametrize(("record", "message"), [
    (RECORD[:23], "insufficient data left in message"),
    (struct.pack("<I", 0xFFFFFFFF) + RECORD[4:], "mismatch between record (-1) and message size (24)"),
])
def test_framing_errors_are_fatal_before_the_model_loads(record: bytes, message: str) -> None:
    for faults in ((), ("ignore-records",)):
        m, loads = _machine(faults=parse_faults(faults))
        with pytest.raises(Fatal) as info:
            m.feed(encode_messages([Ping(), BeginRedoForBlock(TAG), ApplyRecord(1, record)]))
        assert (info.value.message, info.value.context, loads) == (message, None, [])
        assert m.take() == ZERO  # M1: the answer before the failure is still written


def test_ignore_records_never_loads_the_model() -> None:
    m, loads = _machine(faults=parse_faults(["ignore-records"]))
    m.feed(encode_messages([PushPage(TAG, b"p" * BLCKSZ), BeginRedoForBlock(TAG),
                            ApplyRecord(1, RECORD), GetPage(TAG)]))
    assert (m.take(), loads) == (b"p" * BLCKSZ, [])


def test_no_lsn_keeps_the_old_pd_lsn() -> None:
    m, _ = _machine(faults=parse_faults(["no-lsn"]))
    base = b"L" * 8 + b"p" * (BLCKSZ - 8)
    m.feed(encode_messages([PushPage(TAG, base), BeginRedoForBlock(TAG), ApplyRecord(1, RECORD),
                            GetPage(TAG)]))
    assert m.take() == b"L" * 8 + b"\x07" * (BLCKSZ - 8)


def test_model_error_is_fatal_with_its_context() -> None:
    def redo(page: bytes | None, **kw: Any) -> bytes:
        raise _StandInError("invalid xl_info", "WAL redo at 0/1 for Heap/INSERT: off 1")

    m, _ = _machine(redo)
    with pytest.raises(Fatal) as info:
        m.feed(encode_messages([ApplyRecord(1, RECORD)]))
    assert info.value.lines() == ("FATAL:  invalid xl_info\n"
                                  "CONTEXT:  WAL redo at 0/1 for Heap/INSERT: off 1\n")


def test_model_bug_propagates_unless_mapped() -> None:
    missing: dict[str, bytes] = {}

    def redo(page: bytes | None, **kw: Any) -> bytes:
        return missing["key"]

    m, _ = _machine(redo)
    with pytest.raises(KeyError):
        m.feed(encode_messages([ApplyRecord(1, RECORD)]))
    mapped, _ = _machine(redo, on_model_bug=lambda exc: Fatal(f"bug: {type(exc).__name__}"))
    with pytest.raises(Fatal, match="bug: KeyError"):
        mapped.feed(encode_messages([ApplyRecord(1, RECORD)]))


@pytest.mark.parametrize(("tag", "message"), [(0x5A, "invalid frontend message type 90"),
                                              (0x80, "invalid frontend message type -128")])
def test_unknown_tag_prints_as_a_signed_char(tag: int, message: str) -> None:
    m, _ = _machine()
    with pytest.raises(Fatal, match=f"^{message}$"):
        m.feed(Ping().encode() + bytes([tag]) + b"\x00\x00\x00\x04")
    assert m.take() == ZERO


def test_tag_0xff_is_end_of_input() -> None:
    m, _ = _machine()
    assert m.feed(Ping().encode() + b"\xff\x00\x00\x00\x04") == EOF_STOP
    assert m.take() == ZERO


def test_end_of_input_at_a_boundary_releases_a_held_swap() -> None:
    m, _ = _machine(faults=parse_faults(["swap-responses:1"]))
    m.feed(encode_messages([PushPage(TAG, b"a" * BLCKSZ), GetPage(TAG)]))
    assert m.take() == b""  # held for its partner
    assert m.end_of_input() == EOF_STOP
    assert m.take() == b"a" * BLCKSZ


def test_end_of_input_inside_a_message_is_unexpected_eof() -> None:
    m, _ = _machine()
    m.feed(Ping().encode()[:3])
    with pytest.raises(Fatal, match=r"^unexpected EOF$"):
        m.end_of_input()


@pytest.mark.parametrize("head", [
    b"B" + struct.pack(">I", 4 + 17 + 30) + TAG.encode(),  # B claims 47 bytes, 17 sent
    b"Z" + struct.pack(">I", 4 + 8),  # an unknown tag is only judged with its whole message
    b"H" + struct.pack(">I", 4 + 100),  # so is a length that a fixed-size message cannot have
])
def test_a_message_cut_short_is_waited_for_until_end_of_input(head: bytes) -> None:
    """As in the real process, a message is read whole before it is looked at: while its
    bytes are missing nothing is answered nor rejected; EOF then is ``unexpected EOF``."""
    m, _ = _machine()
    assert m.feed(Ping().encode() + head + GetPage(TAG).encode()[:5]) is None
    assert m.take() == ZERO
    with pytest.raises(Fatal, match=r"^unexpected EOF$"):
        m.end_of_input()


def test_a_bad_length_is_judged_from_the_header_alone() -> None:
    m, _ = _machine()
    with pytest.raises(Fatal, match=r"^invalid message length$"):
        m.feed(Ping().encode() + b"B" + struct.pack(">I", 3))
    assert m.take() == ZERO


def test_fault_stops_come_back_from_start_and_feed() -> None:
    m, _ = _machine(faults=parse_faults(["crash-after:0"]))
    assert m.start() == Stop(False, 1, "FATAL:  fault injected: crash-after:0")
    m, _ = _machine(faults=parse_faults(["crash-after:2"]))
    assert m.start() is None
    stop = m.feed(encode_messages([Ping(), Ping(), Ping()]))
    assert stop == Stop(False, 1, "FATAL:  fault injected: crash-after:2")
    assert m.take() == ZERO * 2  # the third ping is never handled


def test_ping_page_hook_makes_the_h_answer_only() -> None:
    m, _ = _machine(ping_page=lambda: b"p" * BLCKSZ)
    m.feed(encode_messages([Ping(), GetPage(TAG)]))
    assert m.take() == b"p" * BLCKSZ + ZERO


# ---------------------------------------------------------------- edges (docs/MUTATION.md)


def test_fatal_lines_without_context() -> None:
    assert Fatal("boom").lines() == "FATAL:  boom\n"
    assert (Fatal("boom").message, Fatal("boom").context) == ("boom", None)


@pytest.mark.parametrize(("tot_len", "shown"), [(0x7FFFFFFF, "2147483647"), (0x80000000, "-2147483648"),
                                                (25, "25")])
def test_record_length_mismatch_prints_xl_tot_len_as_a_signed_int(tot_len: int, shown: str) -> None:
    m, _ = _machine()
    with pytest.raises(Fatal, match=rf"^mismatch between record \({shown}\) and message size \(24\)$"):
        m.feed(encode_messages([ApplyRecord(1, struct.pack("<I", tot_len) + RECORD[4:])]))


def test_a_record_of_exactly_the_header_size_reaches_the_model() -> None:
    m, loads = _machine()
    m.feed(encode_messages([ApplyRecord(1, RECORD)]))
    assert loads == [1]


@pytest.mark.parametrize(("tag", "message"), [(0x7F, "invalid frontend message type 127"),
                                              (0xFE, "invalid frontend message type -2"),
                                              (0x00, "invalid frontend message type 0")])
def test_unknown_tags_at_the_signed_char_edges(tag: int, message: str) -> None:
    m, _ = _machine()
    with pytest.raises(Fatal, match=f"^{message}$"):
        m.feed(bytes([tag]) + b"\x00\x00\x00\x04")


def test_other_protocol_errors_print_the_real_message() -> None:
    m, _ = _machine()
    with pytest.raises(Fatal, match=r"^invalid message length$"):
        m.feed(b"A\x00\x00\x00\x02")
    m, _ = _machine()
    with pytest.raises(Fatal, match=r"^insufficient data left in message$"):
        m.feed(b"G\x00\x00\x00\x05\x00")


def test_get_forgets_every_fork_of_its_relation() -> None:
    fsm = BufferTag(RelTag(1663, 5, 16384, 1), 0)
    m, _ = _machine()
    m.feed(encode_messages([PushPage(fsm, b"f" * BLCKSZ), PushPage(TAG, b"a" * BLCKSZ), GetPage(TAG),
                            GetPage(fsm)]))
    assert m.take() == b"a" * BLCKSZ + ZERO
    assert m.pages == {}


def test_a_record_before_any_b_applies_to_block_0_of_relation_0() -> None:
    seen: list[dict] = []

    def redo(page: bytes | None, **kw: Any) -> bytes:
        seen.append(kw)
        return b"\x07" * BLCKSZ

    m, _ = _machine(redo)
    m.feed(encode_messages([ApplyRecord(5, RECORD), GetPage(BufferTag(RelTag(0, 0, 0, 0), 0))]))
    assert m.take() == b"\x07" * BLCKSZ
    assert {k: seen[0][k] for k in ("spcnode", "dbnode", "relnode", "forknum", "blkno", "end_lsn")} == {
        "spcnode": 0, "dbnode": 0, "relnode": 0, "forknum": 0, "blkno": 0, "end_lsn": 5}


def test_model_arguments_name_the_b_block_fork_flavour_and_record() -> None:
    seen: list[dict] = []

    def redo(page: bytes | None, **kw: Any) -> bytes:
        seen.append(kw)
        return b"\x07" * BLCKSZ

    from pytest_walredo.pg.version import Flavour

    tag = BufferTag(RelTag(1, 2, 3, 2), 4)
    m, _ = _machine(redo, flavour=Flavour.VANILLA, pg_version=16)
    m.feed(encode_messages([BeginRedoForBlock(tag), ApplyRecord(9, RECORD)]))
    assert seen == [dict(spcnode=1, dbnode=2, relnode=3, forknum=2, blkno=4, end_lsn=9, record=RECORD,
                         pg_version=16, flavour=Flavour.VANILLA)]


def test_model_returning_none_leaves_the_block_unset() -> None:
    m, _ = _machine(lambda page, **_: None)
    m.feed(encode_messages([BeginRedoForBlock(TAG), ApplyRecord(1, RECORD), GetPage(TAG)]))
    assert m.take() == ZERO and m.pages == {}


def test_no_lsn_without_a_base_page_zeroes_pd_lsn_and_leaves_an_unchanged_page_alone() -> None:
    m, _ = _machine(faults=parse_faults(["no-lsn"]))
    m.feed(encode_messages([BeginRedoForBlock(TAG), ApplyRecord(1, RECORD), GetPage(TAG)]))
    assert m.take() == bytes(8) + b"\x07" * (BLCKSZ - 8)
    same, _ = _machine(lambda page, **_: page, faults=parse_faults(["no-lsn"]))
    base = b"L" * 8 + b"p" * (BLCKSZ - 8)
    same.feed(encode_messages([PushPage(TAG, base), BeginRedoForBlock(TAG), ApplyRecord(1, RECORD),
                               GetPage(TAG)]))
    assert same.take() == base


def test_answers_count_gets_and_pings() -> None:
    m, _ = _machine()
    m.feed(encode_messages([Ping(), BeginRedoForBlock(TAG), GetPage(TAG), Ping()]))
    assert m.answers == 3 and m.take() == ZERO * 3


def test_the_default_model_is_the_redo_model_and_its_errors_are_fatal() -> None:
    m = WalredoMachine()  # import_model: pytest_walredo.pg.redo
    with pytest.raises(Fatal) as info:
        m.feed(encode_messages([ApplyRecord(1, RECORD)]))
    # RECORD is an XLOG CHECKPOINT_SHUTDOWN without its checkpoint (the model decodes XLOG's
    # records since they were added to it)
    assert info.value.message.startswith("XLOG record (info 0x00) is malformed")
    assert info.value.context == "WAL redo at 0/1 for XLOG/CHECKPOINT_SHUTDOWN: "


def test_model_errors_without_a_context_attribute() -> None:
    def redo(page: bytes | None, **kw: Any) -> bytes:
        raise ValueError("plain error")

    m = WalredoMachine(model=lambda: RedoModel(redo, ValueError))
    with pytest.raises(Fatal) as info:
        m.feed(encode_messages([ApplyRecord(1, RECORD)]))
    assert (info.value.message, info.value.context) == ("plain error", None)


def test_xl_tot_len_is_the_first_four_bytes_only() -> None:
    m, loads = _machine()
    m.feed(encode_messages([ApplyRecord(1, struct.pack("<IIQBBHI", 24, 0xFF, 0, 0, 0, 0, 0))]))
    assert loads == [1]  # xl_xid's low byte right after xl_tot_len does not change the length


def test_corrupt_byte_fault_touches_get_answers_only() -> None:
    m, _ = _machine(faults=parse_faults(["corrupt-byte:10"]))
    m.feed(encode_messages([Ping(), GetPage(TAG)]))
    got = m.take()
    assert got[:BLCKSZ] == ZERO
    assert got[BLCKSZ:] == bytes(10) + b"\xff" + bytes(BLCKSZ - 11)
