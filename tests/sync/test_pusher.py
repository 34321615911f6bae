"""The pusher and the referrer in-process, against a real top-level node on loopback."""

from __future__ import annotations

import time

import pytest

from proto import handle_pb2
from sync.pusher import CURSOR, Pusher, PushOptions
from sync.referrer import UpstreamReferrer
from sync.toplevel.server import TopLevelNode
from tests.sync.conftest import Secondary
from tests.sync.nodes import free_port, wait_until

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
