"""Push batches and snapshot chunks stay within their entry and byte budgets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proto import handle_pb2, sync_pb2
from sync.batches import snapshot_chunks, take_batch

KIB = 1024


def entry(sequence: int, data_bytes: int) -> handle_pb2.ChangeEntry:
    made = handle_pb2.ChangeEntry(
        sequence=sequence, operation=handle_pb2.ChangeEntry.CREATE, identifier=f"88.118/{sequence}"
    )
    made.record.values.add(index=1, type="blob", data=b"x" * data_bytes)
    return made


def batches_of(
    entries: list[handle_pb2.ChangeEntry], max_entries: int, max_bytes: int
) -> list[list[handle_pb2.ChangeEntry]]:
    found = []
    while entries:
        batch = take_batch(iter(entries), max_entries, max_bytes)
        found.append(batch)
        entries = entries[len(batch) :]
    return found


def request_bytes(batch: list[handle_pb2.ChangeEntry]) -> int:
    request = sync_pb2.PushRequest(node_prefix="88.118", log_id="f" * 32, node_id="e" * 32)
    request.entries.extend(batch)
    return request.ByteSize()


@given(
    sizes=st.lists(st.integers(0, 300 * KIB), min_size=1, max_size=40),
    max_entries=st.integers(1, 10),
    max_bytes=st.integers(1 * KIB, 1024 * KIB),
)
def test_every_batch_fits_both_budgets_or_is_one_entry_alone(
    sizes: list[int], max_entries: int, max_bytes: int
) -> None:
    entries = [entry(n, size) for n, size in enumerate(sizes, start=1)]
    found = batches_of(entries, max_entries, max_bytes)
    assert [e.sequence for batch in found for e in batch] == [e.sequence for e in entries]
    for batch in found:
        assert 1 <= len(batch) <= max_entries
        assert len(batch) == 1 or request_bytes(batch) <= max_bytes + 100  # + the ids


def test_records_near_the_size_limit_go_a_few_at_a_time() -> None:
    entries = [entry(n, 975_000) for n in range(1, 76)]
    found = batches_of(entries, 500, 2 << 20)
    assert [len(batch) for batch in found] == [2] * 37 + [1]
    assert max(request_bytes(batch) for batch in found) < 2 << 20


def test_an_entry_larger_than_the_budget_goes_alone() -> None:
    entries = [entry(1, 10), entry(2, 900 * KIB), entry(3, 10)]
    assert [len(b) for b in batches_of(entries, 500, 64 * KIB)] == [1, 1, 1]


@given(
    record_sizes=st.lists(st.integers(0, 200 * KIB), max_size=30),
    prefix_count=st.integers(0, 30),
    max_records=st.integers(1, 8),
    max_bytes=st.integers(4 * KIB, 512 * KIB),
)
def test_snapshot_chunks_hold_everything_once_within_the_budgets(
    record_sizes: list[int], prefix_count: int, max_records: int, max_bytes: int
) -> None:
    records = []
    for n, size in enumerate(record_sizes):
        record = handle_pb2.Record()
        record.values.add(index=1, type="blob", data=b"r" * size)
        records.append((f"88.118/{n}", record))
    prefixes = [
        handle_pb2.PrefixInfo(prefix=f"88.118.{n}", name="n" * 2000) for n in range(prefix_count)
    ]
    first = sync_pb2.SnapshotChunk(node_prefix="88.118", log_id="l" * 32, sequence=9)
    chunks = list(snapshot_chunks(first, prefixes, records, max_records, max_bytes))
    assert chunks[0].log_id == "l" * 32 and chunks[0].sequence == 9
    assert all(chunk.node_prefix == "88.118" for chunk in chunks)
    assert [r.identifier for c in chunks for r in c.records] == [k for k, _ in records]
    assert [p.prefix for c in chunks for p in c.prefixes] == [p.prefix for p in prefixes]
    for chunk in chunks:
        assert len(chunk.records) <= max_records
        alone = len(chunk.records) + len(chunk.prefixes) <= 1
        assert alone or chunk.ByteSize() <= max_bytes
