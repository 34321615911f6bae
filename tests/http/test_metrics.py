"""The HTTP face's metrics: resolutions by result, duration, requests by method and status."""

from __future__ import annotations

from prometheus_client import REGISTRY

import metrics
from tests.http.conftest import Face, url_value


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_resolutions_requests_and_cache_are_counted(face: Face) -> None:
    face.register("88.118.8/M1", url_value(1, "https://example.com/m1"))
    metrics.flush()
    before = {
        "ok": sample("idnode_resolve_requests_total", proto="http", result="ok"),
        "not_found": sample("idnode_resolve_requests_total", proto="http", result="not_found"),
        "seconds": sample("idnode_resolve_duration_seconds_count", proto="http"),
        "3xx": sample("idnode_http_requests_total", method="GET", code="3xx"),
        "4xx": sample("idnode_http_requests_total", method="GET", code="4xx"),
        "refused": sample("idnode_http_requests_total", method="other", code="4xx"),
        "hits": sample("idnode_cache_hits_total", cache="http"),
    }

    for _ in range(3):  # a miss, then two hits written by the protocol
        assert face.get("/88.118.8/M1").status == 302
    assert face.get("/api/handles/88.118.8/none").status == 404
    assert face.get("/" + "x" * 20_000).status == 414
    metrics.flush()

    assert sample("idnode_resolve_requests_total", proto="http", result="ok") - before["ok"] == 3
    assert (
        sample("idnode_resolve_requests_total", proto="http", result="not_found")
        - before["not_found"]
        == 1
    )
    assert sample("idnode_resolve_duration_seconds_count", proto="http") - before["seconds"] == 4
    assert sample("idnode_http_requests_total", method="GET", code="3xx") - before["3xx"] == 3
    assert sample("idnode_http_requests_total", method="GET", code="4xx") - before["4xx"] == 1
    assert sample("idnode_http_requests_total", method="other", code="4xx") - before["refused"] == 1
    assert sample("idnode_cache_hits_total", cache="http") - before["hits"] == 2
