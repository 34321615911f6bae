"""A node's identity at the top-level node: a second node with the same credential, or the
same node on an empty data dir, is refused and says so; an operator's reset lets it in."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from proto import sync_pb2, sync_pb2_grpc
from registry.identity import node_id
from sync.pusher import Pusher, PushOptions
from sync.toplevel.server import TopLevelNode
from tests.sync import nodes
from tests.sync.conftest import Secondary, open_secondary
from tests.sync.nodes import ADMIN, Proc, bearer, wait_until

PREFIX = "88.118"

FAST = PushOptions(
    backoff_initial_seconds=0.05, backoff_max_seconds=0.3, stats_interval_seconds=0.2
)


def pusher_for(secondary: Secondary, address: str, token: str, status_path: Path) -> Pusher:
    made = Pusher(
        secondary.store, "88.118", address, token, options=FAST, status_path=str(status_path)
    )
    made.start()
    return made


def test_a_second_node_with_the_same_credential_is_refused_until_a_reset(
    secondary: Secondary,
    toplevel: tuple[TopLevelNode, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node, address = toplevel
    _, token = node.mirror.add_node("88.118", [])
    for n in range(20):
        last = secondary.register(f"88.118/item-{n}", f"https://example.com/{n}")
    first = pusher_for(secondary, address, token, tmp_path / "a.json")
    try:
        wait_until(
            "the first node's sync", lambda: node.mirror.node("88.118").acked_sequence == last
        )
    finally:
        first.stop()
    kept = node.mirror.mirror_records("88.118")
    assert node.mirror.node("88.118").node_id == node_id(secondary.store)

    caplog.set_level(logging.INFO, logger="sync")
    empty = open_secondary(tmp_path / "empty")  # the same node prefix, a new data dir
    status_path = tmp_path / "b.json"
    second = pusher_for(empty, address, token, status_path)
    try:
        wait_until("the refusal", lambda: second.failures.count >= 3)
        assert node.mirror.mirror_records("88.118") == kept
        assert node.mirror.node("88.118").acked_sequence == last
        noted = json.loads(status_path.read_text())
        assert noted["state"] == "refused" and noted["code"] == "FAILED_PRECONDITION"
        assert "idnode toplevel node reset 88.118" in noted["error"]
        refusals = [r for r in caplog.records if "refus" in r.getMessage()]
        by_logger = sorted(r.name for r in refusals)
        assert by_logger == ["sync.retry", "sync.toplevel.service"], by_logger  # once each
        with grpc.insecure_channel(address) as channel:
            stub = sync_pb2_grpc.TopLevelStub(channel)
            listed = stub.ListNodes(sync_pb2.ListNodesRequest(), metadata=ADMIN, timeout=10)
            assert "homed to node identity" in listed.nodes[0].refusal
            with pytest.raises(grpc.RpcError) as denied:
                stub.ResetNode(
                    sync_pb2.ResetNodeRequest(node_prefix="88.118"), metadata=bearer(token)
                )
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            reply = stub.ResetNode(sync_pb2.ResetNodeRequest(node_prefix="88.118"), metadata=ADMIN)
        assert reply.previous_node_id == node_id(secondary.store)
        wait_until("the rebuilt node's snapshot", lambda: node.mirror.node("88.118").snapshots == 1)
        assert node.mirror.mirror_records("88.118") == empty.held() == {}
        assert node.mirror.node("88.118").node_id == node_id(empty.store)
        wait_until("its status", lambda: json.loads(status_path.read_text())["state"] == "idle")
    finally:
        second.stop()
        empty.store.close()


def status(data_dir: Path) -> dict[str, Any]:
    shown = subprocess.run(
        [nodes.IDNODE, "status", "--data-dir", str(data_dir), "--json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def toplevel_command(toplevel: Proc, *args: str) -> dict[str, Any]:
    shown = subprocess.run(
        [nodes.IDNODE, "toplevel", "node", *args, "--server", toplevel.address,
         "--token", nodes.ADMIN_TOKEN, "--json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


@pytest.mark.slow  # three real processes, a refusal and a takeover
def test_a_node_on_an_empty_data_dir_leaves_the_mirror_alone_until_an_operator_resets(
    tmp_path: Path, procs: list[Proc]
) -> None:
    toplevel_dir, first_dir, second_dir = (tmp_path / n for n in ("toplevel", "a", "b"))
    toplevel = nodes.start_toplevel(toplevel_dir)
    procs.append(toplevel)
    token = nodes.add_node(toplevel, PREFIX)
    first = nodes.start_node(first_dir, PREFIX, toplevel.address, token)
    procs.append(first)
    nodes.register_many(first, PREFIX, 30, "first")
    nodes.wait_until("the sync", lambda: nodes.converged(toplevel, first_dir, PREFIX))
    held = nodes.node_records(first_dir)

    # The same node prefix and credential on an empty data dir (an unmounted volume
    # started with --init, a copied configuration): refused, the mirror untouched.
    second = nodes.start_node(second_dir, PREFIX, toplevel.address, token)
    procs.append(second)
    nodes.wait_until("the refusal", lambda: status(second_dir)["upstream"]["health"] == "refused")
    shown = status(second_dir)["upstream"]
    assert "homed to node identity" in shown["detail"]
    assert f"idnode toplevel node reset {PREFIX}" in shown["detail"]
    nodes.register_many(first, PREFIX, 5, "still-first")  # the homed node syncs on
    nodes.wait_until("the sync", lambda: nodes.converged(toplevel, first_dir, PREFIX))
    assert nodes.mirror_records(toplevel_dir, PREFIX) == nodes.node_records(first_dir)
    assert len(nodes.mirror_records(toplevel_dir, PREFIX)) == len(held) + 5
    listed = toplevel_command(toplevel, "list")["nodes"][0]
    assert listed["refusal"].startswith(f"node prefix {PREFIX} is homed to node identity")
    assert [s["grpc_address"] for s in listed["sites"]] == [first.address]
    refused_lines = [line for line in second.log_path.read_text().splitlines() if "refus" in line]
    assert len(refused_lines) == 1, refused_lines  # once, not at every retry
    assert toplevel.log_path.read_text().count("sync refused") == 1

    # The first node's disk is gone for good: the operator lets the rebuilt one take over.
    first.stop()
    reset = toplevel_command(toplevel, "reset", PREFIX)
    assert reset["previous_node_id"] == listed["node_id"]
    nodes.wait_until(
        "the rebuilt node's snapshot", lambda: nodes.converged(toplevel, second_dir, PREFIX)
    )
    mirrored = nodes.mirror_records(toplevel_dir, PREFIX)
    # nothing registered: only the rebuilt node's prefix record, with its new HS_PUBKEY
    assert mirrored == nodes.node_records(second_dir) and list(mirrored) == ["0.na/88.118"]
    nodes.wait_until("its status", lambda: status(second_dir)["upstream"]["health"] == "ok")
    assert (
        toplevel_command(toplevel, "list")["nodes"][0]["node_id"]
        == status(second_dir)["upstream"]["node_id"]
    )
