"""The top-level node's mirror: applied once per (node, sequence), confined to the node prefix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from proto import handle_pb2, sync_pb2
from registry.errors import InvalidRequest, PermissionDenied, PrefixNotFound, SyncRefused
from registry.store import Store, StoreOptions
from sync.toplevel.mirror import Mirror
from tests.sync.conftest import Secondary


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    store = Store(str(tmp_path / "mirror"), StoreOptions(map_size_bytes=64 << 20, durable=False))
    made = Mirror(store)
    made.add_node("88.118", [handle_pb2.Site(grpc_address="127.0.0.1:1")])
    made.hello("88.118", "log-1", [])
    return made


def log_of(secondary: Secondary) -> list[handle_pb2.ChangeEntry]:
    with secondary.store.read() as txn:
        return list(secondary.store.changes_since(txn, 0))


def held(secondary: Secondary) -> dict[str, bytes]:
    with secondary.store.read() as txn:
        return {k: r.SerializeToString() for k, r in secondary.store.iter_records(txn)}


def test_duplicates_are_skipped_and_the_mirror_equals_the_node(
    mirror: Mirror, secondary: Secondary
) -> None:
    for n in range(5):
        secondary.register(f"88.118/item-{n}", f"https://example.com/{n}")
    secondary.register("88.118/item-2", "https://example.com/2-changed")
    secondary.registry.delete(secondary.admin, "88.118/item-4")
    entries = log_of(secondary)
    assert mirror.apply("88.118", "log-1", entries[:4]).acked_sequence == 4
    again = mirror.apply("88.118", "log-1", entries[2:])  # resent after a lost acknowledgement
    assert again.acked_sequence == entries[-1].sequence
    assert mirror.apply("88.118", "log-1", entries).acked_sequence == entries[-1].sequence
    assert mirror.mirror_records("88.118") == held(secondary)


def test_a_gap_stops_the_batch_where_the_node_must_resume(
    mirror: Mirror, secondary: Secondary
) -> None:
    for n in range(4):
        secondary.register(f"88.118/item-{n}", "https://example.com")
    entries = log_of(secondary)
    reply = mirror.apply("88.118", "log-1", [entries[0], entries[2], entries[3]])
    assert reply.acked_sequence == 1 and not reply.snapshot_needed
    assert mirror.node("88.118").acked_sequence == 1


def test_an_entry_outside_the_node_prefix_refuses_the_whole_batch(mirror: Mirror) -> None:
    good = handle_pb2.ChangeEntry(
        sequence=1, operation=handle_pb2.ChangeEntry.CREATE, identifier="88.118/a"
    )
    stray = handle_pb2.ChangeEntry(
        sequence=2, operation=handle_pb2.ChangeEntry.CREATE, identifier="88.119/b"
    )
    prefix = handle_pb2.ChangeEntry(sequence=2, operation=handle_pb2.ChangeEntry.PREFIX_PUT)
    prefix.prefix.prefix = "88.1180"
    for bad in (stray, prefix):
        with pytest.raises(PermissionDenied):
            mirror.apply("88.118", "log-1", [good, bad])
    assert mirror.node("88.118").acked_sequence == 0
    assert mirror.mirror_records("88.118") == {}


def test_a_new_change_log_is_answered_with_nothing_held_until_its_snapshot_arrives(
    mirror: Mirror, secondary: Secondary
) -> None:
    secondary.register("88.118/item", "https://example.com")
    entries = log_of(secondary)
    mirror.apply("88.118", "log-1", entries)
    kept = mirror.mirror_records("88.118")
    assert mirror.apply("88.118", "log-2", entries).snapshot_needed
    assert mirror.hello("88.118", "log-2", []).acked_sequence == 0
    assert mirror.mirror_records("88.118") == kept  # still answers takeovers meanwhile
    mirror.begin_snapshot("88.118", "log-2", 0)
    assert mirror.finish_snapshot("88.118", "log-2", 0) == 0
    assert mirror.mirror_records("88.118") == {}
    assert mirror.hello("88.118", "log-2", []).acked_sequence == 0


def test_a_snapshot_replaces_the_mirror(mirror: Mirror, secondary: Secondary) -> None:
    stale = handle_pb2.ChangeEntry(
        sequence=1, operation=handle_pb2.ChangeEntry.CREATE, identifier="88.118/gone"
    )
    mirror.apply("88.118", "log-1", [stale])
    secondary.register("88.118/kept", "https://example.com/kept")
    chunk = sync_pb2.SnapshotChunk(node_prefix="88.118", log_id="log-9", sequence=7)
    with secondary.store.read() as txn:
        for key, record in secondary.store.iter_records(txn):
            record.identifier = key
            chunk.records.append(record)
    mirror.begin_snapshot("88.118", "log-9", 7)
    mirror.snapshot_chunk("88.118", chunk)
    assert mirror.finish_snapshot("88.118", "log-9", 7) == 7
    assert mirror.mirror_records("88.118") == held(secondary)
    assert mirror.node("88.118").snapshots == 1


def test_homing_answers_the_longest_prefix(mirror: Mirror) -> None:
    delegated = handle_pb2.ChangeEntry(sequence=1, operation=handle_pb2.ChangeEntry.PREFIX_PUT)
    delegated.prefix.prefix = "88.118.5"
    delegated.prefix.sites.add(grpc_address="10.0.0.5:8600")
    plain = handle_pb2.ChangeEntry(sequence=2, operation=handle_pb2.ChangeEntry.PREFIX_PUT)
    plain.prefix.prefix = "88.118.6"
    mirror.apply("88.118", "log-1", [delegated, plain])
    found = mirror.home("88.118.5.1")
    assert found is not None and (found.code, found.prefix, found.node_prefix) == (
        303,
        "88.118.5",
        "88.118",
    )
    found = mirror.home("88.118.6")
    assert found is not None and (found.code, found.prefix) == (302, "88.118")
    assert mirror.home("88.119.6") is None
    with pytest.raises(InvalidRequest):
        mirror.add_node("88.118.7", [])
    with pytest.raises(PrefixNotFound):
        mirror.hello("88.120", "x", [])


NODE_A, NODE_B = "a" * 32, "b" * 32


def entries_of(secondary: Secondary, count: int) -> list[handle_pb2.ChangeEntry]:
    for n in range(count):
        secondary.register(f"88.118/item-{n}", f"https://example.com/{n}")
    return log_of(secondary)


def snapshot(mirror: Mirror, log_id: str, sequence: int, node_id: str) -> None:
    mirror.begin_snapshot("88.118", log_id, sequence, node_id)
    mirror.finish_snapshot("88.118", log_id, sequence)


def test_another_identity_is_refused_and_the_mirror_kept(
    mirror: Mirror, secondary: Secondary
) -> None:
    assert mirror.hello("88.118", "log-1", [], NODE_A).registered
    assert not mirror.hello("88.118", "log-1", [], NODE_A).registered
    entries = entries_of(secondary, 3)
    mirror.apply("88.118", "log-1", entries, NODE_A)
    kept, state = mirror.mirror_records("88.118"), mirror.node("88.118")
    refusals: list[Callable[[], object]] = [
        lambda: mirror.hello("88.118", "log-2", [handle_pb2.Site(grpc_address="x:1")], NODE_B),
        lambda: mirror.apply("88.118", "log-1", entries, NODE_B),
        lambda: mirror.begin_snapshot("88.118", "log-2", 0, NODE_B),
        lambda: mirror.hello("88.118", "log-2", [], ""),  # a node that has no identity
    ]
    for refused in refusals:
        with pytest.raises(SyncRefused, match=r"idnode toplevel node reset 88\.118") as caught:
            refused()
        assert NODE_A in str(caught.value)
    assert mirror.mirror_records("88.118") == kept
    assert mirror.node("88.118") == state  # sites, log id, acknowledged sequence


def test_a_snapshot_older_than_the_mirror_is_refused(mirror: Mirror, secondary: Secondary) -> None:
    mirror.hello("88.118", "log-1", [], NODE_A)
    entries = entries_of(secondary, 5)
    mirror.apply("88.118", "log-1", entries, NODE_A)
    kept = mirror.mirror_records("88.118")
    with pytest.raises(SyncRefused, match="older than the mirror"):
        mirror.begin_snapshot("88.118", "log-1", 3, NODE_A)  # a restored backup
    assert mirror.mirror_records("88.118") == kept
    snapshot(mirror, "log-1", entries[-1].sequence, NODE_A)  # the same point: allowed


def test_a_reset_lets_the_next_node_register_and_replace_the_mirror(
    mirror: Mirror, secondary: Secondary
) -> None:
    mirror.hello("88.118", "log-1", [], NODE_A)
    mirror.apply("88.118", "log-1", entries_of(secondary, 5), NODE_A)
    kept = mirror.mirror_records("88.118")
    reply = mirror.reset("88.118")
    # node prefix, the administrator (an ACCOUNT_PUT), then 5 records
    assert (reply.previous_node_id, reply.previous_acked_sequence) == (NODE_A, 7)
    assert mirror.mirror_records("88.118") == kept  # answers takeovers until replaced
    # The rebuilt node: a new identity, a new log, nothing in it yet.
    hello = mirror.hello("88.118", "log-2", [], NODE_B)
    assert hello.registered and hello.acked_sequence == 0
    assert mirror.apply("88.118", "log-2", [], NODE_B).snapshot_needed
    snapshot(mirror, "log-2", 0, NODE_B)
    assert mirror.mirror_records("88.118") == {}
    assert mirror.node("88.118").node_id == NODE_B
    with pytest.raises(SyncRefused):
        mirror.hello("88.118", "log-1", [], NODE_A)


def test_a_reset_also_admits_an_older_copy_of_the_same_node(
    mirror: Mirror, secondary: Secondary
) -> None:
    mirror.hello("88.118", "log-1", [], NODE_A)
    mirror.apply("88.118", "log-1", entries_of(secondary, 5), NODE_A)
    mirror.reset("88.118")
    assert mirror.hello("88.118", "log-1", [], NODE_A).acked_sequence == 0
    snapshot(mirror, "log-1", 3, NODE_A)
    assert mirror.node("88.118").acked_sequence == 3
