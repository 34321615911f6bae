"""Batch register's write path: key order, and the records and change log readers expect."""

from __future__ import annotations

import random
from typing import Any

from proto import handle_pb2
from registry import packing, values, verify
from registry.accounts import Account
from registry.registry import Registry
from registry.store import Store
from tests.registry.conftest import START_TIME, FakeClock

Op = handle_pb2.ChangeEntry.Operation
Record = handle_pb2.Record
HandleValue = handle_pb2.HandleValue


def record(identifier: str, data: str) -> Any:
    return Record(
        identifier=identifier,
        values=[
            HandleValue(index=2, type="batch", data=b"B1", public_read=True),
            HandleValue(index=1, type="URL", data=data.encode(), ttl=60),
        ],
    )


def raw_log(store: Store, after: int) -> list[tuple[int, bytes]]:
    with store.read() as txn, txn.cursor(db=store.changelog) as cursor:
        cursor.set_range((after + 1).to_bytes(8, "big"))
        return [(int.from_bytes(key, "big"), bytes(value)) for key, value in cursor]


def test_a_shuffled_batch_is_stored_and_logged_in_key_order_as_single_writes_are(
    registry: Registry, store: Store, account_a: Account
) -> None:
    names = [f"88.118.8/k{i:03d}" for i in range(60)]
    shuffled = random.Random(7).sample(names, len(names))
    with store.read() as txn:
        before = store.last_sequence(txn)

    result = registry.batch_register(account_a, [record(n, f"https://e/{n}") for n in shuffled])

    assert result.outcomes == ["created"] * 60
    assert result.sequence == before + 60
    logged = raw_log(store, before)
    assert [sequence for sequence, _ in logged] == list(range(before + 1, before + 61))
    with store.read() as txn:
        assert store.last_sequence(txn) == result.sequence  # meta, written once
        for (sequence, raw), name in zip(logged, names, strict=True):
            entry = handle_pb2.ChangeEntry.FromString(raw)
            assert (entry.operation, entry.identifier) == (Op.CREATE, name)
            # Byte for byte what a ChangeEntry with these fields serialises to.
            assert raw == handle_pb2.ChangeEntry(
                sequence=sequence, operation=Op.CREATE, identifier=name,
                timestamp_ns=entry.timestamp_ns,
            ).SerializeToString()  # fmt: skip
            stamped = values.normalise(record(name, "").values, int(START_TIME))
            stamped[0].data = f"https://e/{name}".encode()
            expected = packing.encode(Record(values=stamped), len(name), store.page_bytes)
            assert txn.get(name.encode(), db=store.records) == expected
            assert txn.get(name.encode(), db=store.borrowed) == sequence.to_bytes(8, "big")
        whole = list(store.changes_since(txn, before))
    assert [[v.data for v in e.record.values] for e in whole] == [
        [f"https://e/{n}".encode(), b"B1"] for n in names
    ]
    assert verify.verify(store).problems == []


def test_a_batch_over_stored_records_gives_the_old_entries_their_records(
    registry: Registry, store: Store, clock: FakeClock, account_a: Account
) -> None:
    registry.batch_register(
        account_a, [record("88.118.8/a", "https://old"), record("88.118.8/c", "x")]
    )
    with store.read() as txn:
        before = store.last_sequence(txn)
    clock.now += 60

    result = registry.batch_register(
        account_a,
        [
            record("88.118.8/c", "x"),
            record("88.118.8/b", "https://b"),
            record("88.118.8/a", "https://new"),
        ],
    )

    assert result.outcomes == ["unchanged", "created", "updated"]
    with store.read() as txn:
        history = list(store.changes_since(txn, 0))
    mine = [
        (e.operation, e.identifier, e.record.values[0].data) for e in history if "/" in e.identifier
    ]
    assert mine == [
        (Op.CREATE, "88.118.8/a", b"https://old"),  # superseded: it holds its own record now
        (Op.CREATE, "88.118.8/c", b"x"),
        (Op.UPDATE, "88.118.8/a", b"https://new"),  # key order: a before b
        (Op.CREATE, "88.118.8/b", b"https://b"),
    ]
    assert history[-1].sequence == before + 2
    assert verify.verify(store).problems == []


def test_a_batch_sent_again_is_unchanged_within_the_second_and_after_it(
    registry: Registry, store: Store, clock: FakeClock, account_a: Account
) -> None:
    items = [record(f"88.118.8/r{i}", f"https://r/{i}") for i in range(5)]
    first = registry.batch_register(account_a, items)

    same_second = registry.batch_register(account_a, items)  # stored bytes equal
    clock.now += 1
    later = registry.batch_register(account_a, items)  # only the timestamps differ
    changed = registry.batch_register(account_a, [*items[:4], record("88.118.8/r4", "https://x")])

    assert same_second.outcomes == later.outcomes == ["unchanged"] * 5
    assert same_second.sequence == later.sequence == first.sequence
    assert changed.outcomes == ["unchanged"] * 4 + ["updated"]
    assert changed.sequence == first.sequence + 1
