"""The sync at its limits, real processes: records near the size limit, and the prompt
return of an upstream after an outage."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from proto import registry_pb2
from tests.sync import nodes
from tests.sync.conftest import large_record
from tests.sync.measure_recovery import measure_once
from tests.sync.nodes import ADMIN, Proc

pytestmark = pytest.mark.slow  # 73 MB through real processes, and a 10 s outage.

PREFIX = "88.118"


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_records_near_the_size_limit_sync_completely_and_the_pusher_then_rests(
    tmp_path: Path, procs: list[Proc]
) -> None:
    # 75 legal records of ~975 KB: 73 MB, more than the top-level node's 64 MiB message
    # limit in one push (the old 500-entry batches failed that way forever, retrying at
    # ~50 % CPU).
    # They pile up while the top-level node is away, so that one push would carry them all.
    port = nodes.free_port()
    toplevel_dir, node_dir = tmp_path / "toplevel", tmp_path / "node"
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    token = nodes.add_node(toplevel, PREFIX)
    toplevel.stop()
    node = nodes.start_node(node_dir, PREFIX, toplevel.address, token)
    procs.append(node)
    stub = nodes.registry(node)
    for start in range(0, 75, 5):
        records = [large_record(f"{PREFIX}/large-{n}") for n in range(start, start + 5)]
        reply = stub.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=records), metadata=ADMIN, timeout=60
        )
        assert reply.rejected == 0
    toplevel = nodes.start_toplevel(toplevel_dir, port)
    procs.append(toplevel)
    nodes.wait_until("the sync", lambda: nodes.converged(toplevel, node_dir, PREFIX), 60)
    assert nodes.mirror_records(toplevel_dir, PREFIX) == nodes.node_records(node_dir)
    before, started = cpu_seconds(node.process.pid), time.monotonic()
    time.sleep(3.0)
    share = (cpu_seconds(node.process.pid) - before) / (time.monotonic() - started)
    assert share < 0.2  # an idle master: the pusher polls its store, nothing retries
    assert node.log_path.read_text().count("upstream sync failing") == 1  # while it was away


def test_registrations_during_an_outage_reach_the_upstream_within_seconds_of_its_return() -> None:
    # Ten seconds away grow the old backoff to waits of 6-13 s; the channel's own
    # reconnection (at most a second apart) now wakes the pusher as soon as it is back.
    assert measure_once(outage_seconds=10.0, registrations=200) < 5.0
