"""Referral sites checked on write; following them bounded in time, calls and bytes, and
failing with one message whatever the referred site did."""

from __future__ import annotations

import time
from concurrent import futures
from functools import partial
from pathlib import Path

import grpc
import pytest

from proto import handle_pb2, registry_pb2, resolver_pb2
from resolver.grpc_follow import BUSY, UNANSWERED
from tests.grpc.conftest import Node, running_node
from tests.grpc.hostile_sites import closed_port, oversized_answerer, tcp_site
from tests.rpc import failure

Site = handle_pb2.Site
ResolveRequest = resolver_pb2.ResolveRequest


def delegate(node: Node, sites: list[Site], code: str = "8") -> str:
    prefix, token = node.enterprise(code)
    node.registry.PutPrefix(
        registry_pb2.PutPrefixRequest(prefix=prefix, sites=sites), metadata=token
    )
    return prefix


# Sites are checked when they are written --------------------------------------------


@pytest.mark.parametrize(
    ("sites", "code"),
    [
        ([Site(grpc_address="unix:/run/secret.sock")], grpc.StatusCode.INVALID_ARGUMENT),
        ([Site(grpc_address="169.254.169.254:80")], grpc.StatusCode.INVALID_ARGUMENT),
        ([Site(grpc_address="h" * 2000 + ":1")], grpc.StatusCode.INVALID_ARGUMENT),
        ([Site(grpc_address="10.0.0.1:8600", dns_address="dns:///x")], grpc.StatusCode.INVALID_ARGUMENT),
        ([Site(grpc_address=f"10.0.{n // 250}.{n % 250}:1") for n in range(5000)],
         grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
    ids=["unix", "link-local", "2KB", "dns-scheme", "5000-sites"],
)  # fmt: skip
def test_put_prefix_refuses_hostile_sites_and_changes_nothing(
    node: Node, sites: list[Site], code: grpc.StatusCode
) -> None:
    prefix, token = node.enterprise("8")
    node.registry.Create(
        handle_pb2.Record(
            identifier=f"{prefix}/x",
            values=[handle_pb2.HandleValue(index=1, type="URL", data=b"u")],
        ),
        metadata=token,
    )

    found, details = failure(
        lambda: node.registry.PutPrefix(
            registry_pb2.PutPrefixRequest(prefix=prefix, sites=sites), metadata=token
        )
    )

    assert found == code
    assert len(details) < 200
    reply = node.resolver.Resolve(ResolveRequest(identifier=f"{prefix}/x"))
    assert reply.values and not reply.HasField("referral")


# Following: one message for every failure, one deadline per call, bounded calls -------


def test_every_failure_of_a_referred_site_reads_the_same(tmp_path: Path) -> None:
    with (
        running_node(tmp_path / "data", follow_deadline_seconds=1.0) as node,
        tcp_site("silent") as silent,
        tcp_site("garbage") as garbage,
        oversized_answerer(3 << 20) as oversized,
    ):
        seen = {}
        for code, address in enumerate([closed_port(), silent, garbage, oversized], start=1):
            prefix = delegate(node, [Site(grpc_address=address)], code=str(code))
            request = ResolveRequest(identifier=f"{prefix}/x", recursive=True)
            seen[address] = failure(partial(node.resolver.Resolve, request))

    assert set(seen.values()) == {(grpc.StatusCode.UNAVAILABLE, UNANSWERED)}


def test_one_deadline_covers_every_recursive_item_of_a_batch(tmp_path: Path) -> None:
    with (
        running_node(tmp_path / "data", follow_deadline_seconds=1.0) as node,
        tcp_site("silent") as silent,
    ):
        prefix = delegate(node, [Site(grpc_address=silent)])
        items = [ResolveRequest(identifier=f"{prefix}/x{n}", recursive=True) for n in range(10)]
        started = time.monotonic()
        reply = node.resolver.BatchResolve(resolver_pb2.BatchResolveRequest(requests=items))
        elapsed = time.monotonic() - started

    assert elapsed < 3.0  # one deadline of 1 s, not ten
    assert {(r.status, r.error) for r in reply.results} == {
        (grpc.StatusCode.UNAVAILABLE.value[0], UNANSWERED)
    }


def test_outbound_calls_are_bounded_per_worker(tmp_path: Path) -> None:
    limits = {"follow_deadline_seconds": 2.0, "follow_max_concurrent": 1}
    with running_node(tmp_path / "data", **limits) as node, tcp_site("silent") as silent:
        prefix = delegate(node, [Site(grpc_address=silent)])

        def ask(n: int) -> tuple[grpc.StatusCode, str, float]:
            started = time.monotonic()
            code, details = failure(
                lambda: node.resolver.Resolve(
                    ResolveRequest(identifier=f"{prefix}/x{n}", recursive=True)
                )
            )
            return code, details, time.monotonic() - started

        with futures.ThreadPoolExecutor(max_workers=4) as pool:
            first = pool.submit(ask, 0)
            time.sleep(0.5)  # the first one holds the only slot
            others = [pool.submit(ask, n) for n in range(1, 4)]
            results = [first.result(), *(other.result() for other in others)]

    assert results[0][:2] == (grpc.StatusCode.UNAVAILABLE, UNANSWERED)
    for code, details, elapsed in results[1:]:
        assert (code, details) == (grpc.StatusCode.UNAVAILABLE, BUSY)
        assert elapsed < 1.0


def test_a_referred_node_answering_a_full_size_record_is_followed(tmp_path: Path) -> None:
    with (
        running_node(tmp_path / "top") as node,
        running_node(tmp_path / "enterprise") as enterprise,
    ):
        prefix, token = enterprise.enterprise("8")
        big = [
            handle_pb2.HandleValue(index=i, type="blob", data=bytes([i]) * 60_000)
            for i in range(1, 17)
        ]
        enterprise.registry.Create(
            handle_pb2.Record(identifier=f"{prefix}/big", values=big), metadata=token
        )
        delegate(node, [Site(grpc_address=enterprise.address)])

        reply = node.resolver.Resolve(ResolveRequest(identifier=f"{prefix}/big", recursive=True))

    assert len(reply.values) == 16
