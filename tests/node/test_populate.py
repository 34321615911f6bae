"""`idnode populate`: what it writes is served, verifies clean, and survives a rerun."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import grpc
import pytest

from proto import resolver_pb2, resolver_pb2_grpc
from tests.node.conftest import ADMIN_TOKEN, IDNODE, start_node

OWN = 1  # a data dir initialised as `idnode serve` would holds 0.NA/88.118 (its HS_PUBKEY)


def populate(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IDNODE_")}
    environment |= {"IDNODE_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
    return subprocess.run(
        [IDNODE, "populate", "--data-dir", str(data_dir), "--node-prefix", "88.118", *args],
        capture_output=True, text=True, timeout=120, env=environment,
    )  # fmt: skip


def verify(data_dir: Path) -> dict[str, object]:
    done = subprocess.run(
        [IDNODE, "verify", "--data-dir", str(data_dir), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_populated_identifiers_are_served_over_grpc_and_dns(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = populate(data_dir, "--count", "2500", "--transaction-records", "1000", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["written"] == report["created"] == report["identifiers"] - OWN == 2500
    assert report["first"] == "88.118.99/p0000000000" and report["last"] == "88.118.99/p0000002499"
    assert 50 < report["record_bytes_per_identifier"] < report["store_bytes_per_identifier"]
    assert "populate: done" in done.stderr  # progress, one final line when not on a terminal
    assert verify(data_dir)["records"] == 2500 + OWN  # OWN: the node's prefix record

    node = start_node(data_dir, "--dns-listen", "127.0.0.1:0")
    try:
        with grpc.insecure_channel(node.grpc) as channel:
            resolver = resolver_pb2_grpc.ResolverStub(channel)
            for number in (0, 1234, 2499):
                reply = resolver.Resolve(
                    resolver_pb2.ResolveRequest(identifier=f"88.118.99/p{number:010d}"), timeout=10
                )
                assert [(v.index, v.type, bytes(v.data)) for v in reply.values] == [
                    (1, "URL", f"https://example.com/p/{number}".encode()),
                    (2, "batch", b"2026-11"),
                ]
            with pytest.raises(grpc.RpcError) as missing:
                resolver.Resolve(resolver_pb2.ResolveRequest(identifier="88.118.99/p0000002500"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        host, _, port = node.ready["dns"][0].rpartition(":")
        query = dns.message.make_query("p0000001234.99.118.88.id.example.", "TXT")
        answer = dns.query.udp(query, host, port=int(port), timeout=5)
        assert answer.rcode() == dns.rcode.NOERROR and answer.answer
    finally:
        node.stop()


def test_a_rerun_rewrites_the_same_records_and_more_extend_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert populate(data_dir, "--count", "300").returncode == 0
    again = populate(data_dir, "--count", "300", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["created"] == 0
    more = populate(data_dir, "--count", "200", "--start", "300", "--json")
    assert json.loads(more.stdout)["created"] == 200
    report = verify(data_dir)
    assert report["records"] == 500 + OWN and report["problems"] == []


def test_the_change_log_is_trimmed_as_the_node_would(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = populate(
        data_dir, "--count", "1000", "--json", env={"IDNODE_CHANGELOG_KEEP_ENTRIES": "100"}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changes_trimmed"] > 800
    report = verify(data_dir)
    assert report["changes"] == 100 and report["records"] == 1000 + OWN


def test_populate_writes_under_an_existing_enterprise_prefix(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert populate(data_dir, "--count", "10", "--prefix", "88.118.5").returncode == 0
    done = populate(data_dir, "--count", "10", "--prefix", "88.118.5.2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["first"] == "88.118.5.2/p0000000000"
    assert verify(data_dir)["records"] == 20 + OWN


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "--count must be between 1 and"),
        (["--count", "5", "--start", "9999999999"], "--start and --count"),
        (["--count", "5", "--transaction-records", "0"], "--transaction-records must be"),
        (["--count", "5", "--prefix", "86.100.1"], "is not under the node prefix 88.118"),
        (["--count", "5", "--prefix", "88.118.\x1b[31m"], "prefix"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = populate(tmp_path / "data", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "\x1b" not in done.stderr
    assert not (tmp_path / "data" / "data.mdb").exists()


def test_a_data_dir_of_another_node_prefix_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert populate(data_dir, "--count", "5").returncode == 0
    done = subprocess.run(
        [IDNODE, "populate", "--data-dir", str(data_dir), "--node-prefix", "86.100",
         "--count", "5"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "IDNODE_ADMIN_TOKEN": ADMIN_TOKEN},
    )  # fmt: skip
    assert done.returncode != 0
    assert "belongs to node prefix 88.118" in done.stderr
    assert verify(data_dir)["records"] == 5 + OWN
