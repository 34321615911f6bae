"""`idnode dns-name` says when an identifier's name belongs to a hosted prefix instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.dns.nodes import make_node, value


def _dns_name(data_dir: Path, identifier: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idnode", "dns-name", identifier, "--zone", "id.example.",
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_name_taken_over_by_a_hosted_prefix_is_refused(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.registry.create(node.admin, "88.118.8.abc-1/x", [value(1, "batch", "b")])
    node.store.close()
    data_dir = tmp_path / "data"
    taken = _dns_name(data_dir, "88.118.8/abc-1")
    assert taken.returncode != 0 and taken.stdout == ""  # before: printed a name it lost
    assert "prefix 88.118.8.abc-1 takes that name over" in taken.stderr
    fine = _dns_name(data_dir, "88.118.8/abc-2")
    assert fine.returncode == 0 and fine.stdout == "abc-2.8.118.88.id.example.\n"
    elsewhere = _dns_name(data_dir, "88.999.1/x")
    assert elsewhere.returncode != 0 and "not hosted" in elsewhere.stderr


def test_without_a_store_the_mapping_alone_answers(tmp_path: Path) -> None:
    done = _dns_name(tmp_path / "none", "88.118.8/abc-1")
    assert done.returncode == 0 and done.stdout == "abc-1.8.118.88.id.example.\n"
