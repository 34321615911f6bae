"""`idnode token rotate|revoke`, `account list`, `enterprise create --expires` against a
running node: grace, revocation, expiry, last use, and one audit line per action."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.node.conftest import ADMIN_TOKEN, NodeProcess, run_cli, start_node


def whoami(node: NodeProcess, token: str) -> int:
    return run_cli("whoami", "--server", node.grpc, token=token).returncode


def wait_refused(node: NodeProcess, token: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while whoami(node, token) == 0:
        assert time.monotonic() < deadline, "the token still works"
        time.sleep(0.2)


def test_rotate_with_grace_revoke_expire_and_list(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data")
    try:
        made = run_cli("enterprise", "create", "--json", "--server", node.grpc)
        first = json.loads(made.stdout)["token"]
        assert whoami(node, first) == 0
        rotated = run_cli(
            "token", "rotate", "--grace", "3s", "--json", "--server", node.grpc, token=first
        )
        assert rotated.returncode == 0, rotated.stderr
        second = json.loads(rotated.stdout)["token"]
        assert whoami(node, first) == 0 and whoami(node, second) == 0  # the grace period
        wait_refused(node, first, 10)
        expired = run_cli("whoami", "--server", node.grpc, token=first)
        assert "expired" in expired.stderr
        assert whoami(node, second) == 0

        account = json.loads(made.stdout)["account"]
        revoked = run_cli(
            "token", "revoke", "--account", account, "--all", "--json", "--server", node.grpc
        )
        assert json.loads(revoked.stdout)["revoked"], revoked.stderr
        wait_refused(node, second, 7)

        short = json.loads(
            run_cli(
                "enterprise", "create", "--expires", "2s", "--json", "--server", node.grpc
            ).stdout
        )
        assert whoami(node, short["token"]) == 0
        wait_refused(node, short["token"], 10)

        last = run_cli("token", "revoke", "--all", "--server", node.grpc)
        assert last.returncode != 0 and "last token" in last.stderr
    finally:
        assert node.stop() == 0
    log = node.log()
    for action in ("enterprise.create", "token.rotate", "token.revoke"):
        assert f"audit: {action} by" in log, action
    assert first not in log and second not in log and ADMIN_TOKEN not in log

    node = start_node(tmp_path / "data", init=False)  # its workers stored the last uses at stop
    try:
        listed = run_cli("account", "list", "--json", "--server", node.grpc)
        accounts = {a["name"]: a for a in json.loads(listed.stdout)["accounts"]}
        enterprise = accounts[account]
        assert enterprise["last_used"] > 0 and enterprise["prefixes"] == [account]
        states = sorted((c["revoked"] > 0, c["expires"] > 0) for c in enterprise["credentials"])
        assert states == [(False, True), (True, False)]  # ended by its grace; revoked
        assert [c["scheme"] for c in accounts["admin"]["credentials"]] == ["scrypt"]
        text = run_cli("account", "list", "--server", node.grpc).stdout
        assert "revoked" in text and "scrypt" in text
    finally:
        assert node.stop() == 0
