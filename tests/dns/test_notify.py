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
from tests.dns.nodes import ZONE, Node, make_options, value


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
    with node.store.read() as txn:
        return node.store.last_sequence(txn)


def test_a_burst_of_changes_yields_one_notify_with_the_newest_serial(node: Node) -> None:
    with _listen() as secondary:
        port = secondary.getsockname()[1]
        notifier = Notifier(node.store, make_options(notify=(f"127.0.0.1:{port}",)))
        notifier.start()
        try:
            assert _collect(secondary, 0.5, answer=True) == []  # nothing changed yet
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


def test_an_unanswered_notify_is_sent_again(node: Node) -> None:
    with _listen() as secondary:
        port = secondary.getsockname()[1]
        options = make_options(notify=(f"127.0.0.1:{port}",))
        notifier = Notifier(node.store, options, first_retry_seconds=0.3)
        notifier.start()
        try:  # sends at t, t + 0.3, t + 0.9, ... with t within one poll (0.2 s)
            node.registry.create(node.admin, "88.118.8/retry", [value(1, "x", "y")])
            silent = _collect(secondary, 0.75, answer=False)
            answered = _collect(secondary, 1.0, answer=True)
            after = _collect(secondary, 1.5, answer=True)
        finally:
            notifier.stop()
    assert len(silent) == 2  # the first try and the first retry
    assert len(answered) == 1 and after == []  # answered: no more retries
    assert len({m.id for m in [*silent, *answered]}) == 3
    assert notifier.acknowledged == 1
