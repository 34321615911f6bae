"""The pusher and the referrer in-process, against a real top-level node on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from proto import handle_pb2, sync_pb2
from registry import identifier as identifier_limits
from registry import values
from sync.pusher import CURSOR, Pusher, PushOptions
from sync.referrer import UpstreamReferrer
from sync.toplevel.server import MAX_MESSAGE_BYTES, TopLevelNode
from tests.sync.conftest import Secondary, large_record
from tests.sync.nodes import ADMIN_TOKEN, free_port, wait_until

FAST = PushOptions(
    backoff_initial_seconds=0.05, backoff_max_seconds=0.2, stats_interval_seconds=0.2
)


def held(secondary: Secondary) -> dict[str, bytes]:
    with secondary.store.read() as txn:
        return {k: r.SerializeToString() for k, r in secondary.store.iter_records(txn)}


def test_statistics_reach_the_toplevel_node(
    secondary: Secondary, toplevel: tuple[TopLevelNode, str]
) -> None:
    node, address = toplevel
    _, token = node.mirror.add_node("88.118", [])
    resolved = iter(range(0, 10_000, 7))
    pusher = Pusher(
        secondary.store, "88.118", address, token, options=FAST, resolutions=lambda: next(resolved)
    )
    pusher.start()
    try:
        for n in range(30):
            secondary.register(f"88.118/item-{n}", "https://example.com")
        wait_until(
            "a report with every identifier",
            lambda: node.mirror.node("88.118").last_stats.identifiers == 30,
            10,
        )
        report = node.mirror.node("88.118").last_stats
        assert report.resolutions % 7 == 0 and report.period_end >= report.period_start
        assert node.mirror.mirror_records("88.118") == held(secondary)
    finally:
        pusher.stop()
    with secondary.store.read() as txn:
        assert secondary.store.get_cursor(txn, CURSOR) == secondary.store.last_sequence(txn)


def test_a_log_trimmed_past_the_upstream_is_sent_as_a_snapshot(
    secondary: Secondary, toplevel: tuple[TopLevelNode, str]
) -> None:
    node, address = toplevel
    _, token = node.mirror.add_node("88.118", [])
    for n in range(50):
        secondary.register(f"88.118/item-{n}", f"https://example.com/{n}")
    secondary.registry.delete(secondary.admin, "88.118/item-3")
    secondary.store.write(lambda batch: batch.trim_changelog(40))
    pusher = Pusher(secondary.store, "88.118", address, token, options=FAST)
    pusher.start()
    try:
        last = secondary.register("88.118/after", "https://example.com/after")
        wait_until("sync", lambda: node.mirror.node("88.118").acked_sequence == last, 10)
    finally:
        pusher.stop()
    assert node.mirror.node("88.118").snapshots == 1
    assert node.mirror.mirror_records("88.118") == held(secondary)


def test_registrations_never_wait_for_an_absent_upstream(secondary: Secondary) -> None:
    pusher = Pusher(secondary.store, "88.118", f"127.0.0.1:{free_port()}", "t" * 20, options=FAST)
    pusher.start()
    try:
        started = time.monotonic()
        for n in range(200):
            secondary.register(f"88.118/item-{n}", "https://example.com")
        assert time.monotonic() - started < 5
        assert pusher.acked == 0
    finally:
        pusher.stop()


def test_the_referrer_caches_by_the_upstreams_ttl(toplevel: tuple[TopLevelNode, str]) -> None:
    node, address = toplevel
    node.mirror.add_node("88.120", [handle_pb2.Site(grpc_address="10.0.0.1:8600")])
    now = [1000.0]
    referrer = UpstreamReferrer(address, clock=lambda: now[0])
    try:
        first = referrer("88.120.3")
        assert first is not None and (first.code, first.prefix) == (302, "88.120")
        node.mirror.add_node("88.120", [handle_pb2.Site(grpc_address="10.0.0.2:8600")])
        cached = referrer("88.120.3")
        assert cached is not None and cached.sites[0].grpc_address == "10.0.0.1:8600"
        now[0] += first.ttl_seconds + 1
        fresh = referrer("88.120.3")
        assert fresh is not None and fresh.sites[0].grpc_address == "10.0.0.2:8600"
        assert referrer("77.1") is None
    finally:
        referrer.close()


@pytest.mark.parametrize("probe_ok", [True, False])
def test_the_prober_marks_a_node_down_after_consecutive_failures(
    toplevel: tuple[TopLevelNode, str], probe_ok: bool
) -> None:
    from sync.toplevel.health import Prober

    node, _address = toplevel
    node.mirror.add_node("88.121", [handle_pb2.Site(grpc_address="127.0.0.1:1")])
    prober = Prober(node.mirror.nodes, 1.0, 2, probe=lambda _address, _timeout: probe_ok)
    prober.probe_once()
    assert prober.reachable("88.121")
    prober.probe_once()
    assert prober.reachable("88.121") is probe_ok


def test_records_near_the_size_limit_sync_in_batches_and_chunks_bounded_in_bytes(
    secondary: Secondary, tmp_path: Path
) -> None:
    # A top-level node that receives at most 8 MiB a message: 12 records of ~975 KB
    # exceed it together, in one push or in one snapshot chunk, but never one by one.
    node = TopLevelNode(
        str(tmp_path / "small-limit"), ADMIN_TOKEN, map_size_bytes=64 << 20,
        max_message_bytes=8 << 20,
    )  # fmt: skip
    address = node.start(["127.0.0.1:0"])[0]
    _, token = node.mirror.add_node("88.118", [])
    try:
        pusher = Pusher(secondary.store, "88.118", address, token, options=FAST)
        pusher.start()
        try:
            last = secondary.register_large([f"88.118/pushed-{n}" for n in range(12)])
            wait_until("the pushes", lambda: node.mirror.node("88.118").acked_sequence == last, 30)
            assert pusher.failures.count == 0
        finally:
            pusher.stop()
        # The log trimmed past what the upstream holds: the same records go as a snapshot.
        last = secondary.register_large([f"88.118/snapshot-{n}" for n in range(12)])
        secondary.store.write(lambda batch: batch.trim_changelog(last))
        pusher = Pusher(secondary.store, "88.118", address, token, options=FAST)
        pusher.start()
        try:
            wait_until("the snapshot", lambda: node.mirror.node("88.118").snapshots == 1, 30)
            assert pusher.failures.count == 0
        finally:
            pusher.stop()
        assert node.mirror.mirror_records("88.118") == secondary.held()
    finally:
        node.stop(0)


def test_the_toplevel_node_admits_the_largest_legal_entry(
    secondary: Secondary, toplevel: tuple[TopLevelNode, str]
) -> None:
    node, address = toplevel
    _, token = node.mirror.add_node("88.118", [])
    # The most values a record may have, filling the record size limit, under the
    # longest identifier: the largest change-log entry a registration can write.
    identifier = "88.118/" + "x" * (identifier_limits.MAX_IDENTIFIER_BYTES - 7)
    per_value = values.MAX_RECORD_BYTES // values.MAX_VALUES_PER_RECORD - 16 - 8
    largest = large_record(identifier, values.MAX_VALUES_PER_RECORD, per_value)
    for value in largest.values:
        value.type = "t" * 8
    last = secondary.registry.batch_register(secondary.admin, [largest]).sequence
    with secondary.store.read() as txn:
        written = next(secondary.store.changes_since(txn, last - 1))
    assert written.ByteSize() > values.MAX_RECORD_BYTES  # the encoding adds to the limit
    assert written.ByteSize() < MAX_MESSAGE_BYTES // 2
    pusher = Pusher(
        secondary.store, "88.118", address, token,
        options=PushOptions(batch_bytes=64 << 10, stats_interval_seconds=0.2),
    )  # fmt: skip
    pusher.start()
    try:
        wait_until("the push", lambda: node.mirror.node("88.118").acked_sequence == last, 30)
    finally:
        pusher.stop()
    assert node.mirror.mirror_records("88.118") == secondary.held()


def test_the_prober_closes_the_channels_of_nodes_that_moved_or_left() -> None:
    from sync.toplevel.health import Prober

    homed = [
        sync_pb2.NodeStatus(node_prefix="88.121", sites=[handle_pb2.Site(grpc_address="127.0.0.1:1")]),
        sync_pb2.NodeStatus(node_prefix="88.122", sites=[handle_pb2.Site(grpc_address="127.0.0.1:2")]),
    ]  # fmt: skip
    prober = Prober(lambda: list(homed), 1.0, 1, timeout_seconds=0.5)
    try:
        prober.probe_once()  # nothing listens on either: both down after one failure
        assert not prober.reachable("88.121") and not prober.reachable("88.122")
        assert len(prober._own_probe or []) == 2
        homed[0].sites[0].grpc_address = "127.0.0.1:3"  # moved
        del homed[1]  # left
        prober.probe_once()
        assert len(prober._own_probe or []) == 1
        assert prober.reachable("88.122")  # forgotten: a node never probed counts as up
    finally:
        prober.stop()
