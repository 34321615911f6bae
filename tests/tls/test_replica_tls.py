"""A replica follows a primary that serves gRPC over TLS, verifying it against a CA."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from proto import registry_pb2_grpc, replica_pb2, replica_pb2_grpc
from resolver.tls import ClientTls, open_channel
from tests.replica import nodes
from tests.sync.nodes import ADMIN, record, wait_until
from tests.tls.conftest import Pki

pytestmark = pytest.mark.timeout(120)


def _last(channel: grpc.Channel) -> int:
    stub = replica_pb2_grpc.ReplicationStub(channel)
    return int(stub.Position(replica_pb2.PositionRequest(), timeout=10).last_sequence)


def test_a_replica_follows_a_primary_over_verified_tls(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = pki.server()
    monkeypatch.setenv("IDNODE_TLS_CERT_FILE", cert)  # both nodes serve gRPC over TLS
    monkeypatch.setenv("IDNODE_TLS_KEY_FILE", key)
    monkeypatch.setenv("IDNODE_REPLICA_CA_FILE", pki.ca_file)  # the replica verifies it
    tls = ClientTls(ca_file=pki.ca_file)
    primary = nodes.start_primary(tmp_path / "primary")
    replica = None
    channels: list[grpc.Channel] = []
    try:
        to_primary = open_channel(primary.address, tls)
        channels.append(to_primary)
        registry = registry_pb2_grpc.RegistryStub(to_primary)
        registry.Create(record("88.118/over-tls", ("URL", "https://e.example/")), metadata=ADMIN)
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(tmp_path / "replica", primary.address, token)
        to_replica = open_channel(replica.address, tls)
        channels.append(to_replica)
        written = registry.Create(record("88.118/after", ("URL", "https://e.example/a")),
                                  metadata=ADMIN)  # fmt: skip
        wait_until("the replica", lambda: _last(to_replica) >= written.sequence)
        assert nodes.status(tmp_path / "replica")["state"] == "following"
    finally:
        for channel in channels:
            channel.close()
        for proc in (replica, primary):
            if proc is not None:
                proc.stop()
