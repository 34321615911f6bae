"""Record sets that every secondary can load: bounded in bytes, no duplicates, TTLs of 31 bits."""

from __future__ import annotations

import dns.message
import dns.query
import dns.rdatatype
import dns.zone
import pytest

from proto import handle_pb2
from registry.store import WriteBatch
from resolver.dns import DnsServer, records
from resolver.dns.handler import Handler
from tests.dns.nodes import ZONE, Node, make_options, value
from tests.dns.test_handler import ask, texts

MANY = "many.8.118.88.id.example."


def _axfr_messages(server: DnsServer) -> list[dns.message.Message]:
    query = dns.message.make_query(ZONE, "AXFR").to_wire()
    replies = list(server.handler.handle_tcp(query, "127.0.0.1"))
    assert all(len(reply) <= 65535 for reply in replies)
    return [dns.message.from_wire(reply, xfr=True, origin=None) for reply in replies]


def test_a_record_too_big_for_one_message_publishes_what_fits_and_says_so(node: Node) -> None:
    node.registry.create(
        node.admin, "88.118.8/many", [value(i, "note", "v" * 1000) for i in range(1, 81)]
    )
    handler = Handler(node.store, node.follower, make_options())
    reply = ask(handler, MANY, tcp=True)
    assert not reply.flags & dns.flags.TC  # before: TC even over TCP, and no answer at all
    strings = texts(reply)
    kept = strings[:-1]
    assert strings[-1][:2] == [b"0", b"dns.omitted"]
    assert len(kept) + int(strings[-1][2]) == 80
    assert [int(s[0]) for s in kept] == list(range(1, len(kept) + 1))  # index order
    wire_size = sum(len(MANY) + 1 + 10 + len(r.to_wire()) for r in reply.answer[0])
    assert wire_size <= records.RRSET_BUDGET_BYTES


def test_axfr_holds_every_set_whole_in_one_message(
    server: tuple[DnsServer, int], node: Node
) -> None:
    dns_server, port = server
    node.registry.create(
        node.admin, "88.118.8/many", [value(i, "note", "v" * 1000) for i in range(1, 81)]
    )
    node.registry.create(
        node.admin, "88.118.8/urls", [value(i, "URL", f"https://u.example/{i:0200d}") for i in range(1, 400)]
    )  # fmt: skip
    seen: dict[tuple[str, int], int] = {}
    for number, message in enumerate(_axfr_messages(dns_server)):
        for rrset in message.answer:
            key = (rrset.name.to_text(), rrset.rdtype)
            if rrset.rdtype == dns.rdatatype.SOA:
                continue  # the closing SOA repeats the first by design
            assert seen.setdefault(key, number) == number, f"{key} split across messages"
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=port, timeout=5))
    assert len(zone.find_rdataset("many.8.118.88", "TXT")) < 80
    assert len(zone.find_rdataset("urls.8.118.88", "URI")) > 100


def test_high_indexes_never_make_duplicate_records(node: Node) -> None:
    url = "https://dup.example/p"
    node.registry.create(
        node.admin, "88.118.8/dup", [value(70000, "URL", url), value(70001, "URL", url)]
    )
    handler = Handler(node.store, node.follower, make_options())
    name = "dup.8.118.88.id.example."
    uri = ask(handler, name, "URI", tcp=True).answer[0]
    assert [(r.priority, r.target) for r in uri] == [(65535, url.encode())]

    def answer_count(qtype: str) -> int:  # dnspython merges duplicates: count on the wire
        query = dns.message.make_query(name, qtype).to_wire()
        reply = handler.handle_wire(query, "127.0.0.1", tcp=True)
        assert reply is not None
        return int.from_bytes(reply[6:8], "big")

    assert answer_count("URI") == 1
    assert answer_count("NAPTR") == 1
    assert answer_count("TXT") == 2  # TXT carries the index, so both stay


def _store_raw(node: Node, key: str, values: list[handle_pb2.HandleValue]) -> None:
    """Write a record as an older version of the node could have stored it, unchecked."""

    def work(batch: WriteBatch) -> None:
        batch.put_record(key, handle_pb2.Record(identifier=key, values=values), created=True)

    node.store.write(work)


@pytest.mark.parametrize("stored_ttl", [2**31, 2**32 - 1])
def test_ttls_above_31_bits_already_stored_are_served_capped(
    server: tuple[DnsServer, int], node: Node, stored_ttl: int
) -> None:
    dns_server, _port = server
    _store_raw(node, "88.118.8/old-ttl", [value(1, "URL", "https://t.example/", ttl=stored_ttl)])
    name = "old-ttl.8.118.88.id.example."
    for qtype in ("TXT", "URI", "NAPTR"):
        assert ask(dns_server.handler, name, qtype).answer[0].ttl == records.MAX_TTL_SECONDS
    for message in _axfr_messages(dns_server):
        for rrset in message.answer:
            assert rrset.ttl <= records.MAX_TTL_SECONDS


def test_values_stored_before_any_size_rule_still_transfer(
    server: tuple[DnsServer, int], node: Node
) -> None:
    _store_raw(node, "88.118.8/legacy", [value(i, "blob", "z" * 60000) for i in range(1, 17)])
    _dns, port = server
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=port, timeout=5))
    txt = zone.find_rdataset("legacy.8.118.88", "TXT")
    assert [r.strings[:2] for r in txt][-1] == (b"0", b"dns.omitted")
    assert len(txt) == 2  # one 60 kB value fits, fifteen are left out
    assert dns.rdatatype.TXT in {r.rdtype for r in zone.find_node("legacy.8.118.88")}
