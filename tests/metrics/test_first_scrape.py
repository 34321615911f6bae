"""The first scrape after a node is ready already holds its gauges and known series at 0."""

from __future__ import annotations

from pathlib import Path

from metrics import DNS_RCODES, KNOWN_REGISTRATIONS, RESOLVE_PROTOS, RESOLVE_RESULTS
from tests.metrics.scrape import sample, scrape
from tests.node.conftest import start_node


def test_first_scrape_has_gauges_and_zero_series(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", "--workers", "2", "--dns-listen", "127.0.0.1:0")
    try:
        host, _, port = node.metrics.rpartition(":")
        text = scrape(host, int(port))  # at once: no wait for a flush interval
    finally:
        node.stop()
    for gauge in ("idnode_identifiers", "idnode_changelog_sequence", "idnode_store_size_bytes"):
        assert sample(text, gauge) is not None, gauge
    for cache in ("grpc", "dns"):
        assert sample(text, "idnode_cache_entries", cache=cache) == 0, cache
    for proto in RESOLVE_PROTOS:
        for result in RESOLVE_RESULTS:
            assert sample(text, "idnode_resolve_requests_total", proto=proto, result=result) == 0
        assert sample(text, "idnode_resolve_duration_seconds_count", proto=proto) == 0
    for op, result in KNOWN_REGISTRATIONS:
        assert sample(text, "idnode_registrations_total", op=op, result=result) == 0, op
    for rcode in DNS_RCODES:
        assert sample(text, "idnode_dns_responses_total", proto="udp", rcode=rcode) == 0
