"""DNS wire format: the few constants, name encoding and a query parser that allocates little."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Types and classes we name (RFC 1035, 3403, 6891, 7553, 1995, 5936).
A = 1
AAAA = 28
SOA = 6
NS = 2
TXT = 16
NAPTR = 35
OPT = 41
URI = 256
IXFR = 251
AXFR = 252
MAILB = 253
MAILA = 254
ANY = 255
TSIG = 250
TKEY = 249
SIG = 24
CLASS_IN = 1
CLASS_ANY = 255

OPCODE_QUERY = 0
OPCODE_NOTIFY = 4

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16  # extended rcode, carried in the OPT record
BADCOOKIE = 23  # extended rcode (RFC 7873)

RCODE_TEXT = {
    NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL", NXDOMAIN: "NXDOMAIN",
    NOTIMP: "NOTIMP", REFUSED: "REFUSED", BADVERS: "BADVERS", BADCOOKIE: "BADCOOKIE",
}  # fmt: skip

OPTION_NSID = 3  # RFC 5001
OPTION_COOKIE = 10  # RFC 7873
CLIENT_COOKIE_BYTES = 8
MIN_SERVER_COOKIE_BYTES = 8
MAX_SERVER_COOKIE_BYTES = 32

EDNS_PAYLOAD = 1232  # what we advertise, and the most we send over UDP
MIN_PAYLOAD = 512
HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")


class WireError(Exception):
    """The message is malformed."""


def name_to_wire(name: str) -> bytes:
    """Encode a dotted ASCII name (trailing dot optional) without compression."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)


def labels_of(name_wire: bytes) -> list[bytes]:
    """The labels of an uncompressed wire name, leftmost first, root excluded."""
    labels = []
    offset = 0
    while name_wire[offset]:
        length = name_wire[offset]
        labels.append(name_wire[offset + 1 : offset + 1 + length])
        offset += length + 1
    return labels


@dataclass(slots=True)
class Query:
    """The parts of a request the handler needs; `qname` is the name as sent."""

    ident: int
    flags: int
    opcode: int
    qname: bytes
    qtype: int
    qclass: int
    question_end: int
    edns: bool = False
    payload: int = MIN_PAYLOAD
    dnssec_ok: bool = False
    edns_version: int = 0
    signed: bool = False  # carries TSIG or SIG(0), which we do not verify
    authority_offset: int = 0  # where the authority section starts (IXFR's SOA)
    nscount: int = 0
    nsid: bool = False  # the client asked for our name server identifier
    cookie: bytes = b""  # the COOKIE option's data: client cookie, then server cookie if any


def read_question(wire: bytes) -> tuple[bytes, int, int, int] | None:
    """Name as sent, type, class and end offset of the single question; None when unreadable."""
    offset = 12
    end = len(wire)
    while True:
        if offset >= end:
            return None
        length = wire[offset]
        if length == 0:
            break
        if length > 63:
            return None  # compression or an extended label type: not in a question we answer
        offset += length + 1
    offset += 1
    if offset + 4 > end or offset - 12 > 255:
        return None
    qtype, qclass = U16.unpack_from(wire, offset)[0], U16.unpack_from(wire, offset + 2)[0]
    return wire[12:offset], qtype, qclass, offset + 4


def skip_name(wire: bytes, offset: int) -> int:
    """Offset just past a (possibly compressed) name. Raises WireError."""
    end = len(wire)
    while True:
        if offset >= end:
            raise WireError("name runs past the end")
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 2 > end:
                raise WireError("pointer runs past the end")
            return offset + 2
        if length > 63:
            raise WireError("bad label type")
        offset += length + 1


def parse_query(wire: bytes) -> Query:
    """Parse a request whose header was already checked to hold one question.

    Raises WireError when the question is unreadable or the records after it are malformed.
    """
    ident, flags, _qd, ancount, nscount, arcount = HEADER.unpack_from(wire)
    question = read_question(wire)
    if question is None:
        raise WireError("unreadable question")
    qname, qtype, qclass, offset = question
    query = Query(ident, flags, (flags >> 11) & 0xF, qname, qtype, qclass, offset)
    if ancount and query.opcode == OPCODE_QUERY:
        raise WireError("a query with records in its answer section")
    query.authority_offset = -1
    query.nscount = nscount
    total = ancount + nscount + arcount
    for position in range(total):
        if position == ancount:
            query.authority_offset = offset
        owner = offset
        offset = skip_name(wire, offset)
        if offset + 10 > len(wire):
            raise WireError("record header runs past the end")
        rtype, rclass, ttl, rdlen = RR_FIXED.unpack_from(wire, offset)
        offset += 10 + rdlen
        if offset > len(wire):
            raise WireError("record data runs past the end")
        if position < ancount + nscount:
            continue
        if rtype == OPT:
            if query.edns or wire[owner] != 0:
                raise WireError("more than one OPT record, or one not at the root")
            query.edns = True
            query.payload = max(rclass, MIN_PAYLOAD)
            query.edns_version = (ttl >> 16) & 0xFF
            query.dnssec_ok = bool(ttl & 0x8000)
            read_options(wire, offset - rdlen, offset, query)
        elif rtype in (TSIG, SIG):
            query.signed = True
    if offset != len(wire):
        raise WireError("bytes after the last record")
    return query


def read_options(wire: bytes, start: int, end: int, query: Query) -> None:
    """Read the EDNS options between `start` and `end` into `query`. Raises WireError."""
    while start < end:
        if start + 4 > end:
            raise WireError("EDNS option header runs past its record")
        code, length = U16.unpack_from(wire, start)[0], U16.unpack_from(wire, start + 2)[0]
        start += 4
        if start + length > end:
            raise WireError("EDNS option runs past its record")
        if code == OPTION_NSID:
            query.nsid = True
        elif code == OPTION_COOKIE:
            server_bytes = length - CLIENT_COOKIE_BYTES
            if query.cookie or not (
                server_bytes == 0
                or MIN_SERVER_COOKIE_BYTES <= server_bytes <= MAX_SERVER_COOKIE_BYTES
            ):
                raise WireError("malformed COOKIE option")  # RFC 7873 §5.2.2: FORMERR
            query.cookie = wire[start : start + length]
        start += length


def opt_record(dnssec_ok: bool, extended_rcode: int = 0, options: bytes = b"") -> bytes:
    """Our OPT record: payload 1232, version 0, DO echoed, then `options` (already encoded)."""
    ttl = (extended_rcode >> 4) << 24 | (0x8000 if dnssec_ok else 0)
    return b"\x00" + RR_FIXED.pack(OPT, EDNS_PAYLOAD, ttl, len(options)) + options


def option(code: int, data: bytes) -> bytes:
    """One EDNS option in wire form."""
    return U16.pack(code) + U16.pack(len(data)) + data


def error_reply(
    wire: bytes,
    rcode: int,
    question: bytes = b"",
    query: Query | None = None,
    options: bytes = b"",
) -> bytes:
    """A reply carrying only a header, the echoed question (if any) and our OPT (if asked).

    RD and CD are copied only for QUERY, the one opcode that defines them.
    """
    ident, flags = U16.unpack_from(wire)[0], U16.unpack_from(wire, 2)[0]
    kept = 0x7910 if (flags >> 11) & 0xF == OPCODE_QUERY else 0x7800
    reply_flags = 0x8000 | (flags & kept) | (rcode & 0xF)
    tail = b""
    if query is not None and query.edns:
        tail = opt_record(query.dnssec_ok, rcode, options)
    return (
        HEADER.pack(ident, reply_flags, 1 if question else 0, 0, 0, 1 if tail else 0)
        + question
        + tail
    )
