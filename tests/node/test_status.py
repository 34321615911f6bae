"""`idnode status` on a node with no upstream, a stopped node, and a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.node.conftest import IDNODE, NodeProcess, run_cli, start_node


def _status(data_dir: Path) -> dict[str, Any]:
    shown = run_cli("status", "--data-dir", str(data_dir), "--json")
    assert shown.returncode == 0, shown.stderr
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def test_a_node_without_upstream_reports_no_acknowledged_sequence(node: NodeProcess) -> None:
    document = _status(node.data_dir)
    assert document["running"] is True
    assert document["upstream"] == {
        "address": "",
        "health": "none",
        "detail": "no upstream configured",
    }
    assert "acked_sequence" not in document and "lag_seconds" not in document
    text = run_cli("status", "--data-dir", str(node.data_dir)).stdout
    assert "upstream (none): none — no upstream configured" in text
    assert "acknowledged" not in text


def test_a_stopped_node_is_reported_as_not_running(tmp_path: Path) -> None:
    started = start_node(tmp_path / "data")
    assert started.stop() == 0
    document = _status(tmp_path / "data")
    assert document["running"] is False
    assert document["upstream"]["health"] == "none"  # it never synced anywhere


def test_health_is_one_of_the_documented_words(node: NodeProcess) -> None:
    from idnode.cli.status import HEALTH_WORDS

    assert _status(node.data_dir)["upstream"]["health"] in HEALTH_WORDS


def test_a_closed_pipe_ends_quietly(node: NodeProcess) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as with `| head -0`
    done = subprocess.run(
        [IDNODE, "status", "--data-dir", str(node.data_dir)],
        stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=30,
    )  # fmt: skip
    os.close(write_end)
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
