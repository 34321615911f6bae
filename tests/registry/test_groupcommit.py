"""Group commit: writes that arrive during a commit share the next one; each fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import metrics
from proto import handle_pb2
from registry.errors import HandleAlreadyExists, StoreError
from registry.registry import Registry
from registry.store import Store, StoreOptions
from tests.registry.conftest import NODE_PREFIX
from tests.registry.groups import FIRST, WAIT_SECONDS, one_group, put, put_then_fail

Op = handle_pb2.ChangeEntry.Operation
TINY_MAP_BYTES = 64 * 1024


def logged(store: Store) -> list[handle_pb2.ChangeEntry]:
    with store.read() as txn:
        return list(store.changes_since(txn, 0))


def last_sequence(store: Store) -> int:
    with store.read() as txn:
        return store.last_sequence(txn)


def commit_sizes() -> tuple[float, float]:
    """(commits, writes) the group-commit histogram has counted so far."""
    metrics.flush()
    (family,) = metrics.STORE_COMMIT_WRITES.collect()
    samples = {sample.name: sample.value for sample in family.samples}
    return samples["idnode_store_commit_writes_count"], samples["idnode_store_commit_writes_sum"]


def test_a_write_with_nothing_in_flight_commits_at_once_in_a_transaction_of_its_own(
    store: Store,
) -> None:
    before = store.last_txn_id()
    commits, writes = commit_sizes()
    sequence, _txn_id = store.write(put("88.118/a"))
    assert store.last_txn_id() == before + 1
    assert sequence == last_sequence(store)
    assert commit_sizes() == (commits + 1, writes + 1)


def test_writes_arriving_during_a_commit_share_the_next_one_and_return_after_it(
    store: Store,
) -> None:
    keys = [f"88.118/g{i}" for i in range(10)]
    commits, writes = commit_sizes()
    outcomes = one_group(store, [put(k) for k in keys], keys)
    first_sequence, first_txn = outcomes.results.pop(FIRST)

    assert outcomes.errors == {}
    txn_ids = {txn_id for _sequence, txn_id in outcomes.results.values()}
    assert len(txn_ids) == 1 and first_txn not in txn_ids  # one commit after the first's
    assert all(outcomes.committed_on_return.values())
    entries = logged(store)
    assert [e.sequence for e in entries] == list(range(1, 12))
    by_sequence = {e.sequence: e.identifier for e in entries}
    assert by_sequence[first_sequence] == "88.118/first"
    for position, (sequence, _txn) in outcomes.results.items():
        assert by_sequence[sequence] == keys[position]
    assert last_sequence(store) == 11
    assert commit_sizes() == (commits + 2, writes + 11)


@pytest.mark.parametrize(
    "error", [HandleAlreadyExists("identifier 88.118/g1 already exists"), ValueError("a bug")]
)
def test_a_write_that_raises_fails_alone_and_leaves_nothing(store: Store, error: Exception) -> None:
    keys = ["88.118/g0", "88.118/g1", "88.118/g2"]
    works = [put(keys[0], b"zero"), put_then_fail(keys[1], error), put(keys[2], b"two")]
    outcomes = one_group(store, works, keys)

    assert outcomes.errors == {1: error}
    assert set(outcomes.results) == {FIRST, 0, 2}
    assert outcomes.committed_on_return == {0: True, 1: False, 2: True}
    entries = logged(store)
    assert [(e.sequence, e.identifier) for e in entries] == [
        (1, "88.118/first"),
        (2, "88.118/g0"),
        (3, "88.118/g2"),
    ]
    assert [e.record.values[0].data for e in entries[1:]] == [b"zero", b"two"]
    assert last_sequence(store) == 3


def test_a_write_lmdb_refuses_fails_alone_with_a_store_error(store: Store) -> None:
    def too_long_a_key(batch: Any) -> None:
        batch.txn.put(b"k" * 600, b"v", db=batch.store.records)  # LMDB keys: 511 bytes

    keys = ["88.118/g0", "88.118/never", "88.118/g2"]
    outcomes = one_group(store, [put(keys[0]), too_long_a_key, put(keys[2])], keys)

    assert set(outcomes.errors) == {1}
    assert isinstance(outcomes.errors[1], StoreError)
    assert "BadValsizeError" in str(outcomes.errors[1])
    assert outcomes.committed_on_return == {0: True, 1: False, 2: True}
    with pytest.raises(StoreError, match="BadValsizeError"):  # and alone in its group
        store.write(too_long_a_key)


@pytest.mark.parametrize("isolated", [False, True], ids=["side-by-side", "isolated"])
def test_each_write_of_a_group_reads_the_store_as_the_ones_before_left_it(
    store: Store, isolated: bool
) -> None:
    seen: list[int] = []

    def newest_sequence(batch: Any) -> None:  # as the DNS serial and the replica read it
        seen.append(batch.store.last_sequence(batch.txn))

    works = [put("88.118/g0"), put("88.118/g1"), newest_sequence]
    if isolated:  # a failing write makes the group run again, each write nested
        works.insert(1, put_then_fail("88.118/never", ValueError("a bug")))
    keys = ["88.118/g0", "88.118/g1", "88.118/never", "88.118/none"][: len(works)]
    one_group(store, works, keys)

    assert seen[-1] == 3 == last_sequence(store)  # the first write, g0 and g1 before it


@pytest.fixture
def tiny_store(data_dir: str) -> Iterator[Store]:
    opened = Store(data_dir, StoreOptions(map_size_bytes=TINY_MAP_BYTES, durable=False))
    yield opened
    opened.close()


def test_a_group_that_fills_the_map_grows_it_and_commits_every_write(tiny_store: Store) -> None:
    keys = [f"88.118/big{i}" for i in range(12)]
    works = [put(key, bytes([i]) * 20_000) for i, key in enumerate(keys)]
    outcomes = one_group(tiny_store, works, keys)

    assert outcomes.errors == {}
    assert all(outcomes.committed_on_return.values())
    assert tiny_store.map_size_bytes() > TINY_MAP_BYTES
    entries = logged(tiny_store)
    assert [e.sequence for e in entries] == list(range(1, 14))
    assert {e.identifier: e.record.values[0].data[:1] for e in entries[1:]} == {
        key: bytes([i]) for i, key in enumerate(keys)
    }


def test_concurrent_creates_of_one_identifier_make_exactly_one(
    registry: Registry, admin: Any
) -> None:
    values = [handle_pb2.HandleValue(index=1, type="URL", data=b"https://e/")]
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait(WAIT_SECONDS)
        try:
            registry.create(admin, f"{NODE_PREFIX}/same", values)
            outcomes.append("created")
        except HandleAlreadyExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert sorted(outcomes) == ["created"] + ["exists"] * 7
    creates = [e for e in logged(registry.store) if e.operation == Op.CREATE]
    assert [e.identifier for e in creates] == [f"{NODE_PREFIX}/same"]


def test_a_write_inside_a_write_is_refused_instead_of_waiting_for_itself(store: Store) -> None:
    def outer(batch: Any) -> None:
        store.write(put("88.118/inner"))

    with pytest.raises(StoreError, match="a write inside a write"):
        store.write(outer)
    assert store.write(put("88.118/after"))[0] == 1  # and the store writes on
