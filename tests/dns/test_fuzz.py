"""Robustness: random and mutated packets never crash the handler and always get sane replies."""

from __future__ import annotations

import logging
import random
import socket
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from resolver.dns import DnsServer
from resolver.dns.handler import Handler
from tests.dns.nodes import ZONE

pytestmark = pytest.mark.slow  # 100,000 random and mutated packets.

PACKETS = 100_000
UDP_PACKETS = 5_000
TIME_LIMIT_SECONDS = 40.0
SEEDS = [
    dns.message.make_query("abc-1.8.118.88.id.example.", "TXT"),
    dns.message.make_query("b32-99c48m9i64o3cc1i6c.8.118.88.Id.Example.", "URI", use_edns=0),
    dns.message.make_query("nope.8.118.88.id.example.", "NAPTR", use_edns=0, want_dnssec=True),
    dns.message.make_query(ZONE, "SOA", use_edns=0, payload=4096),
    dns.message.make_query(ZONE, "AXFR"),
    dns.message.make_query("example.org.", "A"),
    dns.message.make_query("8.118.88.id.example.", "ANY", use_edns=0),
]


def _mutate(rng: random.Random, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.35 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif choice < 0.5 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.6:
            del data[rng.randrange(len(data) + 1) :]
        elif choice < 0.7:
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif choice < 0.8 and len(data) >= 12:
            data[rng.choice((4, 5, 6, 7, 8, 9, 10, 11))] = rng.randrange(4)
        elif choice < 0.9 and len(data) >= 3:
            data[2] = (data[2] & 0x87) | (rng.randrange(16) << 3)  # another opcode
        else:
            data += b"\x00\x00\x29" + rng.randbytes(rng.randint(0, 12))
    return bytes(data)


def _packets(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    bases = [query.to_wire() for query in SEEDS]
    packets = []
    for _ in range(count):
        if rng.random() < 0.2:
            packets.append(rng.randbytes(rng.randint(0, 80)))
        else:
            packets.append(_mutate(rng, rng.choice(bases)))
    return packets


def _check_reply(request: bytes, reply: bytes) -> None:
    assert len(reply) >= 12 and reply[:2] == request[:2] and reply[2] & 0x80
    # dnspython reads UPDATE (opcode 5) sections differently; the layout is checked as a QUERY
    readable = reply[:2] + bytes((reply[2] & 0x87,)) + reply[3:]
    message = dns.message.from_wire(readable)
    assert message.rcode() != dns.rcode.SERVFAIL, "an internal error became SERVFAIL"
    if message.question:  # the question is echoed byte for byte, case included
        size = len(message.question[0].name.to_wire() or b"") + 4
        assert reply[12 : 12 + size] == request[12 : 12 + size]


def test_handler_survives_random_and_mutated_packets(
    handler: Handler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    started = time.monotonic()
    answered = silent = 0
    for index, packet in enumerate(_packets(20261124, PACKETS)):
        for tcp in (False,) if index % 10 else (False, True):
            reply = handler.handle_wire(packet, "127.0.0.1", tcp)
            if reply is None:
                silent += 1
                continue
            answered += 1
            _check_reply(packet, reply)
        assert time.monotonic() - started < TIME_LIMIT_SECONDS
    assert answered > PACKETS // 2 and silent > 0
    assert not caplog.records, caplog.records[0].getMessage()
    good = SEEDS[0].to_wire()
    assert dns.message.from_wire(handler.handle_wire(good, "127.0.0.1") or b"").answer


def test_udp_server_keeps_answering_through_garbage(server: tuple[DnsServer, int]) -> None:
    _dns, port = server
    packets = _packets(7, UDP_PACKETS)
    replies = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.2)
        for start in range(0, len(packets), 50):
            for packet in packets[start : start + 50]:
                sock.send(packet)
            while True:  # drain what came back, checking each reply parses
                try:
                    reply = sock.recv(65535)
                except TimeoutError:
                    break
                replies += 1
                readable = reply[:2] + bytes((reply[2] & 0x87,)) + reply[3:]
                dns.message.from_wire(readable)
                sock.settimeout(0.02)
            sock.settimeout(0.2)
    assert replies > UDP_PACKETS // 3
    good = dns.query.udp(SEEDS[0], "127.0.0.1", port=port, timeout=3)
    assert good.answer
