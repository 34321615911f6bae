"""A real `idnode serve` with two workers: one scrape adds up what both of them served."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import grpc
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from proto import resolver_pb2, resolver_pb2_grpc
from tests.metrics.scrape import promtool_check, sample, scrape
from tests.node.conftest import start_node

pytestmark = pytest.mark.slow  # Two workers scraped, one SIGKILLed and replaced.

GRPC_CONNECTIONS = 12
RESOLVES_PER_CONNECTION = 5
DNS_QUERIES = 40
FLUSH_WAIT_SECONDS = 10.0


def totals(text: str) -> dict[str, float]:
    resolve = ("idnode_resolve_requests_total", "idnode_resolve_duration_seconds_count")
    return {
        "grpc_resolve": sample(text, resolve[0], proto="grpc", result="not_found") or 0,
        "grpc_duration": sample(text, resolve[1], proto="grpc") or 0,
        "grpc_handled": sample(
            text, "grpc_server_handled_total", grpc_code="NotFound", grpc_method="Resolve",
            grpc_service="idnode.v1.Resolver", grpc_type="unary",
        ) or 0,
        "dns_resolve": sample(text, resolve[0], proto="dns", result="not_found") or 0,
        "dns_nxdomain": sample(text, "idnode_dns_responses_total", proto="udp", rcode="NXDOMAIN")
        or 0,
    }  # fmt: skip


def wait_for(address: str, expected: dict[str, float]) -> str:
    """Scrape until the totals reach `expected` (the workers flush once a second)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + FLUSH_WAIT_SECONDS
    while True:
        text = scrape(host, int(port))
        if totals(text) == expected or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def resolutions_by_worker(metrics_dir: Path, pid: int, tmp_path: Path) -> float:
    """gRPC resolutions counted by one process, from a copy of its own counter file."""
    alone = tmp_path / f"alone-{pid}"
    alone.mkdir()
    shutil.copy(metrics_dir / f"counter_{pid}.db", alone)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
    found = registry.get_sample_value(
        "idnode_resolve_requests_total", {"proto": "grpc", "result": "not_found"}
    )
    return found or 0.0


def test_two_workers_add_up_in_one_scrape_and_survive_a_worker_restart(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", "--workers", "2", "--dns-listen", "127.0.0.1:0")
    try:
        host, _, port = node.metrics.rpartition(":")
        assert totals(scrape(host, int(port))) == dict.fromkeys(totals(""), 0)
        for connection in range(GRPC_CONNECTIONS):
            # A channel of its own, hence a TCP connection of its own: SO_REUSEPORT
            # spreads the connections over both workers.
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(node.grpc, options=options) as channel:
                stub = resolver_pb2_grpc.ResolverStub(channel)
                for number in range(RESOLVES_PER_CONNECTION):
                    request = resolver_pb2.ResolveRequest(
                        identifier=f"88.118.8/c{connection}n{number}"
                    )
                    try:
                        stub.Resolve(request, timeout=10)
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.NOT_FOUND
        dns_host, _, dns_port = node.ready["dns"][0].rpartition(":")
        for number in range(DNS_QUERIES):  # a new source port each: spread over the workers
            query = dns.message.make_query(f"q{number}.8.118.88.id.example.", "TXT")
            answer = dns.query.udp(query, dns_host, port=int(dns_port), timeout=5)
            assert answer.rcode() == dns.rcode.NXDOMAIN
        grpc_calls = GRPC_CONNECTIONS * RESOLVES_PER_CONNECTION
        expected: dict[str, float] = {
            "grpc_resolve": grpc_calls, "grpc_duration": grpc_calls, "grpc_handled": grpc_calls,
            "dns_resolve": DNS_QUERIES, "dns_nxdomain": DNS_QUERIES,
        }  # fmt: skip
        text = wait_for(node.metrics, expected)
        assert totals(text) == expected
        promtool_check(text)

        metrics_dir = Path(node.ready["metrics_dir"])
        master = int(node.ready["pid"])
        workers = sorted(
            int(path.stem.rpartition("_")[2])
            for path in metrics_dir.glob("counter_*.db")
            if int(path.stem.rpartition("_")[2]) != master
        )
        assert len(workers) == 2
        served = [resolutions_by_worker(metrics_dir, pid, tmp_path) for pid in workers]
        assert sum(served) == grpc_calls
        assert all(share > 0 for share in served), f"one worker served everything: {served}"

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while node.log().count("worker ready") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node.log().count("worker ready") == 3, node.log()
        time.sleep(1.5)  # the replacement's first flush
        text = scrape(host, int(port))
        assert totals(text) == expected  # the dead worker's counts stay in the totals
        assert not list(metrics_dir.glob(f"gauge_live*_{workers[0]}.db"))
        assert (metrics_dir / f"counter_{workers[0]}.db").exists()
        promtool_check(text)
    finally:
        assert node.stop() == 0
