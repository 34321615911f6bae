"""idnode answers exactly what the zone it transfers contains (RFC 8020 for empty non-terminals)."""

from __future__ import annotations

import dns.rcode
import pytest

from resolver.dns import dns_name
from resolver.dns.handler import Handler
from tests.dns.nodes import ZONE, Node, make_options, value
from tests.dns.test_handler import ask
from tests.dns.zonecheck import LONG_SUFFIX, axfr_zone, expected_rcode, names_to_ask, populate

LONG = dns_name(f"88.118.8/{LONG_SUFFIX}", ZONE) or ""


@pytest.mark.parametrize("tcp", [False, True])
def test_every_generated_name_answers_as_the_transferred_zone_says(node: Node, tcp: bool) -> None:
    deleted = populate(node)
    handler = Handler(node.store, node.follower, make_options())
    zone = axfr_zone(handler)
    wrong = []
    for qname in names_to_ask(zone, deleted):
        for qtype in ("TXT", "AAAA"):
            reply = ask(handler, qname, qtype, tcp=tcp)
            if reply.rcode() != expected_rcode(zone, qname):
                wrong.append((qname, qtype, dns.rcode.to_text(reply.rcode())))
    assert wrong == []


def test_private_only_identifiers_and_empty_prefixes_are_nxdomain(node: Node) -> None:
    populate(node)
    handler = Handler(node.store, node.follower, make_options())
    for qname in ("empty.8.118.88.id.example.", "9.118.88.id.example.", "10.118.88.id.example."):
        assert ask(handler, qname, "TXT").rcode() == dns.rcode.NXDOMAIN, qname


def test_the_labels_inside_a_long_name_exist(node: Node) -> None:
    populate(node)
    handler = Handler(node.store, node.follower, make_options())
    labels = LONG.split(".")
    for cut in range(1, 3):  # the two empty non-terminals below the prefix
        reply = ask(handler, ".".join(labels[cut:]), "TXT")
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
    fake = "v" * 63 + ".v.8.118.88.id.example."
    assert ask(handler, fake, "TXT").rcode() == dns.rcode.NXDOMAIN


def test_names_appear_and_vanish_with_their_identifiers(node: Node) -> None:
    handler = Handler(node.store, node.follower, make_options())
    node.registry.create_enterprise(node.admin, code="9", name="Later")
    tail = ".".join(LONG.split(".")[2:]).replace(".8.118.88.", ".9.118.88.")
    for qname in ("9.118.88.id.example.", tail):
        assert ask(handler, qname, "TXT").rcode() == dns.rcode.NXDOMAIN  # now cached
    node.registry.create(node.admin, f"88.118.9/{LONG_SUFFIX}", [value(1, "batch", "x")])
    for qname in ("9.118.88.id.example.", tail):
        assert ask(handler, qname, "TXT").rcode() == dns.rcode.NOERROR
    node.registry.modify_values(
        node.admin, f"88.118.9/{LONG_SUFFIX}", [value(1, "batch", "x", public_read=False)]
    )
    for qname in ("9.118.88.id.example.", tail):
        assert ask(handler, qname, "TXT").rcode() == dns.rcode.NXDOMAIN


def test_a_new_derived_prefix_takes_over_names_below_it(node: Node) -> None:
    populate(node)
    handler = Handler(node.store, node.follower, make_options())
    assert ask(handler, "abc-2.8.118.88.id.example.", "TXT").rcode() == dns.rcode.NOERROR
    zone = axfr_zone(handler)
    assert expected_rcode(zone, "under.abc-2.8.118.88.id.example.") == dns.rcode.NOERROR
    reply = ask(handler, "abc-2.8.118.88.id.example.", "TXT")
    assert reply.answer == []  # the identifier 88.118.8/abc-2 lost its name to the prefix
