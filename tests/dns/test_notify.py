"""NOTIFY to secondaries: sent after changes, coalesced over bursts, retried until answered."""

from __future__ import annotations

import socket
import time

import dns.flags
import dns.message
import dns.opcode
import dns.rdatatype

from proto import handle_pb2
from resolver.dns import Notifier
from tests.dns.nodes import ZONE, Node, make_options, value, zone_serial


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    return sock


def _collect(sock: socket.socket, seconds: float, answer: bool) -> list[dns.message.Message]:
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data, address = sock.recvfrom(65535)
        except TimeoutError:
            continue
        message = dns.message.from_wire(data)
        got.append(message)
        if answer:
            reply = dns.message.make_response(message)
            sock.sendto(reply.to_wire(), address)
    return got


def _sequence(node: Node) -> int:
    return zone_serial(node)


def test_a_burst_of_changes_yields_one_notify_with_the_newest_serial(node: Node) -> None:
    with _listen() as secondary:
        port = secondary.getsockname()[1]
        notifier = Notifier(node.store, make_options(notify=(f"127.0.0.1:{port}",)))
        notifier.start()
        try:
            started = _collect(secondary, 0.5, answer=True)  # one at start: the apex may have moved
            assert len(started) == 1 and started[0].answer[0][0].serial == _sequence(node)
            assert _collect(secondary, 0.5, answer=True) == []  # nothing changed since
            node.registry.batch_register(
                node.admin,
                [handle_pb2.Record(identifier="88.118.8/b1", values=[value(1, "x", "1")])],
            )
            for i in range(5):
                node.registry.create(node.admin, f"88.118.8/burst{i}", [value(1, "x", "y")])
            got = _collect(secondary, 1.5, answer=True)
        finally:
            notifier.stop()
    assert 1 <= len(got) <= 3
    last = got[-1]
    assert last.opcode() == dns.opcode.NOTIFY and last.flags & dns.flags.AA
    assert last.question[0].name.to_text() == ZONE
    assert last.question[0].rdtype == dns.rdatatype.SOA
    assert last.answer[0][0].serial == _sequence(node)


def _receive(
    sock: socket.socket, count: int, seconds: float, answer: bool
) -> list[tuple[float, dns.message.Message]]:
    """The next `count` messages with their arrival times, answering them if asked."""
    got: list[tuple[float, dns.message.Message]] = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        got.extend((time.monotonic(), m) for m in _collect_one(sock, answer))
    assert len(got) == count, f"{len(got)} of {count} NOTIFY messages arrived"
    return got


def _collect_one(sock: socket.socket, answer: bool) -> list[dns.message.Message]:
    try:
        data, address = sock.recvfrom(65535)
    except TimeoutError:
        return []
    message = dns.message.from_wire(data)
    if answer:
        sock.sendto(dns.message.make_response(message).to_wire(), address)
    return [message]


def test_an_unanswered_notify_is_sent_again(node: Node) -> None:
    with _listen() as secondary:
        port = secondary.getsockname()[1]
        options = make_options(notify=(f"127.0.0.1:{port}",))
        notifier = Notifier(node.store, options, first_retry_seconds=0.3)
        notifier.start()
        try:  # sends at t, t + 0.3, t + 0.9, t + 2.1, ... until one is answered
            _receive(secondary, 1, 5, answer=True)  # the NOTIFY every start sends
            node.registry.create(node.admin, "88.118.8/retry", [value(1, "x", "y")])
            silent = _receive(secondary, 2, 5, answer=False)
            answered = _receive(secondary, 1, 5, answer=True)
            after = _collect(secondary, 1.5, answer=True)
        finally:
            notifier.stop()
    assert silent[1][0] - silent[0][0] >= 0.25  # a retry, not a duplicate
    assert answered[0][0] - silent[1][0] >= 0.5  # backing off
    assert after == []  # answered: no more retries
    assert len({m.id for _, m in [*silent, *answered]}) == 3
    assert notifier.acknowledged == 2
