"""Real `idnode toplevel` and `idnode serve` subprocesses on loopback, and what tests ask of them."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from proto import (
    handle_pb2,
    registry_pb2,
    registry_pb2_grpc,
    resolver_pb2,
    resolver_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)
from registry.store import Store, StoreOptions
from sync.toplevel.mirror import Mirror
from tests.ports import free_port as free_port

ADMIN_TOKEN = "admin-token-for-sync-tests"
IDNODE = str(Path(sys.executable).parent / "idnode")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0

Metadata = tuple[tuple[str, str], ...]
ADMIN: Metadata = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def wait_until(what: str, check: Callable[[], bool], timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Proc:
    """One node process (its own session, so its workers die with it)."""

    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    log_path: Path
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self.ready["grpc"][0])

    def channel(self) -> grpc.Channel:
        opened = grpc.insecure_channel(self.address)
        self.channels.append(opened)
        return opened

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()

    def kill(self) -> None:
        """SIGKILL the whole process group: no draining, no clean close."""
        self._signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_SECONDS)
        self._close()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def _close(self) -> None:
        for opened in self.channels:
            opened.close()
        self.channels.clear()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _start(args: list[str], log_path: Path) -> Proc:
    env = {
        **os.environ,
        "IDNODE_ADMIN_TOKEN": ADMIN_TOKEN,
        "IDNODE_SYNC_STATS_INTERVAL_SECONDS": "0.3",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [IDNODE, *args], stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
        )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    buffered = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.2)
        if readable:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            buffered += chunk
            for line in buffered.split(b"\n")[:-1]:
                with contextlib.suppress(ValueError):
                    document = json.loads(line)
                    if isinstance(document, dict) and document.get("event") == "ready":
                        return Proc(process, document, log_path)
        elif process.poll() is not None:
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT_SECONDS)
    raise AssertionError(f"{args[0]} did not become ready:\n{log_path.read_text()[-3000:]}")


def start_toplevel(
    data_dir: Path, port: int = 0, probe_interval: float = 0.25, extra: Sequence[str] = ()
) -> Proc:
    return _start(
        [
            "toplevel", "--data-dir", str(data_dir), "--grpc-listen", f"127.0.0.1:{port}",
            "--probe-interval", str(probe_interval), "--probe-failures", "2", *extra,
        ],
        data_dir.parent / f"{data_dir.name}.log",
    )  # fmt: skip


def start_node(
    data_dir: Path, node_prefix: str, upstream: str = "", token: str = "", port: int = 0
) -> Proc:
    args = [
        "serve", "--data-dir", str(data_dir), "--node-prefix", node_prefix, "--init",
        "--grpc-listen", f"127.0.0.1:{port}", "--no-dns", "--metrics-listen", "127.0.0.1:0",
        "--workers", "1",
    ]  # fmt: skip
    if upstream:
        args += ["--upstream", upstream, "--upstream-token", token]
    return _start(args, data_dir.parent / f"{data_dir.name}.log")


# Calls ----------------------------------------------------------------------------


def toplevel_stub(proc: Proc) -> Any:
    return sync_pb2_grpc.TopLevelStub(proc.channel())


def add_node(toplevel: Proc, node_prefix: str, token: str = "") -> str:
    reply = toplevel_stub(toplevel).AddNode(
        sync_pb2.AddNodeRequest(node_prefix=node_prefix, token=token), metadata=ADMIN, timeout=10
    )
    return str(reply.token)


def node_status(toplevel: Proc, node_prefix: str) -> sync_pb2.NodeStatus:
    reply = toplevel_stub(toplevel).ListNodes(
        sync_pb2.ListNodesRequest(), metadata=ADMIN, timeout=10
    )
    for node in reply.nodes:
        if node.node_prefix == node_prefix:
            found: sync_pb2.NodeStatus = node
            return found
    raise AssertionError(f"node {node_prefix} is not homed")


def registry(proc: Proc) -> Any:
    return registry_pb2_grpc.RegistryStub(proc.channel())


def resolver(proc: Proc) -> Any:
    return resolver_pb2_grpc.ResolverStub(proc.channel())


def record(identifier: str, *pairs: tuple[str, str]) -> handle_pb2.Record:
    made = handle_pb2.Record(identifier=identifier)
    for index, (kind, data) in enumerate(pairs, start=1):
        made.values.add(index=index, type=kind, data=data.encode())
    return made


def register_many(node: Proc, prefix: str, count: int, tag: str, batch: int = 500) -> None:
    """Register `count` identifiers under `prefix` in batches; every one must be accepted."""
    stub = registry(node)
    for start in range(0, count, batch):
        records = [
            record(f"{prefix}/{tag}-{n}", ("URL", f"https://example.com/{tag}/{n}"), ("batch", tag))
            for n in range(start, min(count, start + batch))
        ]
        reply = stub.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=records), metadata=ADMIN, timeout=30
        )
        assert reply.rejected == 0, [r.error for r in reply.results if r.error][:3]


def resolve(proc: Proc, identifier: str, recursive: bool = False) -> resolver_pb2.ResolveResponse:
    reply: resolver_pb2.ResolveResponse = resolver(proc).Resolve(
        resolver_pb2.ResolveRequest(identifier=identifier, recursive=recursive), timeout=10
    )
    return reply


# Comparing what both sides hold ---------------------------------------------------------


@contextlib.contextmanager
def reading(data_dir: Path) -> Iterator[Store]:
    store = Store(str(data_dir), StoreOptions(readonly=True))
    try:
        yield store
    finally:
        store.close()


def node_records(data_dir: Path) -> dict[str, bytes]:
    with reading(data_dir) as store, store.read() as txn:
        return {key: record.SerializeToString() for key, record in store.iter_records(txn)}


def node_last_sequence(data_dir: Path) -> int:
    with reading(data_dir) as store, store.read() as txn:
        return store.last_sequence(txn)


def mirror_records(data_dir: Path, node_prefix: str) -> dict[str, bytes]:
    with reading(data_dir) as store:
        return Mirror(store).mirror_records(node_prefix)


def converged(toplevel: Proc, node_dir: Path, node_prefix: str) -> bool:
    return node_status(toplevel, node_prefix).acked_sequence == node_last_sequence(node_dir)
