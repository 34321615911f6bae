"""A real worker (store, services, gRPC server on 127.0.0.1 port 0) per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from idnode.config import Config
from idnode.node.worker import Worker
from proto import registry_pb2, registry_pb2_grpc, resolver_pb2_grpc
from registry import accounts

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Node:
    worker: Worker
    address: str
    channel: grpc.Channel
    resolver: resolver_pb2_grpc.ResolverStub
    registry: registry_pb2_grpc.RegistryStub
    admin: Metadata

    def enterprise(self, code: str = "") -> tuple[str, Metadata]:
        reply = self.registry.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code=code, name=f"enterprise {code}"),
            metadata=self.admin,
        )
        return reply.prefix, bearer(reply.token)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with running_node(tmp_path / "data") as started:
        yield started


CLIENT_MAX_MESSAGE_BYTES = 64 << 20  # above any server limit a test sets: the server's counts


@contextmanager
def running_node(data_dir: Path, **overrides: Any) -> Iterator[Node]:
    """A worker serving gRPC on 127.0.0.1, built from Config(**overrides) as `idnode serve`
    builds its workers; it stops without the drain period unless one is given."""
    overrides.setdefault("shutdown_drain_seconds", 0.0)
    config = Config(data_dir=str(data_dir), node_prefix="88.118", dns_listen=(), **overrides)
    worker = Worker(config)
    worker.registry.ensure_node_prefix()
    token = accounts.ensure_admin(worker.store, None)
    assert token is not None
    port = worker.grpc.start(["127.0.0.1:0"])[0]
    worker.grpc.set_serving(True)
    address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(
        address, options=[("grpc.max_receive_message_length", CLIENT_MAX_MESSAGE_BYTES)]
    )
    try:
        yield Node(
            worker,
            address,
            channel,
            resolver_pb2_grpc.ResolverStub(channel),
            registry_pb2_grpc.RegistryStub(channel),
            bearer(token),
        )
    finally:
        channel.close()
        worker.stop()
