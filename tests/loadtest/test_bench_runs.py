"""`make bench` runs end to end and fills every row (tiny sizes; the numbers are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest import dns_rows, http_rows, machine

ROWS_WITH_REFERENCE = [
    "single durable creates, 16 concurrent clients",
    "gRPC Resolve, cached answer",
    "gRPC Resolve peak at 3,000 identifiers",
    "resolve p99 at 3,000 identifiers",
    "master: resident anonymous memory at 3,000",
    "worker 1: resident anonymous memory at 3,000",
    "worker 1: resident file-backed (LMDB map) memory at 3,000",
    "LMDB bytes per identifier at 3,000 (records B-tree)",
]
DNS_ROWS = ["DNS cached answers", "DNS random missing names"]
HTTP_ROWS = ["HTTP cached redirect", "HTTP cached Handle JSON"]
ROWS_ALONE = ["batch register", "batch resolve", "sync lag p99 at 1,000 registrations/s"]


@pytest.mark.slow
def test_every_row_of_the_table_is_filled(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--rounds", "2", "--seconds", "0.5",
         "--scale", "3000", "--json", str(report), "--note", "a test run"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    faces = DNS_ROWS if dns_rows.available() else []
    faces += HTTP_ROWS if http_rows.available() else []

    def row(start: str) -> Any:
        found = [r for r in rows if str(r["figure"]).startswith(start)]
        assert found, f"no row {start!r} in {[r['figure'] for r in rows]}"
        return found[0]

    for start in ROWS_WITH_REFERENCE + faces:
        figures = row(start)
        assert figures["subject"]["median"] > 0 and figures["reference"]["median"] > 0
        assert figures["ratio"] is not None and figures["ratio"] > 0
    alone = ROWS_ALONE + (["batch register as above, node on all"] if machine.plan().pinned else [])
    for start in alone:
        assert row(start)["subject"]["median"] > 0
    for start in ["single durable creates", "gRPC Resolve, cached", *faces]:
        assert len(row(start)["cpu_ratios"]) == 2
    table = done.stdout
    for key in ("machine", "versions", "command", "pinning", "rounds", "note"):
        assert f"- **{key}**:" in table
    assert "--scale 3000" in table
    assert table.count("\n| ") == len(rows) + 1  # the header row and one line per figure
    assert "round 2/2" in done.stderr  # progress, a plain line per round
    assert "\r" not in done.stderr


def test_bad_options_are_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--only", "grpc,disk"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown section(s) ['disk']" in done.stderr


def test_http_bench_runs_and_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.http_bench", "--json", "--seconds", "1",
         "--rounds", "1", "--identifiers", "5", "--workers", "1", "--connections", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    if result.stdout.startswith("skipped"):
        return  # no wrk on this machine
    figures = json.loads(result.stdout)
    assert set(figures) == {"floor", "redirect", "rest"}
    for kind in ("redirect", "rest"):
        assert figures[kind]["requests_per_s"] > 0 and figures[kind]["cpu_us_per_request"] > 0
    assert "round 1/1 redirect" in result.stderr


def test_tls_bench_runs_and_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.tls_bench", "--json", "--seconds", "0.3", "--repeat", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for kind in ("calls", "connections"):
        for mode in ("plain", "tls"):
            assert figures[f"{kind}_{mode}_per_s"] > 0
        assert figures[f"{kind}_tls_to_plain_ratio"] > 0
    assert "round 1/1 connections tls" in result.stderr
