"""Response-rate limiting against reflection, after Knot's and NSD's design.

Responses are counted per second in buckets keyed by what they are and to whom:
the response class (answer, no data, NXDOMAIN, error), the name (the question
for answers and no-data, the zone for NXDOMAIN, none for errors) and the client
network (IPv4 /24, IPv6 /56). A flood of random names to one victim shares one
NXDOMAIN bucket; a busy resolver asking for many names does not. The table has
a fixed number of slots, so memory does not grow with the attack; colliding
buckets share a slot (and a budget), as in Knot.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from resolver.dns import wire

SEND = 0
DROP = 1
SLIP = 2

ANSWER = 0
NODATA = 1
NXDOMAIN = 2
ERROR = 3
DEFAULT_TABLE_SIZE = 1 << 16
SOURCES_REMEMBERED = 1 << 16  # client addresses whose network is kept; then forgotten at once
EXEMPT = "exempt"  # the "network" of a client that is never limited (no address reads so)


class RateLimiter:
    """Beyond `responses_per_second` in a bucket, every `slip`-th response goes out
    truncated (TC=1, so a genuine client retries over TCP) and the rest are dropped.
    Loopback clients are exempt unless `exempt_loopback` is off (tests)."""

    def __init__(
        self,
        responses_per_second: int,
        slip: int,
        clock: Callable[[], float] = time.monotonic,
        table_size: int = DEFAULT_TABLE_SIZE,
        exempt_loopback: bool = True,
    ) -> None:
        self.limit = responses_per_second
        self.slip = slip
        self._clock = clock
        self._mask = table_size - 1
        self._seconds = [-1] * table_size
        self._counts = [0] * table_size
        self.exempt_loopback = exempt_loopback
        self._networks: dict[str, str] = {}

    def exempt(self, source: str) -> bool:
        """Loopback cannot be spoofed from outside: local tools are never limited."""
        return self.exempt_loopback and (source.startswith("127.") or source == "::1")

    def network(self, source: str) -> str:
        """The network `source` is counted in, or EXEMPT; remembered, so a busy client costs
        one dict look-up per response."""
        network = self._networks.get(source)
        if network is None:
            network = EXEMPT if self.exempt(source) else network_of(source)
            if len(self._networks) >= SOURCES_REMEMBERED:
                self._networks = {}  # a spoofed flood of addresses only makes us recompute
            self._networks[source] = network
        return network

    def check(self, source: str, kind: int, name: bytes) -> int:
        """SEND, DROP or SLIP for one more response of class `kind` about `name`."""
        return self.check_network(network_of(source), kind, name)

    def check_network(self, network: str, kind: int, name: bytes) -> int:
        """`check` for a client whose `network` is known."""
        slot = hash((kind, name, network)) & self._mask
        second = int(self._clock())
        if self._seconds[slot] != second:
            self._seconds[slot] = second
            self._counts[slot] = 0
        count = self._counts[slot] + 1
        self._counts[slot] = count
        if count <= self.limit:
            return SEND
        if self.slip and (count - self.limit) % self.slip == 0:
            return SLIP
        return DROP


def network_of(source: str) -> str:
    """The /24 of an IPv4 address or the /56 of an IPv6 address, as a dict key."""
    if ":" not in source:
        return source.rpartition(".")[0]
    try:
        packed = socket.inet_pton(socket.AF_INET6, source.partition("%")[0])
    except OSError:
        return source
    return packed[:7].hex()


def limited_reply(action: int, data: bytes, qend: int, cookie_options: bytes) -> bytes | None:
    """What a limited response becomes: nothing (DROP), or for SLIP an empty TC=1 reply,
    or BADCOOKIE with a fresh server cookie to a client that sent a cookie (RFC 7873)."""
    if action == DROP:
        return None
    flags = wire.U16.unpack_from(data, 2)[0]
    if cookie_options:  # the client retries with the server cookie, then is never limited
        bits = 0x8000 | (flags & 0x0110) | (wire.BADCOOKIE & 0xF)  # the rest is in the OPT
        header = wire.U16.pack(bits) + b"\x00\x01\x00\x00\x00\x00\x00\x01"
        return (
            data[:2]
            + header
            + data[12:qend]
            + wire.opt_record(False, wire.BADCOOKIE, cookie_options)
        )
    header = wire.U16.pack(0x8200 | (flags & 0x0110)) + b"\x00\x01\x00\x00\x00\x00\x00\x00"
    return data[:2] + header + data[12:qend]
