"""Scraping /metrics in tests: fetch, read one sample, run promtool on it."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request

import pytest

PROMTOOL = shutil.which("promtool")


def scrape(host: str, port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels}` in a text exposition (labels matched exactly)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        if metric != name:
            continue
        found = dict(pair.split("=", 1) for pair in rest.rstrip("}").split(",") if "=" in pair)
        if {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return None


def promtool_check(text: str) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool not installed (make system-deps installs Debian 'prometheus')")
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stdout + result.stderr
