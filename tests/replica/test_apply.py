"""A replica's writes: the primary's entries verbatim, snapshots merged in place, credentials."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from proto import handle_pb2, replica_pb2, sync_pb2
from registry import accounts, credentials
from registry.changelog import RESTARTS_KEY
from registry.registry import Registry
from registry.store import Store
from resolver.dns import serial
from sync import batches
from sync.replica import apply, marks
from tests.replica.conftest import ADMIN_TOKEN

HandleValue = handle_pb2.HandleValue


def _url(index: int, url: str) -> HandleValue:
    return HandleValue(index=index, type="URL", data=url.encode())


def _write_history(registry: Registry, admin: handle_pb2.Account) -> None:
    """Creates, updates of the same identifier, a delete, prefixes, a batch, a large record."""
    registry.create(admin, "88.118/a", [_url(1, "https://example.com/a")])
    registry.create(admin, "88.118/b", [_url(1, "https://example.com/b")])
    registry.add_values(admin, "88.118/a", [_url(2, "https://example.com/a2")])
    registry.add_values(admin, "88.118/a", [_url(3, "https://example.com/a3")])
    registry.delete(admin, "88.118/b")
    registry.create_enterprise(admin, code="8", name="acme")
    big = [HandleValue(index=1, type="blob", data=bytes(range(256)) * 40)]  # deflated or not
    registry.batch_register(
        admin,
        [
            handle_pb2.Record(identifier=f"88.118.8/n{n}", values=[_url(1, f"u{n}")])
            for n in range(5)
        ]
        + [handle_pb2.Record(identifier="88.118.8/big", values=big)],
    )
    registry.add_values(admin, "88.118.8/n2", [_url(2, "https://example.com/n2")])
    rotated = credentials.rotate(registry.store, admin, "88.118.8", 0, 0)  # ACCOUNT_PUT
    credentials.revoke(registry.store, admin, "88.118.8", rotated.credential.id)


def _dump(store: Store) -> dict[str, Any]:
    with store.read() as txn:
        found: dict[str, Any] = {}
        for name in ("records", "prefixes", "changelog", "borrowed"):
            with txn.cursor(db=getattr(store, name)) as cursor:
                found[name] = [(bytes(k), bytes(v)) for k, v in cursor]
        found["sequence"] = store.last_sequence(txn)
    return found


def test_entries_applied_in_batches_leave_the_store_as_the_primary_wrote_it(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    with store.read() as txn:
        entries = list(store.changes_since(txn, 0))
    for start in range(0, len(entries), 3):  # batches split anywhere, updates across them
        assert (
            apply.apply_entries(replica, entries[start : start + 3])
            == entries[min(start + 2, len(entries) - 1)].sequence
        )
    assert _dump(replica) == _dump(store)
    logged = [e.operation for e in entries]
    assert logged.count(handle_pb2.ChangeEntry.ACCOUNT_PUT) >= 2
    # What a further replica reads from this one is what it would read from the primary.
    with replica.read() as txn, store.read() as theirs:
        assert list(replica.changes_since(txn, 0)) == list(store.changes_since(theirs, 0))


def test_an_entry_out_of_order_is_refused_and_nothing_of_its_batch_is_written(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    with store.read() as txn:
        entries = list(store.changes_since(txn, 0))
    apply.apply_entries(replica, entries[:2])
    before = _dump(replica)
    with pytest.raises(apply.ApplyError, match="does not follow"):
        apply.apply_entries(replica, [entries[2], entries[4]])
    with pytest.raises(apply.ApplyError, match="does not follow"):
        apply.apply_entries(replica, entries[:1])  # a duplicate
    assert _dump(replica) == before


@pytest.mark.parametrize(
    "entry",
    [
        handle_pb2.ChangeEntry(sequence=1, operation=handle_pb2.ChangeEntry.CREATE),
        handle_pb2.ChangeEntry(sequence=1, operation=99, identifier="88.118/x"),  # type: ignore[arg-type]
        handle_pb2.ChangeEntry(
            sequence=1,
            operation=handle_pb2.ChangeEntry.PREFIX_PUT,
            identifier="88.118.1",
            prefix=handle_pb2.PrefixInfo(prefix="88.118.2"),
        ),
    ],
    ids=["no identifier", "unknown operation", "prefix it does not name"],
)
def test_a_malformed_entry_is_refused(replica: Store, entry: handle_pb2.ChangeEntry) -> None:
    with pytest.raises(apply.ApplyError):
        apply.apply_entries(replica, [entry])
    assert _dump(replica)["sequence"] == 0


def _snapshot(store: Store, records_per_chunk: int) -> tuple[list[sync_pb2.SnapshotChunk], int]:
    with store.read() as txn:
        sequence = store.last_sequence(txn)
        chunks = list(
            batches.snapshot_chunks(
                sync_pb2.SnapshotChunk(sequence=sequence),
                store.iter_prefixes(txn),
                store.iter_records(txn),
                records_per_chunk,
                1 << 20,
            )
        )
    return chunks, sequence


def test_a_snapshot_merges_in_place_dropping_what_the_primary_does_not_hold(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    _write_history(registry, admin)
    # The replica holds a diverged copy: keys before, between and after the primary's.
    other = Registry(replica, "88.118")
    other.ensure_node_prefix()
    accounts.ensure_admin(replica, "another-admin-token-0001")
    mine = accounts.authenticate(replica, "another-admin-token-0001")
    other.create_enterprise(mine, code="8", name="other")
    for identifier in ("88.118/0", "88.118/a", "88.118/aa", "88.118/zz", "88.118.8/n2"):
        other.create(mine, identifier, [_url(1, "https://diverged.example.com/")])
    chunks, sequence = _snapshot(store, records_per_chunk=2)
    applier = apply.SnapshotApplier(replica)
    for chunk in chunks:
        applier.chunk(chunk)
        with replica.read() as txn:
            assert marks.is_copying(replica, txn)
    start = replica_pb2.FollowStart(node_prefix="88.118", log_id="f" * 32, node_id="e" * 32)
    applier.finish(replica_pb2.SnapshotEnd(sequence=sequence, timestamp_ns=7), start)
    held, theirs = _dump(replica), _dump(store)
    assert held["records"] == theirs["records"]
    assert held["prefixes"] == theirs["prefixes"]
    assert held["changelog"] == [] and held["borrowed"] == []
    assert held["sequence"] == sequence
    with replica.read() as txn:
        assert not marks.is_copying(replica, txn)
        assert marks.position(replica, txn) == marks.Position("f" * 32, sequence, 7)
        assert replica.get_meta(txn, RESTARTS_KEY) == b"1"
        assert replica.first_sequence(txn) == sequence + 1


def test_snapshot_keys_out_of_order_are_refused(replica: Store) -> None:
    chunk = sync_pb2.SnapshotChunk()
    chunk.records.add(identifier="88.118/b")
    chunk.records.add(identifier="88.118/a")
    with pytest.raises(apply.ApplyError, match="out of order"):
        apply.SnapshotApplier(replica).chunk(chunk)


def test_credentials_are_replaced_whole_and_their_digest_follows(
    primary: tuple[Store, Registry, handle_pb2.Account], replica: Store
) -> None:
    store, registry, admin = primary
    registry.create_enterprise(admin, code="8", name="acme")
    accounts.ensure_admin(replica, "replica-own-admin-token")  # replaced: the primary's rules
    with store.read() as txn:
        found, tokens = apply.read_credentials(store, txn)
        digest = apply.credentials_digest(store, txn)
    apply.replace_credentials(replica, found, tokens)
    with replica.read() as txn:
        assert apply.credentials_digest(replica, txn) == digest
    assert accounts.authenticate(replica, ADMIN_TOKEN).name == "admin"
    with pytest.raises(Exception, match="not valid"):
        accounts.authenticate(replica, "replica-own-admin-token")


def test_credential_chunks_are_bounded_and_the_last_says_so() -> None:
    many = [
        handle_pb2.Account(name=f"88.118.{n}", role=handle_pb2.Account.ENTERPRISE)
        for n in range(300)
    ]
    tokens = [
        replica_pb2.TokenEntry(token_hash=bytes(32), account=f"88.118.{n}") for n in range(300)
    ]
    chunks = list(batches.credential_chunks(many, tokens, 2000))
    assert len(chunks) > 5
    assert all(c.ByteSize() <= 2000 + 100 for c in chunks)
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert sum(len(c.accounts) for c in chunks) == 300 == sum(len(c.tokens) for c in chunks)


def test_a_restart_of_the_log_moves_the_serial_on_and_retires_every_serial_served(
    replica: Store,
) -> None:
    apex = b"12345678"
    serial.begin_epoch(replica, apex, clock_ms=lambda: 1000)
    with replica.read() as txn:
        served = serial.serial_at(serial.read(replica, txn), 0)

    def work(batch: Any) -> None:
        serial.restart(batch, 0, 40, clock_ms=lambda: 5)  # a clock behind: the serial still grows

    replica.write(work)
    with replica.read() as txn:
        epochs = serial.read(replica, txn)
    now = serial.serial_at(epochs, 40)
    assert serial.newer(now, served)
    assert serial.sequence_of(epochs, served, apex, 40) is None  # AXFR, not IXFR
    assert serial.sequence_of(epochs, now, apex, 40) == 40


def test_a_worker_serves_a_bounded_number_of_follow_streams(tmp_path: Path) -> None:
    import grpc

    from proto import replica_pb2_grpc
    from tests.grpc.conftest import running_node

    with running_node(tmp_path / "primary") as node:
        stub = replica_pb2_grpc.ReplicationStub(node.channel)
        limit = node.worker.replication.options.max_streams
        streams = [
            stub.Follow(replica_pb2.FollowRequest(), metadata=node.admin) for _ in range(limit)
        ]
        for stream in streams:
            assert next(stream).WhichOneof("kind") == "start"
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.Follow(replica_pb2.FollowRequest(), metadata=node.admin))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        streams[0].cancel()
        deadline = time.monotonic() + 5
        while True:  # the cancelled stream's place is given back
            try:
                again = stub.Follow(replica_pb2.FollowRequest(), metadata=node.admin)
                assert next(again).WhichOneof("kind") == "start"
                again.cancel()
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline
        for stream in streams[1:]:
            stream.cancel()
