"""Backup while registrations run, restore into a new dir, verify, serve the restored copy."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc
from registry.store import Store
from tests.node.conftest import ADMIN_TOKEN, run_cli, start_node

AUTH = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
BATCH = 200


def _batch(number: int) -> registry_pb2.BatchRegisterRequest:
    return registry_pb2.BatchRegisterRequest(
        records=[
            handle_pb2.Record(
                identifier=f"88.118.3/R{number}-{i}",
                values=[
                    handle_pb2.HandleValue(index=1, type="URL", data=f"u{number}-{i}".encode())
                ],
            )
            for i in range(BATCH)
        ]
    )


def test_backup_during_writes_restores_everything_acknowledged_before(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data")
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with grpc.insecure_channel(node.grpc) as channel:
            stub = registry_pb2_grpc.RegistryStub(channel)
            stub.CreateEnterprise(registry_pb2.CreateEnterpriseRequest(code="3"), metadata=AUTH)
            number = 0
            while not stop.is_set() and number < 2000:
                stub.BatchRegister(_batch(number), metadata=AUTH, timeout=30)
                acknowledged.append(number)
                number += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            if len(acknowledged) >= 5:
                break
            stop.wait(0.05)
        before_backup = list(acknowledged)
        assert before_backup, node.log()
        backup = run_cli("backup", str(tmp_path / "backup"), "--data-dir", str(node.data_dir))
        assert backup.returncode == 0, backup.stderr
        assert "backup:" in backup.stderr  # progress was shown
    finally:
        stop.set()
        thread.join(60)
        node.stop()

    refused = run_cli("restore", str(tmp_path / "backup"), "--data-dir", str(node.data_dir))
    assert refused.returncode == 2
    assert "already holds a store" in refused.stderr

    restored_dir = tmp_path / "restored"
    restored = run_cli("restore", str(tmp_path / "backup"), "--data-dir", str(restored_dir))
    assert restored.returncode == 0, restored.stderr
    verified = run_cli("verify", "--data-dir", str(restored_dir), "--json")
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"] is True

    again = start_node(restored_dir)
    try:
        with grpc.insecure_channel(again.grpc) as channel:
            resolver = resolver_pb2_grpc.ResolverStub(channel)
            for number in before_backup:
                reply = resolver.BatchResolve(
                    resolver_pb2.BatchResolveRequest(
                        requests=[
                            resolver_pb2.ResolveRequest(identifier=f"88.118.3/R{number}-{i}")
                            for i in range(BATCH)
                        ]
                    )
                )
                assert all(r.status == 0 for r in reply.results), number
    finally:
        again.stop()


def test_verify_reports_a_damaged_store(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data")
    run_cli("enterprise", "create", "--server", node.grpc, "--code", "4")
    run_cli("register", "88.118.4/x", "--value", "URL=u", "--server", node.grpc)
    node.stop()
    assert run_cli("verify", "--data-dir", str(node.data_dir)).returncode == 0

    store = Store(str(node.data_dir))
    with store.env.begin(write=True) as txn:
        txn.put(b"88.118.4/x", b"\xff\xff not a record", db=store.records)
        txn.put(b"88.118.4/ghost", b"", db=store.records)
    store.close()

    damaged = run_cli("verify", "--data-dir", str(node.data_dir))
    assert damaged.returncode == 1
    assert "record 88.118.4/x does not parse" in damaged.stdout
    assert "88.118.4/ghost" in damaged.stdout
