"""The UDP and TCP servers on real loopback sockets, IPv4 and IPv6."""

from __future__ import annotations

import socket
import struct
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.dns import DnsServer
from tests.dns.nodes import NODE_PREFIX, ZONE, Node, make_options, value

ABC = "abc-1.8.118.88.id.example."


def _tcp_query(sock: socket.socket, message: dns.message.Message) -> None:
    wire = message.to_wire()
    sock.sendall(struct.pack("!H", len(wire)) + wire)


def _tcp_reply(sock: socket.socket) -> dns.message.Message:
    head = sock.recv(2, socket.MSG_WAITALL)
    assert len(head) == 2
    return dns.message.from_wire(sock.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_and_tcp_answer_on_both_families(server: tuple[DnsServer, int], host: str) -> None:
    dns_server, _port = server
    ports = {h: p for h, p in dns_server.bound}
    query = dns.message.make_query(ABC, "TXT")
    udp = dns.query.udp(query, host, port=ports[host], timeout=3)
    tcp = dns.query.tcp(query, host, port=ports[host], timeout=3)
    assert udp.answer == tcp.answer != []


def test_tcp_pipelined_queries_are_answered_in_order(server: tuple[DnsServer, int]) -> None:
    _dns, port = server
    queries = [dns.message.make_query(ABC, kind) for kind in ("TXT", "A", "SOA")]
    queries[2] = dns.message.make_query(ZONE, "SOA")
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        for query in queries:
            _tcp_query(sock, query)
        replies = [_tcp_reply(sock) for _ in queries]
    assert [r.id for r in replies] == [q.id for q in queries]
    assert replies[0].answer and not replies[1].answer and replies[2].answer


def test_idle_tcp_connections_are_closed(node: Node) -> None:
    dns_server = DnsServer(
        node.store, NODE_PREFIX, node.follower, make_options(tcp_idle_timeout_seconds=0.3)
    )
    port = dns_server.start(["127.0.0.1:0"])[0][1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            started = time.monotonic()
            assert sock.recv(1) == b""  # closed by the server
            assert time.monotonic() - started < 2
    finally:
        dns_server.stop()


def test_at_the_cap_the_oldest_idle_connection_makes_room(node: Node) -> None:
    dns_server = DnsServer(
        node.store, NODE_PREFIX, node.follower, make_options(max_tcp_connections=2)
    )
    port = dns_server.start(["127.0.0.1:0"])[0][1]
    held: list[socket.socket] = []
    try:
        held += [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(2)]
        for sock in held:  # make sure the server has taken both
            _tcp_query(sock, dns.message.make_query(ABC, "TXT"))
            assert _tcp_reply(sock).answer
            # A connection is busy until its thread notes the reply sent, which may come
            # after the client has read it: wait for that, so "oldest idle" is held[0].
            _wait_idle(dns_server)
        with socket.create_connection(("127.0.0.1", port), timeout=3) as extra:
            _tcp_query(extra, dns.message.make_query(ABC, "TXT"))
            assert _tcp_reply(extra).answer  # before: closed on accept
        assert held[0].recv(1) == b""  # the oldest was closed to make room
        _tcp_query(held[1], dns.message.make_query(ABC, "TXT"))
        assert _tcp_reply(held[1]).answer
    finally:
        for sock in held:
            sock.close()
        dns_server.stop()


def _wait_idle(dns_server: DnsServer) -> None:
    deadline = time.monotonic() + 5
    while any(c.busy for c in list(dns_server.tcp._live.values())):
        assert time.monotonic() < deadline, "a connection stayed busy"
        time.sleep(0.01)


def test_truncated_udp_answer_is_whole_over_tcp(server: tuple[DnsServer, int], node: Node) -> None:
    _dns, port = server
    node.registry.create(
        node.admin, "88.118.8/big", [value(i, "n", "x" * 200) for i in range(1, 9)]
    )
    query = dns.message.make_query("big.8.118.88.id.example.", "TXT", use_edns=0)
    udp = dns.query.udp(query, "127.0.0.1", port=port, timeout=3)
    assert udp.flags & dns.flags.TC
    tcp = dns.query.tcp(query, "127.0.0.1", port=port, timeout=3)
    assert len(tcp.answer[0]) == 8


def test_two_servers_share_a_port_with_reuseport(node: Node) -> None:
    first = DnsServer(node.store, NODE_PREFIX, node.follower, make_options())
    port = first.start(["127.0.0.1:0"])[0][1]
    second = DnsServer(node.store, NODE_PREFIX, node.follower, make_options())
    try:
        assert second.start([f"127.0.0.1:{port}"]) == [("127.0.0.1", port)]
        reply = dns.query.udp(dns.message.make_query(ABC, "TXT"), "127.0.0.1", port=port, timeout=3)
        assert reply.answer
    finally:
        second.stop()
        first.stop()


def test_garbage_does_not_stop_the_udp_loop(server: tuple[DnsServer, int]) -> None:
    _dns, port = server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\x00", b"\xff" * 11, b"\x00" * 12, b"\xff" * 600):
            sock.sendto(junk, ("127.0.0.1", port))
    reply = dns.query.udp(dns.message.make_query(ABC, "TXT"), "127.0.0.1", port=port, timeout=3)
    assert reply.rcode() == dns.rcode.NOERROR


def test_stop_closes_the_ports(node: Node) -> None:
    dns_server = DnsServer(node.store, NODE_PREFIX, node.follower, make_options())
    port = dns_server.start(["127.0.0.1:0"])[0][1]
    dns_server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
