"""The command line against a running node: every subcommand's output and exit status."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import dns.message
import dns.query
import pytest

from idnode.cli import build_parser
from tests.node.conftest import IDNODE, NodeProcess, run_cli, start_node


def test_enterprise_register_resolve_json(node: NodeProcess) -> None:
    created = run_cli("enterprise", "create", "--server", node.grpc, "--name", "ACME", "--json")
    assert created.returncode == 0, created.stderr
    enterprise = json.loads(created.stdout)
    assert enterprise["prefix"] == "88.118.1"
    assert enterprise["token"].startswith("idn_")

    registered = run_cli(
        "register", "88.118.1/JXDY2106023", "--value", "URL=https://e/1", "--value",
        "7:price=12.5", "--private", "7", "--server", node.grpc, "--json",
        token=enterprise["token"],
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["operation"] == "created"

    public = run_cli("resolve", "88.118.1/JXDY2106023", "--server", node.grpc, "--json", token=None)
    owner = run_cli("resolve", "88.118.1/JXDY2106023", "--server", node.grpc, "--json",
                    token=enterprise["token"])  # fmt: skip
    assert [v["index"] for v in json.loads(public.stdout)["values"]] == [1]
    assert [(v["index"], v["public_read"]) for v in json.loads(owner.stdout)["values"]] == [
        (1, True), (7, False),
    ]  # fmt: skip
    text = run_cli("resolve", "88.118.1/JXDY2106023", "--server", node.grpc, "--type", "url")
    assert "https://e/1" in text.stdout
    assert "price" not in text.stdout


def test_failures_exit_nonzero_with_a_message(node: NodeProcess) -> None:
    missing = run_cli("resolve", "88.118.1/none", "--server", node.grpc)
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr
    invalid = run_cli("resolve", "88/x", "--server", node.grpc, "--json")
    assert invalid.returncode == 1
    assert "INVALID_ARGUMENT" in json.loads(invalid.stdout)["error"]
    denied = run_cli(
        "enterprise", "create", "--server", node.grpc, token="idn_not-a-real-token-at-all"
    )
    assert denied.returncode == 1
    assert "UNAUTHENTICATED" in denied.stderr
    unreachable = run_cli("resolve", "88.118.1/x", "--server", "127.0.0.1:1", "--timeout", "2")
    assert unreachable.returncode == 1
    assert "cannot reach 127.0.0.1:1" in unreachable.stderr
    bad_value = run_cli("register", "88.118.1/x", "--value", "no-equals", "--server", node.grpc)
    assert bad_value.returncode == 2
    assert "TYPE=DATA" in bad_value.stderr


def test_import_counts_and_rejects(node: NodeProcess, tmp_path: Path) -> None:
    created = run_cli("enterprise", "create", "--server", node.grpc, "--json")
    token = json.loads(created.stdout)["token"]
    source = tmp_path / "products.csv"
    rows = ["identifier,type,data,index,public_read"]
    for i in range(2500):
        rows.append(f"88.118.1/P{i:05d},URL,https://e/{i},,")
        rows.append(f"88.118.1/P{i:05d},batch,B{i % 7},,false")
    rows += [
        "not an identifier,URL,x,,",
        "88.118.1/bad-index,URL,x,zero,",
        "88.118.2/other,URL,x,,",
    ]
    source.write_text("\n".join(rows) + "\n")

    first = run_cli("import", str(source), "--server", node.grpc, "--json", "--batch-size", "700",
                    token=token)  # fmt: skip
    again = run_cli("import", str(source), "--server", node.grpc, "--json", token=token)

    summary = json.loads(first.stdout)
    assert first.returncode == 1  # some rows were rejected
    assert (summary["created"], summary["updated"], summary["unchanged"], summary["rejected"]) == (
        2500, 0, 0, 3,
    )  # fmt: skip
    assert json.loads(again.stdout)["unchanged"] == 2500
    rejects = (tmp_path / "products.rejected.csv").read_text()
    assert "no '/'" in rejects
    assert "index 'zero'" in rejects
    assert "may not write under prefix 88.118.2" in rejects
    assert "importing products.csv" in first.stderr
    owner = run_cli("resolve", "88.118.1/P02499", "--server", node.grpc, "--json", token=token)
    assert [v["data"] for v in json.loads(owner.stdout)["values"]] == ["https://e/2499", "B0"]


def test_import_refuses_a_file_without_the_columns(node: NodeProcess, tmp_path: Path) -> None:
    source = tmp_path / "wrong.csv"
    source.write_text("id,value\n88.118.1/x,y\n")
    result = run_cli("import", str(source), "--server", node.grpc)
    assert result.returncode == 2
    assert "lacks column(s) identifier, type, data" in result.stderr


def test_invalid_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "idnode.toml"
    config.write_text('workers = -3\n[dns]\nzone = "id.example."\n')
    result = subprocess.run([IDNODE, "serve", "--config", str(config)], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode != 0
    assert "'workers'" in result.stderr
    config.write_text('[dns]\nzone = "no-dot"\n')
    result = subprocess.run([IDNODE, "serve", "--config", str(config)], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert "'dns.zone'" in result.stderr
    config.write_text("unknown_key = 1\n")
    result = subprocess.run([IDNODE, "serve", "--config", str(config)], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert "unknown config key 'unknown_key'" in result.stderr


def test_data_dir_of_another_node_prefix_is_refused(tmp_path: Path) -> None:
    first = start_node(tmp_path / "data")
    first.stop()
    second = subprocess.run(
        [IDNODE, "serve", "--data-dir", str(tmp_path / "data"), "--node-prefix", "88.200",
         "--no-dns", "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode != 0
    assert "belongs to node prefix 88.118, not 88.200" in second.stderr


def _subcommands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(parser: object, path: list[str]) -> None:
        found.append(path)
        for action in getattr(parser, "_actions", []):
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, [*path, name])

    walk(build_parser(), [])
    return found


@pytest.mark.parametrize("path", _subcommands(), ids=lambda p: " ".join(p) or "idnode")
def test_every_subcommand_has_help(path: list[str]) -> None:
    result = subprocess.run([IDNODE, *path, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "usage: idnode" in result.stdout


def test_serves_ipv4_and_ipv6_at_once(tmp_path: Path) -> None:
    node = start_node(
        tmp_path / "data",
        "--grpc-listen", "[::1]:0", "--dns-listen", "127.0.0.1:0", "--dns-listen", "[::1]:0",
        "--workers", "2",
    )  # fmt: skip
    try:
        v4, v6 = node.ready["grpc"]
        assert v4.startswith("127.0.0.1:") and v6.startswith("[::1]:")
        for server in (v4, v6):
            assert run_cli("whoami", "--server", server).returncode == 0
        dns_v4, dns_v6 = node.ready["dns"]
        assert dns_v4.startswith("127.0.0.1:") and dns_v6.startswith("[::1]:")
        for address in (dns_v4, dns_v6):
            host, _, port = address.rpartition(":")
            query = dns.message.make_query("id.example.", "SOA")
            reply = dns.query.udp(query, host.strip("[]"), port=int(port), timeout=5)
            assert reply.answer, address
    finally:
        node.stop()
