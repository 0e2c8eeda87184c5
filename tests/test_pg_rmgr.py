"""Typed rmgr records: round trips for every kind, version and flavour; descriptions; errors.

The private generators here (``_record_case``) are also used by ``test_pg_waldump.py``.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from gin_record_cases import GIN_KINDS, gin_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pg_rmgr_hash import HASH_KINDS, hash_case

from pytest_walredo.pg.rmgr import (
    BrinCreateIndex,
    BrinDesummarize,
    BrinInsert,
    BrinRevmapExtend,
    BrinSamepageUpdate,
    BtreeDedup,
    BtreeDelete,
    BtreeInsert,
    BtreeMarkPageHalfdead,
    BtreeMetaCleanup,
    BtreeMetadata,
    BtreeNewroot,
    BtreeReusePage,
    BtreeSplit,
    BtreeUnlinkPage,
    BtreeUpdate,
    BtreeVacuum,
    FreezePlan,
    FreezeTuple,
    GenericRecord,
    GistAssignLsn,
    GistDelete,
    GistPageDelete,
    GistPageReuse,
    GistPageSplit,
    GistPageUpdate,
    Heap2FreezePage,
    Heap2LockUpdated,
    Heap2MultiInsert,
    Heap2NewCid,
    Heap2Prune,
    Heap2PruneFreeze,
    Heap2Rewrite,
    Heap2Vacuum,
    Heap2Visible,
    HeapConfirm,
    HeapDelete,
    HeapInplace,
    HeapInsert,
    HeapLock,
    HeapTruncate,
    HeapUpdate,
    MultiInsertTuple,
    RmgrDecodeError,
    RmgrRecord,
    SeqLog,
    SpgAddLeaf,
    SpgAddNode,
    SpgMoveLeafs,
    SpgPickSplit,
    SpgSplitTuple,
    SpgVacuumLeaf,
    SpgVacuumRedirect,
    SpgVacuumRoot,
    UnsupportedRecord,
    XlogFpi,
    XlogNoPage,
    XlTuple,
    build,
    describe_record,
    parse,
    supported_records,
)
from pytest_walredo.pg.version import SUPPORTED_VERSIONS, Flavour
from pytest_walredo.pg.xlogrecord import (
    BLCKSZ,
    BlockRef,
    ImageRef,
    decode_record,
    make_block,
    make_record,
)
from pytest_walredo.protocol import RedoRequest

# --------------------------------------------------------------------------------------------
# Private generators
# --------------------------------------------------------------------------------------------

_RELS = [(1663, 5, 16384), (1663, 5, 16385), (1664, 0, 1262), (1663, 13010, 1259)]
_u32 = st.integers(0, 2**32 - 1)
_u16 = st.integers(0, 2**16 - 1)
_off = st.integers(1, 400)
_small_bytes = st.binary(max_size=40)


@st.composite
def _page(draw: st.DrawFn) -> bytes:
    """A page with a plausible pd_lower/pd_upper and zeros between them."""
    lower = draw(st.integers(24, BLCKSZ))
    upper = draw(st.integers(lower, BLCKSZ))
    seed = draw(st.integers(0, 2**32))
    kind = draw(st.sampled_from(["random", "repeat", "sparse"]))
    rng = random.Random(seed)
    if kind == "random":
        body = bytearray(rng.randbytes(BLCKSZ))
    elif kind == "repeat":
        unit = rng.randbytes(rng.randint(1, 40))
        body = bytearray((unit * (BLCKSZ // len(unit) + 1))[:BLCKSZ])
    else:
        body = bytearray(BLCKSZ)
        for _ in range(rng.randint(0, 50)):
            body[rng.randrange(BLCKSZ)] = rng.randrange(256)
    struct.pack_into("<HH", body, 12, lower, upper)
    body[lower:upper] = bytes(upper - lower)
    return bytes(body)


def _image(pg_version: int) -> st.SearchStrategy[ImageRef]:
    methods = ["none", "pglz"] + (["lz4", "zstd"] if pg_version >= 15 else [])
    return st.builds(
        lambda page, apply, method, hole: ImageRef.from_page(
            page, pg_version, apply=apply, compression=method, hole=hole
        ),
        _page(),
        st.booleans(),
        st.sampled_from(methods),
        st.booleans(),
    )


@st.composite
def _block(
    draw: st.DrawFn,
    block_id: int,
    pg_version: int,
    *,
    forknum: int | None = 0,
    image: bool | None = None,
    will_init: bool = False,
) -> BlockRef:
    want_image = draw(st.booleans()) if image is None else image
    return make_block(
        block_id,
        draw(st.sampled_from(_RELS)),
        draw(st.integers(0, 2**32 - 2)),
        forknum=draw(st.integers(0, 3)) if forknum is None else forknum,
        image=draw(_image(pg_version)) if want_image else None,
        will_init=will_init,
    )


def _cid(pg_version: int, flavour: Flavour) -> st.SearchStrategy[int | None]:
    """A record-level t_cid that fits the flavour (None = vanilla layout)."""
    if flavour is Flavour.VANILLA:
        return st.none()
    if pg_version <= 15:
        return _u32
    return st.none() | _u32


def _tuple(cid: int | None) -> st.SearchStrategy[XlTuple]:
    return st.builds(XlTuple, _u16, _u16, st.integers(0, 255), _small_bytes, st.just(cid))


@st.composite
def _itup(draw: st.DrawFn) -> bytes:
    """An index tuple as btree records log it: an IndexTupleData header whose size (plus any of
    the flag bits) is in t_info, padded with arbitrary bytes to MAXALIGN(size)."""
    size = draw(st.integers(8, 48))
    flags = draw(st.sampled_from([0, 0x2000, 0x4000, 0x8000, 0x6000]))
    total = (size + 7) // 8 * 8
    return struct.pack("<HHHH", draw(_u16), draw(_u16), draw(_u16), size | flags) + draw(
        st.binary(min_size=total - 8, max_size=total - 8)
    )


def _meta() -> st.SearchStrategy[BtreeMetadata]:
    return st.builds(BtreeMetadata, _u32, _u32, _u32, _u32, _u32, _u32, st.booleans())


@st.composite
def _items(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[BtreeUpdate, ...]]:
    """Deleted offsets and updated posting lists of a btree VACUUM / DELETE."""
    deleted = tuple(draw(st.lists(_off, max_size=5)))
    updates = tuple(
        draw(st.lists(st.builds(BtreeUpdate, _off, st.lists(st.integers(0, 40), min_size=1, max_size=4).map(tuple)),
                      max_size=3))
    )
    return deleted, updates


def _btree_case(draw: st.DrawFn, kind: str, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """The btree kinds beyond INSERT_LEAF/UPPER/META and NEWROOT."""
    if kind == "btree_post":
        logged = draw(st.booleans())
        body: RmgrRecord = BtreeInsert(draw(_off), draw(_itup()) if logged else b"", 0x50, None,
                                       draw(_u16) if logged else None)
        return body, [draw(_block(0, v, image=None if logged else True))]
    if kind == "split":
        level = draw(st.integers(0, 2))
        onleft = draw(st.booleans())
        postingoff = draw(st.integers(1, 50)) if level == 0 and draw(st.booleans()) else 0
        logged = draw(st.booleans())
        newitem = draw(_itup()) if logged and (onleft or postingoff) else b""
        hikey = draw(_itup()) if logged else b""
        right = b"".join(draw(st.lists(_itup(), min_size=1, max_size=4)))
        body = BtreeSplit(level, draw(_off), draw(_off), postingoff, onleft, newitem, hikey, right)
        blocks = [draw(_block(0, v, image=None if logged else True)), draw(_block(1, v, will_init=True))]
        if draw(st.booleans()):
            blocks.append(draw(_block(2, v)))
        if level:
            blocks.append(draw(_block(3, v)))
        return body, blocks
    if kind == "dedup":
        intervals = tuple(draw(st.lists(st.tuples(_off, st.integers(2, 30)), max_size=5)))
        if intervals and not draw(st.booleans()):
            return BtreeDedup(len(intervals), None), [draw(_block(0, v, image=True))]
        return BtreeDedup(len(intervals), intervals), [draw(_block(0, v))]
    if kind in ("bt_vacuum", "bt_delete"):
        deleted, updates = draw(_items())
        logged = not (deleted or updates) or draw(st.booleans())
        if not logged:
            nd, nu, deleted, updates = len(deleted), len(updates), (), ()
        else:
            nd, nu = len(deleted), len(updates)
        block0 = draw(_block(0, v, image=None if logged else True))
        if kind == "bt_vacuum":
            return BtreeVacuum(nd, nu, deleted, updates, logged), [block0]
        return BtreeDelete(draw(_u32), nd, nu, deleted, updates, logged, v >= 16 and draw(st.booleans())), [block0]
    if kind == "halfdead":
        body = BtreeMarkPageHalfdead(draw(_off), draw(_u32), draw(_u32), draw(_u32), draw(_u32))
        return body, [draw(_block(0, v, will_init=True)), draw(_block(1, v))]
    if kind == "unlink":
        meta = draw(st.booleans())
        level = draw(st.integers(0, 3))
        leftsib = draw(st.sampled_from([0, 1, 77]))
        body = BtreeUnlinkPage(leftsib, draw(_u32), level, draw(st.integers(0, 2**64 - 1)), draw(_u32),
                               draw(_u32), draw(_u32), meta, draw(_meta()) if meta else None)
        blocks = [draw(_block(0, v, will_init=True))]
        if leftsib:
            blocks.append(draw(_block(1, v)))
        blocks.append(draw(_block(2, v)))
        if level and draw(st.booleans()):
            blocks.append(draw(_block(3, v, will_init=True)))
        if meta:
            blocks.append(draw(_block(4, v, will_init=True, image=False)))
        return body, blocks
    if kind == "reuse":
        rel = draw(st.sampled_from(_RELS))
        return BtreeReusePage(rel, draw(_u32), draw(st.integers(0, 2**64 - 1)), v >= 16 and draw(st.booleans())), []
    assert kind == "meta_cleanup"
    # pg_waldump reads the metadata whatever the block holds, so it is always logged here
    return BtreeMetaCleanup(draw(_meta())), [draw(_block(0, v, will_init=True, image=False))]


def _logical_case(draw: st.DrawFn, kind: str, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """heap TRUNCATE, heap2 LOCK_UPDATED, NEW_CID, REWRITE."""
    if kind == "truncate":
        return HeapTruncate(draw(_u32), tuple(draw(st.lists(_u32, max_size=4))), draw(st.integers(0, 3))), []
    if kind == "lock_updated":
        body: RmgrRecord = Heap2LockUpdated(draw(_u32), draw(_off), draw(st.integers(0, 0x1F)), draw(st.integers(0, 1)))
        return body, [draw(_block(0, v))]
    if kind == "new_cid":
        return Heap2NewCid(draw(_u32), draw(_u32), draw(_u32), draw(_u32), draw(st.sampled_from(_RELS)),
                           (draw(_u32), draw(_u16))), []
    assert kind == "rewrite"
    n = draw(st.integers(0, 3))
    return Heap2Rewrite(draw(_u32), draw(_u32), draw(_u32), draw(st.integers(0, 2**40)), n,
                        draw(st.integers(0, 2**40)), draw(st.binary(min_size=36 * n, max_size=36 * n))), []


def _am_seq_case(draw: st.DrawFn, kind: str, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """Sequence LOG, Generic deltas and full images, XLOG records that name no block."""
    if kind == "seq_log":
        return SeqLog(draw(st.sampled_from(_RELS)), draw(st.binary(max_size=60))), [
            draw(_block(0, v, will_init=True, image=False))]
    if kind == "generic":
        n = draw(st.integers(1, 4))
        blocks = [draw(_block(i, v)) for i in range(n)]
        frags = st.lists(st.tuples(st.integers(0, BLCKSZ - 1), st.binary(max_size=30)).map(tuple), max_size=4)
        deltas = tuple((b.block_id, tuple(draw(frags))) for b in blocks if b.image is None)
        return GenericRecord(tuple((i, f) for i, f in deltas if f)), blocks
    if kind == "brin":
        return _brin_case(draw, v)
    assert kind == "xlog_no_page"
    op = draw(st.sampled_from([0x00, 0x10, 0x20, 0x30, 0x50, 0x60, 0x70, 0x80] + ([0xE0] if v >= 17 else [])))
    level = struct.pack("<i", draw(st.integers(0, 2)))  # wal_level
    flag = draw(st.sampled_from([b"\0", b"\1"]))
    if op in (0x00, 0x10):  # checkpoints: PG17 keeps wal_level in bytes 20..23 (padding before)
        raw = draw(st.binary(min_size=88, max_size=88))
        main = raw[:16] + flag + raw[17:20] + (level if v >= 17 else raw[20:24]) + raw[24:]
    elif op == 0x60:  # PARAMETER_CHANGE
        main = draw(st.binary(min_size=20, max_size=20)) + level + flag + flag + b"\0\0"
    elif op == 0x70:  # RESTORE_POINT: time, then a C string
        name = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=63)).encode()
        main = draw(st.binary(min_size=8, max_size=8)) + name.ljust(64, b"\0")
    else:
        main = {0x20: b"", 0x30: draw(st.binary(min_size=4, max_size=4)), 0x50: draw(st.binary(min_size=8, max_size=8)),
                0x80: flag, 0xE0: level}[op]
    return XlogNoPage(op, main), []


def _brin_case(draw: st.DrawFn, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """Every BRIN record, blocks as brin_xlog.h lays them out (a block with an image has no data)."""
    op = draw(st.sampled_from(["create", "insert", "update", "samepage", "extend", "desummarize"]))
    if op == "create":
        return BrinCreateIndex(draw(_u32), draw(st.integers(1, 2))), [draw(_block(0, v, will_init=True, image=False))]
    if op in ("insert", "update"):
        init = draw(st.booleans())
        b0 = draw(_block(0, v, will_init=init, image=False if init else None))
        tup = b"" if b0.image is not None else draw(st.binary(min_size=8, max_size=40))
        old = draw(_u16) if op == "update" else None
        body: RmgrRecord = BrinInsert(draw(_u32), draw(_u32), draw(_u16), tup, init, old)
        return body, [b0, draw(_block(1, v))] + ([draw(_block(2, v))] if old is not None else [])
    if op == "samepage":
        b0 = draw(_block(0, v))
        return BrinSamepageUpdate(draw(_u16), b"" if b0.image else draw(st.binary(min_size=8, max_size=40))), [b0]
    if op == "extend":
        return BrinRevmapExtend(draw(_u32)), [draw(_block(0, v)), draw(_block(1, v, will_init=True, image=False))]
    return BrinDesummarize(draw(_u32), draw(_u32), draw(_u16)), [draw(_block(0, v)), draw(_block(1, v))]


_AM_SEQ_KINDS = ("seq_log", "generic", "xlog_no_page", "brin")
@st.composite
def _gist_tuple(draw: st.DrawFn) -> bytes:
    """A GiST index tuple as its records log it: IndexTupleSize bytes, any alignment."""
    size = draw(st.integers(8, 48))
    flags = draw(st.sampled_from([0, 0x2000, 0x4000, 0x8000]))
    return struct.pack("<HHHH", draw(_u16), draw(_u16), draw(_u16), size | flags) + draw(
        st.binary(min_size=size - 8, max_size=size - 8))


def _gist_case(draw: st.DrawFn, kind: str, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """Every GiST record."""
    tuples = st.lists(_gist_tuple(), max_size=4).map(tuple)
    if kind == "gist_update":
        todelete = tuple(draw(st.lists(_off, max_size=4)))
        new = draw(tuples)
        logged = not (todelete or new) or draw(st.booleans())
        body: RmgrRecord = GistPageUpdate(len(todelete), len(new), todelete if logged else None,
                                          new if logged else None)
        blocks = [draw(_block(0, v, image=None if logged else True))]
        return body, blocks + ([draw(_block(1, v))] if draw(st.booleans()) else [])
    if kind == "gist_delete":
        offs = tuple(draw(st.lists(_off, max_size=6)))
        return GistDelete(draw(_u32), len(offs), offs, v >= 16 and draw(st.booleans())), [draw(_block(0, v))]
    if kind == "gist_reuse":
        return GistPageReuse(draw(st.sampled_from(_RELS)), draw(_u32), draw(st.integers(0, 2**64 - 1)),
                             v >= 16 and draw(st.booleans())), []
    if kind == "gist_split":
        pages = tuple(draw(st.lists(tuples, min_size=1, max_size=4)))
        body = GistPageSplit(draw(_u32), draw(st.integers(0, 2**64 - 1)), draw(st.booleans()), len(pages),
                             draw(st.booleans()), pages)
        blocks = [draw(_block(0, v))] if draw(st.booleans()) else []
        return body, blocks + [draw(_block(i + 1, v, will_init=True, image=False)) for i in range(len(pages))]
    if kind == "gist_page_delete":
        body = GistPageDelete(draw(st.integers(0, 2**64 - 1)), draw(_off))
        return body, [draw(_block(0, v)), draw(_block(1, v))]
    assert kind == "gist_assign_lsn"
    return GistAssignLsn(), []


@st.composite
def _spg_leaf(draw: st.DrawFn) -> bytes:
    """An SP-GiST leaf tuple as its records log it: the state and size word, t_info, a TID, data."""
    size = draw(st.sampled_from([16, 24, 32, 40]))
    return struct.pack("<IHHHH", draw(st.integers(0, 3)) | (size << 2), draw(_u16), draw(_u16), draw(_u16),
                       draw(_u16)) + draw(st.binary(min_size=size - 12, max_size=size - 12))


@st.composite
def _spg_inner(draw: st.DrawFn) -> bytes:
    """An SP-GiST inner tuple: the state/allTheSame/nNodes/prefixSize word, its u16 size, data."""
    size = draw(st.sampled_from([8, 16, 32, 48]))
    return struct.pack("<IH", draw(_u32), size) + draw(st.binary(min_size=size - 6, max_size=size - 6))


def _spgist_case(draw: st.DrawFn, kind: str, v: int) -> tuple[RmgrRecord, list[BlockRef]]:
    """Every SP-GiST record; every field drawn, whatever redo would make of it."""
    offs = st.lists(_off, max_size=4).map(tuple)
    flag, xid = st.booleans(), _u32
    blocks = [draw(_block(i, v)) for i in range(draw(st.integers(1, 4)))]
    if kind == "spg_add_leaf":
        return SpgAddLeaf(draw(flag), draw(flag), draw(_off), draw(_off), draw(_off), draw(_u16), draw(_spg_leaf())), blocks
    if kind == "spg_move_leafs":
        dead = draw(flag)
        todelete = draw(offs)
        n = 1 if dead else len(todelete) + 1
        toinsert = tuple(draw(st.lists(_off, min_size=n, max_size=n)))
        tuples = tuple(draw(st.lists(_spg_leaf(), min_size=n, max_size=n)))
        return SpgMoveLeafs(len(todelete), draw(flag), dead, draw(flag), draw(_off), draw(_u16), draw(xid), draw(flag),
                            todelete, toinsert, tuples), blocks
    if kind == "spg_add_node":
        return SpgAddNode(draw(_off), draw(_off), draw(flag), draw(st.integers(-1, 2)), draw(_off), draw(_u16),
                          draw(xid), draw(flag), draw(_spg_inner())), blocks
    if kind == "spg_split_tuple":
        return SpgSplitTuple(draw(_off), draw(_off), draw(flag), draw(flag), draw(_spg_inner()),
                             draw(_spg_inner())), blocks
    if kind == "spg_picksplit":
        todelete = draw(offs)
        n = draw(st.integers(0, 4))
        toinsert = tuple(draw(st.lists(_off, min_size=n, max_size=n)))
        select = bytes(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
        tuples = tuple(draw(st.lists(_spg_leaf(), min_size=n, max_size=n)))
        return SpgPickSplit(draw(flag), len(todelete), n, draw(flag), draw(flag), draw(_off), draw(flag), draw(flag),
                            draw(flag), draw(_off), draw(_u16), draw(xid), draw(flag), todelete, toinsert, select,
                            draw(_spg_inner()), tuples), blocks
    if kind == "spg_vacuum_leaf":
        nmove, nchain = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        pairs = [tuple(draw(st.lists(_off, min_size=k, max_size=k))) for k in (nmove, nmove, nchain, nchain)]
        return SpgVacuumLeaf(draw(xid), draw(flag), draw(offs), draw(offs), *pairs), blocks[:1]
    if kind == "spg_vacuum_root":
        return SpgVacuumRoot(draw(xid), draw(flag), draw(offs)), blocks[:1]
    assert kind == "spg_vacuum_redirect"
    return SpgVacuumRedirect(draw(_off), draw(xid), draw(offs), v >= 16 and draw(flag)), blocks[:1]


_SPGIST_KINDS = ("spg_add_leaf", "spg_move_leafs", "spg_add_node", "spg_split_tuple", "spg_picksplit",
                 "spg_vacuum_leaf", "spg_vacuum_root", "spg_vacuum_redirect")
_GIST_KINDS = ("gist_update", "gist_delete", "gist_reuse", "gist_split", "gist_page_delete", "gist_assign_lsn")
_BTREE_KINDS = ("btree_post", "split", "dedup", "bt_vacuum", "bt_delete", "halfdead", "unlink", "reuse",
                "meta_cleanup")
_LOGICAL_KINDS = ("truncate", "lock_updated", "new_cid", "rewrite")


@st.composite
def _record_case(draw: st.DrawFn, pg_version: int, flavour: Flavour) -> tuple[RmgrRecord, list[BlockRef]]:
    """One typed record of any kind that exists in (pg_version, flavour) plus its blocks."""
    v = pg_version
    kinds = [
        "fpi",
        "insert",
        "delete",
        "update",
        "lock",
        "inplace",
        "confirm",
        "multi",
        "visible",
        "btree_insert",
        "newroot",
    ]
    kinds += ["prune", "vacuum", "freeze"] if v <= 16 else ["prune17"]
    kinds += [*_BTREE_KINDS, *_LOGICAL_KINDS]
    kinds += _AM_SEQ_KINDS
    kinds += _GIST_KINDS
    kinds += _SPGIST_KINDS
    kinds += GIN_KINDS
    kinds += HASH_KINDS
    kind = draw(st.sampled_from(kinds))
    if kind in _AM_SEQ_KINDS:
        return _am_seq_case(draw, kind, v)
    if kind in _SPGIST_KINDS:
        return _spgist_case(draw, kind, v)
    if kind in _GIST_KINDS:
        return _gist_case(draw, kind, v)
    if kind in HASH_KINDS:
        return hash_case(draw, kind, v)
    if kind in GIN_KINDS:
        return gin_case(draw, kind, v)
    if kind in _BTREE_KINDS:
        return _btree_case(draw, kind, v)
    if kind in _LOGICAL_KINDS:
        return _logical_case(draw, kind, v)
    if kind == "fpi":
        n = draw(st.integers(1, 3))
        ids = sorted(draw(st.sets(st.integers(0, 32), min_size=n, max_size=n)))
        return XlogFpi(draw(st.booleans())), [draw(_block(i, v, forknum=None, image=True)) for i in ids]
    if kind == "insert":
        cid = draw(_cid(v, flavour))
        init = draw(st.booleans())
        tup = draw(st.none() | _tuple(cid))
        body: RmgrRecord = HeapInsert(
            draw(_off), draw(st.integers(0, 0x3F)), tup, init, cid if tup is not None or cid is None else 0
        )
        return body, [draw(_block(0, v, will_init=init))]
    if kind == "delete":
        cid = draw(_cid(v, flavour))
        flags = draw(st.integers(0, 0x1F))
        old = draw(_tuple(cid)) if flags & 0x06 else None
        body = HeapDelete(draw(_u32), draw(_off), draw(st.integers(0, 0x1F)), flags, cid, old)
        return body, [draw(_block(0, v))]
    if kind == "update":
        cid = draw(_cid(v, flavour))
        flags = draw(st.integers(0, 0x7F))
        new = draw(st.none() | _tuple(cid))
        init = draw(st.booleans())
        body = HeapUpdate(
            draw(_u32),
            draw(_off),
            draw(_u32),
            draw(_off),
            draw(st.integers(0, 0x1F)),
            flags,
            draw(st.booleans()),
            init,
            cid,
            new,
            draw(_u16) if new is not None and flags & 0x20 else 0,
            draw(_u16) if new is not None and flags & 0x40 else 0,
            draw(_tuple(cid)) if flags & 0x0C else None,
        )
        blocks = [draw(_block(0, v, will_init=init))]
        if draw(st.booleans()):
            blocks.append(draw(_block(1, v)))
        return body, blocks
    if kind == "lock":
        body = HeapLock(
            draw(_u32),
            draw(_off),
            draw(st.integers(0, 0x1F)),
            draw(st.integers(0, 1)),
            draw(_cid(v, flavour)),
        )
        return body, [draw(_block(0, v))]
    if kind == "inplace":
        return HeapInplace(draw(_off), draw(_small_bytes)), [draw(_block(0, v))]
    if kind == "confirm":
        return HeapConfirm(draw(_off)), [draw(_block(0, v))]
    if kind == "multi":
        n = draw(st.integers(1, 5))
        init = draw(st.booleans())
        per_tuple = flavour is Flavour.NEON and v <= 15
        top = draw(st.none() | _u32) if flavour is Flavour.NEON and v >= 16 else None
        with_tuples = draw(st.booleans())
        tuples = (
            tuple(
                draw(
                    st.builds(
                        MultiInsertTuple,
                        _u16,
                        _u16,
                        st.integers(0, 255),
                        _small_bytes,
                        _u32 if per_tuple else st.none(),
                    )
                )
                for _ in range(n)
            )
            if with_tuples
            else ()
        )
        offs = () if init else tuple(draw(st.lists(_off, min_size=n, max_size=n)))
        body = Heap2MultiInsert(draw(st.integers(0, 0x3F)), n, offs, tuples, init, top)
        return body, [draw(_block(0, v, will_init=init, image=None if with_tuples else True))]
    if kind == "visible":
        body = Heap2Visible(draw(_u32), draw(st.integers(0, 3)))
        return body, [draw(_block(0, v, forknum=2)), draw(_block(1, v))]
    if kind == "prune":
        logged = draw(st.booleans())
        red = tuple(draw(st.lists(st.tuples(_off, _off), max_size=4)))
        dead = tuple(draw(st.lists(_off, max_size=4)))
        unused = tuple(draw(st.lists(_off, max_size=4)))
        if not logged and (red or dead):
            body = Heap2Prune(
                draw(_u32),
                len(red),
                len(dead),
                is_catalog_rel=v >= 16 and draw(st.booleans()),
                offsets_logged=False,
            )
            return body, [draw(_block(0, v, image=True))]
        body = Heap2Prune(
            draw(_u32), len(red), len(dead), red, dead, unused, is_catalog_rel=v >= 16 and draw(st.booleans())
        )
        return body, [draw(_block(0, v))]
    if kind == "vacuum":
        unused = tuple(draw(st.lists(_off, max_size=6)))
        return Heap2Vacuum(len(unused), unused), [draw(_block(0, v))]
    if kind == "freeze":
        if v >= 16:
            plans = tuple(
                draw(
                    st.lists(
                        st.builds(
                            FreezePlan,
                            _u32,
                            _u16,
                            _u16,
                            st.integers(0, 6),
                            st.lists(_off, min_size=1, max_size=3).map(tuple),
                        ),
                        max_size=3,
                    )
                )
            )
            body = Heap2FreezePage(draw(_u32), len(plans), plans=plans, is_catalog_rel=draw(st.booleans()))
        else:
            tuples = tuple(
                draw(st.lists(st.builds(FreezeTuple, _u32, _off, _u16, _u16, st.integers(0, 6)), max_size=4))
            )
            body = Heap2FreezePage(draw(_u32), len(tuples), tuples=tuples)
        return body, [draw(_block(0, v))]
    if kind == "prune17":
        plans = tuple(
            draw(
                st.lists(
                    st.builds(
                        FreezePlan,
                        _u32,
                        _u16,
                        _u16,
                        st.integers(0, 6),
                        st.lists(_off, min_size=1, max_size=3).map(tuple),
                    ),
                    max_size=2,
                )
            )
        )
        red = tuple(draw(st.lists(st.tuples(_off, _off), max_size=3)))
        dead = tuple(draw(st.lists(_off, max_size=3)))
        unused = tuple(draw(st.lists(_off, max_size=3)))
        conflict = draw(st.none() | _u32)
        op = draw(st.sampled_from([0x10, 0x20, 0x30]))
        body = Heap2PruneFreeze(op, op // 0x10 - 1, 0, conflict, plans, red, dead, unused)
        flags = (
            body.content_flags() | draw(st.sampled_from([0, 2, 4, 6])) | (8 if conflict is not None else 0)
        )
        body = Heap2PruneFreeze(op, op // 0x10 - 1, flags, conflict, plans, red, dead, unused)
        return body, [draw(_block(0, v))]
    if kind == "btree_insert":
        op = draw(st.sampled_from([0x00, 0x10, 0x20]))
        meta = (
            draw(st.none() | st.builds(BtreeMetadata, _u32, _u32, _u32, _u32, _u32, _u32, st.booleans()))
            if op == 0x20
            else None
        )
        body = BtreeInsert(draw(_off), draw(st.binary(min_size=8, max_size=40)), op, meta)
        blocks = [draw(_block(0, v))]
        if op != 0x00:
            blocks.append(draw(_block(1, v)))
        if op == 0x20:
            blocks.append(draw(_block(2, v)))
        return body, blocks
    assert kind == "newroot"
    level = draw(st.integers(0, 3))
    body = BtreeNewroot(
        draw(_u32),
        level,
        draw(st.binary(min_size=8, max_size=40)) if level else b"",
        draw(st.builds(BtreeMetadata, _u32, _u32, _u32, _u32, _u32, _u32, st.booleans())),
    )
    blocks = [draw(_block(0, v, will_init=True, image=False))]
    if level:
        blocks.append(draw(_block(1, v)))
    blocks.append(draw(_block(2, v, will_init=True, image=False)))
    return body, blocks


_versions_flavours = st.sampled_from([(v, f) for v in SUPPORTED_VERSIONS for f in Flavour])


@st.composite
def _case_any(draw: st.DrawFn) -> tuple[int, Flavour, RmgrRecord, list[BlockRef]]:
    v, fl = draw(_versions_flavours)
    body, blocks = draw(_record_case(v, fl))
    return v, fl, body, blocks


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_case_any(), _u32, st.integers(0, 2**40))
def test_typed_round_trip(case: tuple[int, Flavour, RmgrRecord, list[BlockRef]], xid: int, prev: int) -> None:
    v, fl, body, blocks = case
    assert type(body) in supported_records(v, fl)
    rec = build(body, blocks, pg_version=v, flavour=fl, xid=xid, prev=prev)
    raw = rec.encode()
    decoded = decode_record(raw, v)
    assert decoded == rec
    assert decoded.crc_ok()
    parsed = parse(decoded, v, fl)
    assert parsed == body
    # Rebuilding from the parsed body gives the same bytes.
    assert build(parsed, decoded.blocks, pg_version=v, flavour=fl, xid=xid, prev=prev).encode() == raw
    desc = describe_record(decoded, v, fl)
    assert desc.name == body.identify(v, fl)
    assert desc.rmgr == ("neon" if decoded.rmid == 134 else body.RMGR)


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_neon_layouts_differ_from_vanilla(version: int) -> None:
    body_v = HeapDelete(7, 3, 0, 0)
    body_n = HeapDelete(7, 3, 0, 0, t_cid=5)
    rel = make_block(0, _RELS[0], 1)
    rv = build(body_v, [rel], pg_version=version, flavour=Flavour.VANILLA)
    rn = build(body_n, [rel], pg_version=version, flavour=Flavour.NEON)
    assert len(rv.main_data) == 8
    assert len(rn.main_data) == (14 if version <= 15 else 12)
    assert rn.rmid == (10 if version <= 15 else 134)
    assert struct.unpack_from("<I", rn.main_data, 8)[0] == 5  # t_cid sits at offset 8 in both Neon layouts


def test_neon_lock_pg16_field_order() -> None:
    rec = build(
        HeapLock(100, 4, 0x02, 1, t_cid=9), [make_block(0, _RELS[0], 0)], pg_version=16, flavour=Flavour.NEON
    )
    assert (rec.rmid, rec.info) == (134, 0x40)
    assert rec.main_data == struct.pack("<IIHBB", 100, 9, 4, 0x02, 1)


def test_descriptions_pg15_and_pg16() -> None:
    rel = [make_block(0, _RELS[0], 0)]
    cases = [
        (HeapInsert(3, 0, XlTuple(2, 0x800, 24, b"x")), "off 3 flags 0x00", "off: 3, flags: 0x00"),
        (
            HeapDelete(5, 3, 0x03, 0),
            "off 3 flags 0x00 IS_MULTI LOCK_ONLY ",
            "xmax: 5, off: 3, infobits: [IS_MULTI, LOCK_ONLY], flags: 0x00",
        ),
        (HeapLock(9, 2, 0, 1), "off 2: xid 9: flags 0x01 ", "xmax: 9, off: 2, infobits: [], flags: 0x01"),
        (Heap2Visible(10, 3), "cutoff xid 10 flags 0x03", "snapshotConflictHorizon: 10, flags: 0x03"),
        (BtreeInsert(7, b"12345678"), "off 7", "off: 7"),
    ]
    for body, d15, d16 in cases:
        for v, want in ((15, d15), (16, d16)):
            blocks = rel + ([make_block(1, _RELS[0], 1)] if isinstance(body, Heap2Visible) else [])
            rec = build(body, blocks, pg_version=v)
            assert describe_record(rec, v).desc == want


@pytest.mark.needs_vectors
def test_vectors_parse_as_neon_v14(vectors_dir: Path) -> None:
    req = RedoRequest.decode((vectors_dir / "bench_medium_v14.walredo").read_bytes())
    bodies = [parse(decode_record(raw, 14), 14, Flavour.NEON) for _, raw in req.records]
    assert isinstance(bodies[0], HeapInsert) and bodies[0].init_page
    assert bodies[0].tuple is not None
    assert (
        bodies[0].tuple.t_infomask2,
        bodies[0].tuple.t_infomask,
        bodies[0].tuple.t_cid,
        bodies[0].tuple.t_hoff,
    ) == (1, 0x0800, 1, 24)
    assert sum(isinstance(b, HeapInsert) and not b.init_page for b in bodies) == 225
    assert isinstance(bodies[-1], Heap2Visible)
    # The same bytes are not valid vanilla PG14 records: xl_heap_header would be misread.
    vanilla = parse(decode_record(req.records[0][1], 14), 14, Flavour.VANILLA)
    assert isinstance(vanilla, HeapInsert) and vanilla.tuple is not None and vanilla.tuple.t_hoff != 24


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unsupported_names_rmgr_and_info() -> None:
    rec = make_record(rmid=1, info=0x00, main_data=b"\0" * 8)
    with pytest.raises(UnsupportedRecord, match=r"rmgr Transaction \(id 1\) info 0x00"):
        parse(rec, 15)
    # Every heap, heap2 and btree opcode is a record; what is left is not PostgreSQL's.
    with pytest.raises(UnsupportedRecord, match=r"rmgr Btree info 0xF0 is not a btree record"):
        parse(make_record(rmid=11, info=0xF0), 15)
    with pytest.raises(UnsupportedRecord, match=r"INIT_PAGE is only valid on INSERT/UPDATE/HOT_UPDATE"):
        parse(make_record(rmid=10, info=0x90, main_data=b"\0" * 8), 15)
    with pytest.raises(UnsupportedRecord, match=r"neon \(134\).*Neon PostgreSQL 16/17"):
        parse(make_record(rmid=134, info=0x00, main_data=b"\0" * 3), 15, Flavour.NEON)
    with pytest.raises(UnsupportedRecord, match=r"PRUNE does not exist in PostgreSQL 17"):
        build(Heap2Prune(1, 0, 0), [make_block(0, _RELS[0], 0)], pg_version=17)


def test_short_main_data_is_a_decode_error() -> None:
    rec = make_record(rmid=10, info=0x10, main_data=b"\0" * 5, blocks=[make_block(0, _RELS[0], 0)])
    with pytest.raises(RmgrDecodeError, match="heap DELETE"):
        parse(rec, 15)


def test_flavour_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="vanilla PostgreSQL 15 records carry no t_cid"):
        build(HeapDelete(1, 1, t_cid=3), [make_block(0, _RELS[0], 0)], pg_version=15)
    with pytest.raises(ValueError, match="Neon PostgreSQL 14 heap records need a t_cid"):
        build(HeapDelete(1, 1), [make_block(0, _RELS[0], 0)], pg_version=14, flavour=Flavour.NEON)


def test_descriptions_pg16_pg17_arrays() -> None:
    """PG16+ list formats (array_desc: `` [a, b]``, `` []`` when empty; redirects ``a->b``). PG16
    logs isCatalogRel but prints it nowhere (its server's format strings have no isCatalogRel)."""
    b0 = [make_block(0, _RELS[0], 0)]
    prune16 = Heap2Prune(7, 1, 1, ((1, 4),), (10,), (3, 8), is_catalog_rel=True)
    assert describe_record(build(prune16, b0, pg_version=16), 16).desc == (
        "snapshotConflictHorizon: 7, nredirected: 1, ndead: 1, nunused: 2, "
        "redirected: [1->4], dead: [10], unused: [3, 8]"
    )
    assert (
        describe_record(build(Heap2Vacuum(2, (3, 4)), b0, pg_version=16), 16).desc
        == "nunused: 2, unused: [3, 4]"
    )
    freeze16 = Heap2FreezePage(9, 1, plans=(FreezePlan(5, 2, 0x900, 0, (1, 2)),))
    assert describe_record(build(freeze16, b0, pg_version=16), 16).desc == (
        "snapshotConflictHorizon: 9, nplans: 1, plans: "
        "[{ xmax: 5, infomask: 2304, infomask2: 2, ntuples: 2, offsets: [1, 2] }]"
    )
    multi = Heap2MultiInsert(
        0, 2, (1, 2), (MultiInsertTuple(1, 0, 24, b"a"), MultiInsertTuple(1, 0, 24, b"b"))
    )
    assert (
        describe_record(build(multi, b0, pg_version=16), 16).desc
        == "ntuples: 2, flags: 0x00, offsets: [1, 2]"
    )
    p17 = Heap2PruneFreeze(0x20, 1, 0x08 | 0x04 | 0x40, 77, dead=(5, 6))
    d = describe_record(build(p17, b0, pg_version=17), 17)
    assert (d.name, d.desc) == (
        "PRUNE_VACUUM_SCAN",
        "snapshotConflictHorizon: 77, isCatalogRel: F, nplans: 0, nredirected: 0, ndead: 2, nunused: 0, dead: [5, 6]",
    )
    # Without a conflict horizon PostgreSQL 17 starts the text with ", isCatalogRel".
    p17b = Heap2PruneFreeze(0x10, 0, 0x80 | 0x02, None, unused=(4,))
    assert describe_record(build(p17b, b0, pg_version=17), 17).desc == (
        ", isCatalogRel: T, nplans: 0, nredirected: 0, ndead: 0, nunused: 1, unused: [4]"
    )


def test_neon_rmgr_descriptions() -> None:
    b0 = [make_block(0, _RELS[0], 0)]
    rec = build(
        HeapInsert(3, 0, XlTuple(2, 0x800, 24, b"x", t_cid=4), t_cid=4),
        b0,
        pg_version=16,
        flavour=Flavour.NEON,
    )
    d = describe_record(rec, 16, Flavour.NEON)
    assert (rec.rmid, d.rmgr, d.name, d.desc) == (134, "neon", "INSERT", "off: 3, flags: 0x00")
    upd = build(HeapUpdate(1, 2, 3, 4, hot=True, t_cid=8), b0, pg_version=17, flavour=Flavour.NEON)
    assert (upd.rmid, upd.info) == (134, 0x30)
    assert describe_record(upd, 17, Flavour.NEON).name == "HOT_UPDATE"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_case_any(), st.data())
def test_mutated_bodies_fail_only_with_rmgr_errors(
    case: tuple[int, Flavour, RmgrRecord, list[BlockRef]], data: st.DataObject
) -> None:
    """Corrupt main data or block data: parse() returns a record or raises RmgrDecodeError /
    UnsupportedRecord, never an IndexError or struct.error."""
    from dataclasses import replace

    v, fl, body, blocks = case
    rec = build(body, blocks, pg_version=v, flavour=fl)
    main = bytearray(rec.main_data)
    if main and data.draw(st.booleans()):
        main[data.draw(st.integers(0, len(main) - 1))] = data.draw(st.integers(0, 255))
    main = main[: data.draw(st.integers(0, len(main)))] + data.draw(st.binary(max_size=3))
    new_blocks = []
    for b in rec.blocks:
        d = b.data
        if d and data.draw(st.booleans()):
            d = d[: data.draw(st.integers(0, len(d)))] + data.draw(st.binary(max_size=3))
        new_blocks.append(replace(b, data=d, flags=(b.flags & ~0x20) | (0x20 if d else 0)))
    mutated = make_record(rmid=rec.rmid, info=rec.info, blocks=new_blocks, main_data=bytes(main))
    try:
        parsed = parse(mutated, v, fl)
    except (RmgrDecodeError, UnsupportedRecord):
        return
    parsed.describe(v, fl)


def test_c_padding_bytes_survive_a_typed_rebuild() -> None:
    """PostgreSQL leaves struct padding uninitialised; parse() keeps those bytes (outside
    equality) so that build(parse(r)) reproduces r byte for byte."""
    b0 = [make_block(0, _RELS[0], 0)]
    rec = build(HeapDelete(7, 3, 0, 0, t_cid=9, pad=b"\xaa\xbb"), b0, pg_version=15, flavour=Flavour.NEON)
    assert rec.main_data[6:8] == b"\xaa\xbb"
    body = parse(rec, 15, Flavour.NEON)
    assert (
        isinstance(body, HeapDelete) and body.pad == b"\xaa\xbb" and body == HeapDelete(7, 3, 0, 0, t_cid=9)
    )
    multi = Heap2MultiInsert(
        0,
        2,
        (1, 2),
        (MultiInsertTuple(1, 0, 24, b"ab"), MultiInsertTuple(1, 0, 24, b"d")),
        main_pad=0x5A,
        block_pad=b"\x77",
    )
    rec = build(multi, b0, pg_version=16)
    assert rec.main_data[1] == 0x5A and rec.blocks[0].data[7 + 2] == 0x77
    again = build(parse(rec, 16), b0, pg_version=16)
    assert again.encode() == rec.encode()
    meta = BtreeMetadata(4, 1, 0, 1, 0, 0, True, pad=b"xyz")
    root = build(
        BtreeNewroot(1, 0, b"", meta), [make_block(0, _RELS[0], 1), make_block(2, _RELS[0], 0)], pg_version=15
    )
    assert root.blocks[1].data.endswith(b"xyz")
    assert build(parse(root, 15), root.blocks, pg_version=15).encode() == root.encode()


@pytest.mark.parametrize(("v", "delete", "reuse"), [
    (15, "latestRemovedXid 9; ndeleted 1; nupdated 0", "rel 1663/5/16384; latestRemovedXid 0:9"),
    # 16 logs isCatalogRel but prints it nowhere: its server's format strings are
    # "snapshotConflictHorizon: %u, ndeleted: %u, nupdated: %u" and "rel: %u/%u/%u,
    # snapshotConflictHorizon: %u:%u"; 17 appends ", isCatalogRel: %c" to both.
    (16, "snapshotConflictHorizon: 9, ndeleted: 1, nupdated: 0, deleted: [3], updated: []",
     "rel: 1663/5/16384, snapshotConflictHorizon: 0:9"),
    (17, "snapshotConflictHorizon: 9, ndeleted: 1, nupdated: 0, isCatalogRel: T, deleted: [3], updated: []",
     "rel: 1663/5/16384, snapshotConflictHorizon: 0:9, isCatalogRel: T"),
])
def test_btree_delete_and_reuse_descriptions_print_is_catalog_rel_from_17(v: int, delete: str,
                                                                          reuse: str) -> None:
    catalog = v >= 16
    b0 = [make_block(0, _RELS[0], 0)]
    rec = build(BtreeDelete(9, 1, 0, (3,), is_catalog_rel=catalog), b0, pg_version=v)
    assert describe_record(rec, v).desc == delete
    rec = build(BtreeReusePage((1663, 5, 16384), 4, 9, is_catalog_rel=catalog), [], pg_version=v)
    assert describe_record(rec, v).desc == reuse
