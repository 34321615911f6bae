"""A varied zone and the names to ask about it: shared by the answer-agreement tests."""

from __future__ import annotations

import dns.message
import dns.name
import dns.zone

from proto import handle_pb2
from resolver.dns import dns_name
from resolver.dns.handler import Handler
from tests.dns.nodes import ZONE, Node, value

LONG_SUFFIX = "LOT-2024/" + "A" * 70  # three labels of base32
LONGER_SUFFIX = "serial:" + "Z" * 110  # four labels


def populate(node: Node) -> list[str]:
    """Identifiers of every kind; returns the names of those deleted again."""
    admin, registry = node.admin, node.registry
    registry.create(admin, f"88.118.8/{LONG_SUFFIX}", [value(1, "URL", "https://l.example/")])
    registry.create(admin, f"88.118.8/{LONGER_SUFFIX}", [value(1, "batch", "x")])
    registry.create(admin, "88.118.8/private-only", [value(1, "k", "v", public_read=False)])
    registry.create(admin, "88.118.8.5/in-derived", [value(1, "batch", "d")])
    registry.create(admin, "88.118.8/abc-2", [value(1, "batch", "shadowed later")])
    registry.create(admin, "88.118.8.abc-2/under", [value(1, "batch", "u")])
    registry.create_enterprise(admin, code="9", name="No identifiers yet")
    registry.create_enterprise(admin, code="10", name="Private only")
    registry.create(admin, "88.118.10/p", [value(1, "k", "v", public_read=False)])
    deleted = []
    for suffix in ("gone", "GONE-" + "Q" * 60):
        registry.create(admin, f"88.118.8/{suffix}", [value(1, "batch", "x")])
        registry.delete(admin, f"88.118.8/{suffix}")
        deleted.append(dns_name(f"88.118.8/{suffix}", ZONE) or "")
    return deleted


def axfr_zone(handler: Handler) -> dns.zone.Zone:
    query = dns.message.make_query(ZONE, "AXFR").to_wire()
    messages = [dns.message.from_wire(m, xfr=True) for m in handler.handle_tcp(query, "127.0.0.1")]
    zone = dns.zone.Zone(ZONE)
    for message in messages:
        for rrset in message.answer:
            node = zone.find_node(rrset.name, create=True)
            node.replace_rdataset(
                dns.rdataset.from_rdata_list(rrset.ttl, list(rrset))
                if rrset.rdtype != dns.rdatatype.SOA
                else dns.rdataset.from_rdata_list(rrset.ttl, [rrset[0]])
            )
    return zone


def names_to_ask(zone: dns.zone.Zone, extra: list[str]) -> list[str]:
    """Every name in the zone, every name between them and the apex, and near misses."""
    origin = zone.origin
    assert origin is not None
    found: set[dns.name.Name] = set()
    for name in zone.nodes:
        absolute = name.derelativize(origin)
        while absolute != origin and absolute.is_subdomain(origin):
            found.add(absolute)
            absolute = absolute.parent()
    asked = {n.to_text() for n in found} | set(extra)
    asked |= {"x" + n.to_text() for n in found if len(n.labels[0]) < 60}
    asked |= {"nope." + n.to_text() for n in found if len(n.to_text()) < 240}
    asked |= {
        "9.118.88.id.example.", "10.118.88.id.example.", "77.118.88.id.example.",
        "5.8.118.88.id.example.", "abc-2.8.118.88.id.example.", "p.10.118.88.id.example.",
        "private-only.8.118.88.id.example.", "v" * 63 + ".v.8.118.88.id.example.",
        ZONE, "ns1." + ZONE,
    }  # fmt: skip
    return sorted(asked)


def expected_rcode(zone: dns.zone.Zone, qname: str) -> int:
    """What a secondary holding `zone` answers: NOERROR when anything lives at or below."""
    name = dns.name.from_text(qname)
    origin = zone.origin
    assert origin is not None
    for node_name in zone.nodes:
        if node_name.derelativize(origin).is_subdomain(name):
            return 0
    return 3


def record(identifier: str) -> handle_pb2.Record:
    return handle_pb2.Record(identifier=identifier, values=[value(1, "batch", "b")])
