"""Hostile referral sites against a real node: refused on write, and following the ones that
misbehave costs one bounded deadline and reads the same whatever the site did."""

from __future__ import annotations

import time

import grpc
import pytest

from proto import handle_pb2, registry_pb2, resolver_pb2
from resolver.grpc_follow import UNANSWERED
from tests.attack.conftest import Target, bearer, verify
from tests.grpc.hostile_sites import closed_port, oversized_answerer, tcp_site

Site = handle_pb2.Site
ResolveRequest = resolver_pb2.ResolveRequest
HOSTILE_SITES = [
    [Site(grpc_address="unix:/run/idnode/secret.sock")],
    [Site(grpc_address="unix-abstract:grpc")],
    [Site(grpc_address="169.254.169.254:80")],
    [Site(grpc_address="ipv4:10.0.0.1:22,10.0.0.2:22")],
    [Site(grpc_address="h" * 2048 + ":8600")],
    [Site(grpc_address=f"10.{n // 250}.{n % 250}.1:8600") for n in range(5000)],
]


def put_sites(target: Target, prefix: str, token: str, sites: list[Site]) -> None:
    target.registry.PutPrefix(
        registry_pb2.PutPrefixRequest(prefix=prefix, sites=sites), metadata=bearer(token)
    )


def test_hostile_sites_are_refused_and_nothing_changes(seeded: tuple[Target, str]) -> None:
    target, known = seeded
    prefix, token = target.enterprise("2")

    for sites in HOSTILE_SITES:
        with pytest.raises(grpc.RpcError) as caught:
            put_sites(target, prefix, token, sites)
        error = caught.value
        assert error.code() in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert len(error.details() or "") < 200

    with pytest.raises(grpc.RpcError) as caught:
        target.resolver.Resolve(ResolveRequest(identifier=f"{prefix}/x", recursive=True))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    target.still_answers(known, b"https://known")
    verify(target.process.data_dir)


def test_misbehaving_sites_cost_one_deadline_and_read_the_same(
    seeded: tuple[Target, str],
) -> None:
    target, known = seeded
    with (
        tcp_site("silent") as silent,
        tcp_site("garbage") as garbage,
        oversized_answerer(8 << 20) as oversized,
    ):
        items = []
        for code, address in enumerate([closed_port(), silent, garbage, oversized], start=2):
            prefix, token = target.enterprise(str(code))
            put_sites(target, prefix, token, [Site(grpc_address=address)])
            items += [ResolveRequest(identifier=f"{prefix}/x{n}", recursive=True) for n in range(3)]
        batch = resolver_pb2.BatchResolveRequest(requests=items)

        started = time.monotonic()
        reply = target.resolver.BatchResolve(batch, timeout=30)
        elapsed = time.monotonic() - started
        target.still_answers(known, b"https://known")

    assert {(r.status, r.error) for r in reply.results} == {
        (grpc.StatusCode.UNAVAILABLE.value[0], UNANSWERED)
    }
    assert elapsed < 2.0 + 1.5  # one 2 s deadline for all twelve items
    verify(target.process.data_dir)
