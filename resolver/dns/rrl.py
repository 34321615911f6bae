"""Response-rate limiting against reflection: per client /24 (IPv4) or /56 (IPv6), per second."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

SEND = 0
DROP = 1
SLIP = 2


class RateLimiter:
    """Counts UDP responses per client network in the current second.

    Beyond `responses_per_second`, every `slip`-th response goes out truncated
    (TC=1, so a genuine client retries over TCP) and the rest are dropped.
    Loopback clients are exempt.
    """

    def __init__(
        self,
        responses_per_second: int,
        slip: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = responses_per_second
        self.slip = slip
        self._clock = clock
        self._second = -1
        self._counts: dict[str, int] = {}

    def check(self, source: str) -> int:
        """SEND, DROP or SLIP for one more response to `source` (an IP address)."""
        if source.startswith("127.") or source == "::1":
            return SEND  # loopback cannot be spoofed from outside: local tools are never limited
        second = int(self._clock())
        if second != self._second:
            self._second = second
            self._counts = {}
        key = network_of(source)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
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
