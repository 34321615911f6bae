"""Value-level, prefix and enterprise commands, and the command line's error paths."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.node.conftest import NodeProcess, run_cli


def _enterprise(node: NodeProcess, *extra: str) -> dict[str, str]:
    created = run_cli("enterprise", "create", "--server", node.grpc, "--json", *extra)
    assert created.returncode == 0, created.stderr
    document: dict[str, str] = json.loads(created.stdout)
    return document


def _values(node: NodeProcess, identifier: str, token: str) -> list[tuple[int, str, str]]:
    shown = run_cli("resolve", identifier, "--server", node.grpc, "--json", token=token)
    assert shown.returncode == 0, shown.stderr
    return [(v["index"], v["type"], v["data"]) for v in json.loads(shown.stdout)["values"]]


def test_value_add_modify_remove(node: NodeProcess) -> None:
    token = _enterprise(node)["token"]
    server = ("--server", node.grpc)
    ident = "88.118.1/V-1"
    assert (
        run_cli("register", ident, "--value", "URL=https://e/1", *server, token=token).returncode
        == 0
    )

    added = run_cli("value", "add", ident, "--value", "EMAIL=qa@e", "--value", "9:batch=B7",
                    "--value", "note=n", "--private", "9", *server, "--json", token=token)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["operation"] == "values_added"
    # Without an index a value takes the next free one after what is stored (and given).
    assert _values(node, ident, token) == [
        (1, "URL", "https://e/1"), (2, "EMAIL", "qa@e"), (9, "batch", "B7"), (10, "note", "n"),
    ]  # fmt: skip
    assert [v[0] for v in _values(node, ident, "")] == [1, 2, 10]  # 9 is private

    modified = run_cli("value", "modify", ident, "--value", "2:EMAIL=ops@e", *server, token=token)
    assert modified.returncode == 0, modified.stderr
    assert "values_modified" in modified.stdout
    no_index = run_cli("value", "modify", ident, "--value", "EMAIL=x", *server, token=token)
    assert no_index.returncode == 2
    assert "INDEX:TYPE=DATA" in no_index.stderr

    removed = run_cli("value", "remove", ident, "--index", "9", "--index", "10", *server,
                      token=token)  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert _values(node, ident, token) == [(1, "URL", "https://e/1"), (2, "EMAIL", "ops@e")]

    missing = run_cli("value", "remove", ident, "--index", "5", *server, token=token)
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr and "index 5" in missing.stderr
    taken = run_cli("value", "add", ident, "--value", "1:URL=x", *server, token=token)
    assert taken.returncode == 1
    assert "ALREADY_EXISTS" in taken.stderr


def test_value_file_errors_name_the_file(node: NodeProcess, tmp_path: Path) -> None:
    broken = tmp_path / "values.json"
    broken.write_text('{"values": [{"data": "no type"}]}')
    result = run_cli("register", "88.118.1/x", "--file", str(broken), "--server", node.grpc)
    assert result.returncode == 2
    assert f"--file {broken}, value 1: expected an object with a string 'type'" in result.stderr
    broken.write_text("[1, 2]")
    result = run_cli("register", "88.118.1/x", "--file", str(broken), "--server", node.grpc)
    assert result.returncode == 2
    assert 'expected {"values": [...]}' in result.stderr


def test_a_duplicate_register_says_how_to_replace(node: NodeProcess) -> None:
    token = _enterprise(node)["token"]
    args = ("register", "88.118.1/D", "--value", "URL=https://e", "--server", node.grpc)
    assert run_cli(*args, token=token).returncode == 0
    again = run_cli(*args, token=token)
    assert again.returncode == 1
    assert "88.118.1/D already exists; use --upsert to replace it" in again.stderr
    as_json = run_cli(*args, "--json", token=token)
    assert "use --upsert" in json.loads(as_json.stdout)["error"]
    assert run_cli(*args, "--upsert", token=token).returncode == 0


def test_prefix_put_delegates_and_takes_back(node: NodeProcess) -> None:
    token = _enterprise(node)["token"]
    server = ("--server", node.grpc)
    derived = run_cli("prefix", "put", "88.118.1.plant", *server, "--json", token=token)
    assert derived.returncode == 0, derived.stderr
    assert json.loads(derived.stdout) == {
        "prefix": "88.118.1.plant",
        "owner": "88.118.1",
        "sites": [],
    }
    delegated = run_cli("prefix", "put", "88.118.1.plant", "--grpc-site", "127.0.0.1:9", *server,
                        token=token)  # fmt: skip
    assert "delegated to 127.0.0.1:9" in delegated.stdout
    referral = run_cli("resolve", "88.118.1.plant/x", "--no-follow", *server, "--json")
    assert json.loads(referral.stdout)["referral"]["sites"] == [{"grpc": "127.0.0.1:9", "dns": ""}]
    with_http = run_cli("prefix", "put", "88.118.1.plant", "--grpc-site", "127.0.0.1:9",
                        "--http-site", "https://plant.example", *server, "--json", token=token)  # fmt: skip
    assert json.loads(with_http.stdout)["sites"][0]["http"] == "https://plant.example"
    hostile = run_cli("prefix", "put", "88.118.1.plant", "--grpc-site", "127.0.0.1:9",
                      "--http-site", "javascript:alert(1)", *server, token=token)  # fmt: skip
    assert hostile.returncode == 1
    assert "http_address 'javascript:alert(1)' is not an http:// or https:// URL" in hostile.stderr
    back = run_cli("prefix", "put", "88.118.1.plant", *server, token=token)
    assert "served by this node" in back.stdout
    other = run_cli("prefix", "put", "88.118.2.x", *server, token=token)
    assert other.returncode == 1


def test_enterprise_list_pages(node: NodeProcess) -> None:
    for name in ("A", "B", "C"):
        _enterprise(node, "--name", f"Enterprise {name}", "--contact", f"{name.lower()}@e")
    token = _enterprise(node, "--code", "77")["token"]
    assert (
        run_cli("prefix", "put", "88.118.77.x", "--server", node.grpc, token=token).returncode == 0
    )

    listed = run_cli(
        "enterprise", "list", "--server", node.grpc, "--json", "--page-size", "2", "--all"
    )
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)["enterprises"]
    assert [e["prefix"] for e in found] == ["88.118.1", "88.118.2", "88.118.3", "88.118.77"]
    assert found[0]["name"] == "Enterprise A" and found[0]["contact"] == "a@e"
    assert found[3]["derived_prefixes"] == ["88.118.77.x"]
    page = run_cli("enterprise", "list", "--server", node.grpc, "--page-size", "3")
    assert "(more: --page-token 88.118.3)" in page.stdout
    denied = run_cli("enterprise", "list", "--server", node.grpc, token=token)
    assert denied.returncode == 1
    assert "PERMISSION_DENIED" in denied.stderr


def test_import_exit_codes_and_rejects_in_input_order(node: NodeProcess, tmp_path: Path) -> None:
    token = _enterprise(node)["token"]
    source = tmp_path / "rows.csv"
    source.write_text(
        "identifier,type,data,index\n"
        "88.118.2/forbidden,URL,x,\n"  # refused by the node (another enterprise's prefix)
        "88.118.1/ok-1,URL,x,\n"
        "88.118.1/bad,URL,x,zero\n"  # refused while reading
        "88.118.9/also-forbidden,URL,x,\n"
    )
    result = run_cli("import", str(source), "--server", node.grpc, token=token)
    assert result.returncode == 1
    with open(tmp_path / "rows.rejected.csv", newline="") as handle:
        lines = [int(row["line"]) for row in csv.DictReader(handle)]
    assert lines == [2, 4, 5]

    clean = tmp_path / "clean.csv"
    clean.write_text("identifier,type,data\n88.118.1/ok-2,URL,y\n")
    assert run_cli("import", str(clean), "--server", node.grpc, token=token).returncode == 0
    unreachable = run_cli("import", str(clean), "--server", "127.0.0.1:1", "--timeout", "2",
                          token=token)  # fmt: skip
    assert unreachable.returncode == 3
    assert "cannot reach 127.0.0.1:1" in unreachable.stderr
    assert "stopped after 0 identifiers were stored" in unreachable.stderr
    missing = run_cli("import", str(tmp_path / "nope.csv"), "--server", node.grpc, token=token)
    assert missing.returncode == 2
