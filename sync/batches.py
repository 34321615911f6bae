"""Push batches and snapshot chunks, bounded in entries and in bytes.

A budget well under the gRPC message limit keeps every message deliverable: records
are legal up to about a megabyte each, so a batch bounded only in entries can exceed
any limit. An entry larger than the budget still goes, alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from proto import handle_pb2, sync_pb2

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
