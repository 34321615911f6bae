"""`verify` of a store that keeps no change log (the top-level node's mirror)."""

from __future__ import annotations

from pathlib import Path

from proto import handle_pb2
from registry import verify
from registry.store import Store, StoreOptions, WriteBatch, sequence_key

RECORD = handle_pb2.Record(values=[handle_pb2.HandleValue(index=1, type="URL", data=b"u")])


def put_records(store: Store) -> None:
    def work(batch: WriteBatch) -> None:
        for n in range(3):
            batch.put_record(f"88.101.1/r{n}", RECORD, created=True)

    store.write(work)


def test_a_store_without_change_log_is_marked_and_verifies_clean(tmp_path: Path) -> None:
    mirror = Store(str(tmp_path), StoreOptions(durable=False, changelog=False))
    try:
        put_records(mirror)
    finally:
        mirror.close()
    store = Store(str(tmp_path), StoreOptions(durable=False))  # as `idnode verify` opens it
    try:
        with store.read() as txn:
            assert not store.keeps_changelog(txn)
        report = verify.verify(store)
        assert (report.problems, report.records, report.changes) == ([], 3, 0)
        entry = handle_pb2.ChangeEntry(sequence=1, identifier="88.101.1/r0").SerializeToString()
        store.write(lambda batch: batch.txn.put(sequence_key(1), entry, db=store.changelog))
        assert "the store keeps no change log, but has 1 change-log entries up to sequence 0" in (
            verify.verify(store).problems
        )
    finally:
        store.close()


def test_a_node_store_still_needs_a_change_for_every_record(tmp_path: Path) -> None:
    store = Store(str(tmp_path), StoreOptions(durable=False))
    try:
        put_records(store)
        with store.read() as txn:
            assert store.keeps_changelog(txn)
        assert verify.verify(store).ok
        store.write(lambda batch: batch.txn.put(b"88.101.1/ghost", RECORD.SerializeToString(),
                                                db=store.records))  # fmt: skip
        assert verify.verify(store).problems == ["record 88.101.1/ghost has no change-log entry"]
    finally:
        store.close()


def test_a_change_naming_no_identifier_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    store = Store(str(tmp_path), StoreOptions(durable=False))
    try:
        put_records(store)
        with store.read() as txn:
            last = store.last_sequence(txn)
        entry = handle_pb2.ChangeEntry(sequence=last + 1, operation=handle_pb2.ChangeEntry.UPDATE)

        def work(batch: WriteBatch) -> None:
            batch.txn.put(sequence_key(last + 1), entry.SerializeToString(), db=store.changelog)
            batch.put_meta("sequence", sequence_key(last + 1))

        store.write(work)
        assert verify.verify(store).problems == [
            f"change {last + 1} names no valid identifier: identifier '' has no '/' between prefix "
            "and suffix"
        ]
    finally:
        store.close()
