"""AXFR and IXFR from the change log, read back with dnspython's zone-transfer client."""

from __future__ import annotations

import socket

import dns.message
import dns.query
import dns.rdatatype
import dns.rrset
import dns.xfr
import dns.zone

from proto import handle_pb2
from registry import credentials
from resolver.dns import DnsServer
from tests.dns.nodes import ZONE, Node, value, zone_serial


def _messages(server: DnsServer, query: dns.message.Message) -> list[dns.message.Message]:
    replies = server.handler.handle_tcp(query.to_wire(), "127.0.0.1")
    return [
        dns.message.from_wire(r, xfr=True, origin=dns.name.from_text(ZONE), one_rr_per_rrset=True)
        for r in replies
    ]


def _sequence(node: Node) -> int:
    return zone_serial(node)


def test_axfr_holds_soa_ns_and_every_public_name(server: tuple[DnsServer, int], node: Node) -> None:
    _dns, port = server
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=port, timeout=5))
    assert zone.get_soa().serial == _sequence(node)
    assert zone.find_rdataset("@", "NS")[0].target.to_text() == "ns1"  # relative to the zone
    names = {name.to_text() for name in zone.nodes}
    assert {"@", "b32-99c48m9i64o3cc1i6c.8.118.88", "abc-1.8.118.88"} <= names
    assert "empty.8.118.88" not in names  # only restricted values: nothing to publish
    txt = zone.find_rdataset("abc-1.8.118.88", "TXT")
    assert [list(r.strings) for r in txt] == [[b"1", b"batch", b"B-42"]]


def test_axfr_spans_several_messages_for_a_big_zone(
    server: tuple[DnsServer, int], node: Node
) -> None:
    dns_server, _port = server

    node.registry.batch_register(
        node.admin,
        [
            handle_pb2.Record(identifier=f"88.118.8/n{i}", values=[value(1, "batch", "v" * 50)])
            for i in range(2000)
        ],
    )
    messages = _messages(dns_server, dns.message.make_query(ZONE, "AXFR"))
    assert len(messages) > 3
    count = sum(len(rrset) for m in messages for rrset in m.answer)
    assert count >= 2000 + 3
    assert messages[0].answer[0].rdtype == dns.rdatatype.SOA
    assert messages[-1].answer[-1].rdtype == dns.rdatatype.SOA


def _ixfr(server: DnsServer, serial: int) -> list[dns.message.Message]:
    query = dns.message.make_query(ZONE, "IXFR")
    query.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0"))
    return _messages(server, query)


def _records(messages: list[dns.message.Message]) -> list[tuple[str, str]]:
    """(owner, rdata) in order; dnspython shows names relative to the zone in transfers."""
    return [
        (rrset.name.to_text(), rrset[0].to_text())
        for message in messages
        for rrset in message.answer
    ]


def test_ixfr_sends_the_difference_since_the_client_serial(
    server: tuple[DnsServer, int], node: Node
) -> None:
    dns_server, _port = server
    start = _sequence(node)
    node.registry.create(node.admin, "88.118.8/new", [value(1, "batch", "n1")])
    node.registry.modify_values(node.admin, "88.118.8/abc-1", [value(1, "batch", "B-43", ttl=600)])
    node.registry.delete(node.admin, "88.118.8/JXDY2106023")
    records = _records(_ixfr(dns_server, start))
    end = _sequence(node)
    soa = [i for i, (_name, text) in enumerate(records) if text.startswith("ns1 ")]
    assert len(soa) == 4 and soa[0] == 0 and soa[-1] == len(records) - 1
    assert f" {end} " in records[0][1] and f" {start} " in records[1][1]
    removed = records[soa[1] + 1 : soa[2]]
    added = records[soa[2] + 1 : soa[3]]
    assert ("abc-1.8.118.88", '"1" "batch" "B-42"') in removed
    assert ("abc-1.8.118.88", '"1" "batch" "B-43"') in added
    assert ("new.8.118.88", '"1" "batch" "n1"') in added
    jx = "b32-99c48m9i64o3cc1i6c.8.118.88"
    assert sum(1 for name, _ in removed if name == jx) == 4  # two TXT, URI, NAPTR
    assert not any(name == jx for name, _ in added)


def test_ixfr_from_the_current_serial_is_one_soa(server: tuple[DnsServer, int], node: Node) -> None:
    records = _records(_ixfr(server[0], _sequence(node)))
    assert len(records) == 1


def test_ixfr_beyond_the_log_falls_back_to_a_full_transfer(
    server: tuple[DnsServer, int], node: Node
) -> None:
    dns_server, _port = server
    start = _sequence(node)
    node.registry.create(node.admin, "88.118.8/late", [value(1, "batch", "x")])
    end = _sequence(node)
    with node.store.read() as txn:
        newest = node.store.last_sequence(txn)
    node.store.write(lambda batch: batch.trim_changelog(newest))  # keep only the newest entry
    full = _records(_ixfr(dns_server, start - 1))
    assert any(name == "abc-1.8.118.88" for name, _ in full)  # the whole zone
    assert full[0] == full[-1] and full[1] == ("@", "ns1")  # SOA, NS, ..., SOA
    incremental = _records(_ixfr(dns_server, end - 1))  # still in the log
    assert len(incremental) == 5


def test_ixfr_over_a_new_prefix_falls_back_to_a_full_transfer(
    server: tuple[DnsServer, int], node: Node
) -> None:
    dns_server, _port = server
    start = _sequence(node)
    node.registry.create_enterprise(node.admin, code="9")
    records = _records(_ixfr(dns_server, start))
    assert records[0] == records[-1]
    assert any(text.startswith("ns1") and name == "@" for name, text in records[1:2])


def test_dnspython_applies_axfr_then_ixfr(server: tuple[DnsServer, int], node: Node) -> None:
    _dns, port = server
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=port, timeout=5))
    node.registry.create(node.admin, "88.118.8/step", [value(1, "URL", "https://s.example/1")])
    node.registry.delete(node.admin, "88.118.8/abc-1")
    serial = zone.get_soa().serial
    query, _ = dns.xfr.make_query(zone, serial=serial)
    inbound = dns.xfr.Inbound(zone, dns.rdatatype.IXFR, serial)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        dns.query.send_tcp(sock, query)
        done = False
        while not done:
            length = int.from_bytes(_read(sock, 2), "big")
            message = dns.message.from_wire(_read(sock, length), xfr=True, origin=zone.origin)
            done = inbound.process_message(message)
    assert zone.get_soa().serial == _sequence(node)
    assert zone.get_node("abc-1.8.118.88") is None
    assert zone.find_rdataset("step.8.118.88", "URI")[0].target == b"https://s.example/1"


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed mid-message"
        data += chunk
    return data


def test_axfr_splits_messages_around_records_near_64k(
    server: tuple[DnsServer, int], node: Node
) -> None:
    dns_server, port = server
    node.registry.create(node.admin, "88.118.8/l1", [value(1, "blob", "a" * 60000)])
    node.registry.create(node.admin, "88.118.8/l2", [value(1, "blob", "b" * 60000)])
    replies = list(
        dns_server.handler.handle_tcp(dns.message.make_query(ZONE, "AXFR").to_wire(), "127.0.0.1")
    )
    assert all(len(reply) <= 65535 for reply in replies)
    zone = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", ZONE, port=port, timeout=5))
    assert zone.find_rdataset("l2.8.118.88", "TXT")[0].strings[2] == b"b" * 255


def test_ixfr_passes_over_credential_changes(server: tuple[DnsServer, int], node: Node) -> None:
    dns_server, _port = server
    start = _sequence(node)
    credentials.rotate(node.store, node.admin, "88.118.8", 0, 0)  # an ACCOUNT_PUT entry
    node.registry.create(node.admin, "88.118.8/after", [value(1, "batch", "a")])
    records = _records(_ixfr(dns_server, start))
    soa = [i for i, (_name, text) in enumerate(records) if text.startswith("ns1 ")]
    assert len(soa) == 4  # incremental, not a full transfer
    assert records[soa[2] + 1 : soa[3]] == [("after.8.118.88", '"1" "batch" "a"')]
    only_credentials = _sequence(node)
    credentials.rotate(node.store, node.admin, "88.118.8", 0, 0)
    assert len(_records(_ixfr(dns_server, only_credentials))) == 4  # SOA, SOA, SOA, SOA
