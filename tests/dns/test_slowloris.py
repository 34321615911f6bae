"""TCP nobody can starve: slow senders are cut, idle ones make room, one source cannot fill it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.query
import pytest

import metrics
from resolver.dns import DnsServer
from tests.dns.nodes import NODE_PREFIX, Node, make_options
from tests.dns.test_handler import _sample

ABC = "abc-1.8.118.88.id.example."


@pytest.fixture
def guarded(node: Node) -> Iterator[tuple[DnsServer, int]]:
    options = make_options(
        tcp_idle_timeout_seconds=3.0, tcp_message_timeout_seconds=0.8,
        max_tcp_connections=12, max_tcp_connections_per_source=4,
    )  # fmt: skip
    server = DnsServer(node.store, NODE_PREFIX, node.follower, options)
    port = server.start(["127.0.0.1:0"])[0][1]
    yield server, port
    server.stop()


def _connect(port: int, source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def _drip(sock: socket.socket, stop: threading.Event, every_seconds: float) -> None:
    """Send a query one byte at a time, each gap well inside the idle timeout."""
    message = dns.message.make_query(ABC, "TXT").to_wire()
    data = len(message).to_bytes(2, "big") + message
    for byte in data:
        if stop.wait(every_seconds):
            return
        try:
            sock.send(bytes((byte,)))
        except OSError:
            return


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_message_sent_byte_by_byte_is_cut_at_the_message_deadline(
    guarded: tuple[DnsServer, int],
) -> None:
    _server, port = guarded
    metrics.flush()
    slow_before = _sample("idnode_dns_tcp_closed_total", {"reason": "slow"})
    stop = threading.Event()
    sock = _connect(port, "127.0.0.1")
    dripper = threading.Thread(target=_drip, args=(sock, stop, 0.3), daemon=True)
    dripper.start()
    started = time.monotonic()
    try:
        assert _closed_within(sock, 4)  # before: every byte reset the timer, held for ever
        assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        sock.close()
    metrics.flush()
    assert _sample("idnode_dns_tcp_closed_total", {"reason": "slow"}) == slow_before + 1


def test_slow_clients_from_many_sources_cannot_shut_out_a_new_one(
    guarded: tuple[DnsServer, int],
) -> None:
    _server, port = guarded
    stop = threading.Event()
    attackers = [_connect(port, f"127.0.0.{2 + i % 5}") for i in range(20)]  # 4 per source
    for sock in attackers:
        threading.Thread(target=_drip, args=(sock, stop, 0.1), daemon=True).start()
    try:
        time.sleep(0.2)
        started = time.monotonic()
        reply = dns.query.tcp(dns.message.make_query(ABC, "TXT"), "127.0.0.1", port=port, timeout=2)
        assert reply.answer and time.monotonic() - started < 1  # before: closed on accept
    finally:
        stop.set()
        for sock in attackers:
            sock.close()


def test_one_source_keeps_at_most_its_share(guarded: tuple[DnsServer, int]) -> None:
    _server, port = guarded
    metrics.flush()
    evicted_before = _sample("idnode_dns_tcp_closed_total", {"reason": "evicted"})
    held = [_connect(port, "127.0.0.9") for _ in range(7)]
    try:
        time.sleep(0.3)
        open_ones = [s for s in held if not _closed_within(s, 0.2)]
        assert len(open_ones) == 4
        assert held[-1] in open_ones and held[0] not in open_ones  # the oldest made room
    finally:
        for sock in held:
            sock.close()
    metrics.flush()
    assert _sample("idnode_dns_tcp_closed_total", {"reason": "evicted"}) == evicted_before + 3
