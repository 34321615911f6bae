"""Finished answers as cacheable wire pieces, and the zone lookup that decides them."""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from resolver.dns import mapping, rrl, wire
from resolver.dns.config import DnsConfigError
from resolver.dns.records import (
    NEGATIVE_TTL_SECONDS,
    NS_TTL_SECONDS,
    SOA_TTL_SECONDS,
    Apex,
    RRsets,
    rr,
)

POINTER_TO_QUESTION = b"\xc0\x0c"
_HEADER_TAIL = struct.Struct("!HHHHH")  # flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
_PLAIN_LABEL = re.compile(rb"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")  # mapping's plain suffix


class Entry(NamedTuple):
    """An answer minus ID and question: copied into each reply, never mutated.

    `headers[i]` holds the flags and counts for RD = i & 1 and CD = i >> 1.
    When `post` is not None the SOA serial goes between `pre` and `post`.
    """

    headers: tuple[bytes, bytes, bytes, bytes]
    pre: bytes
    post: bytes | None
    size: int  # reply length without the question
    rcode: int
    kind: int = rrl.ANSWER  # the response class rate limiting counts it in


class Zone:
    """The zone apex and the prefixes hosted under it; replaced wholesale on prefix changes."""

    def __init__(self, apex: Apex, hosted: set[str]) -> None:
        self.apex = apex
        self.hosted = frozenset(hosted)
        self.nodes = frozenset(mapping.nodes_of(hosted))
        self.zone_labels = [label for label in wire.labels_of(apex.zone_wire)]
        zone = apex.zone_wire
        self._prefix_by_name = {_prefix_name(prefix, zone): prefix for prefix in self.hosted}
        self._node_names = frozenset(_prefix_name(node, zone) for node in self.nodes)
        self._not_identifiers = frozenset((zone, *apex.addresses, *apex.address_parents))

    def record_key(self, qname_lower: bytes) -> str | None:
        """The store key of the identifier a lowercase wire name stands for, when that name is
        one plain label under a hosted prefix (as `find` would decide); None for any other
        name, which `find` then looks at."""
        length = qname_lower[0]
        prefix = self._prefix_by_name.get(qname_lower[length + 1 :])
        if prefix is None or qname_lower in self._node_names:
            return None  # not under a hosted prefix, or a longer prefix (a node) itself
        label = qname_lower[1 : length + 1]
        if (
            not _PLAIN_LABEL.match(label)
            or label.startswith(b"xn--")
            or label.startswith(b"b32-")
            or qname_lower in self._not_identifiers
        ):
            return None
        return prefix + "/" + label.decode("ascii")

    def find(self, qname_lower: bytes) -> mapping.Found | None:
        """What a lowercase wire name stands for; None when it is outside the zone."""
        labels = wire.labels_of(qname_lower)
        size = len(self.zone_labels)
        if len(labels) < size or labels[len(labels) - size :] != self.zone_labels:
            return None
        try:
            relative = [label.decode("ascii") for label in labels[: len(labels) - size]]
        except UnicodeDecodeError:
            return mapping.NOTHING
        if any("." in label for label in relative):
            return mapping.NOTHING  # no identifier's name has a dot inside a label
        return mapping.lookup(relative, self.hosted, self.nodes)


def build(
    apex: Apex,
    qname_length: int,
    qtype: int,
    exists: bool,
    sets: RRsets | None,
    edns: int,
) -> Entry:
    """The answer to `qtype` at a name in the zone.

    `exists` says whether the name exists; `sets` holds its records (None at the
    apex). `edns` is 0 without EDNS, 1 with EDNS, 2 with EDNS and DO set.
    """
    answers: list[bytes] = []
    soa_in_answer = False
    if sets is None and exists:
        if qtype in (wire.SOA, wire.ANY):
            soa_in_answer = True
        elif qtype == wire.NS:
            for rdata in apex.ns_rdata:
                answers.append(rr(POINTER_TO_QUESTION, wire.NS, NS_TTL_SECONDS, rdata))
    elif sets:
        chosen = sets.get(qtype)
        if qtype == wire.ANY:  # RFC 8482: one RRset is enough; send the smallest
            chosen = min(sets.values(), key=lambda found: sum(len(r) for r in found[1]))
        if chosen is not None:
            ttl, rdatas = chosen
            rtype = qtype
            if qtype == wire.ANY:
                rtype = next(t for t, s in sets.items() if s is chosen)
            for rdata in rdatas:
                answers.append(rr(POINTER_TO_QUESTION, rtype, ttl, rdata))
    rcode = wire.NOERROR if exists else wire.NXDOMAIN
    opt = wire.opt_record(edns == 2) if edns else b""
    body = b"".join(answers)
    if soa_in_answer:
        head, tail = apex.soa_parts(POINTER_TO_QUESTION, SOA_TTL_SECONDS)
        pre, post = head, tail + opt
        counts = (1, 0)
    elif answers:
        pre, post = body + opt, None
        counts = (len(answers), 0)
    else:
        zone_offset = 12 + qname_length - len(apex.zone_wire)
        head, tail = apex.soa_parts(wire.U16.pack(0xC000 | zone_offset), NEGATIVE_TTL_SECONDS)
        pre, post = head, tail + opt
        counts = (0, 1)
    flags = 0x8400 | rcode
    ar = 1 if edns else 0
    headers = (
        _HEADER_TAIL.pack(flags, 1, counts[0], counts[1], ar),
        _HEADER_TAIL.pack(flags | 0x0100, 1, counts[0], counts[1], ar),
        _HEADER_TAIL.pack(flags | 0x0010, 1, counts[0], counts[1], ar),
        _HEADER_TAIL.pack(flags | 0x0110, 1, counts[0], counts[1], ar),
    )
    size = 12 + len(pre) + (4 + len(post) if post is not None else 0)
    kind = rrl.NXDOMAIN if not exists else (rrl.ANSWER if counts[0] else rrl.NODATA)
    return Entry(headers, pre, post, size, rcode, kind)


def truncated(entry: Entry) -> Entry:
    """The same reply with TC set and no records but the OPT: for answers too big for UDP."""
    has_opt = entry.headers[0][9] == 1
    opt_tail = (entry.post if entry.post is not None else entry.pre)[-11:] if has_opt else b""
    headers = tuple(
        wire.U16.pack(wire.U16.unpack_from(h)[0] | 0x0200) + h[2:4] + b"\x00\x00\x00\x00" + h[8:]
        for h in entry.headers
    )
    return Entry((headers[0], headers[1], headers[2], headers[3]), opt_tail, None,
                 12 + len(opt_tail), entry.rcode, entry.kind)  # fmt: skip


def check_nameserver_names(apex: Apex, zone: Zone) -> None:
    """Refuse in-zone nameserver names that fall inside the identifier tree."""
    tops = {prefix.split(".")[0].encode() for prefix in zone.hosted}
    for name in apex.addresses:
        labels = wire.labels_of(name)
        top = labels[len(labels) - len(zone.zone_labels) - 1]
        if top in tops:
            raise DnsConfigError(
                f"nameservers: {name.hex()[:60]} lies among the identifiers' names; "
                "use a name under another label of the zone"
            )


def _prefix_name(prefix: str, zone_wire: bytes) -> bytes:
    """The lowercase wire name of a prefix node: its segments reversed, then the zone."""
    labels = b"".join(
        bytes((len(segment),)) + segment.encode("ascii") for segment in reversed(prefix.split("."))
    )
    return labels + zone_wire
