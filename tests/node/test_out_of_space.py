"""A real node whose disk fills: RESOURCE_EXHAUSTED "store is out of disk space", logged once,
counted in /metrics, and it keeps resolving what it stored."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import grpc
import pytest

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc
from tests.metrics.scrape import sample, scrape
from tests.node.conftest import ADMIN_TOKEN, start_node
from tests.registry import full_disk

ADMIN = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
DISK_BYTES = 16 << 20
REFUSALS = 4


def batch(number: int) -> registry_pb2.BatchRegisterRequest:
    records = [
        handle_pb2.Record(
            identifier=f"88.118.8/b{number}-{n}",
            values=[
                handle_pb2.HandleValue(index=1, type="URL", data=os.urandom(500).hex().encode())
            ],
        )
        for n in range(200)
    ]
    return registry_pb2.BatchRegisterRequest(records=records)


def refusals_counted(address: str) -> float:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + 10
    while True:
        counted = sample(scrape(host, int(port)), "idnode_store_out_of_space_total") or 0.0
        if counted >= REFUSALS or time.monotonic() > deadline:
            return counted
        time.sleep(0.2)  # workers flush their counters about once a second


@pytest.mark.parametrize("method", full_disk.METHODS)
def test_full_disk_is_resource_exhausted_logged_once_and_counted(
    tmp_path: Path, method: str
) -> None:
    with contextlib.ExitStack() as stack:
        if method == "tmpfs":
            data_dir = stack.enter_context(full_disk.tmpfs(tmp_path / "data", DISK_BYTES))
            node = start_node(data_dir)
        else:
            data_dir = tmp_path / "data"
            node = start_node(data_dir, preexec_fn=full_disk.limit_file_size(DISK_BYTES))
        stack.callback(node.stop)
        channel = stack.enter_context(grpc.insecure_channel(node.grpc))
        registry = registry_pb2_grpc.RegistryStub(channel)
        registry.CreateEnterprise(registry_pb2.CreateEnterpriseRequest(code="8"), metadata=ADMIN)
        refused: list[tuple[grpc.StatusCode, str | None]] = []
        stored = 0
        for number in range(1000):
            try:
                registry.BatchRegister(batch(number), metadata=ADMIN, timeout=30)
                stored += 1
            except grpc.RpcError as error:
                refused.append((error.code(), error.details()))
                if len(refused) == REFUSALS:
                    break
        assert stored > 0
        assert (
            refused
            == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "store is out of disk space")] * REFUSALS
        )
        time.sleep(1.5)  # past a metrics flush: the worker still serves afterwards
        resolver = resolver_pb2_grpc.ResolverStub(channel)
        answer = resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.8/b0-0"))
        assert len(answer.values) == 1
        assert refusals_counted(node.metrics) == REFUSALS
        logged = [line for line in node.log().splitlines() if "out of disk space" in line]
        assert len(logged) == 1, logged
