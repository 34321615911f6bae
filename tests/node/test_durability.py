"""A node killed with SIGKILL mid-import, or mid single writes, keeps every acknowledged one."""

from __future__ import annotations

import signal
import threading
import time
import urllib.request
from pathlib import Path

import grpc

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc
from registry import verify
from registry.store import Store, StoreOptions
from tests.node.conftest import ADMIN_TOKEN, start_node

BATCH = 1000
AUTH = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


def batch(number: int) -> registry_pb2.BatchRegisterRequest:
    return registry_pb2.BatchRegisterRequest(
        records=[
            handle_pb2.Record(
                identifier=f"88.118.5/B{number:04d}-{i:04d}",
                values=[
                    handle_pb2.HandleValue(
                        index=1, type="URL", data=f"https://e/{number}/{i}".encode()
                    ),
                    handle_pb2.HandleValue(index=2, type="batch", data=str(number).encode()),
                ],
            )
            for i in range(BATCH)
        ]
    )


def test_sigkill_during_import_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", "--workers", "2")
    acknowledged: list[int] = []
    stop = threading.Event()

    def importer() -> None:
        with grpc.insecure_channel(node.grpc) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)
            stub.CreateEnterprise(registry_pb2.CreateEnterpriseRequest(code="5"), metadata=AUTH)
            for number in range(10_000):
                if stop.is_set():
                    return
                try:
                    reply = stub.BatchRegister(batch(number), metadata=AUTH, timeout=30)
                except grpc.RpcError:
                    return  # the node is gone: this batch was never acknowledged
                assert reply.created == BATCH
                acknowledged.append(number)

    thread = threading.Thread(target=importer)
    thread.start()
    try:
        deadline = threading.Event()
        for _ in range(600):  # at most 60 s for 8 batches to be acknowledged
            if len(acknowledged) >= 8:
                break
            deadline.wait(0.1)
        assert len(acknowledged) >= 8, node.log()
        node.stop(signal.SIGKILL)  # master and workers at once, mid-batch
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()

    restarted = start_node(tmp_path / "data", "--workers", "2")
    try:
        with grpc.insecure_channel(restarted.grpc) as channel:
            resolver = resolver_pb2_grpc.ResolverStub(channel)
            for number in acknowledged:
                requests = [
                    resolver_pb2.ResolveRequest(identifier=f"88.118.5/B{number:04d}-{i:04d}")
                    for i in range(BATCH)
                ]
                reply = resolver.BatchResolve(resolver_pb2.BatchResolveRequest(requests=requests))
                for i, result in enumerate(reply.results):
                    assert result.status == 0, (number, i, result.error)
                    assert [v.data for v in result.response.values] == [
                        f"https://e/{number}/{i}".encode(),
                        str(number).encode(),
                    ]
    finally:
        restarted.stop()


WRITERS = 16
PREFIX = "88.118.6"


def values_of(identifier: str) -> list[handle_pb2.HandleValue]:
    return [
        handle_pb2.HandleValue(index=1, type="URL", data=f"https://e/{identifier}".encode()),
        handle_pb2.HandleValue(index=2, type="batch", data=identifier.encode()),
    ]


def added_value(identifier: str) -> handle_pb2.HandleValue:
    return handle_pb2.HandleValue(index=3, type="EMAIL", data=f"{identifier}@e".encode())


def commits_and_writes(metrics_address: str) -> tuple[float, float]:
    """(commits, writes in them) from the node's group-commit histogram."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = dict(
        line.split(" ", 1)
        for line in text.splitlines()
        if line.startswith(("idnode_store_commit_writes_count ", "idnode_store_commit_writes_sum "))
    )
    return (
        float(found.get("idnode_store_commit_writes_count", 0)),
        float(found.get("idnode_store_commit_writes_sum", 0)),
    )


def test_sigkill_during_concurrent_single_writes_keeps_every_acknowledged_one_whole(
    tmp_path: Path,
) -> None:
    node = start_node(tmp_path / "data", "--workers", "2")
    with grpc.insecure_channel(node.grpc) as channel:
        registry_pb2_grpc.RegistryStub(channel).CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="6"), metadata=AUTH
        )
    acknowledged: dict[str, int] = {}  # identifier -> values acknowledged (2, or 3)
    stop = threading.Event()

    def writer(number: int) -> None:
        # A channel each: their connections spread over both workers (SO_REUSEPORT).
        with grpc.insecure_channel(node.grpc) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)
            for serial in range(100_000):
                identifier = f"{PREFIX}/w{number:02d}-{serial:05d}"
                try:
                    if stop.is_set():
                        return
                    stub.Create(
                        handle_pb2.Record(identifier=identifier, values=values_of(identifier)),
                        metadata=AUTH, timeout=30,
                    )  # fmt: skip
                    acknowledged[identifier] = 2
                    stub.AddValues(
                        handle_pb2.Record(identifier=identifier, values=[added_value(identifier)]),
                        metadata=AUTH, timeout=30,
                    )  # fmt: skip
                    acknowledged[identifier] = 3
                except grpc.RpcError:
                    return  # the node is gone: this write was never acknowledged

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        grouped = False
        while time.monotonic() < deadline and not (grouped and len(acknowledged) >= 400):
            time.sleep(0.5)
            commits, writes = commits_and_writes(node.metrics)
            grouped = writes > commits > 0
        assert grouped, ("no commit held more than one write", commits_and_writes(node.metrics))
        assert len(acknowledged) >= 400, node.log()
        node.stop(signal.SIGKILL)  # master and workers at once, with writes in flight
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    expected = dict(acknowledged)

    restarted = start_node(tmp_path / "data", "--workers", "2")
    try:
        with grpc.insecure_channel(restarted.grpc) as channel:
            resolver = resolver_pb2_grpc.ResolverStub(channel)
            names = sorted(expected)
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                requests = [resolver_pb2.ResolveRequest(identifier=name) for name in chunk]
                reply = resolver.BatchResolve(resolver_pb2.BatchResolveRequest(requests=requests))
                for name, result in zip(chunk, reply.results, strict=True):
                    assert result.status == 0, (name, result.error)
                    indexes = [v.index for v in result.response.values]
                    assert indexes in ([1, 2], [1, 2, 3]), (name, indexes)
                    assert len(indexes) >= expected[name], (name, indexes)
    finally:
        restarted.stop()

    store = Store(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        assert verify.verify(store).problems == []
        with store.read() as txn:
            stored = dict(store.iter_records(txn, f"{PREFIX}/".encode(), f"{PREFIX}/".encode()))
    finally:
        store.close()
    assert set(expected) <= set(stored)
    for identifier, record in stored.items():  # acknowledged or not: whole, never half
        created = [content(v) for v in values_of(identifier)]
        assert [content(v) for v in record.values] in (
            created,
            [*created, content(added_value(identifier))],
        ), identifier


def content(value: handle_pb2.HandleValue) -> tuple[int, str, bytes]:
    return value.index, value.type, value.data
