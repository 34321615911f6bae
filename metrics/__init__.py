"""Every metric of the node, declared once, and cheap recorders for the hot path.

The hot path never touches a Prometheus object: it bumps plain integers in a
`Tally` or `LocalHistogram`, and `flush()` (run about once a second by the
process's flusher thread, and at exit) adds what accumulated to the Prometheus
metrics. In multiprocess mode those live in per-process files that the scrape
sums, so the numbers add up across workers and survive a worker's restart.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "idnode"
# One bucket layout for every latency histogram, in seconds.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
)  # fmt: skip

RESOLVE_REQUESTS = Counter(
    "resolve_requests", "Resolutions by protocol and result.", ["proto", "result"],
    namespace=NAMESPACE,
)  # fmt: skip
RESOLVE_DURATION = Histogram(
    "resolve_duration_seconds", "Time to answer a resolution.", ["proto"],
    namespace=NAMESPACE, buckets=LATENCY_BUCKETS_SECONDS,
)  # fmt: skip
CACHE_REQUESTS = Counter(
    "cache_requests", "Answer-cache look-ups.", ["cache"], namespace=NAMESPACE
)
CACHE_HITS = Counter("cache_hits", "Answer-cache hits.", ["cache"], namespace=NAMESPACE)
CACHE_ENTRIES = Gauge(
    "cache_entries", "Answers held in the caches.", ["cache"],
    namespace=NAMESPACE, multiprocess_mode="livesum",
)  # fmt: skip
REGISTRATIONS = Counter(
    "registrations", "Registry writes by operation and result.", ["op", "result"],
    namespace=NAMESPACE,
)  # fmt: skip
IDENTIFIERS = Gauge(
    "identifiers", "Identifiers stored on this node.", namespace=NAMESPACE,
    multiprocess_mode="max",
)  # fmt: skip
CHANGELOG_SEQUENCE = Gauge(
    "changelog_sequence", "Newest change-log sequence.", namespace=NAMESPACE,
    multiprocess_mode="max",
)  # fmt: skip
STORE_SIZE = Gauge(
    "store_size_bytes", "Bytes of the LMDB map in use.", namespace=NAMESPACE,
    multiprocess_mode="max",
)  # fmt: skip
STORE_MAP_SIZE = Gauge(
    "store_map_size_bytes", "Size the LMDB map may grow to before it is enlarged.",
    namespace=NAMESPACE, multiprocess_mode="max",
)  # fmt: skip
DNS_RESPONSES = Counter(
    "dns_responses", "DNS responses by transport and rcode.", ["proto", "rcode"],
    namespace=NAMESPACE,
)  # fmt: skip
DNS_RRL_ACTIONS = Counter(
    "dns_rrl_actions", "Responses held back by response-rate limiting.", ["action"],
    namespace=NAMESPACE,
)  # fmt: skip
SYNC_ACKED_SEQUENCE = Gauge(
    "sync_acked_sequence", "Change-log sequence the upstream acknowledged.", ["upstream"],
    namespace=NAMESPACE, multiprocess_mode="max",
)  # fmt: skip
SYNC_LAG = Gauge(
    "sync_lag_seconds", "Age of the oldest change not yet acknowledged upstream.",
    ["upstream"], namespace=NAMESPACE, multiprocess_mode="max",
)  # fmt: skip
SYNC_PUSHES = Counter(
    "sync_pushes", "Batches pushed upstream by result.", ["upstream", "result"],
    namespace=NAMESPACE,
)  # fmt: skip
BUILD_INFO = Gauge(
    "build_info", "Always 1; the labels say which build runs.", ["version"],
    namespace=NAMESPACE, multiprocess_mode="max",
)  # fmt: skip


class Tally:
    """Counts by label tuple in a plain dict: what the hot path bumps."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._lock = threading.Lock()  # worker threads share a tally; no count may be lost
        self.counts: dict[tuple[str, ...], int] = {}

    def add(self, labels: tuple[str, ...], amount: int = 1) -> None:
        with self._lock:
            self.counts[labels] = self.counts.get(labels, 0) + amount

    def flush(self) -> None:
        with self._lock:
            counts, self.counts = self.counts, {}
        for labels, amount in counts.items():
            self._counter.labels(*labels).inc(amount)


class LocalHistogram:
    """Bucket counts in a list, flushed into a Prometheus histogram child."""

    def __init__(self, histogram: Histogram, labels: Sequence[str]) -> None:
        self._child = histogram.labels(*labels)
        self._bounds = list(LATENCY_BUCKETS_SECONDS)
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
            self._sum += seconds

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, [0] * len(self._counts)
            total, self._sum = self._sum, 0.0
        if not any(counts):
            return
        # prometheus_client has no bulk observe; its per-bucket values are what
        # observe() itself increments (stable since 0.4).
        buckets = self._child._buckets
        for index, amount in enumerate(counts):
            if amount:
                buckets[index].inc(amount)
        self._child._sum.inc(total)


_flushers: list[Callable[[], None]] = []
_flush_lock = threading.Lock()


def on_flush(callback: Callable[[], None]) -> None:
    """Run `callback` at every flush (recorders and gauges that sample state)."""
    with _flush_lock:
        _flushers.append(callback)


def flush() -> None:
    """Move everything the hot path recorded into the Prometheus metrics."""
    with _flush_lock:
        callbacks = list(_flushers)
    for callback in callbacks:
        callback()


def start_flusher(interval_seconds: float = 1.0) -> threading.Event:
    """Flush every `interval_seconds` in a daemon thread; set the event to stop it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval_seconds):
            flush()
        flush()

    threading.Thread(target=run, name="metrics-flush", daemon=True).start()
    return stop
