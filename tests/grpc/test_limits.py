"""Hostile resolves against a real worker: sizes refused before work, caches bounded in bytes,
canonical cache keys, batch answers and list pages that stop at their byte budget."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

import metrics
from proto import handle_pb2, registry_pb2, resolver_pb2
from resolver.batch import cut_message
from tests.grpc.conftest import Node, running_node
from tests.rpc import failure

HandleValue = handle_pb2.HandleValue
Record = handle_pb2.Record
ResolveRequest = resolver_pb2.ResolveRequest


def resolve_failure(node: Node, identifier: str) -> tuple[grpc.StatusCode, str]:
    return failure(lambda: node.resolver.Resolve(ResolveRequest(identifier=identifier)))


def big_values(total_bytes: int) -> list[HandleValue]:
    """Values adding up to about `total_bytes` (each value holds at most 64 KiB)."""
    chunk = 60_000
    count = max(total_bytes // chunk, 1)
    return [HandleValue(index=i, type="blob", data=bytes([i]) * chunk) for i in range(1, count + 1)]


# Item 1: oversized input refused before cache or parse; caches bounded in bytes ----------


@pytest.mark.parametrize(
    "identifier",
    [
        "x" * 10_000,  # no '/': the old error quoted all of it
        "88.118.8/" + "x" * 10_000,
        "88.118." + "y" * 5_000 + "/x",
        "\x00" * 300,
    ],
    ids=["no-slash", "long-suffix", "long-prefix", "nul"],
)
def test_an_overlong_identifier_is_invalid_argument_with_a_short_detail_and_not_cached(
    node: Node, identifier: str
) -> None:
    for _ in range(3):
        code, details = failure(
            lambda: node.resolver.Resolve(ResolveRequest(identifier=identifier))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert len(details) < 200

    batch = node.resolver.BatchResolve(
        resolver_pb2.BatchResolveRequest(requests=[ResolveRequest(identifier=identifier)] * 20)
    )
    assert {r.status for r in batch.results} == {grpc.StatusCode.INVALID_ARGUMENT.value[0]}
    assert max(len(r.error) for r in batch.results) < 200
    assert (len(node.worker.resolver.cache), node.worker.resolver.cache.bytes_used) == (0, 0)


def test_a_request_larger_than_a_resolve_can_be_is_refused_before_it_is_parsed(node: Node) -> None:
    code, details = failure(
        lambda: node.resolver.Resolve(ResolveRequest(identifier="88.118.8/" + "x" * 1_000_000))
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Resolve request is 1000" in details and len(details) < 200
    huge = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier="x" * 30_000)] * 1000
    )
    code, details = failure(lambda: node.resolver.BatchResolve(huge))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "BatchResolve request is" in details
    assert len(node.worker.resolver.cache) == 0


def test_answers_are_bounded_in_bytes_and_misses_never_evict_answers(tmp_path: Path) -> None:
    limits = {"cache_bytes": 400_000, "negative_cache_bytes": 50_000}
    with running_node(tmp_path / "data", **limits) as node:
        prefix, token = node.enterprise("8")
        for n in range(8):
            node.registry.Create(
                Record(identifier=f"{prefix}/big{n}", values=big_values(120_000)), metadata=token
            )
        cache = node.worker.resolver.cache

        for n in range(8):
            reply = node.resolver.Resolve(ResolveRequest(identifier=f"{prefix}/big{n}"))
            assert len(reply.values) == 2
        held = cache.bytes_used
        assert 240_000 < held <= 400_000  # two or three of the eight are kept
        for n in range(2000):
            missing = f"{prefix}/missing-{n:04d}-" + "m" * 200
            code, details = resolve_failure(node, missing)
            assert code == grpc.StatusCode.NOT_FOUND, (n, details)

        assert cache.bytes_used <= 400_000 + 50_000
        assert cache.bytes_used - held <= 50_000  # the misses filled only their own side
        assert node.resolver.Resolve(ResolveRequest(identifier=f"{prefix}/big7")).values
        metrics.flush()
        assert metrics.CACHE_BYTES.labels("grpc")._value.get() == cache.bytes_used


def test_cached_misses_hold_no_store_reader_slots(node: Node) -> None:
    """A cached failure once kept its traceback, whose frames kept their LMDB read
    transactions and so a reader slot each: 512 misses stopped every read of the worker."""
    node.enterprise("8")
    for n in range(1200):
        code, details = resolve_failure(node, f"88.118.8/missing-{n}")
        assert code == grpc.StatusCode.NOT_FOUND, (n, details)


# Item 4: the cache is keyed on the canonical form only ---------------------------------


@pytest.mark.parametrize("letter", ["\u212a", "\u212a".lower()])  # KELVIN SIGN; lower is 'k'
def test_a_non_ascii_look_alike_cannot_poison_the_answer_of_a_valid_identifier(
    node: Node, letter: str
) -> None:
    prefix, token = node.enterprise("k")
    node.registry.Create(
        Record(identifier=f"{prefix}/item", values=[HandleValue(index=1, type="URL", data=b"u")]),
        metadata=token,
    )
    poison = f"88.118.{letter}/item" if letter != "k" else "88.118.\u212a/item"

    for _ in range(2):
        code, _ = failure(lambda: node.resolver.Resolve(ResolveRequest(identifier=poison)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        node.resolver.BatchResolve(
            resolver_pb2.BatchResolveRequest(requests=[ResolveRequest(identifier=poison)])
        )

    for spelling in ("88.118.K/item", "88.118.k/item"):
        reply = node.resolver.Resolve(ResolveRequest(identifier=spelling))
        assert (reply.identifier, reply.values[0].data) == ("88.118.k/item", b"u")
    assert len(node.worker.resolver.cache) == 1


# Item 6: batch answers and list pages stop at their byte budget ------------------------


def test_batch_resolve_stops_at_the_message_limit_and_marks_the_cut_entries(
    tmp_path: Path,
) -> None:
    with running_node(tmp_path / "data", grpc_max_message_bytes=4 << 20) as node:
        prefix, token = node.enterprise("8")
        for n in range(3):
            node.registry.Create(
                Record(identifier=f"{prefix}/r{n}", values=big_values(960_000)), metadata=token
            )
        names = [f"{prefix}/r{n % 3}" for n in range(10)] + ["88.118.8/absent", "bad"]

        reply = node.resolver.BatchResolve(
            resolver_pb2.BatchResolveRequest(requests=[ResolveRequest(identifier=n) for n in names])
        )

    assert reply.ByteSize() <= 4 << 20
    assert len(reply.results) == len(names)
    answered = [r for r in reply.results if r.status == 0]
    cut = reply.results[len(answered) :]
    assert len(answered) == 4  # 4 x 960 KB fit in 4 MiB, a fifth would not
    assert [r.response.identifier for r in answered] == names[:4]
    assert all(len(r.response.values) == 16 for r in answered)
    assert {(r.status, r.error) for r in cut} == {
        (grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], cut_message(4 << 20))
    }


def test_list_pages_are_bounded_in_bytes_and_the_token_walks_every_record(
    tmp_path: Path,
) -> None:
    limits = {"grpc_max_message_bytes": 4 << 20, "list_page_bytes": 2 << 20}
    with running_node(tmp_path / "data", **limits) as node:
        prefix, token = node.enterprise("8")
        for n in range(7):
            node.registry.Create(
                Record(identifier=f"{prefix}/r{n}", values=big_values(900_000)), metadata=token
            )
        seen: list[str] = []
        page_token = ""
        pages = 0
        while True:
            page = node.registry.List(
                registry_pb2.ListRequest(prefix=prefix, page_size=1000, page_token=page_token),
                metadata=token,
            )
            pages += 1
            assert page.ByteSize() <= 2 << 20
            seen += [record.identifier for record in page.records]
            page_token = page.next_page_token
            if not page_token:
                break

    assert seen == [f"{prefix}/r{n}" for n in range(7)]
    assert pages == 4


# Cache invalidation: a prefix change drops only the answers under it -------------------


def test_a_prefix_change_drops_only_the_answers_under_that_prefix(node: Node) -> None:
    a, token_a = node.enterprise("8")
    b, token_b = node.enterprise("9")
    url = [HandleValue(index=1, type="URL", data=b"u")]
    node.registry.Create(Record(identifier=f"{a}/x", values=url), metadata=token_a)
    node.registry.Create(Record(identifier=f"{b}/y", values=url), metadata=token_b)
    for identifier in (f"{a}/x", f"{b}/y"):
        node.resolver.Resolve(ResolveRequest(identifier=identifier))
    failure(lambda: node.resolver.Resolve(ResolveRequest(identifier=f"{a}.1/z")))
    cache = node.worker.resolver.cache
    assert len(cache) == 3

    # The first write under a new derived prefix creates it (a prefix change) ...
    node.registry.Create(Record(identifier=f"{a}.2/w", values=url), metadata=token_a)
    node.resolver.Resolve(ResolveRequest(identifier=f"{b}/y"))
    assert len(cache) == 3
    # ... and delegating one turns the answers under it into referrals, and only those.
    node.registry.PutPrefix(
        registry_pb2.PutPrefixRequest(
            prefix=f"{a}.1", sites=[handle_pb2.Site(grpc_address="10.9.9.9:8600")]
        ),
        metadata=token_a,
    )
    reply = node.resolver.Resolve(ResolveRequest(identifier=f"{a}.1/z"))

    assert reply.referral.sites[0].grpc_address == "10.9.9.9:8600"
    assert cache.get(f"{b}/y") is not None
    assert cache.get(f"{a}/x") is not None
