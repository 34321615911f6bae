"""Who answered: NSID (RFC 5001) and CH TXT id.server, hostname.bind, version.bind."""

from __future__ import annotations

import os
import socket

from resolver.dns import records, wire

CLASS_CH = 3
_IDENTITY_NAMES = (b"\x02id\x06server\x00", b"\x08hostname\x04bind\x00")
_VERSION_NAMES = (b"\x07version\x06server\x00", b"\x07version\x04bind\x00")


def default_identity() -> str:
    """This host and process, so that operators can tell workers apart."""
    return f"{socket.gethostname()}/{os.getpid()}"


def chaos_reply(
    data: bytes, query: wire.Query, identity: str | None, version: str | None
) -> tuple[bytes, int]:
    """The reply to a CHAOS-class query and its rcode: TXT for the names we know, else
    REFUSED (as for hidden ones)."""
    name = query.qname.lower()
    text = None
    if query.qtype in (wire.TXT, wire.ANY):
        if name in _IDENTITY_NAMES:
            text = identity
        elif name in _VERSION_NAMES:
            text = version
    question = data[12 : query.question_end]
    if text is None:
        return wire.error_reply(data, wire.REFUSED, question, query), wire.REFUSED
    rdata = records.character_strings(text.encode()[:255])
    answer = b"\xc0\x0c" + wire.RR_FIXED.pack(wire.TXT, CLASS_CH, 0, len(rdata)) + rdata
    flags = 0x8400 | (wire.U16.unpack_from(data, 2)[0] & 0x0110)
    opt = wire.opt_record(query.dnssec_ok) if query.edns else b""
    header = wire.HEADER.pack(query.ident, flags, 1, 1, 0, 1 if opt else 0)
    return header + question + answer + opt, wire.NOERROR
