"""loadtest.dns_bench runs end to end and reports every figure (tiny sizes; numbers unchecked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

TOOLS_MISSING = shutil.which("dnsperf") is None or not (
    shutil.which("nsd") or os.path.exists("/usr/sbin/nsd")
)


@pytest.mark.slow
@pytest.mark.skipif(TOOLS_MISSING, reason="dnsperf and nsd are needed (make system-deps)")
def test_the_dns_bench_measures_hits_and_a_flood_against_nsd() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.dns_bench", "--json", "--seconds", "1",
         "--rounds", "1", "--identifiers", "200"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"hit", "flood"}
    for load in figures.values():
        assert load["node_qps"] > 0 and load["nsd_qps"] > 0
        assert load["node_cpu_us_per_query"] > 0
        assert load["node_to_nsd_ratio_min"] <= load["node_to_nsd_ratio"]
    assert "round 1 flood nsd" in result.stderr  # progress, NSD answered the flood too
