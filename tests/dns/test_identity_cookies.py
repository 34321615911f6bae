"""NSID, CH TXT id.server / version.bind, and DNS cookies (RFC 5001, RFC 7873)."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import pytest

from resolver.dns.handler import Handler
from tests.dns.nodes import Node, make_options
from tests.dns.test_handler import ABC, JX

CLIENT = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def _ask(handler: Handler, message: dns.message.Message, source: str = "198.51.100.7") -> bytes:
    reply = handler.handle_wire(message.to_wire(), source)
    assert reply is not None
    return reply


def _option(reply: bytes, code: int) -> bytes | None:
    for option in dns.message.from_wire(reply).options:
        if option.otype == code:
            return bytes(option.to_wire() or b"")
    return None


def test_nsid_names_the_worker_that_answered(node: Node) -> None:
    handler = Handler(node.store, node.follower, make_options(identity="dns-a/worker-1"))
    asked = dns.message.make_query(JX, "TXT", use_edns=0, options=[dns.edns.NSIDOption(b"")])
    assert _option(_ask(handler, asked), dns.edns.NSID) == b"dns-a/worker-1"
    plain = dns.message.make_query(JX, "TXT", use_edns=0)
    assert _option(_ask(handler, plain), dns.edns.NSID) is None


@pytest.mark.parametrize(
    ("fields", "qname", "expected"),
    [
        ({"identity": "ns-a"}, "id.server.", "ns-a"),
        ({"identity": "ns-a"}, "hostname.bind.", "ns-a"),
        ({"identity": "ns-a", "hide_identity": True}, "id.server.", None),
        ({}, "version.bind.", None),  # off by default
        ({"version": "idnode 0.4"}, "version.bind.", "idnode 0.4"),
        ({"version": "idnode 0.4"}, "other.bind.", None),
    ],
)
def test_chaos_txt_tells_who_and_which_version_only_when_configured(
    node: Node, fields: dict[str, object], qname: str, expected: str | None
) -> None:
    handler = Handler(node.store, node.follower, make_options(**fields))
    query = dns.message.make_query(qname, "TXT", rdclass=dns.rdataclass.CH)
    reply = dns.message.from_wire(_ask(handler, query, "127.0.0.1"))
    if expected is None:
        assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    else:
        assert reply.rcode() == dns.rcode.NOERROR
        assert [r.strings for r in reply.answer[0]] == [(expected.encode(),)]
        assert reply.answer[0].rdclass == dns.rdataclass.CH


def _cookie_query(cookie: bytes, qname: str = ABC) -> dns.message.Message:
    return dns.message.make_query(
        qname, "TXT", use_edns=0, options=[dns.edns.GenericOption(dns.edns.COOKIE, cookie)]
    )


def test_a_client_cookie_gets_a_server_cookie_that_then_proves_the_client(node: Node) -> None:
    handler = Handler(
        node.store, node.follower,
        make_options(rrl_responses_per_second=1, rrl_slip=1), clock=lambda: 10.0,
    )  # fmt: skip
    first = _option(_ask(handler, _cookie_query(CLIENT)), dns.edns.COOKIE)
    assert first is not None and first[:8] == CLIENT and len(first) == 24
    assert first[8] == 1  # RFC 9018 version
    for _ in range(5):  # limited to 1/s, but a valid server cookie is never limited
        again = _ask(handler, _cookie_query(first))
        assert dns.message.from_wire(again).answer
    other_source = handler.handle_wire(_cookie_query(first).to_wire(), "198.51.100.8")
    assert other_source is not None  # not valid there: limited, and told to retry
    assert dns.message.from_wire(other_source).rcode() == dns.rcode.BADCOOKIE


def test_a_limited_client_with_a_client_cookie_slips_as_badcookie(node: Node) -> None:
    handler = Handler(
        node.store, node.follower,
        make_options(rrl_responses_per_second=1, rrl_slip=1), clock=lambda: 10.0,
    )  # fmt: skip
    assert dns.message.from_wire(_ask(handler, _cookie_query(CLIENT))).answer
    limited = dns.message.from_wire(_ask(handler, _cookie_query(CLIENT)))
    assert limited.rcode() == dns.rcode.BADCOOKIE and not limited.answer
    fresh = _option(limited.to_wire(), dns.edns.COOKIE)
    assert fresh is not None and fresh[:8] == CLIENT
    plain = dns.message.make_query(ABC, "TXT", use_edns=0)
    slipped = dns.message.from_wire(_ask(handler, plain))  # no cookie: the plain slip
    assert slipped.flags & dns.flags.TC and slipped.rcode() == dns.rcode.NOERROR


def test_cookies_can_be_turned_off(node: Node) -> None:
    handler = Handler(node.store, node.follower, make_options(cookies=False))
    assert _option(_ask(handler, _cookie_query(CLIENT)), dns.edns.COOKIE) is None


def test_every_worker_shares_the_cookie_secret(node: Node) -> None:
    one = Handler(node.store, node.follower, make_options())
    two = Handler(node.store, node.follower, make_options(rrl_responses_per_second=1, rrl_slip=0))
    cookie = _option(_ask(one, _cookie_query(CLIENT)), dns.edns.COOKIE)
    assert cookie is not None
    for _ in range(3):
        assert dns.message.from_wire(_ask(two, _cookie_query(cookie))).answer
