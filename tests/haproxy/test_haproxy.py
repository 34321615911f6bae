"""Debian's HAProxy with deploy/haproxy/haproxy.cfg in front of a primary and two replicas,
all real processes on loopback: resolution goes on while a replica is SIGKILLed and
restarted, writes reach the primary, every replica converges."""

from __future__ import annotations

import runpy
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from loadtest import haproxy
from loadtest.haproxy import Balancer
from proto import resolver_pb2, resolver_pb2_grpc
from tests.metrics.scrape import scrape_address, total
from tests.replica import nodes
from tests.sync.nodes import ADMIN, free_port, record, register_many, wait_until

ROOT = Path(__file__).resolve().parents[2]
needs_haproxy = pytest.mark.skipif(
    haproxy.find() is None,
    reason="haproxy not installed (make system-deps installs Debian 'haproxy')",
)
IDENTIFIERS = [f"88.118/lb-{n}" for n in range(200)]


def test_the_config_carries_the_health_check_its_generator_makes() -> None:
    generator = runpy.run_path(str(ROOT / "deploy" / "haproxy" / "grpc_health_check.py"))
    text = haproxy.CONFIG.read_text()
    for line in generator["lines"]():
        assert text.count(f"    {line}\n") == 2, line  # both gRPC backends


def start_haproxy(tmp_path: Path, primary: nodes.Proc, replicas: list[nodes.Proc]) -> Balancer:
    first, second = replicas
    return haproxy.start(
        primary.address,
        (first.address, second.address),
        _http(primary),
        (_http(first), _http(second)),
        log_path=tmp_path / "haproxy.log",
    )


def _http(proc: nodes.Proc) -> str:
    return str(proc.ready["http"][0])


@dataclass
class Clients:
    """Threads resolving through the balancer until stopped; every outcome timed."""

    address: str
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, count: int = 4) -> None:
        for number in range(count):
            thread = threading.Thread(target=self._run, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, number: int) -> None:
        channel = grpc.insecure_channel(self.address)
        stub = resolver_pb2_grpc.ResolverStub(channel)
        position = number
        deadline = time.monotonic() + 120  # bounded whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            identifier = IDENTIFIERS[position % len(IDENTIFIERS)]
            position += 7
            try:
                stub.Resolve(resolver_pb2.ResolveRequest(identifier=identifier), timeout=5)
                outcome = "ok"
            except grpc.RpcError as error:
                outcome = f"{error.code().name}: {error.details()}"
            self.outcomes.append((time.monotonic(), outcome))
            time.sleep(0.002)
        channel.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def failures_after(self, moment: float) -> list[str]:
        return [outcome for at, outcome in self.outcomes if at >= moment and outcome != "ok"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[nodes.Proc, list[nodes.Proc], str, list[int]]]:
    primary = nodes.start_primary(tmp_path / "primary", http=True)
    replicas: list[nodes.Proc] = []
    try:
        register_many(primary, "88.118", len(IDENTIFIERS), "lb")
        token = nodes.credential(tmp_path / "primary", "replicas")
        ports = [free_port(), free_port()]
        for number, port in enumerate(ports, start=1):
            replicas.append(
                nodes.start_replica(tmp_path / f"replica{number}", primary.address, token,
                                    port=port, http=True)
            )  # fmt: skip
        yield primary, replicas, token, ports
    finally:
        for proc in [*replicas, primary]:
            proc.stop()


@needs_haproxy
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_resolution_survives_a_replica_killed_and_restarted_behind_haproxy(
    tmp_path: Path, cluster: tuple[nodes.Proc, list[nodes.Proc], str, list[int]]
) -> None:
    primary, replicas, token, ports = cluster
    balancer = start_haproxy(tmp_path, primary, replicas)
    clients = Clients(balancer.grpc)
    try:
        wait_until("both replicas UP", lambda: _resolves(balancer.grpc))
        clients.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        replicas[0].kill()
        wait_until(
            "HAProxy to take replica1 out",
            lambda: "grpc_replicas/replica1 is DOWN" in balancer.log(),
            20,
        )
        removed_at = time.monotonic()
        time.sleep(2.0)
        # Writes through the balancer reach the primary while a replica is down.
        written = registry_through(balancer.grpc).Create(
            record("88.118/through-lb", ("URL", "https://example.com/lb")), metadata=ADMIN,
            timeout=10,
        )  # fmt: skip
        assert written.sequence == nodes.position(primary).last_sequence
        replicas[0] = nodes.start_replica(
            tmp_path / "replica1", primary.address, token, port=ports[0], http=True
        )
        wait_until(
            "HAProxy to take replica1 back",
            lambda: "grpc_replicas/replica1 is UP" in balancer.log(),
            30,
        )
        time.sleep(2.0)
        clients.stop()
        target = nodes.wait_converged(primary, *replicas)
        assert target == written.sequence
        served = len(clients.outcomes)
        in_window = clients.failures_after(killed_at)
        after_removal = clients.failures_after(removed_at)
        print(f"resolutions {served}, failed between kill and removal "
              f"{len(in_window) - len(after_removal)}, failed after removal {len(after_removal)}")  # fmt: skip
        assert served > 500
        assert after_removal == []
        # The replica that stayed up answered its round-robin share (the restarted one's
        # counters began again at its restart); the primary, a backup, answered none.
        assert all(_resolutions(proc) > 50 for proc in replicas[1:])
        assert _resolutions(primary) == 0
        # Read-your-writes through the balancer: whichever replica answers waits for it.
        seen = resolver_pb2_grpc.ResolverStub(grpc.insecure_channel(balancer.grpc)).Resolve(
            resolver_pb2.ResolveRequest(identifier="88.118/through-lb",
                                        min_sequence=written.sequence), timeout=10,
        )  # fmt: skip
        assert seen.values[0].data == b"https://example.com/lb"
        _http_through(balancer, written.sequence)
    finally:
        clients.stop()
        balancer.stop()


def _resolutions(proc: nodes.Proc) -> float:
    """gRPC resolutions a node counted (its /metrics; flushed once a second)."""
    time.sleep(1.2)
    text = scrape_address(str(proc.ready["metrics"]))
    return total(text, "idnode_resolve_requests_total", proto="grpc")


def registry_through(address: str) -> Any:
    from proto import registry_pb2_grpc

    return registry_pb2_grpc.RegistryStub(grpc.insecure_channel(address))


def _resolves(address: str) -> bool:
    try:
        resolver_pb2_grpc.ResolverStub(grpc.insecure_channel(address)).Resolve(
            resolver_pb2.ResolveRequest(identifier=IDENTIFIERS[0]), timeout=2
        )
    except grpc.RpcError:
        return False
    return True


def _http_through(balancer: Balancer, sequence: int) -> None:
    """HTTP through the balancer: a PUT reaches the primary (201 with its sequence), a read
    that asks for that sequence is answered by whichever replica serves it."""
    body = b'{"values": [{"index": 1, "type": "URL", "data": {"format": "string", "value": "https://example.com/h"}}]}'
    put = urllib.request.Request(
        f"http://{balancer.http}/api/handles/88.118/http-lb", data=body, method="PUT",
        headers={"Authorization": f"Bearer {ADMIN[0][1].split()[1]}",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(put, timeout=10) as reply:
        assert reply.status == 201
        written = int(reply.headers["X-Idnode-Sequence"])
    assert written > sequence
    get = urllib.request.Request(
        f"http://{balancer.http}/api/handles/88.118/http-lb",
        headers={"X-Idnode-Min-Sequence": str(written)},
    )
    with urllib.request.urlopen(get, timeout=10) as reply:
        assert reply.status == 200
        assert b"https://example.com/h" in reply.read()
