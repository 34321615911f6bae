"""Serving /metrics in one process: addresses, pages, and a scrape promtool accepts."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

import metrics
from metrics import exposition
from tests.metrics.scrape import promtool_check, sample


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_metrics_page_serves_the_registry_in_text_format_and_promtool_accepts_it() -> None:
    exposition.set_build_info("0.0.0-test")
    metrics.DNS_RESPONSES.labels("udp", "NOERROR").inc(0)
    host, port = exposition.serve_metrics("127.0.0.1:0")
    try:
        assert host == "127.0.0.1" and port > 0
        status, content_type, text = get(f"http://{host}:{port}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=0.0.4")
        assert sample(text, "idnode_build_info", version="0.0.0-test") == 1
        assert "process_cpu_seconds_total" in text  # the default registry's own collector
        promtool_check(text)
        assert get(f"http://{host}:{port}/healthz")[::2] == (200, "ok\n")
        assert get(f"http://{host}:{port}/nothing")[0] == 404
    finally:
        exposition.stop_serving()


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback on this machine")
def test_metrics_are_served_on_ipv6() -> None:
    host, port = exposition.serve_metrics("[::1]:0")
    try:
        assert host == "::1"
        status, _, text = get(f"http://[::1]:{port}/metrics")
        assert status == 200 and "idnode_" in text
    finally:
        exposition.stop_serving()


@pytest.mark.parametrize("listen", ["9600", "[::1]9600", "host:", "host:65536", ":80"])
def test_a_malformed_listen_address_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        exposition.serve_metrics(listen)


def test_worker_exited_is_harmless_in_single_process_mode() -> None:
    assert exposition.multiprocess_dir() is None
    exposition.worker_exited(12345)
