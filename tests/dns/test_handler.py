"""The pure wire handler, rule by rule, with requests and replies built by dnspython."""

from __future__ import annotations

import struct
import subprocess
import sys

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from prometheus_client import REGISTRY

import metrics
from registry.errors import all_error_classes
from resolver.dns import dns_name
from resolver.dns.handler import ERROR_RCODES, Handler
from tests.dns.nodes import NODE_PREFIX, ZONE, Node, make_options, value, zone_serial

JX = dns_name("88.118.8/JXDY2106023", ZONE) or ""
ABC = "abc-1.8.118.88.id.example."


def ask(
    handler: Handler,
    qname: str,
    qtype: str = "TXT",
    tcp: bool = False,
    source: str = "127.0.0.1",
    **query_options: object,
) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, **query_options)  # type: ignore[arg-type]
    reply = handler.handle_wire(query.to_wire(), source, tcp)
    assert reply is not None
    message = dns.message.from_wire(reply)
    assert message.id == query.id
    return message


def texts(message: dns.message.Message) -> list[list[bytes]]:
    return [list(rdata.strings) for rrset in message.answer for rdata in rrset]


def serial(message: dns.message.Message) -> int:
    soa = (message.answer or message.authority)[0]
    return int(soa[0].serial)


def test_txt_carries_index_type_and_data_of_public_values_only(handler: Handler) -> None:
    reply = ask(handler, JX)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert texts(reply) == [
        [b"1", b"URL", b"https://example.com/p/JXDY2106023"],
        [b"2", b"product.name", "变压器 transformer".encode()],
    ]


def test_uri_and_naptr_come_from_url_values(handler: Handler) -> None:
    uri = ask(handler, JX, "URI").answer[0]
    assert [(r.priority, r.weight, r.target) for r in uri] == [
        (1, 1, b"https://example.com/p/JXDY2106023")
    ]
    naptr = ask(handler, JX, "NAPTR").answer[0][0]
    assert (naptr.order, naptr.preference, naptr.flags, naptr.service) == (1, 10, b"u", b"II+URL")
    assert naptr.regexp == b"!^.*$!https://example.com/p/JXDY2106023!"
    assert naptr.replacement == dns.name.root


def test_value_ttl_becomes_the_record_ttl(handler: Handler) -> None:
    assert ask(handler, ABC).answer[0].ttl == 600


def test_binary_data_is_shown_as_base64_and_long_data_split_at_255(node: Node) -> None:
    node.registry.create(
        node.admin, "88.118.8/bin", [value(1, "blob", b"\xff\x00"), value(2, "note", "x" * 600)]
    )
    handler = Handler(node.store, node.follower, make_options())
    strings = texts(ask(handler, "bin.8.118.88.id.example.", tcp=True))
    assert strings[0] == [b"1", b"blob", b"b64:/wA="]
    assert strings[1][2:] == [b"x" * 255, b"x" * 255, b"x" * 90]


def test_question_case_is_echoed_and_the_cache_ignores_it(handler: Handler) -> None:
    first = ask(handler, JX.upper())
    second = ask(handler, "B32-99C48m9i64o3cc1i6c.8.118.88.Id.ExAmPlE.")
    assert first.question[0].name.to_text() == JX.upper()
    assert second.question[0].name.to_text() == "B32-99C48m9i64o3cc1i6c.8.118.88.Id.ExAmPlE."
    assert texts(first) == texts(second) != []
    assert len(handler.cache) == 1


def test_absent_name_is_nxdomain_with_soa(handler: Handler, node: Node) -> None:
    reply = ask(handler, "nope.8.118.88.id.example.")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    assert serial(reply) == zone_serial(node)
    assert reply.authority[0].ttl == 60


@pytest.mark.parametrize(
    "qname",
    [JX, "8.118.88.id.example.", "88.id.example.", ZONE],
)
def test_existing_name_without_the_type_is_nodata(handler: Handler, qname: str) -> None:
    reply = ask(handler, qname, "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert reply.authority[0].rdtype == dns.rdatatype.SOA


@pytest.mark.parametrize("qname", ["example.org.", "id.example.org.", "xid.example.", "."])
def test_names_outside_the_zone_are_refused(handler: Handler, qname: str) -> None:
    reply = ask(handler, qname, "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA


def test_apex_has_soa_and_ns(handler: Handler, node: Node) -> None:
    soa = ask(handler, ZONE, "SOA")
    assert serial(soa) == zone_serial(node)
    assert soa.answer[0][0].mname.to_text() == "ns1.id.example."
    ns = ask(handler, ZONE, "NS")
    assert [r.target.to_text() for r in ns.answer[0]] == ["ns1.id.example."]


def test_any_gets_one_rrset(handler: Handler) -> None:
    reply = ask(handler, JX, "ANY")
    assert len(reply.answer) == 1
    assert ask(handler, ZONE, "ANY").answer[0].rdtype == dns.rdatatype.SOA


def test_edns_is_answered_with_payload_1232_and_do_echoed(handler: Handler) -> None:
    plain = ask(handler, JX)
    assert plain.edns == -1
    with_edns = ask(handler, JX, use_edns=0, payload=4096, want_dnssec=True)
    assert with_edns.edns == 0 and with_edns.payload == 1232
    assert with_edns.ednsflags & dns.flags.DO
    without_do = ask(handler, JX, use_edns=0)
    assert not without_do.ednsflags & dns.flags.DO


def test_edns_options_do_not_split_the_cache(handler: Handler) -> None:
    cookie = dns.edns.GenericOption(dns.edns.COOKIE, b"12345678")
    ask(handler, JX, use_edns=0)
    ask(handler, JX, use_edns=0, options=[cookie])
    assert len(handler.cache) == 1


def test_unknown_edns_version_is_badvers(handler: Handler) -> None:
    reply = ask(handler, JX, use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS


@pytest.fixture
def big(node: Node) -> Handler:
    values = [value(i, "note", "n" * 200) for i in range(1, 11)]
    node.registry.create(node.admin, "88.118.8/big", values)
    return Handler(node.store, node.follower, make_options())


def test_answer_too_big_for_udp_is_truncated_and_whole_over_tcp(big: Handler) -> None:
    name = "big.8.118.88.id.example."
    options: list[dict[str, object]] = [{}, {"use_edns": 0, "payload": 4096}]
    options.append({"use_edns": 0, "payload": 700})
    for option in options:
        reply = ask(big, name, "TXT", False, "127.0.0.1", **option)
        assert reply.flags & dns.flags.TC
        assert reply.answer == []
        assert reply.question[0].name.to_text() == name
    whole = ask(big, name, tcp=True)
    assert not whole.flags & dns.flags.TC
    assert len(whole.answer[0]) == 10


def test_smaller_client_payload_is_honoured(node: Node) -> None:
    node.registry.create(node.admin, "88.118.8/mid", [value(1, "note", "m" * 600)])
    handler = Handler(node.store, node.follower, make_options())
    name = "mid.8.118.88.id.example."
    assert not ask(handler, name, use_edns=0, payload=1232).flags & dns.flags.TC
    assert ask(handler, name, use_edns=0, payload=600).flags & dns.flags.TC
    assert ask(handler, name).flags & dns.flags.TC


def _query_wire(qname: str = JX, qtype: str = "TXT") -> bytes:
    return dns.message.make_query(qname, qtype).to_wire()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w + b"\x00",  # a byte after the last record
        lambda w: w[:4] + b"\x00\x02" + w[6:],  # two questions announced, one present
        lambda w: w[:10] + b"\x00\x01" + w[12:] + b"\x00\x00\x29",  # OPT cut short
    ],
)
def test_malformed_requests_get_formerr(handler: Handler, mutate: object) -> None:
    assert callable(mutate)
    reply = handler.handle_wire(mutate(_query_wire()), "127.0.0.1")
    assert reply is not None
    message = dns.message.from_wire(reply)
    assert message.rcode() == dns.rcode.FORMERR


def test_two_opt_records_are_formerr_with_the_question_echoed(handler: Handler) -> None:
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    wire = _query_wire()
    wire = wire[:10] + b"\x00\x02" + wire[12:] + opt + opt
    message = dns.message.from_wire(handler.handle_wire(wire, "127.0.0.1") or b"")
    assert message.rcode() == dns.rcode.FORMERR
    assert message.question[0].name.to_text() == JX


def test_unreadable_question_is_formerr_without_question(handler: Handler) -> None:
    wire = _query_wire()[:20]
    message = dns.message.from_wire(handler.handle_wire(wire, "127.0.0.1") or b"")
    assert message.rcode() == dns.rcode.FORMERR
    assert message.question == []


@pytest.mark.parametrize("data", [b"", b"\x12", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"])
def test_fragments_too_short_to_answer_get_silence(handler: Handler, data: bytes) -> None:
    assert handler.handle_wire(data, "127.0.0.1") is None


def test_responses_are_never_answered(handler: Handler) -> None:
    wire = bytearray(_query_wire())
    wire[2] |= 0x80
    assert handler.handle_wire(bytes(wire), "127.0.0.1") is None


@pytest.mark.parametrize("opcode", [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.UPDATE, 7])
def test_other_opcodes_get_notimp(handler: Handler, opcode: int) -> None:
    wire = bytearray(_query_wire())
    wire[2] = (wire[2] & 0x87) | (opcode << 3)
    reply = handler.handle_wire(bytes(wire), "127.0.0.1") or b""
    # dnspython reads UPDATE sections differently, so the header is checked by hand
    assert reply[3] & 0xF == dns.rcode.NOTIMP
    assert (reply[2] >> 3) & 0xF == opcode
    assert reply[2] & 0x80 and reply[12:] == bytes(wire[12:])  # the question echoed


def test_notify_for_the_zone_is_acknowledged(handler: Handler) -> None:
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notify.flags |= dns.flags.AA
    message = dns.message.from_wire(handler.handle_wire(notify.to_wire(), "127.0.0.1") or b"")
    assert message.rcode() == dns.rcode.NOERROR and message.opcode() == dns.opcode.NOTIFY


def test_axfr_over_udp_is_refused_and_ixfr_over_udp_gets_our_soa(handler: Handler) -> None:
    assert ask(handler, ZONE, "AXFR").rcode() == dns.rcode.REFUSED
    ixfr = dns.message.make_query(ZONE, "IXFR")
    ixfr.authority.append(dns.rrset.from_text(ZONE, 0, "IN", "SOA", ". . 1 0 0 0 0"))
    reply = dns.message.from_wire(handler.handle_wire(ixfr.to_wire(), "127.0.0.1") or b"")
    assert reply.answer[0].rdtype == dns.rdatatype.SOA


def test_transfers_from_other_addresses_are_refused(handler: Handler) -> None:
    query = dns.message.make_query(ZONE, "AXFR").to_wire()
    replies = list(handler.handle_tcp(query, "192.0.2.1"))
    assert dns.message.from_wire(replies[0]).rcode() == dns.rcode.REFUSED


def test_a_new_identifier_replaces_the_cached_nxdomain(handler: Handler, node: Node) -> None:
    name = "fresh.8.118.88.id.example."
    before = ask(handler, name)
    assert before.rcode() == dns.rcode.NXDOMAIN
    node.registry.create(node.admin, "88.118.8/fresh", [value(1, "batch", "new")])
    after = ask(handler, name)
    assert after.rcode() == dns.rcode.NOERROR
    assert texts(after) == [[b"1", b"batch", b"new"]]


def test_changes_and_deletes_reach_cached_answers(handler: Handler, node: Node) -> None:
    assert texts(ask(handler, ABC)) == [[b"1", b"batch", b"B-42"]]
    node.registry.modify_values(node.admin, "88.118.8/abc-1", [value(1, "batch", "B-43")])
    assert texts(ask(handler, ABC)) == [[b"1", b"batch", b"B-43"]]
    node.registry.delete(node.admin, "88.118.8/abc-1")
    assert ask(handler, ABC).rcode() == dns.rcode.NXDOMAIN


def test_cached_negative_answers_carry_the_current_serial(handler: Handler, node: Node) -> None:
    first = serial(ask(handler, "nope.8.118.88.id.example."))
    node.registry.create(node.admin, "88.118.8/other", [value(1, "batch", "x")])
    assert serial(ask(handler, "nope.8.118.88.id.example.")) == first + 1
    assert serial(ask(handler, ZONE, "SOA")) == first + 1


def test_a_write_by_another_process_reaches_the_cache(handler: Handler, node: Node) -> None:
    assert ask(handler, ABC).answer
    script = (
        "import sys; from registry.store import Store; from registry.registry import Registry;"
        "from registry import accounts; from proto import handle_pb2;"
        "s = Store(sys.argv[1]); r = Registry(s, '88.118');"
        "a = accounts.authenticate(s, sys.argv[2]);"
        "r.modify_values(a, '88.118.8/abc-1', [handle_pb2.HandleValue(index=1, type='batch',"
        " data=b'from-elsewhere')])"
    )
    subprocess.run(
        [sys.executable, "-c", script, node.store.path, "admin-token-for-dns-tests"],
        check=True,
        timeout=30,
    )
    assert texts(ask(handler, ABC)) == [[b"1", b"batch", b"from-elsewhere"]]


def test_a_new_derived_prefix_takes_over_its_name(handler: Handler, node: Node) -> None:
    node.registry.create(node.admin, "88.118.8/1", [value(1, "batch", "plain")])
    assert texts(ask(handler, "1.8.118.88.id.example."))
    node.registry.create(node.admin, "88.118.8.1/x", [value(1, "batch", "derived")])
    assert ask(handler, "1.8.118.88.id.example.").answer == []
    assert texts(ask(handler, "x.1.8.118.88.id.example.")) == [[b"1", b"batch", b"derived"]]


def test_rate_limit_drops_and_slips_per_network(node: Node) -> None:
    now = [100.0]
    handler = Handler(
        node.store,
        node.follower,
        make_options(rrl_responses_per_second=5, rrl_slip=2),
        clock=lambda: now[0],
    )
    wire = _query_wire()
    replies = [handler.handle_wire(wire, f"198.51.100.{i}") for i in range(11)]
    assert all(r is not None and not r[2] & 0x02 for r in replies[:5])
    limited = replies[5:]
    assert [r is None for r in limited] == [True, False, True, False, True, False]
    for reply in limited:
        if reply is not None:
            assert dns.message.from_wire(reply).flags & dns.flags.TC
    assert handler.handle_wire(wire, "198.51.101.1") is not None  # another /24
    assert handler.handle_wire(wire, "198.51.100.1", tcp=True) is not None  # TCP is exempt
    now[0] += 1
    assert handler.handle_wire(wire, "198.51.100.1") is not None  # a new second


def test_rate_limit_groups_ipv6_by_56(node: Node) -> None:
    handler = Handler(
        node.store, node.follower, make_options(rrl_responses_per_second=1, rrl_slip=0),
        clock=lambda: 5.0,
    )  # fmt: skip
    wire = _query_wire()
    assert handler.handle_wire(wire, "2001:db8:0:100::1") is not None
    assert handler.handle_wire(wire, "2001:db8:0:1ff::2") is None  # same /56
    assert handler.handle_wire(wire, "2001:db8:0:200::1") is not None  # next /56


def test_rate_limit_changes_while_serving(node: Node) -> None:
    handler = Handler(
        node.store, node.follower, make_options(rrl_responses_per_second=0),
        clock=lambda: 7.0,
    )  # fmt: skip
    wire = _query_wire()
    assert all(handler.handle_wire(wire, "198.51.100.9") is not None for _ in range(20))
    handler.set_rate_limit(2, 0)
    replies = [handler.handle_wire(wire, "198.51.100.9") for _ in range(4)]
    assert [r is None for r in replies] == [False, False, True, True]
    handler.set_rate_limit(0, 0)
    assert handler.handle_wire(wire, "198.51.100.9") is not None


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_responses_and_cache_use_are_counted(handler: Handler) -> None:
    metrics.flush()
    labels = {"proto": "udp", "rcode": "NXDOMAIN"}
    before = _sample("idnode_dns_responses_total", labels)
    hits = _sample("idnode_cache_hits_total", {"cache": "dns"})
    for _ in range(4):  # a missing name is kept from its second miss: then two hits
        ask(handler, "nope.8.118.88.id.example.")
    metrics.flush()
    assert _sample("idnode_dns_responses_total", labels) == before + 4
    assert _sample("idnode_cache_hits_total", {"cache": "dns"}) == hits + 2


def test_every_domain_error_has_an_rcode() -> None:
    assert set(all_error_classes()) <= set(ERROR_RCODES)


def test_node_prefix_is_hosted(handler: Handler) -> None:
    assert NODE_PREFIX in handler.zone.hosted
    assert struct.calcsize("!H") == 2


def test_a_label_with_a_dot_inside_is_no_name(handler: Handler) -> None:
    name = dns.name.Name([b"88.118", b"id", b"example", b""])  # one label, not 118.88.id.example.
    reply = ask(handler, name.to_text(), "TXT")
    assert reply.rcode() == dns.rcode.NXDOMAIN


def test_values_too_big_for_a_message_are_left_out(node: Node) -> None:
    node.registry.create(
        node.admin,
        "88.118.8/huge",
        [value(1, "blob", "h" * 65535), value(2, "URL", "https://x.example/" + "u" * 65000)],
    )
    node.registry.create(node.admin, "88.118.8/large", [value(1, "blob", "l" * 60000)])
    handler = Handler(node.store, node.follower, make_options())
    huge = ask(handler, "huge.8.118.88.id.example.", tcp=True)
    assert huge.rcode() == dns.rcode.NOERROR
    assert texts(huge) == [[b"0", b"dns.omitted", b"2"]]
    large = ask(handler, "large.8.118.88.id.example.", tcp=True)
    assert len(texts(large)[0][2]) == 255


def test_loopback_clients_are_not_rate_limited(node: Node) -> None:
    handler = Handler(
        node.store, node.follower, make_options(rrl_responses_per_second=1, rrl_slip=0),
        clock=lambda: 5.0,
    )  # fmt: skip
    wire = _query_wire()
    for source in ("127.0.0.1", "127.0.0.1", "::1", "::1"):
        assert handler.handle_wire(wire, source) is not None
