"""A real node and top-level node: the node pushes signed checkpoints, the top-level node
checks them, and refuses a node whose change log was altered in its data file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from registry import chainlog
from tests import datafile
from tests.sync import nodes
from tests.sync.nodes import Proc

pytestmark = pytest.mark.slow  # real processes, an outage and a restart: tens of seconds

PREFIX = "88.118"
ORIGINAL = b"https://example.com/late/2"
ALTERED = b"https://example.org/late/2"  # as long: the file keeps its layout


def _signed_to(node_dir: Path) -> tuple[int, int]:
    """(the last sequence, the last one a checkpoint covers) in the node's store."""
    with nodes.reading(node_dir) as store, store.read() as txn:
        newest = chainlog.last_checkpoint(txn, store)
        return store.last_sequence(txn), newest.last_sequence if newest is not None else 0


def test_pushes_carry_checkpoints_and_an_altered_change_log_is_refused_upstream(
    tmp_path: Path, procs: list[Proc]
) -> None:
    port = nodes.free_port()
    toplevel_dir, node_dir = tmp_path / "toplevel", tmp_path / "node"
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    token = nodes.add_node(toplevel, PREFIX)
    node = nodes.start_node(node_dir, PREFIX, toplevel.address, token)
    procs.append(node)
    nodes.register_many(node, PREFIX, 10, "early")
    nodes.wait_until("the mirror", lambda: nodes.converged(toplevel, node_dir, PREFIX))
    held = nodes.node_status(toplevel, PREFIX)
    assert held.public_key and held.checkpoint_sequence == held.acked_sequence
    assert nodes.mirror_records(toplevel_dir, PREFIX) == nodes.node_records(node_dir)

    # Changes made while the top-level node is away are signed, then altered on disk.
    toplevel.stop()
    nodes.register_many(node, PREFIX, 5, "late")
    nodes.wait_until("the late changes signed", lambda: len(set(_signed_to(node_dir))) == 1)
    node.stop()
    assert datafile.edit(node_dir, ORIGINAL, ALTERED) >= 1

    checked = subprocess.run(
        [nodes.IDNODE, "verify", "--data-dir", str(node_dir), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 1
    assert any(
        "does not hash to its chain hash" in p for p in json.loads(checked.stdout)["problems"]
    )

    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    node = nodes.start_node(node_dir, PREFIX, toplevel.address, token)
    procs.append(node)
    nodes.wait_until("the refusal", lambda: bool(nodes.node_status(toplevel, PREFIX).refusal))
    refused = nodes.node_status(toplevel, PREFIX)
    assert "do not hash to the signed head" in refused.refusal, refused.refusal
    assert refused.acked_sequence == held.acked_sequence  # none of the push was applied
    mirrored = nodes.mirror_records(toplevel_dir, PREFIX)
    assert not [key for key in mirrored if "/late-" in key]
    assert "sync refused" in toplevel.log_path.read_text()
