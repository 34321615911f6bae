"""A node killed with SIGKILL in the middle of a bulk import keeps every acknowledged batch."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import grpc

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc
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
