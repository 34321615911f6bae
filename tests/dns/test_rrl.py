"""Response-rate limiting per response class, name and client network (Knot/NSD design)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import dns.message
import pytest

from resolver.dns import DnsServer
from resolver.dns.handler import Handler
from tests.dns.nodes import NODE_PREFIX, Node, make_options, value


def _limited_handler(node: Node, rate: int, **fields: object) -> Handler:
    options = make_options(rrl_responses_per_second=rate, rrl_slip=0, **fields)
    return Handler(node.store, node.follower, options, clock=lambda: 50.0)


def _wire(qname: str) -> bytes:
    return dns.message.make_query(qname, "TXT").to_wire()


def test_different_names_have_their_own_budget(node: Node) -> None:
    for i in range(6):
        node.registry.create(node.admin, f"88.118.8/n{i}", [value(1, "batch", "b")])
    handler = _limited_handler(node, 2)
    for i in range(6):  # a resolver asking for many names is not limited
        for _ in range(2):
            assert handler.handle_wire(_wire(f"n{i}.8.118.88.id.example."), "203.0.113.5")
    assert handler.handle_wire(_wire("n0.8.118.88.id.example."), "203.0.113.5") is None


def test_random_missing_names_share_one_nxdomain_budget(node: Node) -> None:
    handler = _limited_handler(node, 3)
    answered = [
        handler.handle_wire(_wire(f"r{i}-x.8.118.88.id.example."), "203.0.113.5") is not None
        for i in range(10)
    ]
    assert answered == [True] * 3 + [False] * 7  # the zone keys NXDOMAIN, not each name


def test_the_budget_is_shared_by_the_workers(node: Node) -> None:
    handler = _limited_handler(node, 10, rrl_workers=2)
    wire = _wire("abc-1.8.118.88.id.example.")
    answered = sum(handler.handle_wire(wire, "203.0.113.5") is not None for _ in range(10))
    assert answered == 5


def test_loopback_is_limited_when_its_exemption_is_off(node: Node) -> None:
    handler = _limited_handler(node, 1, rrl_exempt_loopback=False)
    wire = _wire("abc-1.8.118.88.id.example.")
    assert handler.handle_wire(wire, "127.0.0.1") is not None
    assert handler.handle_wire(wire, "127.0.0.1") is None


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace joined to this one by a veth pair: 10.253.N.1 here, .2 there."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"idnode-{uuid.uuid4().hex[:8]}"
    host, peer = f"vh{name[-8:]}", f"vp{name[-8:]}"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", name],
        ["ip", "addr", "add", "10.253.7.1/24", "dev", host],
        ["ip", "link", "set", host, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", "10.253.7.2/24", "dev", peer],
        ["ip", "netns", "exec", name, "ip", "link", "set", peer, "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.skip(f"cannot make a network namespace: {done.stderr.strip()}")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


_CLIENT = textwrap.dedent(
    """
    import socket, sys, dns.message
    port, count = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    query = dns.message.make_query("abc-1.8.118.88.id.example.", "TXT").to_wire()
    for _ in range(count):
        sock.sendto(query, ("10.253.7.1", port))
    answers = truncated = 0
    try:
        while True:
            reply = sock.recv(65535)
            truncated += bool(reply[2] & 0x02)
            answers += not reply[2] & 0x02
    except TimeoutError:
        pass
    print(answers, truncated)
    """
)


def test_a_flood_from_another_network_is_limited_end_to_end(node: Node, namespace: str) -> None:
    options = make_options(rrl_responses_per_second=20, rrl_slip=2)
    server = DnsServer(node.store, NODE_PREFIX, node.follower, options)
    port = server.start(["10.253.7.1:0"])[0][1]
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", _CLIENT, str(port), "200"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        answers, truncated = map(int, done.stdout.split())
    finally:
        server.stop()
    assert 20 <= answers <= 60  # one or two seconds' budget, never the whole flood
    assert truncated >= 40  # every second limited response slips as TC=1
