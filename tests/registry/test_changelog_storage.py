"""How records and the change log sit on disk: the newest change borrows its record, large
records are deflated when that saves pages, and what every reader sees stays the same."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lmdb
import pytest

from proto import handle_pb2
from registry import accounts, changelog, packing, verify
from registry.registry import Registry
from registry.store import SCHEMA_VERSION, Store, StoreOptions, WriteBatch, sequence_key
from tests.registry import measure_store_bytes

Op = handle_pb2.ChangeEntry.Operation
Record = handle_pb2.Record
HandleValue = handle_pb2.HandleValue
KEY = "88.118/x"


def record(data: str) -> Any:
    return Record(values=[HandleValue(index=1, type="URL", data=data.encode(), ttl=60)])


def put(store: Store, key: str, data: str, created: bool) -> int:
    return store.write(lambda batch: batch.put_record(key, record(data), created=created))


def raw_entry(store: Store, sequence: int) -> Any:
    with store.read() as txn:
        raw = txn.get(sequence_key(sequence), db=store.changelog)
    assert raw is not None
    return handle_pb2.ChangeEntry.FromString(bytes(raw))


def noted(store: Store, key: str) -> int | None:
    with store.read() as txn:
        raw = txn.get(key.encode(), db=store.borrowed)
    return changelog.sequence_of(bytes(raw)) if raw is not None else None


def whole(store: Store, after: int = 0) -> list[tuple[int, int, str, list[bytes]]]:
    with store.read() as txn:
        return [
            (e.sequence, e.operation, e.record.identifier, [v.data for v in e.record.values])
            for e in store.changes_since(txn, after)
        ]


def test_each_entry_reads_whole_while_only_superseded_ones_hold_a_copy(store: Store) -> None:
    first = put(store, KEY, "v1", created=True)
    assert not raw_entry(store, first).HasField("record")  # the record is not stored twice
    assert noted(store, KEY) == first
    second = put(store, KEY, "v2", created=False)
    third = put(store, KEY, "v3", created=False)

    assert [v.data for v in raw_entry(store, first).record.values] == [b"v1"]
    assert [v.data for v in raw_entry(store, second).record.values] == [b"v2"]
    assert not raw_entry(store, third).HasField("record")
    assert noted(store, KEY) == third
    assert whole(store) == [
        (first, Op.CREATE, KEY, [b"v1"]),
        (second, Op.UPDATE, KEY, [b"v2"]),
        (third, Op.UPDATE, KEY, [b"v3"]),
    ]
    assert verify.verify(store).ok


def test_a_delete_gives_the_last_version_to_its_entry(store: Store) -> None:
    created = put(store, KEY, "v1", created=True)
    deleted = store.write(lambda batch: batch.delete_record(KEY))
    recreated = put(store, KEY, "v2", created=True)

    assert [v.data for v in raw_entry(store, created).record.values] == [b"v1"]
    assert whole(store) == [
        (created, Op.CREATE, KEY, [b"v1"]),
        (deleted, Op.DELETE, "", []),
        (recreated, Op.CREATE, KEY, [b"v2"]),
    ]
    assert noted(store, KEY) == recreated
    assert verify.verify(store).ok


def test_two_changes_of_one_identifier_in_one_transaction(store: Store) -> None:
    def work(batch: WriteBatch) -> tuple[int, int]:
        return (
            batch.put_record(KEY, record("first"), created=True),
            batch.put_record(KEY, record("second"), created=False),
        )

    first, second = store.write(work)
    assert whole(store) == [
        (first, Op.CREATE, KEY, [b"first"]),
        (second, Op.UPDATE, KEY, [b"second"]),
    ]


def test_trimming_a_borrowing_entry_ends_the_note_and_later_changes_work(store: Store) -> None:
    put(store, "88.118/old", "o1", created=True)
    kept = put(store, KEY, "v1", created=True)
    trimmed = store.write(lambda batch: batch.trim_changelog(kept))

    assert trimmed == 1
    assert noted(store, "88.118/old") is None
    assert noted(store, KEY) == kept
    again = put(store, "88.118/old", "o2", created=False)  # its borrowing entry is gone
    assert whole(store) == [
        (kept, Op.CREATE, KEY, [b"v1"]),
        (again, Op.UPDATE, "88.118/old", [b"o2"]),
    ]
    assert verify.verify(store).ok


def test_verify_finds_a_superseded_entry_without_its_record(store: Store) -> None:
    first = put(store, KEY, "v1", created=True)
    put(store, KEY, "v2", created=False)
    bare = handle_pb2.ChangeEntry(sequence=first, operation=Op.CREATE, identifier=KEY)
    store.write(
        lambda batch: batch.txn.put(
            sequence_key(first), bare.SerializeToString(), db=store.changelog
        )
    )
    assert (
        f"change {first} of {KEY} has no record of its own, but change {first + 1} followed it"
        in (verify.verify(store).problems)
    )


def test_verify_finds_a_note_that_names_the_wrong_entry(store: Store) -> None:
    put(store, KEY, "v1", created=True)
    put(store, "88.118/y", "y1", created=True)
    store.write(lambda batch: batch.txn.put(KEY.encode(), sequence_key(2), db=store.borrowed))
    problems = verify.verify(store).problems
    assert (
        f"change 1 of {KEY} has no record of its own and is not noted as borrowing it" in problems
    )
    assert f"{KEY} is noted as borrowing its record in change 2, which is not a change of it " \
        "without a record" in problems  # fmt: skip


# Schema 1 -----------------------------------------------------------------------------


def schema_1_store(path: Path) -> None:
    """A store as the previous build wrote it: every entry holds its record, no `borrowed`."""
    env = lmdb.open(str(path), max_dbs=16, map_size=1 << 26)
    try:
        names = (b"records", b"prefixes", b"accounts", b"tokens", b"changelog", b"cursors", b"meta")
        dbs = {name: env.open_db(name) for name in names}
        with env.begin(write=True) as txn:
            for sequence, data in ((1, "v1"), (2, "v2")):
                entry = handle_pb2.ChangeEntry(
                    sequence=sequence, operation=Op.CREATE if sequence == 1 else Op.UPDATE,
                    identifier=KEY,
                )  # fmt: skip
                entry.record.identifier = KEY
                entry.record.values.extend(record(data).values)
                txn.put(sequence_key(sequence), entry.SerializeToString(), db=dbs[b"changelog"])
            txn.put(KEY.encode(), record("v2").SerializeToString(), db=dbs[b"records"])
            txn.put(b"sequence", sequence_key(2), db=dbs[b"meta"])
            txn.put(b"schema", b"1", db=dbs[b"meta"])
    finally:
        env.close()


def test_a_schema_1_store_reads_read_only_and_is_upgraded_in_place(tmp_path: Path) -> None:
    schema_1_store(tmp_path)
    readonly = Store(str(tmp_path), StoreOptions(readonly=True))
    try:
        assert readonly.borrowed is None
        assert [data for _s, _o, _i, data in whole(readonly)] == [[b"v1"], [b"v2"]]
    finally:
        readonly.close()

    store = Store(str(tmp_path), StoreOptions(durable=False))
    try:
        with store.read() as txn:
            assert store.get_meta(txn, "schema") == SCHEMA_VERSION  # 1 -> 2 -> 3 -> 4
        assert verify.verify(store).ok
        third = put(store, KEY, "v3", created=False)  # nothing to fill: entry 2 has its record
        assert [data for _s, _o, _i, data in whole(store)] == [[b"v1"], [b"v2"], [b"v3"]]
        assert noted(store, KEY) == third
        assert verify.verify(store).ok
    finally:
        store.close()


# Deflated records ---------------------------------------------------------------------


def stored_bytes(store: Store, key: str) -> bytes:
    with store.read() as txn:
        raw = txn.get(key.encode(), db=store.records)
    assert raw is not None
    return bytes(raw)


@pytest.mark.parametrize(
    ("data", "deflated"),
    [
        (b"https://example.com/" * 120, True),  # 2.4 KB of text: an overflow page saved
        (b"short", False),  # fits a leaf: stored as it is
        (random.Random(1).randbytes(2400), False),  # deflating saves no page
    ],
    ids=["large-text", "small", "large-random"],
)
def test_large_records_are_deflated_only_when_that_saves_pages(
    store: Store, data: bytes, deflated: bool
) -> None:
    stored = Record(values=[HandleValue(index=1, type="blob", data=data)])
    sequence = store.write(lambda batch: batch.put_record(KEY, stored, created=True))

    raw = stored_bytes(store, KEY)
    assert raw.startswith(packing.DEFLATED) is deflated
    with store.read() as txn:
        assert store.get_record(txn, KEY) == stored
        assert [(k, r) for k, r in store.iter_records(txn)] == [(KEY, stored)]
    assert whole(store) == [(sequence, Op.CREATE, KEY, [data])]


def test_a_damaged_deflated_record_is_reported_not_misread(store: Store) -> None:
    put(store, KEY, "x" * 3000, created=True)
    damaged = stored_bytes(store, KEY)[:40]
    store.write(lambda batch: batch.txn.put(KEY.encode(), damaged, db=store.records))
    assert f"record {KEY} does not parse" in verify.verify(store).problems


# Bytes per identifier -----------------------------------------------------------------


def bytes_per_identifier(tmp_path: Path, shape: Any, count: int) -> tuple[float, float]:
    store = Store(str(tmp_path), StoreOptions(durable=False, map_size_bytes=1 << 28))
    try:
        registry = Registry(store, "88.118")
        registry.ensure_node_prefix()
        admin = handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)
        registry.create_enterprise(admin, code="8")
        rng = random.Random(8)
        records = [
            Record(identifier=f"88.118.8/ID{n:08d}", values=shape(rng, n)) for n in range(count)
        ]
        registry.batch_register(admin, records)
        data = sum(len(v.data) + len(v.type) for r in records for v in r.values)
        return store.size_bytes() / count, data / count
    finally:
        store.close()


def test_two_kilobyte_records_take_about_their_size_not_four_times_it(tmp_path: Path) -> None:
    """Each was a page under `records` and another in the change log: ~8.3 KB each."""
    product, product_data = bytes_per_identifier(
        tmp_path / "product", measure_store_bytes.product_2kb, 2000
    )
    noise, noise_data = bytes_per_identifier(
        tmp_path / "random", measure_store_bytes.random_2kb, 2000
    )
    assert product < product_data  # text deflates: below the data size itself
    assert noise < 2.2 * noise_data  # one overflow page each; nothing shrinks random bytes


@pytest.mark.parametrize("identifier", ["", "88.118/x", "88.118/" + "s" * 200, "88.118/产品"])
def test_without_identifier_leaves_the_serialised_values_alone(identifier: str) -> None:
    values = [
        handle_pb2.HandleValue(index=1, type="URL", data=b"https://example.com/" + b"p" * 300),
        handle_pb2.HandleValue(index=2, type="batch", data=b"\x0a\x05x", ttl=60),
    ]
    named = handle_pb2.Record(identifier=identifier, values=values).SerializeToString()
    bare = handle_pb2.Record(values=values).SerializeToString()

    assert packing.without_identifier(named) == bare
    assert packing.without_identifier(bare) == bare
    assert packing.without_identifier(b"") == b""
