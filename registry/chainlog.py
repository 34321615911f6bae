"""The hash chain as the store keeps it: `chain` and `checkpoints` beside the change log.

`chain` maps each entry's sequence (8 bytes, big-endian) to its chain hash (registry.chain),
written by the signer shortly after the entry (never on the write itself: registry.signer),
or before it is trimmed; `checkpoints` maps a checkpoint's last sequence to the signed
Checkpoint. The meta key `chain_origin` holds the first chained
sequence and the hash before it: sequence 1 and 32 zero bytes for a store that had its
chain from the start, the oldest entry kept for one that got it by an upgrade after
its log was trimmed. Trimming drops a checkpoint, and its entries' chain hashes, only
once every entry it covers is gone, so every entry kept can still be proven.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from proto import handle_pb2
from registry import chain, changelog, packing
from registry.chain import ChainError

ORIGIN_KEY = b"chain_origin"
# meta: absent while the store keeps its chain; OFF for a copy of a primary that keeps
# none; RECOPY for a replica's store upgraded from schema 3, whose own entries cannot be
# chained as its primary chained them (they start after a snapshot): its next copy does.
STATE_KEY = b"chain"
OFF = b"off"
RECOPY = b"recopy"
REPLICA_ROLE = ("role", b"replica")  # meta of a replica's store (sync.replica.marks)
_ORIGIN = struct.Struct(">Q32s")
_SEQ = struct.Struct(">Q")
UPGRADE_CHUNK_ENTRIES = 50_000  # per write transaction when an upgrade builds the chain


def keeps_chain(txn: Any, dbs: Any) -> bool:
    """False for a store without a chain: before the upgrade, or a copy's without one."""
    return dbs.chain is not None and txn.get(STATE_KEY, db=dbs.meta) is None


def is_copy(txn: Any, dbs: Any) -> bool:
    """True for a replica's store."""
    return bool(txn.get(REPLICA_ROLE[0].encode(), db=dbs.meta) == REPLICA_ROLE[1])


def needs_copy(txn: Any, dbs: Any) -> bool:
    """True for a replica's store that waits for a copy to get its primary's chain."""
    return bool(txn.get(STATE_KEY, db=dbs.meta) == RECOPY)


def origin(txn: Any, dbs: Any) -> tuple[int, bytes]:
    """The first chained sequence and the chain hash before it."""
    raw = txn.get(ORIGIN_KEY, db=dbs.meta)
    if raw is None:
        return 1, chain.GENESIS
    sequence, previous = _ORIGIN.unpack(bytes(raw))
    return int(sequence), bytes(previous)


def put_origin(txn: Any, dbs: Any, sequence: int, previous: bytes) -> None:
    txn.put(ORIGIN_KEY, _ORIGIN.pack(sequence, previous), db=dbs.meta)


def hash_at(txn: Any, dbs: Any, sequence: int) -> bytes:
    """The chain hash of entry `sequence` (of entry 0: the genesis hash). Raises ChainError
    when the store does not have it."""
    raw = txn.get(_SEQ.pack(sequence), db=dbs.chain) if sequence else None
    if raw is not None:
        return bytes(raw)
    first, previous = origin(txn, dbs)
    if sequence == first - 1:
        return previous
    following = covering(txn, dbs, sequence + 1)
    if following is not None and following.first_sequence == sequence + 1:
        return bytes(following.previous_hash)
    if sequence == 0:
        return chain.GENESIS
    raise ChainError(f"the store has no chain hash for change {sequence}")


def canonical(txn: Any, dbs: Any, entry: handle_pb2.ChangeEntry) -> bytes:
    """The canonical bytes (registry.chain.entry_bytes) of a stored entry, with the record
    it borrows when it borrows one. Built from the message, not from the stored bytes:
    a schema-1 entry holds its record in another place than a superseded one does."""
    return chain.entry_bytes(changelog.complete(txn, dbs, entry))


def leaves(txn: Any, dbs: Any, first: int, last: int) -> list[bytes]:
    """The chain hashes of entries first..last. Raises ChainError for one missing."""
    found = []
    with txn.cursor(db=dbs.chain) as cursor:
        if cursor.set_key(_SEQ.pack(first)):
            for key, value in cursor:
                if _SEQ.unpack(key)[0] > last:
                    break
                found.append(bytes(value))
    if len(found) != last - first + 1:
        raise ChainError(f"the store lacks chain hashes between changes {first} and {last}")
    return found


def covering(txn: Any, dbs: Any, sequence: int) -> handle_pb2.Checkpoint | None:
    """The checkpoint whose range holds `sequence`, None when none is signed yet."""
    if dbs.checkpoints is None:
        return None
    with txn.cursor(db=dbs.checkpoints) as cursor:
        if not cursor.set_range(_SEQ.pack(sequence)):
            return None
        checkpoint = handle_pb2.Checkpoint.FromString(bytes(cursor.value()))
    return checkpoint if checkpoint.first_sequence <= sequence else None


def last_checkpoint(txn: Any, dbs: Any) -> handle_pb2.Checkpoint | None:
    if dbs.checkpoints is None:
        return None
    with txn.cursor(db=dbs.checkpoints) as cursor:
        if not cursor.last():
            return None
        return handle_pb2.Checkpoint.FromString(bytes(cursor.value()))


def checkpoints(txn: Any, dbs: Any, after: int = 0) -> Iterator[handle_pb2.Checkpoint]:
    """Checkpoints ending after sequence `after`, oldest first."""
    if dbs.checkpoints is None:
        return
    with txn.cursor(db=dbs.checkpoints) as cursor:
        if not cursor.set_range(_SEQ.pack(after + 1)):
            return
        for _key, value in cursor:
            yield handle_pb2.Checkpoint.FromString(bytes(value))


def checkpoints_between(
    txn: Any, dbs: Any, after: int, through: int, limit: int = 0
) -> list[handle_pb2.Checkpoint]:
    """Checkpoints ending after sequence `after` and at or before `through`, oldest first,
    at most `limit` of them (0: all). Only those returned are read (a push or a replica's
    message takes a window of a long backlog: reading past it made a catch-up quadratic)."""
    found: list[handle_pb2.Checkpoint] = []
    if dbs.checkpoints is None or through <= after:
        return found
    limit = limit or through - after  # no more checkpoints end in a window than it has entries
    with txn.cursor(db=dbs.checkpoints) as cursor:
        if not cursor.set_range(_SEQ.pack(after + 1)):
            return found
        for key, value in cursor:
            if _SEQ.unpack(key)[0] > through or len(found) == limit:
                break
            found.append(handle_pb2.Checkpoint.FromString(bytes(value)))
    return found


def put_checkpoint(
    txn: Any, dbs: Any, checkpoint: handle_pb2.Checkpoint, replace: bool = False
) -> None:
    """Keep `checkpoint`: after the newest, or (`replace`) in place of one of its range."""
    txn.put(
        _SEQ.pack(checkpoint.last_sequence),
        checkpoint.SerializeToString(),
        db=dbs.checkpoints,
        append=not replace,
    )


def trim(txn: Any, dbs: Any, keep_from: int) -> None:
    """Drop the checkpoints, and their chain hashes, whose every entry is before `keep_from`."""
    if dbs.checkpoints is None:
        return
    with txn.cursor(db=dbs.checkpoints) as cursor:
        while cursor.first() and _SEQ.unpack(cursor.key())[0] < keep_from:
            checkpoint = handle_pb2.Checkpoint.FromString(bytes(cursor.value()))
            _drop_hashes(txn, dbs, checkpoint.first_sequence, checkpoint.last_sequence)
            cursor.delete()
    first, _previous = origin(txn, dbs)
    if first < keep_from:  # the chain hash of the entry before the oldest kept one
        following = covering(txn, dbs, keep_from)
        kept_from = following.first_sequence if following is not None else keep_from
        put_origin(txn, dbs, kept_from, hash_at(txn, dbs, kept_from - 1))


def _drop_hashes(txn: Any, dbs: Any, first: int, last: int) -> None:
    with txn.cursor(db=dbs.chain) as cursor:
        found = cursor.set_range(_SEQ.pack(first))
        while found and _SEQ.unpack(cursor.key())[0] <= last:
            found = cursor.delete()


def never_chained(txn: Any, dbs: Any) -> bool:
    """True while the store holds no chain hash and no checkpoint, and its chain starts
    from the genesis hash: nothing of its chain was ever computed, signed or sent."""
    with txn.cursor(db=dbs.chain) as hashes, txn.cursor(db=dbs.checkpoints) as signed:
        if hashes.first() or signed.first():
            return False
    return origin(txn, dbs)[1] == chain.GENESIS


def chained_to(txn: Any, dbs: Any) -> int:
    """The last sequence that has its chain hash (the origin's sequence - 1 when none)."""
    with txn.cursor(db=dbs.chain) as cursor:
        if cursor.last():
            return int(_SEQ.unpack(cursor.key())[0])
    return origin(txn, dbs)[0] - 1


def compute(txn: Any, dbs: Any, after: int, limit: int) -> list[bytes]:
    """The chain hashes of the stored entries after `after`, at most `limit` of them,
    computed (not stored). Raises ChainError for a gap in the change log."""
    previous = hash_at(txn, dbs, after)
    hashes: list[bytes] = []
    with txn.cursor(db=dbs.changelog) as cursor:
        if limit <= 0 or not cursor.set_range(_SEQ.pack(after + 1)):
            return hashes
        for key, value in cursor:
            sequence = _SEQ.unpack(key)[0]
            if sequence != after + len(hashes) + 1:
                raise ChainError(f"the change log jumps from {after + len(hashes)} to {sequence}")
            previous = chain.link(previous, _canonical_stored(txn, dbs, bytes(value)))
            hashes.append(previous)
            if len(hashes) >= limit:
                break
    return hashes


def _canonical_stored(txn: Any, dbs: Any, raw: bytes) -> bytes:
    """`canonical` of the entry stored as `raw`, from the stored bytes where it borrows its
    record (most entries: a record's newest change): no message built (verify, which
    builds it, would notice were the two ever to differ)."""
    entry = handle_pb2.ChangeEntry.FromString(raw)
    if changelog.borrows(entry):
        identifier = entry.identifier.encode()
        record = txn.get(identifier, db=dbs.records)
        if record is not None:
            return chain.with_record(raw, identifier, packing.plain(bytes(record)))
    return canonical(txn, dbs, entry)


def put_hashes(txn: Any, dbs: Any, first: int, hashes: list[bytes]) -> None:
    """Store `hashes` as the chain hashes of entries first, first + 1, ..."""
    for offset, chain_hash in enumerate(hashes):
        txn.put(_SEQ.pack(first + offset), chain_hash, db=dbs.chain, append=True)


def build(txn: Any, dbs: Any, after: int, limit: int) -> int:
    """Chain the stored entries after `after`, at most `limit` of them, in this write
    transaction (an upgrade, a trim); returns the last sequence chained."""
    hashes = compute(txn, dbs, after, limit)
    put_hashes(txn, dbs, after + 1, hashes)
    return after + len(hashes)
