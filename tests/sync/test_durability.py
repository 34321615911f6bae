"""The mirror converges exactly through outages, crashes and a wiped top-level node."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.sync import nodes
from tests.sync.nodes import Proc

pytestmark = (
    pytest.mark.slow
)  # Outages, SIGKILLs and wipes of real node processes: tens of seconds.

PREFIX = "88.118"


def assert_mirror_exact(toplevel: Proc, toplevel_dir: Path, node_dir: Path) -> None:
    nodes.wait_until(
        "the mirror to catch up", lambda: nodes.converged(toplevel, node_dir, PREFIX), 60
    )
    held = nodes.node_records(node_dir)
    mirrored = nodes.mirror_records(toplevel_dir, PREFIX)
    assert len(mirrored) == len(held)
    assert mirrored == held
    assert nodes.node_status(toplevel, PREFIX).mirrored_records == len(held)


def sync_metrics(node: Proc) -> dict[str, float]:
    """The node's idnode_sync_* samples from /metrics, by name and labels."""
    with urllib.request.urlopen(f"http://{node.ready['metrics']}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("idnode_sync_"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def status(node_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [nodes.IDNODE, "status", "--data-dir", str(node_dir), "--json"],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_registrations_during_an_upstream_outage_all_succeed_and_converge(
    tmp_path: Path, procs: list[Proc]
) -> None:
    port = nodes.free_port()
    toplevel_dir, node_dir = tmp_path / "toplevel", tmp_path / "node"
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    token = nodes.add_node(toplevel, PREFIX)
    node = nodes.start_node(node_dir, PREFIX, toplevel.address, token)
    procs.append(node)
    nodes.register_many(node, PREFIX, 10, "before")
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)
    toplevel.stop()

    started = time.monotonic()
    nodes.register_many(node, PREFIX, 2000, "outage")
    assert time.monotonic() - started < 30  # never waits on the upstream's call timeout
    nodes.wait_until(
        "status to notice", lambda: status(node_dir)["upstream"]["health"] == "unreachable", 15
    )
    seen = status(node_dir)
    assert seen["pending_entries"] == 2000 and float(seen["lag_seconds"]) > 0
    label = f'{{upstream="{toplevel.address}"}}'
    nodes.wait_until(
        "the lag gauge", lambda: sync_metrics(node)[f"idnode_sync_lag_seconds{label}"] > 0, 10
    )
    assert (
        sync_metrics(node)[
            f'idnode_sync_pushes_total{{result="error",upstream="{toplevel.address}"}}'
        ]
        >= 1
    )

    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)
    # 2010 registered, and the node's prefix record 0.NA/88.118 with its HS_PUBKEY
    assert len(nodes.mirror_records(toplevel_dir, PREFIX)) == 2010 + 1
    assert nodes.node_status(toplevel, PREFIX).snapshots == 0  # the log served: incremental
    nodes.wait_until(
        "status to recover", lambda: status(node_dir)["upstream"]["health"] == "ok", 15
    )
    assert status(node_dir)["pending_entries"] == 0
    last = nodes.node_last_sequence(node_dir)
    nodes.wait_until(
        "the acked gauge",
        lambda: sync_metrics(node)[f"idnode_sync_acked_sequence{label}"] == last,
        10,
    )
    assert sync_metrics(node)[f"idnode_sync_lag_seconds{label}"] == 0


def _backlog(tmp_path: Path, procs: list[Proc], count: int) -> tuple[int, Path, Path, Proc, str]:
    """A node with `count` registrations made while its top-level node was not yet up."""
    port = nodes.free_port()
    toplevel_dir, node_dir = tmp_path / "toplevel", tmp_path / "node"
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    token = nodes.add_node(toplevel, PREFIX)
    toplevel.stop()
    node = nodes.start_node(node_dir, PREFIX, f"127.0.0.1:{port}", token)
    procs.append(node)
    nodes.register_many(node, PREFIX, count, "backlog", batch=1000)
    return port, toplevel_dir, node_dir, node, token


def _midway(toplevel: Proc, node_dir: Path) -> None:
    last = nodes.node_last_sequence(node_dir)
    nodes.wait_until(
        "a sync in progress",
        lambda: 0 < nodes.node_status(toplevel, PREFIX).acked_sequence < last,
        30,
    )


def test_sigkill_of_the_node_in_the_middle_of_a_sync_converges_exactly(
    tmp_path: Path, procs: list[Proc]
) -> None:
    port, toplevel_dir, node_dir, node, token = _backlog(tmp_path, procs, 20_000)
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    _midway(toplevel, node_dir)
    node.kill()
    acked_at_kill = nodes.node_status(toplevel, PREFIX).acked_sequence
    assert acked_at_kill < nodes.node_last_sequence(node_dir)
    procs.append(nodes.start_node(node_dir, PREFIX, toplevel.address, token))
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)


def test_sigkill_of_the_toplevel_node_while_applying_converges_exactly(
    tmp_path: Path, procs: list[Proc]
) -> None:
    port, toplevel_dir, node_dir, node, _token = _backlog(tmp_path, procs, 20_000)
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    _midway(toplevel, node_dir)
    toplevel.kill()
    nodes.register_many(node, PREFIX, 100, "after-crash")
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)
    assert nodes.node_status(toplevel, PREFIX).snapshots == 0


def test_a_wiped_toplevel_node_is_restored_by_a_snapshot(tmp_path: Path, procs: list[Proc]) -> None:
    port = nodes.free_port()
    toplevel_dir, node_dir = tmp_path / "toplevel", tmp_path / "node"
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    token = nodes.add_node(toplevel, PREFIX)
    node = nodes.start_node(node_dir, PREFIX, toplevel.address, token)
    procs.append(node)
    nodes.register_many(node, PREFIX, 1500, "kept")
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)
    toplevel.stop()
    shutil.rmtree(toplevel_dir)

    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    assert nodes.mirror_records(toplevel_dir, PREFIX) == {}
    nodes.add_node(toplevel, PREFIX, token)  # the operator restores the node's credential
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)
    assert nodes.node_status(toplevel, PREFIX).snapshots == 1
    nodes.register_many(node, PREFIX, 10, "after")  # incremental sync resumes after it
    assert_mirror_exact(toplevel, toplevel_dir, node_dir)
    assert nodes.node_status(toplevel, PREFIX).snapshots == 1


def test_a_refused_credential_shows_as_failing_and_registrations_go_on(
    tmp_path: Path, procs: list[Proc]
) -> None:
    toplevel = nodes.start_toplevel(tmp_path / "toplevel")
    procs.append(toplevel)
    nodes.add_node(toplevel, PREFIX)
    node_dir = tmp_path / "node"
    node = nodes.start_node(node_dir, PREFIX, toplevel.address, "not-the-credential-at-all")
    procs.append(node)
    nodes.register_many(node, PREFIX, 20, "refused")
    nodes.wait_until(
        "status to notice", lambda: status(node_dir)["upstream"]["health"] == "failing", 15
    )
    assert "UNAUTHENTICATED" in status(node_dir)["upstream"]["detail"]
    assert nodes.node_status(toplevel, PREFIX).acked_sequence == 0
