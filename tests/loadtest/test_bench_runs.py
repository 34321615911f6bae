"""The benchmarks run end to end (tiny sizes; their numbers are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_grpc_bench_runs_and_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.grpc_bench", "--json", "--seconds", "0.3",
         "--repeat", "1", "--singles", "5", "--batches", "2", "--batch-size", "50",
         "--workers", "1", "--clients", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {
        "single_registrations_per_s", "import_identifiers_per_s", "health_checks_per_s",
        "resolves_per_s", "batch_resolved_identifiers_per_s", "resolve_to_empty_call_ratio",
    }  # fmt: skip
    assert all(value > 0 for value in figures.values())
    assert "round 1/1 resolve" in result.stderr  # progress is shown


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
