"""Write rules through the real command line and node: reserved types, TTLs, zero-padded codes."""

from __future__ import annotations

import json

from tests.node.conftest import NodeProcess, run_cli


def test_refused_writes_say_why_and_leave_the_store_as_it_was(node: NodeProcess) -> None:
    created = run_cli("enterprise", "create", "--server", node.grpc, "--code", "1", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]

    twin = run_cli("enterprise", "create", "--server", node.grpc, "--code", "01")
    reserved = run_cli(
        "register", "88.118.1/x", "--value", "100:HS_ADMIN=0.NA/88.118.1", "--server", node.grpc,
        token=token,
    )  # fmt: skip
    long_ttl = run_cli(
        "register", "88.118.1/y", "--value", "URL=https://e", "--ttl", "4294967295",
        "--server", node.grpc, token=token,
    )  # fmt: skip

    assert (twin.returncode, reserved.returncode, long_ttl.returncode) == (1, 1, 1)
    assert "ALREADY_EXISTS" in twin.stderr
    assert "88.118.01 differs from the allocated prefix 88.118.1 only by leading zeros" in (
        twin.stderr
    )
    assert "INVALID_ARGUMENT" in reserved.stderr
    assert "type HS_ADMIN is reserved for values the node manages" in reserved.stderr
    assert "INVALID_ARGUMENT" in long_ttl.stderr
    assert "value 1 (index 1): ttl 4294967295 is more than 2147483647 seconds" in long_ttl.stderr
    for refused in ("88.118.1/x", "88.118.1/y"):
        found = run_cli("resolve", refused, "--server", node.grpc)
        assert found.returncode == 1
        assert "NOT_FOUND" in found.stderr
    node.stop()
    verified = run_cli("verify", "--data-dir", str(node.data_dir), "--json")
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["prefixes"] == 2  # the node prefix and 88.118.1
