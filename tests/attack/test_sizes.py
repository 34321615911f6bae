"""Oversized input and oversized answers against a real node: worker memory stays bounded,
the node keeps answering, and `idnode verify` finds the store intact."""

from __future__ import annotations

from pathlib import Path

import grpc

from proto import handle_pb2, resolver_pb2
from tests.attack.conftest import Target, attacked, bearer, verify
from tests.node.conftest import run_cli
from tests.rpc import failure

ResolveRequest = resolver_pb2.ResolveRequest
MB = 1 << 20


def resolve_refused(target: Target, identifier: str) -> tuple[grpc.StatusCode, str]:
    return failure(lambda: target.resolver.Resolve(ResolveRequest(identifier=identifier)))


def test_huge_identifiers_leave_the_worker_memory_where_it_was(
    seeded: tuple[Target, str],
) -> None:
    target, known = seeded
    before = target.worker_rss_bytes()

    for n in range(40):  # 1 MB each: the old cache kept ~200 MB of them
        code, details = resolve_refused(target, f"88.118.1/{n}" + "x" * MB)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and len(details) < 200
    for n in range(200):  # just over the identifier limit, and without a '/'
        for text in (f"88.118.1/{n}" + "y" * 300, f"{n}" + "z" * 8000):
            code, details = resolve_refused(target, text)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and len(details) < 200
    flood = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=f"{n}" + "w" * 30_000) for n in range(1000)]
    )
    for _ in range(3):  # 1,000 x 30 KB: these took a worker from 79 MB to ~1 GB
        code, _ = failure(lambda: target.resolver.BatchResolve(flood))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    smaller = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=f"88.118.1/{n}" + "v" * 3000) for n in range(1000)]
    )
    for _ in range(3):
        reply = target.resolver.BatchResolve(smaller)
        assert {r.status for r in reply.results} == {grpc.StatusCode.INVALID_ARGUMENT.value[0]}
        assert max(len(r.error) for r in reply.results) < 200

    target.still_answers(known, b"https://known")
    assert target.worker_rss_bytes() - before < 64 * MB
    verify(target.process.data_dir)


def test_distinct_misses_fill_only_the_bounded_negative_cache(
    seeded: tuple[Target, str],
) -> None:
    target, known = seeded
    before = target.worker_rss_bytes()
    requests = [
        ResolveRequest(identifier=f"88.118.1/miss-{n:05d}-" + "m" * 200) for n in range(5000)
    ]

    for start in range(0, len(requests), 1000):
        reply = target.resolver.BatchResolve(
            resolver_pb2.BatchResolveRequest(requests=requests[start : start + 1000])
        )
        assert {r.status for r in reply.results} == {grpc.StatusCode.NOT_FOUND.value[0]}

    target.still_answers(known, b"https://known")
    assert target.worker_rss_bytes() - before < 64 * MB
    verify(target.process.data_dir)


def test_big_batch_answers_stop_at_the_message_limit_and_list_all_works(tmp_path: Path) -> None:
    cache = {"IDNODE_CACHE_BYTES": str(64 * MB)}
    with attacked(tmp_path / "data", env=cache) as target:
        prefix, token = target.enterprise("8")
        values = [
            handle_pb2.HandleValue(index=i, type="blob", data=bytes([i]) * 65_000)
            for i in range(1, 16)
        ]  # ~975 KB, a legal record
        for n in range(40):
            target.registry.Create(
                handle_pb2.Record(identifier=f"{prefix}/r{n:02d}", values=values),
                metadata=bearer(token),
            )
        before = target.worker_rss_bytes()
        batch = resolver_pb2.BatchResolveRequest(
            requests=[ResolveRequest(identifier=f"{prefix}/r{n % 40:02d}") for n in range(100)]
        )

        for _ in range(3):  # 100 x 975 KB: the old code built ~97 MB, then failed
            reply = target.resolver.BatchResolve(batch, timeout=60)
            answered = [r for r in reply.results if r.status == 0]
            assert reply.ByteSize() <= 32 * MB
            assert len(answered) == 34  # 34 x 975 KB fit in 32 MiB; a 35th would not
            assert len(reply.results) == 100
            cut = reply.results[len(answered) :]
            assert {r.status for r in cut} == {grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]}
        grown = target.worker_rss_bytes() - before
        listed = run_cli("list", prefix, "--all", "--server", target.address, token=token)

        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == [f"{prefix}/r{n:02d}" for n in range(40)]
        # The cache's 64 MiB plus a reply or two of 32 MiB in flight, not 100s of MB.
        assert grown < 64 * MB + 2 * 32 * MB + 64 * MB
        verify(target.process.data_dir)
