"""loadtest.dns_bench runs end to end and reports every figure (tiny sizes; numbers unchecked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from loadtest.dns_bench import Variant

TOOLS_MISSING = shutil.which("dnsperf") is None or not (
    shutil.which("nsd") or os.path.exists("/usr/sbin/nsd")
)


@pytest.mark.slow
@pytest.mark.skipif(TOOLS_MISSING, reason="dnsperf and nsd are needed (make system-deps)")
def test_the_dns_bench_measures_hits_and_a_flood_against_nsd() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.dns_bench", "--json", "--seconds", "1",
         "--rounds", "1", "--identifiers", "200",
         "--variant", "plain:IDNODE_DNS_UDP_BATCH=0", "--variant", "batch"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {"hit", "flood"}
    for load in figures.values():
        assert load["nsd_qps"] > 0
        for label in ("plain", "batch"):  # both variants measured in the same rounds
            assert load[f"{label}_qps"] > 0 and load[f"{label}_cpu_us_per_query"] > 0
            ratios = [load[f"{label}_to_nsd_ratio{end}"] for end in ("_min", "", "_max")]
            assert ratios == sorted(ratios)
    assert "round 1 flood nsd" in result.stderr  # progress, NSD answered the flood too


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("node", Variant("node")),
        ("plain:IDNODE_DNS_UDP_BATCH=0", Variant("plain", (("IDNODE_DNS_UDP_BATCH", "0"),))),
        ("old:idnode=/x/idnode,A=1", Variant("old", (("A", "1"),), "/x/idnode")),
    ],
)
def test_a_variant_names_its_environment_and_command(text: str, parsed: Variant) -> None:
    assert Variant.parse(text) == parsed


@pytest.mark.parametrize("text", ["nsd", "Upper", "x:NOEQUALS", ""])
def test_a_bad_variant_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="variant"):
        Variant.parse(text)
