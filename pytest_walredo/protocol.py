"""Sans-IO codec for the walredo stdin/stdout protocol.

Pure functions and classes over bytes, in the style of h11: nothing here reads a file, a pipe or a
clock. The process layer, the reference server and the triage tools all put bytes in and take typed
messages out (or the reverse).

Wire format (big-endian), as Neon's pageserver writes it and ``postgres --wal-redo`` reads it::

    message     = tag:u8  length:u32  payload      # length counts itself (4) but not the tag
    BufferTag   = forknum:u8 spcnode:u32 dbnode:u32 relnode:u32 blknum:u32   (17 bytes)
    'B'  BeginRedoForBlock   payload = BufferTag                  (length 21)
    'P'  PushPage            payload = BufferTag + 8192-byte page (length 8213)
    'A'  ApplyRecord         payload = end LSN:u64 + raw XLogRecord (header included)
    'G'  GetPage             payload = BufferTag                  (length 21)
    'H'  Ping                payload = nothing                    (length 4)

Only ``G`` and ``H`` are answered, each with exactly :data:`BLCKSZ` bytes.

A redo request is the sequence ``B [P] A* G`` for one block (:class:`RedoRequest`); a ``.walredo``
dump file holds exactly those bytes.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

from .lsn import MAX_LSN, format_lsn
from .pg.constants import BLCKSZ

__all__ = [
    "BLCKSZ",
    "ApplyRecord",
    "BeginRedoForBlock",
    "BufferTag",
    "Decoder",
    "ErrorKind",
    "GetPage",
    "Message",
    "Ping",
    "ProtocolError",
    "PushPage",
    "RedoRequest",
    "RelTag",
    "decode_messages",
    "decode_requests",
    "decode_stream",
    "encode_messages",
    "group_requests",
]

_U32 = 0xFFFFFFFF
_HEADER = struct.Struct(">cI")
_BUFTAG = struct.Struct(">BIIII")
_LSN = struct.Struct(">Q")
HEADER_SIZE = _HEADER.size  # 5
BUFTAG_SIZE = _BUFTAG.size  # 17
MAX_MESSAGE_LENGTH = (1 << 31) - 1  # the real process rejects lengths >= 2^31


@dataclass(frozen=True, order=True)
class RelTag:
    """A relation fork: tablespace, database and relation OIDs plus the fork number."""

    spcnode: int
    dbnode: int
    relnode: int
    forknum: int = 0

    def __post_init__(self) -> None:
        for name in ("spcnode", "dbnode", "relnode"):
            value = getattr(self, name)
            if not 0 <= value <= _U32:
                raise ValueError(f"RelTag.{name} = {value} does not fit in a u32")
        if not 0 <= self.forknum <= 0xFF:
            raise ValueError(f"RelTag.forknum = {self.forknum} does not fit in a u8")

    def __str__(self) -> str:
        fork = {0: "", 1: "_fsm", 2: "_vm", 3: "_init"}.get(self.forknum, f"_fork{self.forknum}")
        return f"{self.spcnode}/{self.dbnode}/{self.relnode}{fork}"


@dataclass(frozen=True, order=True)
class BufferTag:
    """One block of one relation fork: what ``B``, ``P`` and ``G`` name."""

    rel: RelTag
    blknum: int

    def __post_init__(self) -> None:
        if not 0 <= self.blknum <= _U32:
            raise ValueError(f"block number {self.blknum} does not fit in a u32")

    def encode(self) -> bytes:
        r = self.rel
        return _BUFTAG.pack(r.forknum, r.spcnode, r.dbnode, r.relnode, self.blknum)

    @classmethod
    def decode(cls, data: bytes | memoryview) -> BufferTag:
        forknum, spc, db, rel, blk = _BUFTAG.unpack(data)
        return cls(RelTag(spc, db, rel, forknum), blk)

    def __str__(self) -> str:
        return f"{self.rel} blk {self.blknum}"


def _frame(tag: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(tag, len(payload) + 4) + payload


@dataclass(frozen=True)
class BeginRedoForBlock:
    """``B``: start redo for a block; the process forgets any previous block."""

    TAG: ClassVar[bytes] = b"B"
    tag: BufferTag

    def encode(self) -> bytes:
        return _frame(self.TAG, self.tag.encode())

    def describe(self) -> str:
        return f"B BeginRedoForBlock {self.tag}"


@dataclass(frozen=True)
class PushPage:
    """``P``: the base image of the block, exactly :data:`BLCKSZ` bytes."""

    TAG: ClassVar[bytes] = b"P"
    tag: BufferTag
    page: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.page) != BLCKSZ:
            raise ValueError(f"PushPage page is {len(self.page)} bytes, expected {BLCKSZ}")

    def encode(self) -> bytes:
        return _frame(self.TAG, self.tag.encode() + bytes(self.page))

    def describe(self) -> str:
        return f"P PushPage {self.tag} ({BLCKSZ} bytes)"


@dataclass(frozen=True)
class ApplyRecord:
    """``A``: one WAL record (XLogRecord header included) and the LSN just past its end."""

    TAG: ClassVar[bytes] = b"A"
    lsn: int
    record: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.lsn <= MAX_LSN:
            raise ValueError(f"ApplyRecord LSN {self.lsn} does not fit in a u64")

    def encode(self) -> bytes:
        return _frame(self.TAG, _LSN.pack(self.lsn) + bytes(self.record))

    def describe(self) -> str:
        return f"A ApplyRecord end LSN {format_lsn(self.lsn)} ({len(self.record)}-byte record)"


@dataclass(frozen=True)
class GetPage:
    """``G``: ask for the block's page; answered with :data:`BLCKSZ` bytes."""

    TAG: ClassVar[bytes] = b"G"
    tag: BufferTag

    def encode(self) -> bytes:
        return _frame(self.TAG, self.tag.encode())

    def describe(self) -> str:
        return f"G GetPage {self.tag}"


@dataclass(frozen=True)
class Ping:
    """``H``: liveness check; answered with :data:`BLCKSZ` bytes (zeros from a real process)."""

    TAG: ClassVar[bytes] = b"H"

    def encode(self) -> bytes:
        return _frame(self.TAG, b"")

    def describe(self) -> str:
        return "H Ping"


Message: TypeAlias = BeginRedoForBlock | PushPage | ApplyRecord | GetPage | Ping
ANSWERED = (GetPage, Ping)
"""Message types the process answers with one page each."""


def encode_messages(messages: Iterable[Message]) -> bytes:
    """Concatenate the wire encodings of ``messages``."""
    return b"".join(m.encode() for m in messages)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


class ErrorKind(enum.Enum):
    """Why a byte stream is not a valid walredo stream.

    The values are the messages a real walredo process prints for the same fault (see
    ``shared/walredo-behaviour.md``), so the reference server can print them verbatim.
    """

    TRUNCATED = "unexpected EOF"
    UNKNOWN_TAG = "invalid frontend message type"
    BAD_LENGTH = "invalid message length"
    SHORT_PAYLOAD = "insufficient data left in message"
    LONG_PAYLOAD = "invalid message format"


class ProtocolError(ValueError):
    """A malformed walredo stream; ``offset`` is the byte offset of the offending message."""

    def __init__(self, kind: ErrorKind, detail: str, offset: int, tag: int | None = None):
        self.kind = kind
        self.detail = detail
        self.offset = offset
        self.tag = tag
        super().__init__(f"at byte {offset}: {detail}")


_NAMES = {b"B": "B (BeginRedoForBlock)", b"P": "P (PushPage)", b"A": "A (ApplyRecord)",
          b"G": "G (GetPage)", b"H": "H (Ping)"}
# Exact payload lengths of the fixed-size messages; 'A' only has a minimum (its LSN).
_FIXED = {b"B": BUFTAG_SIZE, b"G": BUFTAG_SIZE, b"P": BUFTAG_SIZE + BLCKSZ, b"H": 0}
_MIN_A = _LSN.size


def _tag_repr(tag: int) -> str:
    ch = chr(tag)
    return f"0x{tag:02X} ({ch!r})" if 0x20 <= tag < 0x7F else f"0x{tag:02X}"


class Decoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, take messages with :meth:`next`.

    ``next()`` returns ``None`` when it needs more bytes and raises :class:`ProtocolError` on a
    malformed stream; after an error the decoder is unusable (like the real process, which exits).
    Call :meth:`end_of_input` at EOF to learn whether the stream stopped mid-message.

    By default an error is raised as soon as the bytes show it (an unknown tag or a wrong fixed
    length right from the header), which is what a tool reading a file wants. With
    ``whole_messages=True`` the decoder reads like the real process (PostgreSQL's message
    reader): only the length field's bounds are checked at the header; everything else waits
    until the whole message has arrived, so a message whose length runs past the bytes sent
    so far is waited for, not rejected, and only :meth:`end_of_input` then says it is cut short.
    """

    def __init__(self, *, whole_messages: bool = False) -> None:
        self._buf = bytearray()
        self._offset = 0  # absolute stream offset of self._buf[0]
        self._failed: ProtocolError | None = None
        self._whole = whole_messages

    @property
    def offset(self) -> int:
        """Absolute offset of the first byte not yet consumed."""
        return self._offset

    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def _fail(self, kind: ErrorKind, detail: str, tag: int | None = None) -> ProtocolError:
        self._failed = ProtocolError(kind, detail, self._offset, tag)
        return self._failed

    def next(self) -> Message | None:
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        if len(buf) < HEADER_SIZE:
            return None
        tag_byte = buf[0]
        tag = bytes((tag_byte,))
        length = int.from_bytes(buf[1:5], "big")
        if self._whole:
            if length < 4 or length > MAX_MESSAGE_LENGTH:
                raise self._fail(
                    ErrorKind.BAD_LENGTH,
                    f"{_NAMES.get(tag, _tag_repr(tag_byte))} has length {length}; a length counts "
                    "its own 4 bytes and is below 2^31",
                    tag_byte,
                )
            if len(buf) < HEADER_SIZE + length - 4:
                return None
        if tag not in _NAMES:
            raise self._fail(
                ErrorKind.UNKNOWN_TAG,
                f"unknown message tag {_tag_repr(tag_byte)} (length field {length})",
                tag_byte,
            )
        name = _NAMES[tag]
        if length < 4 or length > MAX_MESSAGE_LENGTH:
            raise self._fail(
                ErrorKind.BAD_LENGTH,
                f"{name} has length {length}; a length counts its own 4 bytes and is below 2^31",
                tag_byte,
            )
        payload_len = length - 4
        fixed = _FIXED.get(tag)
        if fixed is not None and payload_len != fixed:
            kind = ErrorKind.SHORT_PAYLOAD if payload_len < fixed else ErrorKind.LONG_PAYLOAD
            what = "page " if tag == b"P" else ""
            raise self._fail(
                kind,
                f"{name} {what}payload is {payload_len} bytes, expected {fixed} "
                f"(length field {length}, expected {fixed + 4})",
                tag_byte,
            )
        if tag == b"A" and payload_len < _MIN_A:
            raise self._fail(
                ErrorKind.SHORT_PAYLOAD,
                f"{name} payload is {payload_len} bytes, too short for its 8-byte LSN",
                tag_byte,
            )
        end = HEADER_SIZE + payload_len
        if len(buf) < end:
            return None
        payload = bytes(buf[HEADER_SIZE:end])
        del buf[:end]
        self._offset += end
        return _build(tag, payload)

    def end_of_input(self) -> None:
        """Raise :class:`ProtocolError` (TRUNCATED) if a partial message is buffered."""
        if self._failed is not None:
            raise self._failed
        if self._buf:
            have = len(self._buf)
            if have < HEADER_SIZE:
                detail = f"stream ends inside a message header ({have} of {HEADER_SIZE} bytes)"
            else:
                tag = bytes(self._buf[:1])
                length = int.from_bytes(self._buf[1:5], "big")
                detail = (
                    f"stream ends inside {_NAMES.get(tag, tag)}: {have - HEADER_SIZE} of "
                    f"{length - 4} payload bytes present"
                )
            raise self._fail(ErrorKind.TRUNCATED, detail, self._buf[0])

    def __iter__(self) -> Iterator[Message]:
        while (msg := self.next()) is not None:
            yield msg


def _build(tag: bytes, payload: bytes) -> Message:
    if tag == b"A":
        return ApplyRecord(_LSN.unpack_from(payload)[0], payload[_LSN.size:])
    if tag == b"H":
        return Ping()
    buftag = BufferTag.decode(payload[:BUFTAG_SIZE])
    if tag == b"B":
        return BeginRedoForBlock(buftag)
    if tag == b"G":
        return GetPage(buftag)
    return PushPage(buftag, payload[BUFTAG_SIZE:])


def decode_stream(data: bytes | bytearray | memoryview) -> list[tuple[int, Message]]:
    """Decode a complete stream into ``(offset, message)`` pairs; raise on any malformation."""
    dec = Decoder()
    dec.feed(data)
    out: list[tuple[int, Message]] = []
    while True:
        at = dec.offset
        msg = dec.next()
        if msg is None:
            break
        out.append((at, msg))
    dec.end_of_input()
    return out


def decode_messages(data: bytes | bytearray | memoryview) -> list[Message]:
    """Decode a complete stream into messages; raise :class:`ProtocolError` on malformation."""
    return [m for _, m in decode_stream(data)]


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


class RequestShapeError(ValueError):
    """Well-formed messages that do not form ``B [P] A* G`` requests for one block."""


@dataclass(frozen=True)
class RedoRequest:
    """One redo request: rebuild block ``blknum`` of ``rel`` from an optional base image and
    a list of ``(end LSN, raw XLogRecord bytes)``.

    >>> req = RedoRequest(RelTag(1663, 13010, 1259), 0, None, ((0x16A9388, b"..."),))
    >>> [type(m).__name__ for m in req.messages()]
    ['BeginRedoForBlock', 'ApplyRecord', 'GetPage']
    """

    rel: RelTag
    blknum: int
    base_image: bytes | None = field(default=None, repr=False)
    records: tuple[tuple[int, bytes], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        BufferTag(self.rel, self.blknum)  # validates blknum
        if self.base_image is not None and len(self.base_image) != BLCKSZ:
            raise ValueError(f"base image is {len(self.base_image)} bytes, expected {BLCKSZ}")
        object.__setattr__(self, "records", tuple((int(lsn), bytes(r)) for lsn, r in self.records))
        for lsn, _ in self.records:
            if not 0 <= lsn <= MAX_LSN:
                raise ValueError(f"record LSN {lsn} does not fit in a u64")

    @property
    def tag(self) -> BufferTag:
        return BufferTag(self.rel, self.blknum)

    def messages(self) -> list[Message]:
        """The message sequence the pageserver sends: B, optional P, one A per record, G."""
        tag = self.tag
        msgs: list[Message] = [BeginRedoForBlock(tag)]
        if self.base_image is not None:
            msgs.append(PushPage(tag, self.base_image))
        msgs.extend(ApplyRecord(lsn, rec) for lsn, rec in self.records)
        msgs.append(GetPage(tag))
        return msgs

    def encode(self) -> bytes:
        """The exact bytes written to the process's stdin (and to a ``.walredo`` dump)."""
        return encode_messages(self.messages())

    def describe(self) -> str:
        base = "base image" if self.base_image is not None else "no base image"
        return f"redo {self.tag}: {base}, {len(self.records)} record(s)"

    @classmethod
    def from_messages(cls, messages: Sequence[Message]) -> RedoRequest:
        """Build a request from exactly one ``B [P] A* G`` sequence."""
        reqs = group_requests(messages)
        if len(reqs) != 1:
            raise RequestShapeError(f"expected exactly one redo request, found {len(reqs)}")
        return reqs[0]

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> RedoRequest:
        """Decode the bytes of exactly one request (a ``.walredo`` file)."""
        return cls.from_messages(decode_messages(data))


def group_requests(messages: Sequence[Message]) -> list[RedoRequest]:
    """The ``B [P] A* G`` requests that decoded ``messages`` form (pings between them are
    skipped); RequestShapeError when they do not form requests."""
    out: list[RedoRequest] = []
    i, n = 0, len(messages)
    while i < n:
        first = messages[i]
        if isinstance(first, Ping):
            i += 1
            continue
        if not isinstance(first, BeginRedoForBlock):
            raise RequestShapeError(
                f"message {i} is {type(first).__name__}; a request starts with B (BeginRedoForBlock)"
            )
        tag = first.tag
        i += 1
        base: bytes | None = None
        if i < n and isinstance(messages[i], PushPage):
            push = messages[i]
            assert isinstance(push, PushPage)
            if push.tag != tag:
                raise RequestShapeError(f"message {i}: PushPage for {push.tag} inside a request for {tag}")
            base = push.page
            i += 1
        records: list[tuple[int, bytes]] = []
        while i < n and isinstance(messages[i], ApplyRecord):
            a = messages[i]
            assert isinstance(a, ApplyRecord)
            records.append((a.lsn, a.record))
            i += 1
        if i >= n or not isinstance(messages[i], GetPage):
            got = type(messages[i]).__name__ if i < n else "end of stream"
            raise RequestShapeError(f"message {i} is {got}; expected G (GetPage) to end the request")
        get = messages[i]
        assert isinstance(get, GetPage)
        if get.tag != tag:
            raise RequestShapeError(f"message {i}: GetPage for {get.tag} inside a request for {tag}")
        i += 1
        out.append(RedoRequest(tag.rel, tag.blknum, base, tuple(records)))
    return out


def decode_requests(data: bytes | bytearray | memoryview) -> list[RedoRequest]:
    """Decode a stream of any number of requests (pings between them are skipped)."""
    return group_requests(decode_messages(data))
