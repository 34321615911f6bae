"""A real `idnode toplevel` attacked from outside: wrong tokens are counted, logged once and
slowed as on a node; a BatchResolve never builds a reply past its byte budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from proto import handle_pb2, resolver_pb2, resolver_pb2_grpc, sync_pb2, sync_pb2_grpc
from resolver.batch import MAX_BATCH_RESOLVE, cut_message
from resolver.grpc_resolve import DEFAULT_MAX_RESPONSE_BYTES
from tests.attack.conftest import rss_bytes
from tests.metrics import scrape as metrics_scrape
from tests.ports import free_port
from tests.rpc import failure
from tests.sync.conftest import large_record
from tests.sync.nodes import ADMIN, Proc, bearer, start_toplevel, wait_until

MB = 1 << 20
NODE_PREFIX = "88.101"
NODE_ID = "0123456789abcdef0123456789abcdef"
CLIENT_MAX_MESSAGE_BYTES = 64 << 20  # above the top-level node's bounds: its own are tested
ResolveRequest = resolver_pb2.ResolveRequest


@pytest.fixture
def toplevel(tmp_path: Path) -> Iterator[Proc]:
    started = start_toplevel(
        tmp_path / "toplevel", probe_interval=0.2, extra=["--metrics-listen", "127.0.0.1:0"]
    )
    try:
        yield started
    finally:
        started.stop()


def stubs(toplevel: Proc) -> tuple[sync_pb2_grpc.TopLevelStub, resolver_pb2_grpc.ResolverStub]:
    channel = grpc.insecure_channel(
        toplevel.address,
        options=[("grpc.max_receive_message_length", CLIENT_MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", CLIENT_MAX_MESSAGE_BYTES)],
    )  # fmt: skip
    toplevel.channels.append(channel)
    return sync_pb2_grpc.TopLevelStub(channel), resolver_pb2_grpc.ResolverStub(channel)


def scraped(toplevel: Proc, name: str, **labels: str) -> float:
    return metrics_scrape.scraped(str(toplevel.ready["metrics"]), name, **labels)


def failures_counted(toplevel: Proc) -> dict[str, float]:
    reasons = ("malformed", "invalid", "throttled")
    return {r: scraped(toplevel, "idnode_auth_failures_total", reason=r) for r in reasons}


def test_wrong_tokens_from_one_peer_are_counted_logged_once_and_slowed(toplevel: Proc) -> None:
    top, _ = stubs(toplevel)

    def attempt(n: int) -> tuple[grpc.StatusCode, str]:
        return failure(
            lambda: top.ListNodes(
                sync_pb2.ListNodesRequest(), metadata=bearer(f"guess-{n}"), timeout=30
            )
        )

    started = time.monotonic()
    one_by_one = [attempt(n) for n in range(9)]  # 5 free, then 50, 100, 200, 400 ms
    slowed_seconds = time.monotonic() - started
    with futures.ThreadPoolExecutor(max_workers=10) as pool:
        at_once = list(pool.map(attempt, range(100, 160)))
    malformed = failure(
        lambda: top.Hello(sync_pb2.HelloRequest(node_prefix=NODE_PREFIX),
                          metadata=(("authorization", "Basic x"),), timeout=30)
    )  # fmt: skip

    assert {code for code, _ in [*one_by_one, *at_once, malformed]} == {
        grpc.StatusCode.UNAUTHENTICATED
    }
    assert slowed_seconds >= 0.7
    refused = [d for _, d in at_once if "too many failed authentications" in d]
    assert refused, "no call was refused without a look-up while two threads waited"
    wait_until("the failures on /metrics", lambda: sum(failures_counted(toplevel).values()) >= 70)
    counted = failures_counted(toplevel)
    assert sum(counted.values()) == 70
    assert counted["throttled"] == len(refused) and counted["malformed"] == 1
    assert toplevel.log_path.read_text().count("authentication failed from 127.0.0.1") == 1
    # The right token from the same address still gets through (held back a second at most).
    assert top.ListNodes(sync_pb2.ListNodesRequest(), metadata=ADMIN, timeout=30).nodes == []


def _mirror_large_records(toplevel: Proc, count: int) -> list[str]:
    """Home NODE_PREFIX at a closed port and push `count` records of ~975 KB into its
    mirror, the node's own way (Hello, Push with its token); returns their identifiers."""
    top, _ = stubs(toplevel)
    site = handle_pb2.Site(grpc_address=f"127.0.0.1:{free_port()}")  # nothing listens there
    token = top.AddNode(
        sync_pb2.AddNodeRequest(node_prefix=NODE_PREFIX, sites=[site]), metadata=ADMIN, timeout=10
    ).token
    node = bearer(token)
    top.Hello(sync_pb2.HelloRequest(node_prefix=NODE_PREFIX, log_id="log-1", node_id=NODE_ID),
              metadata=node, timeout=10)  # fmt: skip
    names = [f"{NODE_PREFIX}/big-{n}" for n in range(count)]
    entries = [
        handle_pb2.ChangeEntry(sequence=n + 1, operation=handle_pb2.ChangeEntry.CREATE,
                               identifier=name, record=large_record(name))
        for n, name in enumerate(names)
    ]  # fmt: skip
    pushed = top.Push(sync_pb2.PushRequest(node_prefix=NODE_PREFIX, log_id="log-1",
                                           node_id=NODE_ID, entries=entries),
                      metadata=node, timeout=30)  # fmt: skip
    assert pushed.acked_sequence == count
    return names


def test_a_batch_resolve_past_the_byte_budget_is_cut_naming_the_limit(toplevel: Proc) -> None:
    names = _mirror_large_records(toplevel, 3)
    _, resolver = stubs(toplevel)

    def taken_over() -> bool:
        try:
            return bool(resolver.Resolve(ResolveRequest(identifier=names[0]), timeout=10).takeover)
        except grpc.RpcError:
            return False

    wait_until("takeover of the unreachable node", taken_over, 15)
    before = rss_bytes(toplevel.process.pid, "VmHWM")
    flood = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=names[n % 3]) for n in range(MAX_BATCH_RESOLVE)]
    )
    for _ in range(3):  # 1,000 x 975 KB: an answer of ~1 GB without the budget
        reply = resolver.BatchResolve(flood, timeout=60)
        answered = [r for r in reply.results if r.status == 0]
        cut = reply.results[len(answered) :]
        assert 0 < len(answered) < 40 and len(reply.results) == MAX_BATCH_RESOLVE
        assert all(r.response.takeover and len(r.response.values) == 15 for r in answered)
        assert {(r.status, r.error) for r in cut} == {
            (grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], cut_message(DEFAULT_MAX_RESPONSE_BYTES))
        }
        assert reply.ByteSize() <= DEFAULT_MAX_RESPONSE_BYTES
    assert rss_bytes(toplevel.process.pid, "VmHWM") - before < 200 * MB
    wait_until(
        "the cut on /metrics",
        lambda: scraped(toplevel, "idnode_limit_hits_total", limit="batch_response_bytes") == 3,
    )

    too_many = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=names[0])] * (MAX_BATCH_RESOLVE + 1)
    )
    code, details = failure(lambda: resolver.BatchResolve(too_many, timeout=10))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details == f"batch has {MAX_BATCH_RESOLVE + 1} identifiers, more than 1000"
    huge = resolver_pb2.BatchResolveRequest(
        requests=[ResolveRequest(identifier=f"{NODE_PREFIX}/{n}" + "x" * 8000) for n in range(600)]
    )
    code, details = failure(lambda: resolver.BatchResolve(huge, timeout=10))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "more than 4194304" in details
    code, details = failure(
        lambda: resolver.Resolve(ResolveRequest(identifier="88.101/" + "y" * MB), timeout=10)
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "more than 16384" in details
