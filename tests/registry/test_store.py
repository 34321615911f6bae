"""The store contract: records and prefixes, the change log in the same transaction, growth."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError

from proto import handle_pb2
from registry.errors import HandleNotFound, StoreError
from registry.store import SCHEMA_VERSION, Store, StoreOptions, WriteBatch, describe

Op = handle_pb2.ChangeEntry.Operation
Record = handle_pb2.Record
HandleValue = handle_pb2.HandleValue


def record(data: str, index: int = 1) -> Any:
    return Record(values=[HandleValue(index=index, type="URL", data=data.encode(), ttl=60)])


def put(store: Store, key: str, data: str, created: bool = True) -> int:
    def work(batch: WriteBatch) -> int:
        return batch.put_record(key, record(data), created=created)

    return store.write(work)


def delete(store: Store, key: str) -> int:
    def work(batch: WriteBatch) -> int:
        return batch.delete_record(key)

    return store.write(work)


def changes(store: Store, after: int = 0, limit: int | None = None) -> list[Any]:
    with store.read() as txn:
        return list(store.changes_since(txn, after, limit))


def sequences(store: Store) -> tuple[int, int]:
    with store.read() as txn:
        return store.first_sequence(txn), store.last_sequence(txn)


def get(store: Store, key: str) -> Any:
    with store.read() as txn:
        return store.get_record(txn, key)


def test_empty_store_has_no_changes_and_first_sequence_after_last(store: Store) -> None:
    assert sequences(store) == (1, 0)
    assert changes(store) == []
    assert describe(store)["identifiers"] == 0


def test_put_update_delete_each_logged_with_the_record_after(store: Store) -> None:
    assert put(store, "88.118/a", "one") == 1
    assert put(store, "88.118/a", "two", created=False) == 2
    assert delete(store, "88.118/a") == 3

    log = changes(store)
    assert [(e.sequence, e.operation, e.identifier) for e in log] == [
        (1, Op.CREATE, "88.118/a"),
        (2, Op.UPDATE, "88.118/a"),
        (3, Op.DELETE, "88.118/a"),
    ]
    assert log[0].record.identifier == "88.118/a"
    assert [v.data for v in log[0].record.values] == [b"one"]
    assert [v.data for v in log[1].record.values] == [b"two"]
    assert not log[2].HasField("record")
    assert all(e.timestamp_ns > 0 for e in log)
    assert get(store, "88.118/a") is None


def test_stored_record_reads_back_as_written(store: Store) -> None:
    put(store, "88.118/a", "one")

    stored = get(store, "88.118/a")

    assert stored == record("one")
    assert get(store, "88.118/b") is None


def test_prefix_put_is_logged_and_reads_back(store: Store) -> None:
    info = handle_pb2.PrefixInfo(prefix="88.118.8", owner="88.118.8", name="A")
    info.sites.add(grpc_address="10.0.0.1:8443")

    sequence = store.write(lambda batch: batch.put_prefix(info))

    (entry,) = changes(store)
    assert (entry.sequence, entry.operation, entry.identifier) == (
        sequence,
        Op.PREFIX_PUT,
        "88.118.8",
    )
    assert entry.prefix == info
    with store.read() as txn:
        assert store.get_prefix(txn, "88.118.8") == info
        assert list(store.iter_prefixes(txn)) == [info]


def test_accounts_tokens_meta_and_cursors_are_not_logged(store: Store) -> None:
    def work(batch: WriteBatch) -> None:
        batch.put_account(handle_pb2.Account(name="x"))
        batch.put_token(b"\x01" * 32, "x")
        batch.put_meta("key", b"value")
        batch.put_cursor("upstream", 42)

    store.write(work)

    assert changes(store) == []
    with store.read() as txn:
        assert store.get_cursor(txn, "upstream") == 42
        assert store.get_cursor(txn, "never-set") == 0
        assert store.get_meta(txn, "key") == b"value"


def test_several_changes_in_one_write_get_consecutive_sequences_and_one_time(
    store: Store,
) -> None:
    put(store, "88.118/first", "x")

    def work(batch: WriteBatch) -> list[int]:
        return [batch.put_record(f"88.118/{i}", record(str(i)), created=True) for i in range(5)]

    assert store.write(work) == [2, 3, 4, 5, 6]
    log = changes(store, after=1)
    assert [e.sequence for e in log] == [2, 3, 4, 5, 6]
    assert len({e.timestamp_ns for e in log}) == 1


@pytest.mark.parametrize("failure", [ValueError("boom"), HandleNotFound("nope"), KeyboardInterrupt])
def test_write_that_raises_leaves_neither_record_nor_log_entry(
    store: Store, failure: BaseException | type[BaseException]
) -> None:
    put(store, "88.118/kept", "x")

    def work(batch: WriteBatch) -> None:
        batch.put_record("88.118/lost", record("y"), created=True)
        batch.put_record("88.118/kept", record("changed"), created=False)
        raise failure

    with pytest.raises(failure if isinstance(failure, type) else type(failure)):
        store.write(work)

    assert get(store, "88.118/lost") is None
    assert get(store, "88.118/kept") == record("x")
    assert sequences(store) == (1, 1)
    assert [e.identifier for e in changes(store)] == ["88.118/kept"]
    assert put(store, "88.118/next", "z") == 2  # the failed write used no sequence


def test_sequences_are_strictly_increasing_without_gaps(store: Store) -> None:
    for i in range(30):
        put(store, f"88.118/{i % 7}", str(i), created=i < 7)
        if i % 5 == 4:
            delete(store, f"88.118/{i % 7}")

    log = changes(store)
    assert [e.sequence for e in log] == list(range(1, len(log) + 1))
    assert len(log) == 36
    assert sequences(store) == (1, 36)


@pytest.mark.parametrize(
    ("after", "limit", "expected"),
    [
        (0, None, [1, 2, 3, 4, 5]),
        (2, None, [3, 4, 5]),
        (2, 2, [3, 4]),
        (0, 1, [1]),
        (4, 10, [5]),
        (5, None, []),
        (99, None, []),
    ],
)
def test_changes_since_returns_later_entries_oldest_first(
    store: Store, after: int, limit: int | None, expected: list[int]
) -> None:
    for i in range(5):
        put(store, f"88.118/{i}", str(i))

    assert [e.sequence for e in changes(store, after, limit)] == expected


def test_trim_drops_old_entries_and_sequences_continue(store: Store) -> None:
    for i in range(10):
        put(store, f"88.118/{i}", str(i))

    assert store.write(lambda batch: batch.trim_changelog(6)) == 5

    assert sequences(store) == (6, 10)
    assert [e.sequence for e in changes(store)] == [6, 7, 8, 9, 10]
    assert get(store, "88.118/0") is not None  # trimming the log keeps the records
    assert put(store, "88.118/new", "n") == 11


def test_trim_of_everything_keeps_the_last_sequence(store: Store) -> None:
    for i in range(3):
        put(store, f"88.118/{i}", str(i))

    assert store.write(lambda batch: batch.trim_changelog(100)) == 3

    assert sequences(store) == (4, 3)
    assert changes(store) == []
    assert put(store, "88.118/new", "n") == 4
    assert sequences(store) == (4, 4)


def test_trim_before_the_first_entry_drops_nothing(store: Store) -> None:
    put(store, "88.118/a", "a")

    assert store.write(lambda batch: batch.trim_changelog(1)) == 0
    assert sequences(store) == (1, 1)


def test_reopening_keeps_records_prefixes_log_sequence_and_cursors(data_dir: str) -> None:
    first = Store(data_dir)  # durable, the default
    put(first, "88.118/a", "one")
    put(first, "88.118/b", "two")
    delete(first, "88.118/b")
    first.write(lambda batch: batch.put_prefix(handle_pb2.PrefixInfo(prefix="88.118.8")))
    first.write(lambda batch: batch.put_cursor("upstream", 3))
    before = changes(first)
    first.close()

    again = Store(data_dir)
    try:
        assert get(again, "88.118/a") == record("one")
        assert get(again, "88.118/b") is None
        assert changes(again) == before
        assert sequences(again) == (1, 4)
        with again.read() as txn:
            assert store_prefix_names(again, txn) == ["88.118.8"]
            assert again.get_cursor(txn, "upstream") == 3
        assert put(again, "88.118/c", "three") == 5
    finally:
        again.close()


def store_prefix_names(store: Store, txn: Any) -> list[str]:
    return [info.prefix for info in store.iter_prefixes(txn)]


def test_new_store_records_the_schema_version(store: Store) -> None:
    with store.read() as txn:
        assert store.get_meta(txn, "schema") == SCHEMA_VERSION


def test_store_of_another_schema_version_refuses_to_open(data_dir: str) -> None:
    first = Store(data_dir)
    first.write(lambda batch: batch.put_meta("schema", b"99"))
    first.close()

    with pytest.raises(
        StoreError,
        match="has schema version 99, this build reads 4: it was written by a newer idnode",
    ):
        Store(data_dir)


TINY_MAP_BYTES = 64 * 1024


def test_map_grows_when_full_instead_of_failing(data_dir: str) -> None:
    store = Store(data_dir, StoreOptions(map_size_bytes=TINY_MAP_BYTES, durable=False))
    try:
        for i in range(200):
            put(store, f"88.118/single-{i}", f"{i}-" + "x" * 1000)

        def big(batch: WriteBatch) -> None:
            for i in range(2000):
                batch.put_record(f"88.118/batch-{i}", record(f"{i}-" + "y" * 1000), created=True)

        store.write(big)

        assert store.map_size_bytes() > 4 * 1024 * 1024
        assert describe(store)["identifiers"] == 2200
        assert sequences(store) == (1, 2200)
        assert get(store, "88.118/single-199") == record("199-" + "x" * 1000)
        assert get(store, "88.118/batch-1999") == record("1999-" + "y" * 1000)
    finally:
        store.close()

    reopened = Store(data_dir, StoreOptions(map_size_bytes=TINY_MAP_BYTES, durable=False))
    try:
        assert describe(reopened)["identifiers"] == 2200
        assert put(reopened, "88.118/after-reopen", "z" * 5000) == 2201
    finally:
        reopened.close()


def test_readonly_store_reads_and_refuses_writes_with_a_store_error(data_dir: str) -> None:
    writer = Store(data_dir)
    put(writer, "88.118/a", "one")
    writer.close()

    reader = Store(data_dir, StoreOptions(readonly=True))
    try:
        assert get(reader, "88.118/a") == record("one")
        with pytest.raises(StoreError):
            put(reader, "88.118/b", "two")
        assert get(reader, "88.118/a") == record("one")  # and the store still works
    finally:
        reader.close()


def test_opening_a_missing_dir_read_only_fails_with_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store(str(tmp_path / "absent"), StoreOptions(readonly=True))


def test_iter_records_stays_within_the_key_prefix(store: Store) -> None:
    for key in ["88.118/a", "88.118/b", "88.118.8/a", "88.1180/a", "88.119/a"]:
        put(store, key, key)

    with store.read() as txn:
        keys = [key for key, _ in store.iter_records(txn, b"88.118/", b"88.118/")]
        after_a = [key for key, _ in store.iter_records(txn, b"88.118/a\x00", b"88.118/")]
        none = list(store.iter_records(txn, b"zz", b"zz"))

    assert keys == ["88.118/a", "88.118/b"]
    assert after_a == ["88.118/b"]
    assert none == []


def test_backup_copy_is_a_working_store_with_the_same_contents(
    store: Store, tmp_path: Path
) -> None:
    for i in range(50):
        put(store, f"88.118/{i}", str(i))
    seen: list[tuple[int, int]] = []
    dest = str(tmp_path / "backup")

    store.copy_to(dest, progress=lambda done, total: seen.append((done, total)))

    assert os.path.exists(os.path.join(dest, "data.mdb"))
    assert seen and seen[-1][0] == seen[-1][1]
    copy = Store(dest)
    try:
        assert describe(copy)["identifiers"] == 50
        assert changes(copy) == changes(store)
    finally:
        copy.close()


def test_describe_reports_counts_sequences_and_sizes(store: Store) -> None:
    for i in range(3):
        put(store, f"88.118/{i}", str(i))
    delete(store, "88.118/0")

    facts = describe(store)

    assert facts["identifiers"] == 2
    assert (facts["first_sequence"], facts["sequence"]) == (1, 4)
    assert 0 < facts["size_bytes"] <= facts["map_size_bytes"]


def test_a_snapshot_kept_after_its_block_holds_no_reader_slot(data_dir: str) -> None:
    # py-lmdb keeps a finished read transaction's reader slot while its object lives: a
    # cache holding errors whose tracebacks reach the block's frame used to exhaust them.
    store = Store(data_dir, StoreOptions(durable=False, max_readers=8))
    kept: list[Any] = []
    try:
        for _ in range(40):
            try:
                with store.read() as txn:
                    kept.append(txn)
                    raise HandleNotFound("not here")
            except HandleNotFound as error:
                kept.append(error)  # its traceback holds the frame that held `txn`
        with store.read() as txn:
            assert store.last_sequence(txn) == 0
        with pytest.raises(StoreError, match="used after its block ended"):
            kept[0].get(b"sequence", db=store.meta)
    finally:
        store.close()


def test_a_failed_read_record_kept_with_its_traceback_holds_no_reader_slot(data_dir: str) -> None:
    store = Store(data_dir, StoreOptions(durable=False, max_readers=8))
    kept: list[BaseException] = []
    try:
        with store.env.begin(write=True) as txn:  # a damaged record: not protobuf
            txn.put(b"88.118/damaged", b"\xff\xff\xff", db=store.records)
        for _ in range(40):
            try:
                store.read_record("88.118/damaged")
            except DecodeError as error:
                kept.append(error)  # its traceback holds read_record's frame
        assert len(kept) == 40
        assert store.read_record("88.118/absent") is None
    finally:
        store.close()
