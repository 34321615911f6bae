"""Promotion with the top-level node: the promoted replica is refused until the operator
hands the node prefix over, then its identity, sites and snapshot replace the old primary's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.replica import nodes
from tests.sync import nodes as sync_nodes
from tests.sync.nodes import ADMIN, Proc, record, registry
from tests.sync.test_identity import status, toplevel_command

PREFIX = "88.118"


@pytest.mark.slow  # four real processes, a refusal and a handover
@pytest.mark.timeout(180)
def test_a_promoted_replica_takes_over_at_the_top_level_node_after_a_reset(
    tmp_path: Path,
) -> None:
    procs: list[Proc] = []
    try:
        toplevel = sync_nodes.start_toplevel(tmp_path / "toplevel")
        procs.append(toplevel)
        upstream_token = sync_nodes.add_node(toplevel, PREFIX)
        primary = sync_nodes.start_node(
            tmp_path / "primary", PREFIX, toplevel.address, upstream_token
        )
        procs.append(primary)
        sync_nodes.register_many(primary, PREFIX, 40, "before")
        token = nodes.credential(tmp_path / "primary", "replica-1")
        replica = nodes.start_replica(
            tmp_path / "replica", primary.address, token,
            extra=("--upstream", toplevel.address),  # referrals only: a replica never syncs up
        )  # fmt: skip
        procs.append(replica)
        nodes.wait_converged(primary, replica)
        sync_nodes.wait_until(
            "the upward sync", lambda: sync_nodes.converged(toplevel, tmp_path / "primary", PREFIX)
        )
        old_id = toplevel_command(toplevel, "list")["nodes"][0]["node_id"]
        assert status(tmp_path / "replica")["role"] == "replica"

        # The primary is lost; the replica is stopped, promoted and started as the primary.
        primary.kill()
        replica.stop()
        promoted = subprocess.run(
            [sync_nodes.IDNODE, "replica", "promote", "--data-dir", str(tmp_path / "replica")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        assert f"idnode toplevel node reset {PREFIX}" in promoted.stdout
        new = sync_nodes.start_node(tmp_path / "replica", PREFIX, toplevel.address, upstream_token)
        procs.append(new)
        registry(new).Create(
            record(f"{PREFIX}/after", ("URL", "https://example.com/after")), metadata=ADMIN,
            timeout=10,
        )  # fmt: skip

        # Another identity holds the prefix: refused, the mirror untouched ...
        sync_nodes.wait_until(
            "the refusal", lambda: status(tmp_path / "replica")["upstream"]["health"] == "refused"
        )
        assert f"{PREFIX}/after" not in sync_nodes.mirror_records(tmp_path / "toplevel", PREFIX)
        # ... until the operator hands it over: the new identity, its sites, its snapshot.
        toplevel_command(toplevel, "reset", PREFIX)
        sync_nodes.wait_until(
            "the promoted node's snapshot",
            lambda: sync_nodes.converged(toplevel, tmp_path / "replica", PREFIX), 60,
        )  # fmt: skip
        listed = toplevel_command(toplevel, "list")["nodes"][0]
        assert listed["node_id"] != old_id
        assert listed["node_id"] == status(tmp_path / "replica")["upstream"]["node_id"]
        assert [s["grpc_address"] for s in listed["sites"]] == [new.address]
        mirror = sync_nodes.mirror_records(tmp_path / "toplevel", PREFIX)
        assert mirror == sync_nodes.node_records(tmp_path / "replica")
        assert f"{PREFIX}/after" in mirror
    finally:
        for proc in reversed(procs):
            proc.stop()
