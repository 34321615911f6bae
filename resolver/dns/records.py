"""Resource records of an identifier's name (TXT, URI, NAPTR) and of the apex (SOA, NS)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence

from proto import handle_pb2
from registry.values import is_public
from resolver.dns import wire

MAX_STRING = 255
MAX_RDATA_BYTES = 64_000  # a record must fit a 65,535-octet message with its owner and header
MAX_U16 = 0xFFFF
SOA_TTL_SECONDS = 3600
NS_TTL_SECONDS = 3600
SOA_REFRESH_SECONDS = 300
SOA_RETRY_SECONDS = 60
SOA_EXPIRE_SECONDS = 1_209_600
NEGATIVE_TTL_SECONDS = 60  # SOA MINIMUM: how long resolvers keep NXDOMAIN and NODATA
_SOA_TIMERS = struct.Struct("!IIII").pack(
    SOA_REFRESH_SECONDS, SOA_RETRY_SECONDS, SOA_EXPIRE_SECONDS, NEGATIVE_TTL_SECONDS
)

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


def rrsets(values: Sequence[handle_pb2.HandleValue]) -> RRsets:
    """The TXT, URI and NAPTR sets built from the publicly readable `values`.

    A set takes the smallest TTL of its values (RFC 2181 §5.2). URI priority and
    NAPTR order are 16 bits, so indexes above 65535 are shown as 65535.
    """
    sets: RRsets = {}
    for value in values:
        if not is_public(value):
            continue
        ttl = value.ttl if value.HasField("ttl") else 86400
        type_bytes = value.type.encode()
        txt = (
            character_strings(str(value.index).encode())
            + character_strings(type_bytes)
            + character_strings(text_of(value.data))
        )
        if len(txt) <= MAX_RDATA_BYTES:  # a bigger value has no TXT record; gRPC returns it
            _add(sets, wire.TXT, ttl, txt)
        if not is_url(value.type) or not value.data or len(value.data) > MAX_RDATA_BYTES:
            continue
        order = min(value.index, MAX_U16)
        _add(sets, wire.URI, ttl, wire.U16.pack(order) + b"\x00\x01" + value.data)
        escaped = value.data.replace(b"\\", b"\\\\").replace(b"!", b"\\!")
        regexp = b"!^.*$!" + escaped + b"!"
        service = b"II+" + type_bytes
        if len(regexp) <= MAX_STRING and len(service) <= MAX_STRING:
            naptr = (
                wire.U16.pack(order) + b"\x00\x0a" + b"\x01u"
                + bytes((len(service),)) + service + bytes((len(regexp),)) + regexp + b"\x00"
            )  # fmt: skip
            _add(sets, wire.NAPTR, ttl, naptr)
    return sets


def _add(sets: RRsets, rtype: int, ttl: int, rdata: bytes) -> None:
    found = sets.get(rtype)
    if found is None:
        sets[rtype] = (ttl, [rdata])
    else:
        found[1].append(rdata)
        if ttl < found[0]:
            sets[rtype] = (ttl, found[1])


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    """One resource record in wire form, class IN."""
    return owner + wire.RR_FIXED.pack(rtype, wire.CLASS_IN, ttl, len(rdata)) + rdata


class Apex:
    """The zone's own records: SOA (serial = change-log sequence mod 2^32) and NS."""

    def __init__(self, zone: str, nameservers: Sequence[str]) -> None:
        self.zone = zone
        self.zone_wire = wire.name_to_wire(zone)
        self.ns_rdata = [wire.name_to_wire(name) for name in nameservers]
        self.soa_head = wire.name_to_wire(nameservers[0]) + wire.name_to_wire(f"hostmaster.{zone}")

    def soa_rdata(self, serial: int) -> bytes:
        return self.soa_head + wire.U32.pack(serial & 0xFFFFFFFF) + _SOA_TIMERS

    def soa_rr(self, serial: int, owner: bytes | None = None) -> bytes:
        return rr(owner or self.zone_wire, wire.SOA, SOA_TTL_SECONDS, self.soa_rdata(serial))

    def soa_parts(self, owner: bytes, ttl: int) -> tuple[bytes, bytes]:
        """An SOA record split around its serial, which the caller fills in at send time."""
        rdlen = len(self.soa_head) + 20
        head = owner + wire.RR_FIXED.pack(wire.SOA, wire.CLASS_IN, ttl, rdlen) + self.soa_head
        return head, _SOA_TIMERS
