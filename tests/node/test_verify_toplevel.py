"""`idnode verify` on a real top-level node's data dir: its mirror keeps no change log of its
own, and that is no problem; damage to it still is."""

from __future__ import annotations

import json
from pathlib import Path

from proto import handle_pb2, registry_pb2
from registry.store import Store, StoreOptions
from tests.node.conftest import run_cli
from tests.sync import nodes
from tests.sync.nodes import ADMIN


def build_toplevel(tmp_path: Path) -> Path:
    """A top-level node mirroring a secondary through real sync: creates, updates, a delete,
    enterprises, a delegation, then stopped cleanly."""
    toplevel = nodes.start_toplevel(tmp_path / "toplevel")
    secondary = None
    try:
        token = nodes.add_node(toplevel, "88.101")
        secondary = nodes.start_node(tmp_path / "node", "88.101", toplevel.address, token)
        stub = nodes.registry(secondary)
        for code in ("1", "2"):
            stub.CreateEnterprise(registry_pb2.CreateEnterpriseRequest(code=code), metadata=ADMIN)
        nodes.register_many(secondary, "88.101.1", 300, "a")
        nodes.register_many(secondary, "88.101.1", 100, "a")  # the same again: unchanged
        stub.BatchRegister(
            registry_pb2.BatchRegisterRequest(
                records=[nodes.record("88.101.1/a-1", ("URL", "https://changed"))]
            ),
            metadata=ADMIN,
        )
        stub.Delete(registry_pb2.DeleteRequest(identifier="88.101.1/a-2"), metadata=ADMIN)
        stub.Create(nodes.record("88.101.2.7/derived", ("URL", "https://d")), metadata=ADMIN)
        stub.PutPrefix(
            registry_pb2.PutPrefixRequest(
                prefix="88.101.2", sites=[handle_pb2.Site(grpc_address="127.0.0.1:9")]
            ),
            metadata=ADMIN,
        )
        nodes.wait_until(
            "the mirror caught up", lambda: nodes.converged(toplevel, tmp_path / "node", "88.101")
        )
    finally:
        if secondary is not None:
            secondary.stop()
        toplevel.stop()
    return tmp_path / "toplevel"


def test_verify_of_a_real_toplevel_store_is_clean_and_still_finds_damage(tmp_path: Path) -> None:
    data_dir = build_toplevel(tmp_path)

    clean = run_cli("verify", "--data-dir", str(data_dir), "--json")

    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["problems"] == []
    # 300 registered, one deleted, one derived; the node's prefix record (its HS_PUBKEY)
    assert report["records"] == 300 + 1
    assert report["changes"] == 0
    store = Store(str(data_dir), StoreOptions(durable=False))
    try:
        store.write(lambda batch: batch.txn.put(b"88.101.1/bad", b"\xff\xff", db=store.records))
    finally:
        store.close()
    damaged = run_cli("verify", "--data-dir", str(data_dir), "--json")
    assert damaged.returncode == 1
    assert json.loads(damaged.stdout)["problems"] == ["record 88.101.1/bad does not parse"]
