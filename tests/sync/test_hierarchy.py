"""One top-level node, three secondary nodes and an enterprise node, as real processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest

from proto import handle_pb2, registry_pb2, sync_pb2
from tests.sync import nodes
from tests.sync.nodes import ADMIN, Proc

pytestmark = pytest.mark.slow  # A top-level node, three secondaries and an enterprise node.

PREFIXES = ("88.101", "88.102", "88.103")


@pytest.fixture
def hierarchy(tmp_path: Path) -> Iterator[tuple[Proc, dict[str, Proc], dict[str, Path]]]:
    started: list[Proc] = []
    try:
        toplevel = nodes.start_toplevel(tmp_path / "toplevel")
        started.append(toplevel)
        secondaries: dict[str, Proc] = {}
        dirs: dict[str, Path] = {}
        for prefix in PREFIXES:
            token = nodes.add_node(toplevel, prefix)
            dirs[prefix] = tmp_path / prefix
            secondaries[prefix] = nodes.start_node(dirs[prefix], prefix, toplevel.address, token)
            started.append(secondaries[prefix])
        yield toplevel, secondaries, dirs
    finally:
        for proc in reversed(started):
            proc.stop()


def test_every_node_resolves_every_other_nodes_identifiers(
    hierarchy: tuple[Proc, dict[str, Proc], dict[str, Path]],
) -> None:
    toplevel, secondaries, dirs = hierarchy
    for prefix, node in secondaries.items():
        nodes.registry(node).CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="1"), metadata=ADMIN, timeout=10
        )
        nodes.registry(node).Create(
            nodes.record(f"{prefix}.1/item", ("URL", f"https://{prefix}.example/item")),
            metadata=ADMIN,
            timeout=10,
        )
    for prefix in PREFIXES:
        nodes.wait_until(
            f"{prefix} synced", partial(nodes.converged, toplevel, dirs[prefix], prefix)
        )
        status = nodes.node_status(toplevel, prefix)
        assert [s.grpc_address for s in status.sites] == [secondaries[prefix].address]
    for asked_prefix, asked in secondaries.items():
        for prefix, home in secondaries.items():
            identifier = f"{prefix}.1/item"
            referred = nodes.resolve(asked, identifier)
            recursive = nodes.resolve(asked, identifier, recursive=True)
            assert recursive.code == 1
            assert recursive.values[0].data == f"https://{prefix}.example/item".encode()
            if prefix == asked_prefix:
                assert referred.values == recursive.values
                continue
            assert referred.code == 302 and not referred.values
            assert referred.referral.prefix == prefix
            assert [s.grpc_address for s in referred.referral.sites] == [home.address]
            assert not recursive.HasField("referral") and not recursive.takeover
    for prefix in PREFIXES:  # statistics: what each node holds and answered in a period

        def reported(prefix: str = prefix) -> bool:
            nodes.resolve(secondaries[prefix], f"{prefix}.1/item")  # answered in every period
            return nodes.node_status(toplevel, prefix).last_stats.resolutions > 0

        nodes.wait_until(f"{prefix} statistics", reported, 10)
        assert nodes.node_status(toplevel, prefix).last_stats.identifiers == 1
    followed = subprocess.run(
        [nodes.IDNODE, "resolve", "88.102.1/item", "--server", secondaries["88.101"].address, "--json"],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    document = json.loads(followed.stdout)  # `idnode resolve` follows the referral itself
    assert document["answered_by"] == secondaries["88.102"].address
    assert document["values"][0]["data"] == "https://88.102.example/item"
    at_top = nodes.resolve(toplevel, "88.102.1/item")
    assert (
        at_top.referral.code == 302
        and at_top.referral.sites[0].grpc_address == secondaries["88.102"].address
    )
    assert (
        nodes.resolve(toplevel, "88.102.1/item", recursive=True).values[0].data
        == b"https://88.102.example/item"
    )


def test_an_enterprise_node_delegation_is_referred_from_every_node(
    hierarchy: tuple[Proc, dict[str, Proc], dict[str, Path]], tmp_path: Path
) -> None:
    toplevel, secondaries, dirs = hierarchy
    enterprise = nodes.start_node(tmp_path / "enterprise", "88.101.5")
    try:
        nodes.registry(enterprise).Create(
            nodes.record("88.101.5/pump-7", ("URL", "https://plant.example/pump-7")),
            metadata=ADMIN,
            timeout=10,
        )
        home = nodes.registry(secondaries["88.101"])
        home.CreateEnterprise(
            registry_pb2.CreateEnterpriseRequest(code="5"), metadata=ADMIN, timeout=10
        )
        home.PutPrefix(
            registry_pb2.PutPrefixRequest(
                prefix="88.101.5", sites=[handle_pb2.Site(grpc_address=enterprise.address)]
            ),
            metadata=ADMIN,
            timeout=10,
        )
        nodes.wait_until(
            "delegation synced", lambda: nodes.converged(toplevel, dirs["88.101"], "88.101")
        )
        for asked in (toplevel, *secondaries.values()):
            referred = nodes.resolve(asked, "88.101.5/pump-7")
            assert referred.referral.code == 303, asked.address
            assert referred.referral.prefix == "88.101.5"
            assert [s.grpc_address for s in referred.referral.sites] == [enterprise.address]
            answered = nodes.resolve(asked, "88.101.5/pump-7", recursive=True)
            assert answered.values[0].data == b"https://plant.example/pump-7"
    finally:
        enterprise.stop()


def test_a_node_may_not_sync_outside_its_node_prefix(
    hierarchy: tuple[Proc, dict[str, Proc], dict[str, Path]],
) -> None:
    toplevel, _secondaries, _dirs = hierarchy
    token = nodes.add_node(toplevel, "88.109")
    stub = nodes.toplevel_stub(toplevel)
    hello = stub.Hello(
        sync_pb2.HelloRequest(node_prefix="88.109", log_id="x"),
        metadata=nodes.bearer(token),
        timeout=10,
    )
    assert hello.acked_sequence == 0
    stray = handle_pb2.ChangeEntry(
        sequence=1, operation=handle_pb2.ChangeEntry.CREATE, identifier="88.101.1/stolen"
    )
    stray.record.values.add(index=1, type="URL", data=b"https://evil.example")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Push(
            sync_pb2.PushRequest(node_prefix="88.109", log_id="x", entries=[stray]),
            metadata=nodes.bearer(token),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as other:
        stub.Hello(
            sync_pb2.HelloRequest(node_prefix="88.101", log_id="x"),
            metadata=nodes.bearer(token),
            timeout=10,
        )
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert nodes.node_status(toplevel, "88.109").acked_sequence == 0


def test_a_referral_loop_is_detected_in_recursive_resolution(
    hierarchy: tuple[Proc, dict[str, Proc], dict[str, Path]],
) -> None:
    _toplevel, secondaries, _dirs = hierarchy
    node = secondaries["88.102"]
    stub = nodes.registry(node)
    stub.CreateEnterprise(
        registry_pb2.CreateEnterpriseRequest(code="7"), metadata=ADMIN, timeout=10
    )
    stub.PutPrefix(
        registry_pb2.PutPrefixRequest(
            prefix="88.102.7", sites=[handle_pb2.Site(grpc_address=node.address)]
        ),
        metadata=ADMIN,
        timeout=10,
    )  # misconfigured: delegated to the node itself
    assert nodes.resolve(node, "88.102.7/x").referral.code == 303
    for asked in (node, secondaries["88.101"]):
        with pytest.raises(grpc.RpcError) as looped:
            nodes.resolve(asked, "88.102.7/x", recursive=True)
        assert looped.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "loop" in (looped.value.details() or "")


def test_toplevel_node_add_and_list_on_the_command_line(
    hierarchy: tuple[Proc, dict[str, Proc], dict[str, Path]],
) -> None:
    toplevel, secondaries, _dirs = hierarchy

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [nodes.IDNODE, "toplevel", "node", *args, "--server", toplevel.address, "--token", nodes.ADMIN_TOKEN, "--json"],
            capture_output=True, timeout=30, check=True,
        )  # fmt: skip
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    added = run("add", "88.104", "--grpc-site", "127.0.0.1:9", "--dns-site", "127.0.0.1:53")
    assert added["node_prefix"] == "88.104" and added["token"].startswith("idn_")
    listed = {n["node_prefix"]: n for n in run("list")["nodes"]}
    assert set(listed) == {*PREFIXES, "88.104"}
    assert listed["88.104"]["sites"] == [
        {"grpc_address": "127.0.0.1:9", "dns_address": "127.0.0.1:53"}
    ]
    assert listed["88.101"]["sites"][0]["grpc_address"] == secondaries["88.101"].address
    refused = subprocess.run(
        [nodes.IDNODE, "toplevel", "node", "add", "88.105", "--server", toplevel.address, "--token", added["token"], "--json"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode != 0 and "PERMISSION_DENIED" in json.loads(refused.stdout)["error"]
