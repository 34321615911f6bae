"""Floods an anonymous caller can send: malformed protobuf and failed authentications are
counted, logged at most once a minute, and repeated failures are slowed within bounds."""

from __future__ import annotations

import logging
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from prometheus_client import Counter

import metrics
from proto import registry_pb2, resolver_pb2
from registry import accounts
from registry.errors import AuthenticationFailed, TokenExpired
from registry.registry import Registry
from registry.store import Store
from resolver.auth import (
    FAILURE_WINDOW_SECONDS,
    FREE_FAILURES,
    MAX_DELAY_SECONDS,
    MAX_DELAYED_CALLS,
    Authenticator,
    FailureTable,
)
from resolver.grpc_auth import source_of
from tests.grpc.conftest import Node, bearer
from tests.rpc import failure


def counter(metric: Counter, *labels: str) -> float:
    metrics.flush()
    return float(metric.labels(*labels)._value.get())


def raw_call(node: Node, method: str, payload: bytes) -> tuple[grpc.StatusCode, str]:
    call = node.channel.unary_unary(
        method, request_serializer=lambda data: data, response_deserializer=lambda data: data
    )
    return failure(lambda: call(payload, timeout=10))


# Malformed protobuf -----------------------------------------------------------------


def test_malformed_requests_are_refused_counted_and_logged_once(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    before = counter(metrics.GRPC_MALFORMED_REQUESTS, "Resolve")
    caplog.set_level(logging.INFO)
    garbage = [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xff\xfe", bytes(range(256))]

    for n in range(200):
        code, details = raw_call(node, "/idnode.v1.Resolver/Resolve", garbage[n % 4])
        assert (code, details) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "request is not a valid idnode.v1.ResolveRequest",
        )
    code, _ = raw_call(node, "/idnode.v1.Registry/Create", b"\xff\xff")
    assert code == grpc.StatusCode.INVALID_ARGUMENT

    assert counter(metrics.GRPC_MALFORMED_REQUESTS, "Resolve") - before == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "malformed gRPC requests" in r.getMessage()]) <= 1
    # ... and the node keeps answering.
    with pytest.raises(grpc.RpcError) as caught:
        node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.1/x"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# Failed authentications -------------------------------------------------------------


def who_am_i(node: Node, token: str) -> tuple[grpc.StatusCode, str, float]:
    started = time.monotonic()
    code, details = failure(
        lambda: node.registry.WhoAmI(
            registry_pb2.WhoAmIRequest(), metadata=bearer(token), timeout=10
        )
    )
    return code, details, time.monotonic() - started


def test_failed_authentications_are_counted_logged_once_and_slowed(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    node.registry.WhoAmI(registry_pb2.WhoAmIRequest(), metadata=node.admin)
    before = counter(metrics.AUTH_FAILURES, "invalid")
    caplog.set_level(logging.INFO, logger="idnode.auth")

    quick = [who_am_i(node, f"wrong-token-{n}") for n in range(FREE_FAILURES)]
    slowed = [who_am_i(node, f"wrong-token-{n}") for n in range(FREE_FAILURES, FREE_FAILURES + 5)]

    assert {code for code, _, _ in quick + slowed} == {grpc.StatusCode.UNAUTHENTICATED}
    assert max(elapsed for _, _, elapsed in quick) < 1.0
    assert sum(elapsed for _, _, elapsed in slowed) >= 0.05 + 0.1 + 0.2 + 0.4 + 0.8 - 0.05
    assert max(elapsed for _, _, elapsed in slowed) <= MAX_DELAY_SECONDS + 1.5
    assert counter(metrics.AUTH_FAILURES, "invalid") - before == 10
    logged = [r for r in caplog.records if r.name == "idnode.auth"]
    assert len(logged) == 1 and "127.0.0.1" in logged[0].getMessage()
    # A credential that just succeeded is not held back, nor is an anonymous resolve.
    started = time.monotonic()
    node.registry.WhoAmI(registry_pb2.WhoAmIRequest(), metadata=node.admin)
    with pytest.raises(grpc.RpcError):
        node.resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.1/x"))
    assert time.monotonic() - started < 1.0


def test_a_flood_of_failures_holds_at_most_a_few_handler_threads(node: Node) -> None:
    for n in range(FREE_FAILURES + 6):  # past the free failures: every attempt is delayed
        who_am_i(node, f"wrong-{n}")
    before = counter(metrics.AUTH_FAILURES, "throttled")

    started = time.monotonic()
    with futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda n: who_am_i(node, f"flood-{n}"), range(12)))
    elapsed = time.monotonic() - started

    assert {code for code, _, _ in results} == {grpc.StatusCode.UNAUTHENTICATED}
    refused = [r for r in results if "too many failed authentications" in r[1]]
    assert len(refused) >= 12 - 2 * MAX_DELAYED_CALLS
    assert all(elapsed < 1.0 for _, _, elapsed in refused)
    assert elapsed < 4 * MAX_DELAY_SECONDS
    assert counter(metrics.AUTH_FAILURES, "throttled") - before == len(refused)


def test_malformed_authorization_metadata_counts_as_a_failure(node: Node) -> None:
    before = counter(metrics.AUTH_FAILURES, "malformed")
    for metadata in (
        (("authorization", "Basic abc"),),
        (("authorization", "Bearer " + "x" * 5000),),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            node.registry.WhoAmI(registry_pb2.WhoAmIRequest(), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert counter(metrics.AUTH_FAILURES, "malformed") - before == 2


# The failure table itself -----------------------------------------------------------


def test_the_failure_table_forgets_after_a_quiet_window_and_is_bounded() -> None:
    now = [1000.0]
    table = FailureTable(lambda: now[0], max_sources=3)
    for _ in range(FREE_FAILURES + 2):
        table.record("10.0.0.1")
    assert table.delay_seconds("10.0.0.1") > 0
    assert table.delay_seconds("10.0.0.2") == 0

    assert [table.record(s) for s in ("10.0.0.2", "10.0.0.3", "10.0.0.4")] == [0, 0, 0]
    assert table.delay_seconds("10.0.0.1") == 0  # evicted: the table holds three sources
    for _ in range(FREE_FAILURES + 2):
        table.record("10.0.0.2")
    now[0] += FAILURE_WINDOW_SECONDS
    assert table.delay_seconds("10.0.0.2") == 0
    assert table.record("10.0.0.2") == FREE_FAILURES + 3  # logged again, with the last count


@pytest.mark.parametrize(
    ("peer", "source"),
    [
        ("ipv4:127.0.0.1:53412", "127.0.0.1"),
        ("ipv6:[::1]:53412", "::1"),
        ("ipv6:[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"),
        ("unix:/run/x.sock", "unix:/run/x.sock"),
    ],
)
def test_a_source_is_an_address_without_its_port(peer: str, source: str) -> None:
    assert source_of(peer) == source


def test_an_expired_token_is_counted_as_expired_and_an_unknown_one_as_invalid(
    tmp_path: Path,
) -> None:
    store = Store(str(tmp_path / "data"))
    registry = Registry(store, "88.118", clock=lambda: time.time() - 3600)  # made an hour ago
    registry.ensure_node_prefix()
    admin_token = accounts.ensure_admin(store, None)
    assert admin_token is not None
    admin = accounts.authenticate(store, admin_token)
    made = registry.create_enterprise(admin, code="9", expires_in_seconds=60)
    guard = Authenticator(store, sleep=lambda seconds: None)
    expired, invalid = (
        counter(metrics.AUTH_FAILURES, "expired"),
        counter(metrics.AUTH_FAILURES, "invalid"),
    )

    with pytest.raises(TokenExpired):
        guard.account(made.token, "192.0.2.1")
    with pytest.raises(AuthenticationFailed) as unknown:
        guard.account("no-such-token", "192.0.2.2")

    assert not isinstance(unknown.value, TokenExpired)
    assert counter(metrics.AUTH_FAILURES, "expired") - expired == 1
    assert counter(metrics.AUTH_FAILURES, "invalid") - invalid == 1
    store.close()
