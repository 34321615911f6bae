"""The DNS face's hot-path counters, flushed into the declared Prometheus metrics."""

from __future__ import annotations

import threading

import metrics
from resolver.dns import wire
from resolver.dns.cache import WireCache

# Malformed or unsupported queries are the client's fault ("invalid"), like a bad
# identifier over gRPC; only SERVFAIL is the node's own "error".
_RESULT = {
    wire.NOERROR: "ok",
    wire.NXDOMAIN: "not_found",
    wire.REFUSED: "refused",
    wire.FORMERR: "invalid",
    wire.NOTIMP: "invalid",
    wire.BADVERS: "invalid",
    wire.BADCOOKIE: "invalid",
}


class DnsStats:
    """One dict bump per response: (transport, rcode, cache outcome) -> count.

    The flush splits it into idnode_dns_responses_total, idnode_resolve_requests_total
    and the cache counters, so the hot path takes one lock instead of four.
    """

    def __init__(self, cache: WireCache) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, int, int], int] = {}  # cache outcome: 0 none, 1 miss, 2 hit
        self.duration = metrics.LocalHistogram(metrics.RESOLVE_DURATION, ("dns",))
        self._cache = cache
        metrics.on_flush(self.flush)

    def add(self, transport: str, rcode: int, cache: int) -> None:
        key = (transport, rcode, cache)
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def flush(self) -> None:
        with self._lock:
            counts, self.counts = self.counts, {}
        for (transport, rcode, cache), amount in counts.items():
            metrics.DNS_RESPONSES.labels(transport, wire.RCODE_TEXT.get(rcode, str(rcode))).inc(
                amount
            )
            metrics.RESOLVE_REQUESTS.labels("dns", _RESULT.get(rcode, "error")).inc(amount)
            if cache:
                metrics.CACHE_REQUESTS.labels("dns").inc(amount)
                if cache == 2:
                    metrics.CACHE_HITS.labels("dns").inc(amount)
        self.duration.flush()
        metrics.CACHE_ENTRIES.labels("dns").set(len(self._cache))
        metrics.CACHE_BYTES.labels("dns").set(self._cache.positive_bytes)
        metrics.CACHE_BYTES.labels("dns_negative").set(self._cache.negative_bytes)
