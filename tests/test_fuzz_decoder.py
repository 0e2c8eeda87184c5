"""Fuzzing the stream decoder and ``inspect`` with random and mutated inputs seeded from the vectors.

Two properties:

* ``test_seeded_mutations_*``: 5 Hypothesis examples (derandomized, so every run is the same)
  x 2,000 seeded mutations each = 10,000 inputs. Mutations are byte-level (bit flips, byte
  writes, truncation, insertion, deletion, duplication, splicing, length-field and tag edits)
  and structure-aware (edit the WAL record inside an ``A`` or the page inside a ``P`` and
  re-frame it, so the input gets past the framing into the record and page decoders), stacked
  1-3 deep. A failure names the example seed and the iteration, which reproduce it exactly.
* ``test_hypothesis_mutations``: Hypothesis-chosen edits (shrinkable) on the same seeds.

Both check that :func:`decode_stream` raises only :class:`ProtocolError` (with an offset inside
the input), that a stream that decodes re-encodes to the same bytes, that the incremental
:class:`Decoder` fed in random chunks agrees with it, and that ``inspect`` raises only
:class:`TriageError` and otherwise produces a report that serializes to JSON and renders; every
50th seeded input also runs through ``pytest-walredo inspect`` (exit 0, or exit 2 with one line).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pytest_walredo.pg.page import BLCKSZ
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.protocol import (
    ApplyRecord,
    Decoder,
    Message,
    Ping,
    ProtocolError,
    PushPage,
    RedoRequest,
    decode_stream,
    encode_messages,
)
from pytest_walredo.triage import TriageError
from pytest_walredo.triage.cli import main
from pytest_walredo.triage.inspect import inspect_bytes, render_report

pytestmark = pytest.mark.needs_vectors

EXAMPLES = 5
PER_EXAMPLE = 2_000  # EXAMPLES * PER_EXAMPLE = 10,000 inputs
INTERESTING_LENGTHS = (0, 1, 3, 4, 5, 8, 12, 21, 22, 8212, 8213, 8214, (1 << 31) - 1, 1 << 31, (1 << 32) - 1)


@pytest.fixture(scope="module")
def seeds(vectors_dir: Path) -> list[bytes]:
    short = (vectors_dir / "short_v14.walredo").read_bytes()
    page = (vectors_dir / "short_v14_redo.page").read_bytes()
    bench = RedoRequest.decode((vectors_dir / "bench_medium_v14.walredo").read_bytes())
    short_req = RedoRequest.decode(short)
    return [
        short,
        page,
        # a slice of bench_medium (INSERT+INIT and inserts) plus its VISIBLE record; small enough
        # that a mutated stream that still decodes is inspected quickly
        RedoRequest(bench.rel, bench.blknum, None, bench.records[:8] + bench.records[-1:]).encode(),
        # with a base image: B P A A G
        RedoRequest(short_req.rel, short_req.blknum, page, short_req.records).encode(),
        encode_messages([Ping()]) + short,
    ]


# ------------------------------------------------------------------------------------ mutations


def _boundaries(data: bytes) -> list[int]:
    """Offsets where messages start, as far as the framing can be followed."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        out.append(pos)
        pos += 1 + int.from_bytes(data[pos + 1 : pos + 5], "big")
    return out or [0]


def _reframe(data: bytes, rng: random.Random) -> bytes | None:
    """Structure-aware: edit the record of an A or the page of a P, keep the framing valid."""
    try:
        msgs = [m for _, m in decode_stream(data)]
    except ProtocolError:
        return None
    targets = [i for i, m in enumerate(msgs) if isinstance(m, (ApplyRecord, PushPage))]
    if not targets:
        return None
    i = rng.choice(targets)
    m = msgs[i]
    if isinstance(m, ApplyRecord):
        rec = bytearray(m.record)
        choice = rng.randrange(6)
        if choice == 0 and rec:  # a few random bytes anywhere
            for _ in range(rng.randint(1, 4)):
                rec[rng.randrange(len(rec))] = rng.randrange(256)
        elif choice == 1 and len(rec) > 24:  # the block headers and beyond
            for _ in range(rng.randint(1, 3)):
                rec[rng.randrange(24, len(rec))] = rng.randrange(256)
        elif choice == 2:  # cut the record and fix xl_tot_len so the generic decoder goes on
            rec = rec[: rng.randrange(len(rec) + 1)]
            if len(rec) >= 4:
                rec[0:4] = len(rec).to_bytes(4, "little")
        elif choice == 3 and len(rec) >= 24:  # rmgr id and info
            rec[17] = rng.choice([0, 9, 10, 11, 134, rng.randrange(256)])
            rec[16] = rng.randrange(256)
        elif choice == 4 and len(rec) >= 32:  # image header fields (hole offset/length, bimg_info)
            pos = rng.randrange(24, min(len(rec), 40))
            rec[pos] = rng.choice([0x00, 0x01, 0x02, 0x04, 0x05, 0x07, 0x08, 0x10, 0x1F, 0xFF])
        else:  # random garbage record with a consistent xl_tot_len
            rec = bytearray(rng.randbytes(rng.randint(0, 120)))
            if len(rec) >= 4:
                rec[0:4] = len(rec).to_bytes(4, "little")
        msgs[i] = ApplyRecord(m.lsn, bytes(rec))
    else:
        assert isinstance(m, PushPage)
        page = bytearray(m.page)
        if rng.random() < 0.5:  # header fields: pd_lower, pd_upper, pd_special, flags...
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(24)
                page[pos] = rng.randrange(256)
        else:  # line pointers and tuple headers
            for _ in range(rng.randint(1, 8)):
                page[rng.randrange(BLCKSZ)] = rng.randrange(256)
        msgs[i] = PushPage(m.tag, bytes(page))
    return encode_messages(msgs)


def mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    """One random mutation of ``data``; about a third are structure-aware (ops 9 and 11), so that
    enough inputs get past the framing into the record and page decoders."""
    b = bytearray(data)
    op = rng.choice((9, 11)) if rng.random() < 0.3 else rng.randrange(12)
    if op == 0 and b:  # bit flips
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1 and b:  # byte writes
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    elif op == 2:  # truncate
        del b[rng.randrange(len(b) + 1):]
    elif op == 3:  # insert random bytes
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = rng.randbytes(rng.randint(1, 16))
    elif op == 4 and b:  # delete a slice
        pos = rng.randrange(len(b))
        del b[pos : pos + rng.randint(1, 64)]
    elif op == 5 and b:  # duplicate a slice
        pos = rng.randrange(len(b))
        chunk = b[pos : pos + rng.randint(1, 256)]
        at = rng.randrange(len(b) + 1)
        b[at:at] = chunk
    elif op == 6:  # splice two seeds
        other = rng.choice(seeds)
        b = b[: rng.randrange(len(b) + 1)] + other[rng.randrange(len(other) + 1):]
    elif op == 7:  # a length field at a message boundary
        pos = rng.choice(_boundaries(bytes(b)))
        if pos + 5 <= len(b):
            b[pos + 1 : pos + 5] = rng.choice(INTERESTING_LENGTHS).to_bytes(4, "big")
    elif op == 8:  # a tag byte at a message boundary
        pos = rng.choice(_boundaries(bytes(b)))
        if pos < len(b):
            b[pos] = rng.choice([*b"BPAGH", 0, 0x5A, rng.randrange(256)])
    elif op == 9:  # structure-aware edit of a record or page
        framed = _reframe(bytes(b), rng)
        if framed is not None:
            return framed
    elif op == 10:  # random bytes, sometimes exactly a page long
        return rng.randbytes(BLCKSZ if rng.random() < 0.3 else rng.randint(0, 64))
    else:  # structure-aware twice, to stack record and page edits
        for _ in range(2):
            framed = _reframe(bytes(b), rng)
            if framed is not None:
                b = bytearray(framed)
    return bytes(b)


# ------------------------------------------------------------------------------------ checks


def check_one(data: bytes, rng: random.Random, stats: Counter[str]) -> None:
    """Every property the decoder and inspect must keep on ``data``."""
    msgs: list[tuple[int, Message]] | None
    try:
        msgs = decode_stream(data)
    except ProtocolError as err:
        assert 0 <= err.offset < max(len(data), 1), f"error offset {err.offset} outside {len(data)} bytes"
        stats[f"protocol:{err.kind.name}"] += 1
        msgs = None
        expected: object = (err.kind, err.offset)
    else:
        decoded = [m for _, m in msgs]
        assert encode_messages(decoded) == data, "decoded stream does not re-encode to its bytes"
        stats["stream"] += 1
        expected = decoded

    # the incremental decoder, fed in random chunks, agrees with decode_stream
    dec = Decoder()
    got: list[object] = []
    outcome: object
    try:
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 64) if rng.random() < 0.8 else rng.randint(1, 9000)
            dec.feed(data[pos : pos + step])
            pos += step
            got.extend(dec)
        dec.end_of_input()
        outcome = got
    except ProtocolError as err:
        outcome = (err.kind, err.offset)
    assert outcome == expected, "incremental decoding disagrees with decode_stream"

    version = 14 if rng.random() < 0.7 else rng.choice(SUPPORTED_VERSIONS)
    flavour = Flavour.NEON if rng.random() < 0.7 else Flavour.VANILLA
    try:
        report = inspect_bytes(data, "fuzz.walredo", version, flavour)
    except TriageError as err:
        assert "\n" not in str(err) and "fuzz.walredo" in str(err)
        # refused: bytes that are not a stream nor a page, or an empty file (zero messages)
        assert (msgs is None and len(data) != BLCKSZ) or not data, "inspect refused an input that decodes"
        stats["inspect:refused"] += 1
        return
    json.dumps(report)
    render_report(report)
    stats[f"inspect:{report['kind']}"] += 1
    for m in report.get("messages", []):
        rec = m.get("record")
        if rec is not None:
            stats["record:bad" if rec["error"] else ("record:described" if rec["desc"] is not None
                                                      else "record:undescribed")] += 1


# No shrink phase: shrinking a seed re-runs 2,000 inputs per attempt and cannot make the input
# smaller; the failure message names the seed, iteration and bytes instead.
def check_cli(data: bytes, path: Path) -> None:
    """The command line on the same bytes: exit 0 with output, or exit 2 with exactly one line on
    stderr; never a traceback."""
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["inspect", str(path), "--pg-version", "14"])
    if code == 0:
        assert err.getvalue() == "" and out.getvalue()
    else:
        assert code == 2 and err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**64 - 1))
def test_seeded_mutations_decoder_and_inspect_raise_only_clean_errors(seeds, seed, tmp_path_factory):
    rng = random.Random(seed)
    cli_file = tmp_path_factory.mktemp("fuzz") / "input.walredo"
    stats: Counter[str] = Counter()
    done = 0
    for i in range(PER_EXAMPLE):
        data = rng.choice(seeds)
        for _ in range(rng.randint(1, 3)):
            data = mutate(data, seeds, rng)
        try:
            check_one(data, rng, stats)
            if i % 50 == 0:  # 40 inputs per example also go through the command line
                check_cli(data, cli_file)
        except Exception as exc:  # name the reproducer: seed, iteration and the bytes
            raise AssertionError(f"seed {seed} iteration {i}: {type(exc).__name__}: {exc}; "
                                 f"input ({len(data)} bytes) {data[:512].hex()}") from exc
        done += 1
    assert done == PER_EXAMPLE
    # the mix reaches every layer: framing errors, whole streams, records good and bad, pages
    for key in ("protocol:UNKNOWN_TAG", "protocol:TRUNCATED", "protocol:BAD_LENGTH", "stream",
                "inspect:refused", "inspect:stream", "inspect:page", "record:described", "record:bad"):
        assert stats[key] > 0, f"no input reached {key}: {dict(stats)}"


_edit = st.tuples(st.integers(0, 1 << 16), st.integers(0, 255))


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 4), edits=st.lists(_edit, max_size=6), cut=st.none() | st.integers(0, 1 << 15),
       junk=st.binary(max_size=24), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_mutations(seeds, which, edits, cut, junk, seed):
    data = bytearray(seeds[which])
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    if cut is not None:
        del data[cut:]
    data += junk
    check_one(bytes(data), random.Random(seed), Counter())
