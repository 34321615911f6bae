"""A primary and its replicas as real `idnode serve` processes on loopback, and what tests ask."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import grpc

from proto import replica_pb2, replica_pb2_grpc
from tests.rpc import failure
from tests.sync.nodes import ADMIN, IDNODE, Proc, _start, wait_until

__all__ = ["ADMIN", "Proc", "credential", "position", "start_primary", "start_replica"]


def start_primary(
    data_dir: Path, port: int = 0, http: bool = False, workers: int = 1, dns: bool = False
) -> Proc:
    args = [
        "serve", "--data-dir", str(data_dir), "--node-prefix", "88.118", "--init",
        "--grpc-listen", f"127.0.0.1:{port}", "--metrics-listen", "127.0.0.1:0",
        "--workers", str(workers), *(["--dns-listen", "127.0.0.1:0"] if dns else ["--no-dns"]),
    ]  # fmt: skip
    if http:
        args += ["--http-listen", "127.0.0.1:0"]
    return _start(args, data_dir.parent / f"{data_dir.name}.log")


def start_replica(
    data_dir: Path,
    primary: str,
    token: str,
    port: int = 0,
    http: bool = False,
    workers: int = 1,
    extra: tuple[str, ...] = (),
    dns: bool = False,
) -> Proc:
    """A replica of `primary`; its ready line comes once it holds a whole copy."""
    args = [
        "serve", "--data-dir", str(data_dir), "--replica-of", primary, "--replica-token", token,
        "--grpc-listen", f"127.0.0.1:{port}", "--metrics-listen", "127.0.0.1:0",
        "--workers", str(workers), *extra,
        *(["--dns-listen", "127.0.0.1:0"] if dns else ["--no-dns"]),
    ]  # fmt: skip
    if http:
        args += ["--http-listen", "127.0.0.1:0"]
    return _start(args, data_dir.parent / f"{data_dir.name}.log")


def credential(primary_dir: Path, name: str) -> str:
    """A replication credential made on the primary's data dir (`idnode replica credential`)."""
    result = subprocess.run(
        [IDNODE, "replica", "credential", name, "--data-dir", str(primary_dir), "--json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return str(json.loads(result.stdout)["token"])


def position(proc: Proc) -> replica_pb2.PositionResponse:
    stub = replica_pb2_grpc.ReplicationStub(proc.channel())
    reply: replica_pb2.PositionResponse = stub.Position(replica_pb2.PositionRequest(), timeout=10)
    return reply


def wait_converged(primary: Proc, *replicas: Proc, timeout_seconds: float = 30.0) -> int:
    """Wait until every replica has applied the primary's last sequence; returns it."""
    target = position(primary).last_sequence
    for replica in replicas:
        wait_until(
            f"replica {replica.address} to reach {target}",
            lambda r=replica: position(r).last_sequence >= target,  # type: ignore[misc]
            timeout_seconds,
        )
    return int(target)


def status(data_dir: Path) -> dict[str, Any]:
    result = subprocess.run(
        [IDNODE, "status", "--data-dir", str(data_dir), "--json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def rpc_code(call: Any) -> grpc.StatusCode:
    """The status code a call raised (it must raise)."""
    return failure(call)[0]
