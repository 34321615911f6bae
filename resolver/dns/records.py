"""Resource records of an identifier's name (TXT, URI, NAPTR) and of the apex (SOA, NS)."""

from __future__ import annotations

import base64
import ipaddress
import struct
from collections.abc import Sequence

from proto import handle_pb2
from registry.values import is_public
from resolver.dns import wire
from resolver.dns.serial import fingerprint as serial_fingerprint

MAX_STRING = 255
MAX_U16 = 0xFFFF
MAX_TTL_SECONDS = 2**31 - 1  # RFC 2181 §8: a TTL is 31 bits; stored TTLs above are served as this
# Every record set fits one DNS message with room for the header, a question, our OPT
# (NSID, cookie) and a secondary's TSIG: counted with the owner name uncompressed, as a
# zone transfer sends it, so an AXFR message always holds a whole set.
RRSET_BUDGET_BYTES = 64_000
RR_FIXED_BYTES = 10  # type, class, TTL, RDLENGTH
OMITTED_TYPE = b"dns.omitted"  # the TXT record saying how many public values did not fit
SOA_TTL_SECONDS = 3600
NS_TTL_SECONDS = 3600
SOA_REFRESH_SECONDS = 300
SOA_RETRY_SECONDS = 60
SOA_EXPIRE_SECONDS = 1_209_600
NEGATIVE_TTL_SECONDS = 60  # SOA MINIMUM: how long resolvers keep NXDOMAIN and NODATA
_SOA_TIMERS = struct.Struct("!IIII").pack(
    SOA_REFRESH_SECONDS, SOA_RETRY_SECONDS, SOA_EXPIRE_SECONDS, NEGATIVE_TTL_SECONDS
)
_OMITTED_HEAD = b"\x010" + bytes((len(OMITTED_TYPE),)) + OMITTED_TYPE

RRsets = dict[int, tuple[int, list[bytes]]]
"""Record type -> (TTL of the set, rdata of each record in value order)."""


def character_strings(data: bytes) -> bytes:
    """`data` as one or more <character-string>s of at most 255 octets (one empty if empty)."""
    if not data:
        return b"\x00"
    out = bytearray()
    for start in range(0, len(data), MAX_STRING):
        chunk = data[start : start + MAX_STRING]
        out.append(len(chunk))
        out += chunk
    return bytes(out)


def text_of(data: bytes) -> bytes:
    """Value data as TXT shows it: UTF-8 as it is, anything else as `b64:` + base64."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return b"b64:" + base64.b64encode(data)
    return data


def is_url(value_type: str) -> bool:
    upper = value_type.upper()
    return upper == "URL" or upper.startswith("URL.")


def rrsets(values: Sequence[handle_pb2.HandleValue], owner_bytes: int) -> RRsets:
    """The TXT, URI and NAPTR sets built from the publicly readable `values`.

    `owner_bytes` is the wire length of the name that owns them. Each set takes the
    smallest TTL of its values (RFC 2181 §5.2), capped at 2^31-1 (§8), and stays
    within RRSET_BUDGET_BYTES: values are taken in index order and one that does not
    fit is left out (gRPC still returns it); the TXT set then ends with
    `"0" "dns.omitted" "<count>"`. URI priority and NAPTR order are 16 bits, so
    indexes above 65535 show as 65535, and a URI or NAPTR record equal to one
    already in its set is not repeated (RFC 2181 §5).
    """
    per_record = owner_bytes + RR_FIXED_BYTES
    txt = _Set(RRSET_BUDGET_BYTES - per_record - len(_OMITTED_HEAD) - 6, per_record)
    uri = _Set(RRSET_BUDGET_BYTES, per_record)
    naptr = _Set(RRSET_BUDGET_BYTES, per_record)
    for value in values:
        if not is_public(value):
            continue
        ttl = min(value.ttl if value.HasField("ttl") else 86400, MAX_TTL_SECONDS)
        type_bytes = value.type.encode()
        txt.add(
            ttl,
            character_strings(str(value.index).encode())
            + character_strings(type_bytes)
            + character_strings(text_of(value.data)),
        )
        if not is_url(value.type) or not value.data:
            continue
        order = wire.U16.pack(min(value.index, MAX_U16))
        uri.add(ttl, order + b"\x00\x01" + value.data)
        escaped = value.data.replace(b"\\", b"\\\\").replace(b"!", b"\\!")
        regexp = b"!^.*$!" + escaped + b"!"
        service = b"II+" + type_bytes
        if len(regexp) <= MAX_STRING and len(service) <= MAX_STRING:
            naptr.add(ttl, order + b"\x00\x0a" + b"\x01u" + bytes((len(service),)) + service
                      + bytes((len(regexp),)) + regexp + b"\x00")  # fmt: skip
    sets: RRsets = {}
    if txt.omitted:
        txt.rdatas.append(_OMITTED_HEAD + character_strings(str(txt.omitted).encode()))
    for rtype, found in ((wire.TXT, txt), (wire.URI, uri), (wire.NAPTR, naptr)):
        if found.rdatas:
            sets[rtype] = (found.ttl, found.rdatas)
    return sets


class _Set:
    """One record set being filled, within a byte budget, without duplicates."""

    def __init__(self, budget_bytes: int, per_record_bytes: int) -> None:
        self.rdatas: list[bytes] = []
        self.ttl = MAX_TTL_SECONDS
        self.omitted = 0
        self._left = budget_bytes
        self._per_record = per_record_bytes
        self._seen: set[bytes] = set()

    def add(self, ttl: int, rdata: bytes) -> None:
        if rdata in self._seen:
            return
        self.ttl = min(self.ttl, ttl)  # a left-out value still shortens the set's TTL
        cost = self._per_record + len(rdata)
        if cost > self._left or len(rdata) > MAX_U16:
            self.omitted += 1
            return
        self._left -= cost
        self._seen.add(rdata)
        self.rdatas.append(rdata)


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    """One resource record in wire form, class IN."""
    return owner + wire.RR_FIXED.pack(rtype, wire.CLASS_IN, ttl, len(rdata)) + rdata


GLUE_TTL_SECONDS = 3600


class Apex:
    """The zone's own records: SOA (serial from `resolver.dns.serial`), NS, and the
    A/AAAA records of nameservers inside the zone."""

    def __init__(self, zone: str, nameservers: Sequence[str], glue: Sequence[str] = ()) -> None:
        self.zone = zone
        self.zone_wire = wire.name_to_wire(zone)
        self.ns_rdata = [wire.name_to_wire(name) for name in nameservers]
        self.soa_head = wire.name_to_wire(nameservers[0]) + wire.name_to_wire(f"hostmaster.{zone}")
        self.addresses: dict[bytes, RRsets] = {}  # lowercase wire name -> its A / AAAA sets
        for entry in glue:
            name, _, text = entry.partition("=")
            address = ipaddress.ip_address(text)
            rtype = wire.A if address.version == 4 else wire.AAAA
            sets = self.addresses.setdefault(wire.name_to_wire(name.lower()), {})
            sets.setdefault(rtype, (GLUE_TTL_SECONDS, []))[1].append(address.packed)
        self.address_parents = {  # empty non-terminals above in-zone nameserver names
            parent for name in self.addresses for parent in _parents(name, self.zone_wire)
        }
        self.fingerprint = serial_fingerprint(
            [self.zone_wire, self.soa_head, _SOA_TIMERS, *self.ns_rdata]
            + [name + bytes((t,)) + r for name, sets in sorted(self.addresses.items())
               for t, (_ttl, rdatas) in sorted(sets.items()) for r in rdatas]
        )  # fmt: skip

    def address_records(self) -> list[list[bytes]]:
        """The A and AAAA sets of in-zone nameservers, as a zone transfer sends them."""
        return [
            [rr(name, rtype, ttl, rdata) for rdata in rdatas]
            for name, sets in sorted(self.addresses.items())
            for rtype, (ttl, rdatas) in sorted(sets.items())
        ]

    def soa_rdata(self, serial: int) -> bytes:
        return self.soa_head + wire.U32.pack(serial & 0xFFFFFFFF) + _SOA_TIMERS

    def soa_rr(self, serial: int, owner: bytes | None = None) -> bytes:
        return rr(owner or self.zone_wire, wire.SOA, SOA_TTL_SECONDS, self.soa_rdata(serial))

    def soa_parts(self, owner: bytes, ttl: int) -> tuple[bytes, bytes]:
        """An SOA record split around its serial, which the caller fills in at send time."""
        rdlen = len(self.soa_head) + 20
        head = owner + wire.RR_FIXED.pack(wire.SOA, wire.CLASS_IN, ttl, rdlen) + self.soa_head
        return head, _SOA_TIMERS


def _parents(name: bytes, zone_wire: bytes) -> list[bytes]:
    """The names strictly between `name` and the zone apex, in wire form."""
    parents = []
    offset = name[0] + 1
    while len(name) - offset > len(zone_wire):
        parents.append(name[offset:])
        offset += name[offset] + 1
    return parents
