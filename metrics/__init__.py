"""Every metric of the node, declared once, and cheap recorders for the hot path.

The hot path never touches a Prometheus object: it bumps plain integers in a
`Tally` or `LocalHistogram`, and `flush()` (run about once a second by the
process's flusher thread, and at exit) adds what accumulated to the Prometheus
metrics. In multiprocess mode those live in per-process files that the scrape
sums, so the numbers add up across workers and survive a worker's restart.
`metrics.exposition` switches multiprocess mode on and serves `/metrics`; its
docstring gives the order in which the composition root calls things.

Gauges use the `live*` multiprocess modes only: a worker's gauges vanish when
the master reports it dead (`exposition.worker_exited`), so no stale value of
a dead process can win a `max` or linger in a sum.
"""

from __future__ import annotations

import atexit
import bisect
import logging
import threading
from collections.abc import Callable, Sequence

import prometheus_client.values
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

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
CACHE_REQUESTS = Counter("cache_requests", "Answer-cache look-ups.", ["cache"], namespace=NAMESPACE)
CACHE_HITS = Counter("cache_hits", "Answer-cache hits.", ["cache"], namespace=NAMESPACE)
CACHE_ENTRIES = Gauge(
    "cache_entries", "Answers held in the caches.", ["cache"],
    namespace=NAMESPACE, multiprocess_mode="livesum",
)  # fmt: skip
CACHE_BYTES = Gauge(
    "cache_bytes", "Memory the answer caches hold, by cache (estimated per entry).", ["cache"],
    namespace=NAMESPACE, multiprocess_mode="livesum",
)  # fmt: skip
LIMIT_HITS = Counter(
    "limit_hits", "Requests or answers cut short by a configured limit.", ["limit"],
    namespace=NAMESPACE,
)  # fmt: skip
AUTH_FAILURES = Counter(
    "auth_failures", "Failed authentications by reason.", ["reason"], namespace=NAMESPACE
)
GRPC_MALFORMED_REQUESTS = Counter(
    "grpc_malformed_requests", "gRPC requests that were not valid protobuf.", ["grpc_method"],
    namespace=NAMESPACE,
)  # fmt: skip
REGISTRATIONS = Counter(
    "registrations", "Registry writes by operation and result.", ["op", "result"],
    namespace=NAMESPACE,
)  # fmt: skip
# Facts about the one shared store: any live process may sample them; the newest
# sample wins, because they can go down (deletes, compaction).
IDENTIFIERS = Gauge(
    "identifiers", "Identifiers stored on this node.", namespace=NAMESPACE,
    multiprocess_mode="livemostrecent",
)  # fmt: skip
CHANGELOG_SEQUENCE = Gauge(
    "changelog_sequence", "Newest change-log sequence.", namespace=NAMESPACE,
    multiprocess_mode="livemax",
)  # fmt: skip
STORE_SIZE = Gauge(
    "store_size_bytes", "Bytes of the LMDB map in use.", namespace=NAMESPACE,
    multiprocess_mode="livemostrecent",
)  # fmt: skip
STORE_MAP_SIZE = Gauge(
    "store_map_size_bytes", "Size the LMDB map may grow to before it is enlarged.",
    namespace=NAMESPACE, multiprocess_mode="livemostrecent",
)  # fmt: skip
STORE_OUT_OF_SPACE = Counter(
    "store_out_of_space", "Writes refused because the store's disk or file-size limit is full.",
    namespace=NAMESPACE,
)  # fmt: skip
STORE_COMMIT_WRITES = Histogram(
    "store_commit_writes", "Writes that shared one store commit (group commit), per commit.",
    namespace=NAMESPACE, buckets=(1, 2, 4, 8, 16, 32, 64),
)  # fmt: skip
DNS_RESPONSES = Counter(
    "dns_responses", "DNS responses by transport and rcode.", ["proto", "rcode"],
    namespace=NAMESPACE,
)  # fmt: skip
DNS_RRL_ACTIONS = Counter(
    "dns_rrl_actions", "Responses held back by response-rate limiting.", ["action"],
    namespace=NAMESPACE,
)  # fmt: skip
DNS_TCP_CLOSED = Counter(
    "dns_tcp_closed", "DNS TCP connections the server ended or refused, by reason "
    "(idle, slow: a message not finished in time, evicted: the oldest idle one when full, "
    "refused: full of busy connections).", ["reason"], namespace=NAMESPACE,
)  # fmt: skip
SYNC_ACKED_SEQUENCE = Gauge(
    "sync_acked_sequence", "Change-log sequence the upstream acknowledged.", ["upstream"],
    namespace=NAMESPACE, multiprocess_mode="livemax",
)  # fmt: skip
SYNC_LAG = Gauge(
    "sync_lag_seconds", "Age of the oldest change not yet acknowledged upstream.",
    ["upstream"], namespace=NAMESPACE, multiprocess_mode="livemax",
)  # fmt: skip
SYNC_PUSHES = Counter(
    "sync_pushes", "Batches pushed upstream by result.", ["upstream", "result"],
    namespace=NAMESPACE,
)  # fmt: skip
SYNC_FAILURES = Counter(
    "sync_failures", "Failed sync sessions by gRPC status code (PROTOCOL, INTERNAL: this side).",
    ["upstream", "code"], namespace=NAMESPACE,
)  # fmt: skip
SYNC_CONSECUTIVE_FAILURES = Gauge(
    "sync_consecutive_failures", "Sync sessions failed in a row; 0 once one makes progress.",
    ["upstream"], namespace=NAMESPACE, multiprocess_mode="livemax",
)  # fmt: skip
REPLICA_APPLIED_SEQUENCE = Gauge(
    "replica_applied_sequence", "The primary's change-log sequence this replica has applied.",
    ["primary"], namespace=NAMESPACE, multiprocess_mode="livemax",
)  # fmt: skip
REPLICA_LAG = Gauge(
    "replica_lag_seconds", "How long since this replica last held everything its primary "
    "had committed; 0 while caught up.", ["primary"], namespace=NAMESPACE,
    multiprocess_mode="livemax",
)  # fmt: skip
REPLICA_STATE = Gauge(
    "replica_state", "1 for the replica's state (connecting, copying, following, failing), "
    "0 for the others.", ["primary", "state"], namespace=NAMESPACE, multiprocess_mode="livemax",
)  # fmt: skip
REPLICA_SNAPSHOTS = Counter(
    "replica_snapshots", "Snapshots of the primary this replica took in.", ["primary"],
    namespace=NAMESPACE,
)  # fmt: skip
REPLICA_FAILURES = Counter(
    "replica_failures", "Replication sessions that failed, by gRPC status code (PROTOCOL: "
    "what the primary sent could not be applied).", ["primary", "code"], namespace=NAMESPACE,
)  # fmt: skip
HTTP_REQUESTS = Counter(
    "http_requests", "HTTP requests by method and status class (2xx, 4xx, ...).",
    ["method", "code"], namespace=NAMESPACE,
)  # fmt: skip
BUILD_INFO = Gauge(
    "build_info", "Always 1; the labels say which build runs.", ["version"],
    namespace=NAMESPACE, multiprocess_mode="livemax",
)  # fmt: skip

# gRPC server metrics in the go-grpc-prometheus shape (names without our prefix,
# so that stock gRPC dashboards work); recorded by metrics.grpc_interceptor.
GRPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")
GRPC_SERVER_STARTED = Counter("grpc_server_started", "RPCs started on the server.", GRPC_LABELS)
GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled", "RPCs completed on the server, by status code.",
    [*GRPC_LABELS, "grpc_code"],
)  # fmt: skip
GRPC_SERVER_HANDLING = Histogram(
    "grpc_server_handling_seconds", "Time the server took to handle an RPC.", GRPC_LABELS,
    buckets=LATENCY_BUCKETS_SECONDS,
)  # fmt: skip

# Process resources in multiprocess mode, where the client library's own process
# collector cannot see the workers: each process samples itself at every flush.
# Not registered anywhere: in single-process mode the default registry's process
# collector already exports these names.
PROCESS_CPU = Counter(
    "process_cpu_seconds", "User and system CPU time of all node processes.", registry=None
)
PROCESS_RESIDENT_MEMORY = Gauge(
    "process_resident_memory_bytes", "Resident memory of the live node processes.",
    registry=None, multiprocess_mode="livesum",
)  # fmt: skip
PROCESS_VIRTUAL_MEMORY = Gauge(
    "process_virtual_memory_bytes", "Virtual memory of the live node processes.",
    registry=None, multiprocess_mode="livesum",
)  # fmt: skip
PROCESS_OPEN_FDS = Gauge(
    "process_open_fds", "Open file descriptors of the live node processes.",
    registry=None, multiprocess_mode="livesum",
)  # fmt: skip
PROCESS_MAX_FDS = Gauge(
    "process_max_fds", "Smallest open-file limit among the live node processes.",
    registry=None, multiprocess_mode="livemin",
)  # fmt: skip
PROCESS_START_TIME = Gauge(
    "process_start_time_seconds", "Start of the oldest live node process, Unix time.",
    registry=None, multiprocess_mode="livemin",
)  # fmt: skip

TLS_CERTIFICATE_EXPIRY = Gauge(
    "tls_certificate_expiry_timestamp_seconds",
    "When the certificate a listener serves expires, Unix time (the soonest over the processes).",
    ["listener"], namespace=NAMESPACE, multiprocess_mode="livemin",
)  # fmt: skip

_DECLARED: tuple[MetricWrapperBase, ...] = (
    RESOLVE_REQUESTS, RESOLVE_DURATION, CACHE_REQUESTS, CACHE_HITS, CACHE_ENTRIES, CACHE_BYTES,
    REGISTRATIONS, IDENTIFIERS, CHANGELOG_SEQUENCE, STORE_SIZE, STORE_MAP_SIZE,
    DNS_RESPONSES, DNS_RRL_ACTIONS, DNS_TCP_CLOSED, HTTP_REQUESTS, SYNC_ACKED_SEQUENCE,
    SYNC_LAG, SYNC_PUSHES, BUILD_INFO, SYNC_FAILURES, SYNC_CONSECUTIVE_FAILURES,
    STORE_OUT_OF_SPACE, TLS_CERTIFICATE_EXPIRY, REPLICA_APPLIED_SEQUENCE, REPLICA_LAG,
    REPLICA_STATE, REPLICA_SNAPSHOTS, REPLICA_FAILURES, STORE_COMMIT_WRITES,
    GRPC_SERVER_STARTED, GRPC_SERVER_HANDLED, GRPC_SERVER_HANDLING,
    PROCESS_CPU, PROCESS_RESIDENT_MEMORY, PROCESS_VIRTUAL_MEMORY, PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS, PROCESS_START_TIME,
    LIMIT_HITS, AUTH_FAILURES, GRPC_MALFORMED_REQUESTS,
)  # fmt: skip


# Label values known in advance: their series exist at 0 from the first scrape, so
# rates and alerts see "nothing happened" rather than "no data".
RESOLVE_PROTOS = ("grpc", "dns", "http")
RESOLVE_RESULTS = ("ok", "not_found", "invalid", "referral", "not_responsible", "refused", "error")
KNOWN_REGISTRATIONS: tuple[tuple[str, str], ...] = (
    *((op, "ok") for op in ("create", "add_values", "modify_values", "remove_values", "delete")),
    *((op, "ok") for op in ("put_record", "put_values")),
    *(("batch_register", r) for r in ("created", "updated", "unchanged", "rejected")),
    ("create_enterprise", "ok"),
)
AUTH_FAILURE_REASONS = ("malformed", "invalid", "expired", "throttled")
LIMITS = ("request_bytes", "batch_response_bytes", "follow_deadline", "follow_concurrency")
DNS_TRANSPORTS = ("udp", "tcp")
DNS_RCODES = ("NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "SERVFAIL", "NOTIMP")
DNS_RRL_ACTION_NAMES = ("drop", "slip")
HTTP_METHODS = ("GET", "HEAD", "PUT", "DELETE", "other")
HTTP_STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def declare_known_series() -> None:
    """Create every series whose labels are known in advance, at 0 (call once, in the
    process that serves /metrics, after multiprocess mode is switched on)."""
    for proto in RESOLVE_PROTOS:
        RESOLVE_DURATION.labels(proto)
        CACHE_REQUESTS.labels(proto)
        CACHE_HITS.labels(proto)
        for result in RESOLVE_RESULTS:
            RESOLVE_REQUESTS.labels(proto, result)
    for op, result in KNOWN_REGISTRATIONS:
        REGISTRATIONS.labels(op, result)
    for transport in DNS_TRANSPORTS:
        for rcode in DNS_RCODES:
            DNS_RESPONSES.labels(transport, rcode)
    declare_guard_series()
    for action in DNS_RRL_ACTION_NAMES:
        DNS_RRL_ACTIONS.labels(action)
    for method in HTTP_METHODS:
        for status_class in HTTP_STATUS_CLASSES:
            HTTP_REQUESTS.labels(method, status_class)


def declare_guard_series() -> None:
    """Failed authentications and limits hit, at 0: the series every gRPC server counts
    (the node's workers and the top-level node alike)."""
    for reason in AUTH_FAILURE_REASONS:
        AUTH_FAILURES.labels(reason)
    for limit in LIMITS:
        LIMIT_HITS.labels(limit)


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
    """Bucket counts in a list, flushed into a Prometheus histogram child.

    `also` names more histograms (each with its label values) that the same
    observations are flushed into: a duration that two metrics report is observed
    once on the hot path. They must have the same buckets."""

    def __init__(
        self,
        histogram: Histogram,
        labels: Sequence[str],
        also: Sequence[tuple[Histogram, Sequence[str]]] = (),
    ) -> None:
        self._child = histogram.labels(*labels) if labels else histogram
        # The child's own bounds (the last is +Inf), so a histogram declared with
        # other buckets than LATENCY_BUCKETS_SECONDS is still filled correctly.
        self._bounds = list(self._child._upper_bounds[:-1])
        self._children = [self._child]
        for other, other_labels in also:
            child = other.labels(*other_labels) if other_labels else other
            if child._upper_bounds != self._child._upper_bounds:
                raise ValueError(f"{other._name} has other buckets than {histogram._name}")
            self._children.append(child)
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        # bisect_left: the first bound >= seconds, as Prometheus' `le` means.
        with self._lock:
            self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
            self._sum += seconds

    @property
    def bounds(self) -> list[float]:
        """The upper bounds of every bucket but +Inf, ascending."""
        return list(self._bounds)

    def add(self, counts: Sequence[int], seconds: float) -> None:
        """Add observations a recorder already sorted into buckets (one count per bound,
        then +Inf) and their sum."""
        with self._lock:
            for index, amount in enumerate(counts):
                self._counts[index] += amount
            self._sum += seconds

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, [0] * len(self._counts)
            total, self._sum = self._sum, 0.0
        if not any(counts):
            return
        # prometheus_client has no bulk observe; its per-bucket values are what
        # observe() itself increments (stable since 0.4).
        for child in self._children:
            buckets = child._buckets
            for index, amount in enumerate(counts):
                if amount:
                    buckets[index].inc(amount)
            child._sum.inc(total)


log = logging.getLogger("idnode.metrics")

_flushers: list[Callable[[], None]] = []
_flush_lock = threading.Lock()
_failed: set[int] = set()  # ids of callbacks whose failure was logged already


def on_flush(callback: Callable[[], None]) -> None:
    """Run `callback` at every flush (recorders and gauges that sample state)."""
    with _flush_lock:
        _flushers.append(callback)


def flush() -> None:
    """Move everything the hot path recorded into the Prometheus metrics.

    A callback that raises is logged (once) and skipped: it must not stop the
    others, nor the flusher thread.
    """
    with _flush_lock:
        callbacks = list(_flushers)
    for callback in callbacks:
        try:
            callback()
        except Exception:
            if id(callback) not in _failed:
                _failed.add(id(callback))
                log.exception("metrics flush callback %r failed; skipping it", callback)


def start_flusher(interval_seconds: float = 1.0) -> threading.Event:
    """Flush every `interval_seconds` in a daemon thread; set the event to stop it.

    Also flushes once more at interpreter exit, and in multiprocess mode samples
    this process's CPU, memory and file descriptors at every flush.
    """
    stop = threading.Event()
    _sample_process_at_flush()

    def run() -> None:
        while not stop.wait(interval_seconds):
            flush()
        flush()

    thread = threading.Thread(target=run, name="metrics-flush", daemon=True)
    thread.start()

    def at_exit() -> None:
        stop.set()
        thread.join(timeout=5.0)
        flush()  # in case the thread could not finish in time; flushing twice is harmless

    atexit.register(at_exit)
    return stop


def is_multiprocess() -> bool:
    """Whether this process's metric values live in PROMETHEUS_MULTIPROC_DIR files."""
    return bool(getattr(prometheus_client.values.ValueClass, "_multiprocess", False))


class _ProcessSampler:
    """Copies the client library's view of this process into multiprocess metrics."""

    def __init__(self) -> None:
        self._collector = ProcessCollector(registry=None)
        self._cpu_seconds = 0.0

    def __call__(self) -> None:
        if not is_multiprocess():  # the default registry's process collector covers it
            return
        for family in self._collector.collect():
            for sample in family.samples:
                self._record(sample.name, sample.value)

    def _record(self, name: str, value: float) -> None:
        if name == "process_cpu_seconds_total":
            if value > self._cpu_seconds:
                PROCESS_CPU.inc(value - self._cpu_seconds)
                self._cpu_seconds = value
            return
        gauge = _PROCESS_GAUGES.get(name)
        if gauge is not None:
            gauge.set(value)


_PROCESS_GAUGES: dict[str, Gauge] = {
    "process_resident_memory_bytes": PROCESS_RESIDENT_MEMORY,
    "process_virtual_memory_bytes": PROCESS_VIRTUAL_MEMORY,
    "process_open_fds": PROCESS_OPEN_FDS,
    "process_max_fds": PROCESS_MAX_FDS,
    "process_start_time_seconds": PROCESS_START_TIME,
}
_sampler_registered = False


def _sample_process_at_flush() -> None:
    global _sampler_registered
    with _flush_lock:
        if _sampler_registered:
            return
        _sampler_registered = True
        _flushers.append(_ProcessSampler())


def _rebind_values() -> None:
    """Re-create the values of metrics declared before multiprocess mode was switched on.

    Raises RuntimeError if a labelled metric already has children: their values
    live in this process's memory and would be missing from every scrape.
    """
    for metric in _DECLARED:
        if metric._labelnames and metric._metrics:
            raise RuntimeError(
                f"metric {metric._name} was recorded before multiprocess mode was switched "
                "on; call prepare_multiprocess_dir before building servers or recorders"
            )
    for metric in _DECLARED:
        if not metric._labelnames:
            metric._metric_init()  # type: ignore[no-untyped-call]
