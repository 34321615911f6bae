"""Change-log batches and snapshot chunks, bounded in entries and in bytes.

What the upward sync pushes and what a replica follows are read here, the same way.
A budget well under the gRPC message limit keeps every message deliverable: records
are legal up to about a megabyte each, so a batch bounded only in entries can exceed
any limit. An entry larger than the budget still goes, alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from proto import handle_pb2, replica_pb2, sync_pb2
from registry.store import Store

# A repeated message field costs a tag byte and a length varint (at most 5 bytes below
# 4 GiB) on top of the element itself.
FIELD_OVERHEAD_BYTES = 6


def take_batch(
    entries: Iterable[handle_pb2.ChangeEntry], max_entries: int, max_bytes: int
) -> list[handle_pb2.ChangeEntry]:
    """The leading entries that fit both bounds; the first is taken whatever its size."""
    batch: list[handle_pb2.ChangeEntry] = []
    size_bytes = 0
    for entry in entries:
        cost = entry.ByteSize() + FIELD_OVERHEAD_BYTES
        if batch and size_bytes + cost > max_bytes:
            break
        batch.append(entry)
        size_bytes += cost
        if len(batch) >= max_entries or size_bytes >= max_bytes:
            break
    return batch


def next_batch(
    store: Store, txn: Any, after: int, max_entries: int, max_bytes: int
) -> list[handle_pb2.ChangeEntry]:
    """The change-log entries after `after` that fit both bounds, oldest first, each with
    its record (an entry that borrows it gets the one stored now, in `txn`)."""
    pending = store.changes_since(txn, after, max_entries)
    batch = take_batch(pending, max_entries, max_bytes)
    del pending  # closes its cursor while the transaction is still open
    return batch


def snapshot_chunks(
    first: sync_pb2.SnapshotChunk,
    prefixes: Iterable[handle_pb2.PrefixInfo],
    records: Iterable[tuple[str, handle_pb2.Record]],
    max_records: int,
    max_bytes: int,
) -> Iterator[sync_pb2.SnapshotChunk]:
    """`first` (which names the copy) filled with prefixes, then records, and as many
    chunks after it as the bounds need; always at least one chunk."""
    chunk = first
    size_bytes = chunk.ByteSize()

    def full(cost: int) -> bool:
        has_content = bool(chunk.records) or bool(chunk.prefixes)
        too_many = len(chunk.records) >= max_records
        return has_content and (too_many or size_bytes + cost > max_bytes)

    for info in prefixes:
        cost = info.ByteSize() + FIELD_OVERHEAD_BYTES
        if full(cost):
            yield chunk
            chunk = sync_pb2.SnapshotChunk(node_prefix=first.node_prefix)
            size_bytes = chunk.ByteSize()
        chunk.prefixes.append(info)
        size_bytes += cost
    for key, record in records:
        record.identifier = key
        cost = record.ByteSize() + FIELD_OVERHEAD_BYTES
        if full(cost):
            yield chunk
            chunk = sync_pb2.SnapshotChunk(node_prefix=first.node_prefix)
            size_bytes = chunk.ByteSize()
        chunk.records.append(record)
        size_bytes += cost
    yield chunk


def credential_chunks(
    accounts: Iterable[handle_pb2.Account],
    tokens: Iterable[replica_pb2.TokenEntry],
    max_bytes: int,
) -> Iterator[replica_pb2.Credentials]:
    """Accounts, then tokens, in messages of at most `max_bytes`; the last says so."""
    chunk = replica_pb2.Credentials()
    size_bytes = 0
    for field, items in (("accounts", accounts), ("tokens", tokens)):
        for item in items:
            cost = item.ByteSize() + FIELD_OVERHEAD_BYTES
            if size_bytes and size_bytes + cost > max_bytes:
                yield chunk
                chunk = replica_pb2.Credentials()
                size_bytes = 0
            getattr(chunk, field).append(item)
            size_bytes += cost
    chunk.last = True
    yield chunk
