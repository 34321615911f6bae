"""Emergency takeover: the top-level node answers from its mirror while a node is down."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from proto import sync_pb2
from tests.sync import nodes
from tests.sync.nodes import ADMIN, Proc

pytestmark = pytest.mark.slow  # Takeover waits for health probes to fail and recover.


def _takeover_answer(proc: Proc, identifier: str) -> bool:
    try:
        return nodes.resolve(proc, identifier).takeover
    except grpc.RpcError:
        return False


def test_a_stopped_node_is_taken_over_and_released_when_back(tmp_path: Path) -> None:
    started: list[Proc] = []
    try:
        toplevel = nodes.start_toplevel(tmp_path / "toplevel", probe_interval=0.2)
        started.append(toplevel)
        port = nodes.free_port()
        node_dir = tmp_path / "88.101"
        token = nodes.add_node(toplevel, "88.101")
        home = nodes.start_node(node_dir, "88.101", toplevel.address, token, port)
        started.append(home)
        neighbour_token = nodes.add_node(toplevel, "88.102")
        neighbour = nodes.start_node(
            tmp_path / "88.102", "88.102", toplevel.address, neighbour_token
        )
        started.append(neighbour)
        private = nodes.record("88.101/lot-9", ("URL", "https://a.example/lot-9"), ("secret", "s3"))
        private.values[1].public_read = False
        nodes.registry(home).Create(private, metadata=ADMIN, timeout=10)
        nodes.wait_until("sync", lambda: nodes.converged(toplevel, node_dir, "88.101"))

        referred = nodes.resolve(toplevel, "88.101/lot-9")
        assert referred.referral.code == 302 and not referred.takeover
        home.stop()

        nodes.wait_until("takeover", lambda: _takeover_answer(toplevel, "88.101/lot-9"), 10)
        answered = nodes.resolve(toplevel, "88.101/lot-9")
        assert answered.code == 1 and answered.takeover
        assert [(v.type, v.data) for v in answered.values] == [("URL", b"https://a.example/lot-9")]
        with pytest.raises(grpc.RpcError) as missing:
            nodes.resolve(toplevel, "88.101/never-registered")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        located = nodes.toplevel_stub(toplevel).Locate(
            sync_pb2.LocateRequest(prefix="88.101"), timeout=10
        )
        assert located.takeover and located.sites[0].grpc_address == toplevel.address
        through_neighbour = nodes.resolve(neighbour, "88.101/lot-9", recursive=True)
        assert (
            through_neighbour.takeover
            and through_neighbour.values[0].data == b"https://a.example/lot-9"
        )
        status = nodes.node_status(toplevel, "88.101")
        assert status.takeover and not status.reachable

        home = nodes.start_node(node_dir, "88.101", toplevel.address, token, port)
        started.append(home)
        nodes.wait_until(
            "takeover to end", lambda: not _takeover_answer(toplevel, "88.101/lot-9"), 10
        )
        back = nodes.resolve(toplevel, "88.101/lot-9")
        assert back.referral.code == 302 and not back.takeover and not back.values
        assert not nodes.node_status(toplevel, "88.101").takeover
    finally:
        for proc in reversed(started):
            if proc.process.poll() is None:
                proc.stop()
