"""Scraping /metrics in tests: fetch, read one sample, run promtool on it; counters of a
stopped node from its metric files."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

PROMTOOL = shutil.which("promtool")


def scrape(host: str, port: int, path: str = "/metrics") -> str:
    return scrape_address(f"{host}:{port}", path)


def scrape_address(address: str, path: str = "/metrics") -> str:
    """`scrape` of a HOST:PORT as a node's ready line gives it."""
    with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def _samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """Each sample of `name` in a text exposition: its labels and its value."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        if metric != name:
            continue
        found = dict(pair.split("=", 1) for pair in rest.rstrip("}").split(",") if "=" in pair)
        yield {k: v.strip('"') for k, v in found.items()}, float(value)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels}` in a text exposition (labels matched exactly)."""
    return next((value for found, value in _samples(text, name) if found == labels), None)


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = labels.items()
    return sum(value for found, value in _samples(text, name) if wanted <= found.items())


def scraped(address: str, name: str, **labels: str) -> float:
    """The sample `name{labels}` at a node's HOST:PORT metrics address, 0 when absent."""
    return sample(scrape_address(address), name, **labels) or 0.0


def counted_after_exit(metrics_dir: Path, family: str, **labels: str) -> int:
    """The counter `family` (its name without `_total`) summed over a stopped node's
    workers, read from their metric files, over the samples whose labels include `labels`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    wanted = labels.items()
    return int(
        sum(
            sample.value
            for found in registry.collect()
            if found.name == family
            for sample in found.samples
            if sample.name.endswith("_total") and wanted <= sample.labels.items()
        )
    )


def promtool_check(text: str) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool not installed (make system-deps installs Debian 'prometheus')")
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stdout + result.stderr
