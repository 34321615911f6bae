"""Header and EDNS rules: what is echoed, what is FORMERR, how extended rcodes are counted."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

import metrics
from resolver.dns.handler import Handler
from tests.dns.test_handler import JX, _sample, ask


def _wire(qtype: str = "TXT", **options: object) -> bytes:
    return dns.message.make_query(JX, qtype, **options).to_wire()  # type: ignore[arg-type]


@pytest.mark.parametrize("opcode", [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.UPDATE, 7])
def test_notimp_does_not_echo_rd_and_cd(handler: Handler, opcode: int) -> None:
    wire = bytearray(_wire())
    wire[2] = (wire[2] & 0x87) | (opcode << 3) | 0x01  # RD
    wire[3] |= 0x10  # CD
    reply = handler.handle_wire(bytes(wire), "127.0.0.1") or b""
    assert reply[3] & 0xF == dns.rcode.NOTIMP
    assert not reply[2] & 0x01, "RD is defined for QUERY only"
    assert not reply[3] & 0x10, "CD is defined for QUERY only"


def test_a_query_still_echoes_rd_and_cd(handler: Handler) -> None:
    query = dns.message.make_query(JX, "TXT")
    query.flags |= dns.flags.RD | dns.flags.CD
    reply = dns.message.from_wire(handler.handle_wire(query.to_wire(), "127.0.0.1") or b"")
    assert reply.flags & dns.flags.RD and reply.flags & dns.flags.CD


def test_badvers_is_counted_as_badvers(handler: Handler) -> None:
    metrics.flush()
    labels = {"proto": "udp", "rcode": "BADVERS"}
    before = _sample("idnode_dns_responses_total", labels)
    noerror = _sample("idnode_dns_responses_total", {"proto": "udp", "rcode": "NOERROR"})
    assert ask(handler, JX, use_edns=1).rcode() == dns.rcode.BADVERS
    metrics.flush()
    assert _sample("idnode_dns_responses_total", labels) == before + 1
    assert _sample("idnode_dns_responses_total", {"proto": "udp", "rcode": "NOERROR"}) == noerror


def _with_opt_rdata(rdata: bytes) -> bytes:
    wire = _wire()
    return (
        wire[:10]
        + b"\x00\x01"
        + wire[12:]
        + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00"
        + (len(rdata).to_bytes(2, "big") + rdata)
    )


@pytest.mark.parametrize(
    "rdata",
    [
        b"\x00\x0a\x00\x10" + b"c" * 8,  # a cookie option claiming 16 octets, holding 8
        b"\x00\x03",  # half an option header
        b"\x00\x0a\x00\x05abcde",  # a client cookie must be 8 octets
        b"\x00\x0a\x00\x0c" + b"c" * 12,  # a server cookie must be 8 to 32 octets
    ],
)
def test_malformed_edns_options_are_formerr(handler: Handler, rdata: bytes) -> None:
    for tcp in (False, True):
        reply = handler.handle_wire(_with_opt_rdata(rdata), "127.0.0.1", tcp) or b""
        assert reply[3] & 0xF == dns.rcode.FORMERR
        assert reply[12:].startswith(_wire()[12:])  # the question is echoed


def test_a_query_with_an_answer_section_is_formerr(handler: Handler) -> None:
    query = dns.message.make_query(JX, "TXT")
    query.answer.append(dns.rrset.from_text(JX, 60, "IN", "TXT", '"x"'))
    reply = dns.message.from_wire(handler.handle_wire(query.to_wire(), "127.0.0.1") or b"")
    assert reply.rcode() == dns.rcode.FORMERR
