"""A replica's HTTP face and health: writes sent to the primary, read-your-writes by
header, and NOT_SERVING while it lags more than max_lag_seconds."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.replica import nodes
from tests.sync.nodes import ADMIN, free_port, wait_until

pytestmark = pytest.mark.timeout(120)
TOKEN = ADMIN[0][1].split()[1]
BODY = json.dumps(
    {
        "values": [
            {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://e.example/"}}
        ]
    }
).encode()


def _request(
    proc: nodes.Proc, method: str, path: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    host, _, port = str(proc.ready["http"][0]).rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = BODY if method == "PUT" else None
    connection.request(method, path, body=body, headers=headers or {})
    reply = connection.getresponse()
    reply.read()
    connection.close()
    return reply


def _health(proc: nodes.Proc) -> int:
    stub = health_pb2_grpc.HealthStub(proc.channel())
    try:
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
    except grpc.RpcError:
        return -1


def test_http_writes_are_sent_to_the_primary_and_reads_wait_for_a_sequence(tmp_path: Path) -> None:
    primary = nodes.start_primary(tmp_path / "primary", http=True)
    replica = None
    try:
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(tmp_path / "replica", primary.address, token, http=True)
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        moved = _request(replica, "PUT", "/api/handles/88.118/w%20x?overwrite=true", auth)
        assert moved.status == 307
        site = "http://" + str(primary.ready["http"][0])
        assert moved.headers["Location"] == f"{site}/api/handles/88.118/w%20x?overwrite=true"
        assert _request(replica, "DELETE", "/api/handles/88.118/w", auth).status == 307

        written = _request(primary, "PUT", "/api/handles/88.118/w%20x", auth)
        assert written.status == 201
        sequence = int(written.headers["X-Idnode-Sequence"])
        seen = _request(
            replica, "GET", "/api/handles/88.118/w%20x", {"X-Idnode-Min-Sequence": str(sequence)}
        )
        assert seen.status == 200
        behind = _request(
            replica, "GET", "/88.118/w%20x", {"X-Idnode-Min-Sequence": str(sequence + 500)}
        )
        assert behind.status == 503 and behind.headers["Retry-After"] == "1"
        bad = _request(replica, "GET", "/88.118/w%20x", {"X-Idnode-Min-Sequence": "soon"})
        assert bad.status == 400
        assert _request(replica, "GET", "/healthz").status == 200
    finally:
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()


def test_a_replica_lagging_past_max_lag_seconds_is_not_serving_until_it_catches_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    primary = nodes.start_primary(tmp_path / "primary", port=port, http=True)
    replica = None
    try:
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(
            tmp_path / "replica", primary.address, token, http=True,
            extra=("--max-lag-seconds", "2"),
        )  # fmt: skip
        serving = health_pb2.HealthCheckResponse.SERVING
        wait_until("the replica to serve", lambda: _health(replica) == serving)
        primary.stop()
        wait_until("NOT_SERVING", lambda: _health(replica) != serving, 20)
        assert _request(replica, "GET", "/healthz").status == 503
        assert nodes.status(tmp_path / "replica")["state"] == "connecting"
        primary = nodes.start_primary(tmp_path / "primary", port=port, http=True)
        wait_until("SERVING again", lambda: _health(replica) == serving, 30)
        assert _request(replica, "GET", "/healthz").status == 200
    finally:
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()
