"""A real `idnode serve` attacked from outside: its worker's memory, its answers, its store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc
from tests.node.conftest import ADMIN_TOKEN, NodeProcess, run_cli, start_node

CLIENT_MAX_MESSAGE_BYTES = 64 << 20  # above the node's limits: the node's bounds are tested

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Target:
    """The node under attack and a client channel to it."""

    process: NodeProcess
    channel: grpc.Channel
    resolver: resolver_pb2_grpc.ResolverStub
    registry: registry_pb2_grpc.RegistryStub

    @property
    def address(self) -> str:
        return self.process.grpc

    def enterprise(self, code: str) -> tuple[str, str]:
        """A new enterprise: its prefix and its token."""
        reply = self.registry.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code=code), metadata=bearer(ADMIN_TOKEN)
        )
        return reply.prefix, reply.token

    def worker_rss_bytes(self) -> int:
        """Resident memory of the (one) worker process."""
        return sum(rss_bytes(pid) for pid in worker_pids(self.process.process.pid))

    def still_answers(self, identifier: str, data: bytes) -> None:
        reply = self.resolver.Resolve(resolver_pb2.ResolveRequest(identifier=identifier), timeout=5)
        assert [v.data for v in reply.values] == [data]


@contextmanager
def attacked(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Target]:
    """A node started with `idnode serve` (one worker; config from IDNODE_* in `env`)."""
    process = start_node(data_dir, env=env)
    channel = grpc.insecure_channel(
        process.grpc,
        options=[
            ("grpc.max_receive_message_length", CLIENT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", CLIENT_MAX_MESSAGE_BYTES),
        ],
    )
    try:
        yield Target(
            process,
            channel,
            resolver_pb2_grpc.ResolverStub(channel),
            registry_pb2_grpc.RegistryStub(channel),
        )
    finally:
        channel.close()
        process.stop()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    with attacked(tmp_path / "data") as started:
        yield started


@pytest.fixture
def seeded(target: Target) -> tuple[Target, str]:
    """The target with one enterprise and one record, the known answer to check against."""
    prefix, token = target.enterprise("1")
    target.registry.Create(
        handle_pb2.Record(
            identifier=f"{prefix}/known",
            values=[handle_pb2.HandleValue(index=1, type="URL", data=b"https://known")],
        ),
        metadata=bearer(token),
    )
    target.still_answers(f"{prefix}/known", b"https://known")
    return target, f"{prefix}/known"


def worker_pids(master_pid: int) -> list[int]:
    """The master's worker processes (spawned interpreters), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if parent == master_pid and b"spawn_main" in command:
            found.append(int(entry))
    assert found, f"no worker process under {master_pid}"
    return found


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of process `pid` now, or its high-water mark with field "VmHWM"."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def verify(data_dir: Path) -> dict[str, object]:
    """`idnode verify --json` on the data dir (a node may be serving it)."""
    result = run_cli("verify", "--data-dir", str(data_dir), "--json", token=None)
    document: dict[str, object] = json.loads(result.stdout)
    assert result.returncode == 0 and document["ok"], result.stdout + result.stderr
    return document
