"""The replica benchmark runs end to end (tiny sizes; its numbers are not checked here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_replica_bench_runs_and_reports_throughput_and_lag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.replica_bench", "--json", "--seconds", "0.5",
         "--repeat", "1", "--identifiers", "200", "--clients", "1", "--rate", "200",
         "--lag-seconds", "2"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for name in ("direct", "haproxy_1_replica", "haproxy_2_replicas"):
        assert figures[f"{name}_resolves_per_s"] > 0
    assert figures["lag_replica_samples"] > 0 and figures["lag_replica_p99_ms"] > 0
    assert "round 1/1 haproxy_2_replicas" in result.stderr
