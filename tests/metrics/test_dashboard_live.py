"""Every dashboard panel's query, run by a real Prometheus against a live node, returns data."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import grpc
import pytest

from proto import handle_pb2, registry_pb2, registry_pb2_grpc, resolver_pb2, resolver_pb2_grpc
from tests.metrics.test_deploy import dashboard_queries
from tests.node.conftest import ADMIN_TOKEN, NodeProcess, start_node
from tests.sync import nodes

PROMETHEUS = shutil.which("prometheus")
SCRAPE_SECONDS = 1
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="prometheus not installed (make system-deps: Debian 'prometheus')",
    ),
]


@pytest.fixture
def node_with_upstream(tmp_path: Path) -> Iterator[NodeProcess]:
    toplevel = nodes.start_toplevel(tmp_path / "toplevel")
    token = nodes.add_node(toplevel, "88.118")
    node = start_node(
        tmp_path / "node", "--workers", "2", "--dns-listen", "127.0.0.1:0",
        "--http-listen", "127.0.0.1:0",
        "--upstream", toplevel.address, "--upstream-token", token,
    )  # fmt: skip
    try:
        yield node
    finally:
        node.stop()
        toplevel.stop()


@pytest.fixture
def prometheus(tmp_path: Path, node_with_upstream: NodeProcess) -> Iterator[str]:
    assert PROMETHEUS is not None
    port = nodes.free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: idnode\n    static_configs:\n"
        f'      - targets: ["{node_with_upstream.metrics}"]\n'
    )
    with open(tmp_path / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    address = f"http://127.0.0.1:{port}"
    try:
        nodes.wait_until("prometheus ready", lambda: _ok(f"{address}/-/ready"), 30)
        yield address
    finally:
        process.terminate()
        process.wait(30)


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _query(prometheus: str, expr: str) -> dict[str, Any]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as reply:
        document: dict[str, Any] = json.load(reply)
    return document


def _traffic(node: NodeProcess) -> None:
    """Some of everything the dashboard shows: writes, hits, misses, DNS, a failed call."""
    admin = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    with grpc.insecure_channel(node.grpc) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        resolver = resolver_pb2_grpc.ResolverStub(channel)
        registry.CreateEnterprise(registry_pb2.CreateEnterpriseRequest(code="8"), metadata=admin)
        value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://e")
        registry.Create(handle_pb2.Record(identifier="88.118.8/a", values=[value]), metadata=admin)
        for identifier in ("88.118.8/a", "88.118.8/a", "88.118.8/missing"):
            with contextlib.suppress(grpc.RpcError):  # the missing one fails: NOT_FOUND
                resolver.Resolve(resolver_pb2.ResolveRequest(identifier=identifier))
    http_host, _, http_port = node.ready["http"][0].rpartition(":")
    for path in ("/88.118.8/a", "/88.118.8/a", "/api/handles/88.118.8/missing"):
        web = http.client.HTTPConnection(http_host, int(http_port), timeout=5)
        web.request("GET", path)  # a redirect (not followed), a hit, a 404
        web.getresponse().read()
        web.close()
    host, _, port = node.ready["dns"][0].rpartition(":")
    for name in ("id.example.", "nothing.8.118.88.id.example."):
        dns.query.udp(dns.message.make_query(name, "SOA"), host, port=int(port), timeout=5)


def test_every_panel_returns_data(node_with_upstream: NodeProcess, prometheus: str) -> None:
    _traffic(node_with_upstream)
    # Enough scrapes for a rate over the window below, with the traffic inside it.
    nodes.wait_until(
        "scrapes",
        lambda: bool(
            _query(prometheus, 'count_over_time(up{job="idnode"}[1m]) >= 6')["data"]["result"]
        ),
        60,
    )
    window = f"{8 * SCRAPE_SECONDS}s"
    empty, failed = [], []
    for expr in dashboard_queries():
        concrete = expr.replace("$__rate_interval", window).replace("$instance", ".*")
        answer = _query(prometheus, concrete)
        if answer.get("status") != "success":
            failed.append(f"{concrete}: {answer}")
        elif not answer["data"]["result"]:
            empty.append(concrete)
    assert failed == [] and empty == [], "\n".join(failed + empty)
    error_share = next(q for q in dashboard_queries() if 'result=\\"error\\"' in json.dumps(q))
    result = _query(
        prometheus, error_share.replace("$__rate_interval", window).replace("$instance", ".*")
    )
    assert {float(r["value"][1]) for r in result["data"]["result"]} == {
        0.0
    }  # healthy: 0, not "No data"
