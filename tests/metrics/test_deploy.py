"""Dashboard, alert rules, scrape config and runbooks agree with the declared metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "idnode-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (make system-deps installs Debian 'prometheus')",
)
METRIC_NAME = re.compile(r"\b(?:idnode|grpc_server|process)_[a-z_]+\b")


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def exported_names() -> set[str]:
    """Every sample name the node exports."""
    names = {"up"}
    for metric in metrics._DECLARED:
        if metric._type == "counter":
            names.add(metric._name + "_total")
        elif metric._type == "histogram":
            names.update(metric._name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(metric._name)
    return names


def dashboard_queries() -> Iterator[str]:
    def walk(panels: list[dict[str, object]]) -> Iterator[str]:
        for panel in panels:
            for target in panel.get("targets", []):  # type: ignore[attr-defined]
                yield target["expr"]
            yield from walk(panel.get("panels", []))  # type: ignore[arg-type]

    yield from walk(json.loads(DASHBOARD.read_text())["panels"])


def alert_rules() -> list[tuple[str, str]]:
    """(alert name, expression) of alerts.yml, read without a YAML library."""
    text = (PROMETHEUS_DIR / "alerts.yml").read_text()
    return re.findall(r"- alert: (\w+)\n\s+expr: (\|\n(?:\s{10,}.*\n)+|.*\n)", text)


@needs_promtool
def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    promtool("check", "rules", "deploy/prometheus/alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "deploy/prometheus/alerts_test.yml")


@needs_promtool
def test_the_example_scrape_config_is_valid() -> None:
    promtool("check", "config", "deploy/prometheus/prometheus.yml")


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for number, query in enumerate(dashboard_queries()):
        expr = query.replace("$__rate_interval", "5m").replace("$instance", ".*")
        lines += [f"      - record: dashboard:query{number}", f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text("\n".join(lines) + "\n")
    promtool("check", "rules", str(rules))


def test_dashboard_and_alerts_use_only_metrics_the_node_exports() -> None:
    exported = exported_names()
    used = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    used |= {name for _, expr in alert_rules() for name in METRIC_NAME.findall(expr)}
    assert used - exported == set()
    assert len(alert_rules()) == 13


def test_every_metric_and_every_alert_is_documented() -> None:
    text = OPERATIONS.read_text()
    metrics_section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    runbooks = text.split("## Alerts and runbooks", 1)[1].split("\n## ", 1)[0]
    for metric in metrics._DECLARED:
        shown = metric._name + ("_total" if metric._type == "counter" else "")
        assert f"`{shown}`" in metrics_section, shown
    for alert, _ in alert_rules():
        assert f"### {alert}\n" in runbooks, alert
