"""The DNS face's hot-path counters, flushed into the declared Prometheus metrics."""

from __future__ import annotations

import bisect
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
NO_CACHE = 0
MISS = 1
HIT = 2
RCODE_SLOTS = max(wire.RCODE_TEXT) + 1  # every rcode the handler sends, extended ones included


def slot(rcode: int, cache: int) -> int:
    """Where a response with `rcode` and cache outcome `cache` is counted in `Counts`."""
    return rcode * 3 + cache


class Counts:
    """Responses and their durations counted by ONE thread: plain list bumps, no lock.

    The UDP loop owns one (it is the only writer); the flush reads it and takes the
    difference from what it read last time, so nothing is ever reset under the writer.
    """

    def __init__(self, transport: str, bounds: list[float]) -> None:
        self.transport = transport
        self.responses = [0] * (RCODE_SLOTS * 3)
        self.buckets = [0] * (len(bounds) + 1)
        self.seconds = 0.0
        self._bounds = bounds
        self._first_bound = bounds[0]
        self.flushed: tuple[list[int], list[int], float] = (
            [0] * len(self.responses), [0] * len(self.buckets), 0.0,
        )  # fmt: skip

    def add(self, index: int, seconds: float) -> None:
        """Count one response in slot `index` (see `slot`) that took `seconds` to answer."""
        self.responses[index] += 1
        # bisect_left: the first bound >= seconds, as Prometheus' `le` means.
        if seconds <= self._first_bound:
            self.buckets[0] += 1
        else:
            self.buckets[bisect.bisect_left(self._bounds, seconds)] += 1
        self.seconds += seconds


class SharedCounts(Counts):
    """Counts for callers that share them across threads (TCP connections, tests): locked."""

    def __init__(self, transport: str, bounds: list[float]) -> None:
        super().__init__(transport, bounds)
        self._lock = threading.Lock()

    def add(self, index: int, seconds: float) -> None:
        with self._lock:
            Counts.add(self, index, seconds)


class DnsStats:
    """Every `Counts` of one handler, split at flush time into idnode_dns_responses_total,
    idnode_resolve_requests_total, the cache counters and the duration histogram."""

    def __init__(self, cache: WireCache) -> None:
        self._lock = threading.Lock()
        self.duration = metrics.LocalHistogram(metrics.RESOLVE_DURATION, ("dns",))
        self._bounds = self.duration.bounds
        self._counts: list[Counts] = []
        self.udp = self.counts("udp", shared=True)
        self.tcp = self.counts("tcp", shared=True)
        self._cache = cache
        metrics.on_flush(self.flush)

    def counts(self, transport: str, shared: bool = False) -> Counts:
        """New counts for one thread's responses over `transport` ("udp" or "tcp")."""
        made = (SharedCounts if shared else Counts)(transport, self._bounds)
        with self._lock:
            self._counts.append(made)
        return made

    def add(self, transport: str, rcode: int, cache: int, seconds: float = 0.0) -> None:
        """Count one response from a thread that owns no `Counts` of its own."""
        (self.tcp if transport == "tcp" else self.udp).add(slot(rcode, cache), seconds)

    def flush(self) -> None:
        with self._lock:
            every = list(self._counts)
        for counts in every:
            self._flush_one(counts)
        self.duration.flush()
        metrics.CACHE_ENTRIES.labels("dns").set(len(self._cache))
        metrics.CACHE_BYTES.labels("dns").set(self._cache.positive_bytes)
        metrics.CACHE_BYTES.labels("dns_negative").set(self._cache.negative_bytes)

    def _flush_one(self, counts: Counts) -> None:
        # list() copies under the GIL in one step: a consistent snapshot of each list.
        responses, buckets, seconds = list(counts.responses), list(counts.buckets), counts.seconds
        old_responses, old_buckets, old_seconds = counts.flushed
        counts.flushed = (responses, buckets, seconds)
        for index, now in enumerate(responses):
            amount = now - old_responses[index]
            if amount:
                self._publish(counts.transport, index // 3, index % 3, amount)
        self.duration.add(
            [now - old for now, old in zip(buckets, old_buckets, strict=True)],
            seconds - old_seconds,
        )

    @staticmethod
    def _publish(transport: str, rcode: int, cache: int, amount: int) -> None:
        metrics.DNS_RESPONSES.labels(transport, wire.RCODE_TEXT.get(rcode, str(rcode))).inc(amount)
        metrics.RESOLVE_REQUESTS.labels("dns", _RESULT.get(rcode, "error")).inc(amount)
        if cache:
            metrics.CACHE_REQUESTS.labels("dns").inc(amount)
            if cache == HIT:
                metrics.CACHE_HITS.labels("dns").inc(amount)
