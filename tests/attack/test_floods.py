"""Floods against a real node: malformed protobuf, failed authentications, look-alike
prefixes. Each is counted, logged at most once a minute, and leaves the node answering."""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import pytest

from proto import handle_pb2, registry_pb2, resolver_pb2
from tests.attack.conftest import Target, bearer, verify
from tests.metrics import scrape as metrics_scrape

ResolveRequest = resolver_pb2.ResolveRequest
REASONS = ("malformed", "invalid", "throttled")


def scraped(target: Target, name: str, **labels: str) -> float:
    return metrics_scrape.scraped(target.process.metrics, name, **labels)


def eventually(target: Target, name: str, expected: float, **labels: str) -> None:
    """Metrics reach the master's endpoint within about a second (the flush interval)."""
    deadline = time.monotonic() + 10
    while scraped(target, name, **labels) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert scraped(target, name, **labels) == expected


def test_a_malformed_protobuf_flood_is_counted_and_logged_once(
    seeded: tuple[Target, str],
) -> None:
    target, known = seeded
    raw = target.channel.unary_unary(
        "/idnode.v1.Resolver/Resolve",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    garbage = [b"\xff\xff\xff\xff", b"\x0a\x7fshort", b"\x0a\x02\xc3\x28", bytes(range(256)) * 4]

    for n in range(3000):
        with pytest.raises(grpc.RpcError) as caught:
            raw(garbage[n % 4], timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    target.still_answers(known, b"https://known")
    eventually(target, "idnode_grpc_malformed_requests_total", 3000, grpc_method="Resolve")
    log = target.process.log()
    assert log.count("malformed gRPC requests") <= 1
    assert "Exception deserializing" not in log and "Traceback" not in log
    verify(target.process.data_dir)


def test_an_authentication_failure_flood_is_counted_logged_once_and_slowed(
    seeded: tuple[Target, str],
) -> None:
    target, known = seeded

    def attempt(n: int) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as caught:
            target.registry.WhoAmI(
                registry_pb2.WhoAmIRequest(), metadata=bearer(f"guess-{n}"), timeout=30
            )
        code: grpc.StatusCode = caught.value.code()
        return code

    def anonymous_latency() -> float:
        started = time.monotonic()
        target.still_answers(known, b"https://known")
        return time.monotonic() - started

    started = time.monotonic()
    with futures.ThreadPoolExecutor(max_workers=10) as pool:
        failures = pool.map(attempt, range(300))
        latencies = [anonymous_latency() for _ in range(20)]
        codes = list(failures)
    elapsed = time.monotonic() - started

    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}
    assert elapsed < 30  # delayed, yet never more than 2 handler threads held at once
    assert max(latencies) < 2.0  # anonymous resolution goes on meanwhile
    counted = sum(
        scraped(target, "idnode_auth_failures_total", reason=r) for r in ("invalid", "throttled")
    )
    deadline = time.monotonic() + 10
    while counted < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
        counted = sum(
            scraped(target, "idnode_auth_failures_total", reason=r)
            for r in ("invalid", "throttled")
        )
    assert counted == 300
    assert scraped(target, "idnode_auth_failures_total", reason="throttled") > 0
    assert target.process.log().count("authentication failed from 127.0.0.1") == 1
    verify(target.process.data_dir)


def test_a_look_alike_prefix_never_poisons_the_real_answer(target: Target) -> None:
    prefix, token = target.enterprise("k")
    target.registry.Create(
        handle_pb2.Record(
            identifier=f"{prefix}/item",
            values=[handle_pb2.HandleValue(index=1, type="URL", data=b"real")],
        ),
        metadata=bearer(token),
    )
    poisons = [f"88.118.{c}/item" for c in ("\u212a", "\u212a".upper(), "\uff4b", "\u0138")]

    for _ in range(50):
        reply = target.resolver.BatchResolve(
            resolver_pb2.BatchResolveRequest(
                requests=[ResolveRequest(identifier=p) for p in poisons]
            )
        )
        assert {r.status for r in reply.results} == {grpc.StatusCode.INVALID_ARGUMENT.value[0]}

    for spelling in ("88.118.k/item", "88.118.K/item"):
        target.still_answers(spelling, b"real")
    verify(target.process.data_dir)
