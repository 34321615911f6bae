"""What a node keeps in its store's meta about replication: its role, the log it holds,
the base of its last snapshot, what it learned of its primary, and a promoted log's parent."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from proto import handle_pb2, replica_pb2
from registry.changelog import sequence_key
from registry.identity import LOG_ID_KEY
from registry.store import Store, WriteBatch

ROLE_KEY = "role"
REPLICA = b"replica"  # a store without the key is a primary's
COPYING = "replica.copying"  # set while a snapshot is being merged in
BASE_KEY = "replica.base"  # sequence and commit time of the last snapshot taken in
PRIMARY_KEY = "replica.primary"  # JSON: what the primary said of itself
PARENT_KEY = "log_parent"  # after a promotion: the log it continues, and up to where
NODE_PREFIX_KEY = "node_prefix"
_BASE = struct.Struct(">Qq")
_PARENT = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a store's copy of a change log stands, as a follower reports it."""

    log_id: str
    sequence: int
    timestamp_ns: int  # commit time of entry `sequence` (0: unknown)


@dataclass(frozen=True, slots=True)
class Parent:
    """A promoted node's log continues `log_id` up to `sequence` (entries identical)."""

    log_id: str
    sequence: int


def put(batch: WriteBatch, key: str, value: bytes) -> None:
    batch.put_meta(key, value)


def delete(batch: WriteBatch, key: str) -> None:
    batch.txn.delete(key.encode(), db=batch.store.meta)


def is_replica(store: Store, txn: Any) -> bool:
    return store.get_meta(txn, ROLE_KEY) == REPLICA


def is_copying(store: Store, txn: Any) -> bool:
    return store.get_meta(txn, COPYING) is not None


def position(store: Store, txn: Any) -> Position:
    """The log this store holds, its last sequence and that entry's commit time."""
    log_id = (store.get_meta(txn, LOG_ID_KEY) or b"").decode()
    last = store.last_sequence(txn)
    raw = txn.get(sequence_key(last), db=store.changelog) if last else None
    if raw is not None:
        timestamp = handle_pb2.ChangeEntry.FromString(bytes(raw)).timestamp_ns
        return Position(log_id, last, timestamp)
    base = store.get_meta(txn, BASE_KEY)
    if base is not None:
        sequence, timestamp = _BASE.unpack(base)
        if sequence == last:
            return Position(log_id, last, timestamp)
    return Position(log_id, last, 0)


def primary(store: Store, txn: Any) -> dict[str, str]:
    """What the primary said of itself at the last session start ({} before the first)."""
    raw = store.get_meta(txn, PRIMARY_KEY)
    found: dict[str, str] = json.loads(raw) if raw else {}
    return found


def adopt(
    batch: WriteBatch, start: replica_pb2.FollowStart, sequence: int, timestamp_ns: int
) -> None:
    """After a snapshot: this store now holds the primary's log up to `sequence`."""
    batch.put_meta(LOG_ID_KEY, start.log_id.encode())
    batch.put_meta(NODE_PREFIX_KEY, start.node_prefix.encode())
    batch.put_meta(BASE_KEY, _BASE.pack(sequence, timestamp_ns))
    note_primary(batch, start)


def note_primary(batch: WriteBatch, start: replica_pb2.FollowStart) -> None:
    """Remember the primary's log (a promoted primary continues ours under a new id), its
    identity and HTTP site."""
    batch.put_meta(LOG_ID_KEY, start.log_id.encode())
    described = {"node_id": start.node_id, "http_site": start.http_site}
    batch.put_meta(PRIMARY_KEY, json.dumps(described, sort_keys=True).encode())


def parent(store: Store, txn: Any) -> Parent | None:
    raw = store.get_meta(txn, PARENT_KEY)
    if raw is None:
        return None
    return Parent(raw[_PARENT.size :].decode(), _PARENT.unpack_from(raw)[0])


def put_parent(batch: WriteBatch, found: Parent) -> None:
    batch.put_meta(PARENT_KEY, _PARENT.pack(found.sequence) + found.log_id.encode())
