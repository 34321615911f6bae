"""Tally and LocalHistogram: exact counts under threads, buckets as Prometheus fills them."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

import metrics

THREADS = 8
ADDS_PER_THREAD = 20_000


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def flushing_while(
    work: list[threading.Thread], flush: metrics.Tally | metrics.LocalHistogram
) -> None:
    """Run `work` to completion while another thread flushes as fast as it can."""
    done = threading.Event()

    def flush_loop() -> None:
        while not done.is_set():
            flush.flush()

    flusher = threading.Thread(target=flush_loop)
    flusher.start()
    for thread in work:
        thread.start()
    for thread in work:
        thread.join(timeout=30)
    done.set()
    flusher.join(timeout=30)
    flush.flush()


def test_tally_counts_exactly_with_threads_adding_while_flushing() -> None:
    registry = CollectorRegistry()
    counter = Counter("tally_test", "test", ["proto", "result"], registry=registry)
    tally = metrics.Tally(counter)

    def add(labels: tuple[str, str]) -> None:
        for _ in range(ADDS_PER_THREAD):
            tally.add(labels)
        tally.add(labels, 5)

    labels = [("grpc", "ok"), ("dns", "not_found")]
    work = [threading.Thread(target=add, args=(labels[i % 2],)) for i in range(THREADS)]
    flushing_while(work, tally)
    each = THREADS // 2 * (ADDS_PER_THREAD + 5)
    assert value(registry, "tally_test_total", proto="grpc", result="ok") == each
    assert value(registry, "tally_test_total", proto="dns", result="not_found") == each
    assert tally.counts == {}


def test_local_histogram_fills_the_buckets_prometheus_observe_would() -> None:
    registry = CollectorRegistry()
    reference = Histogram("reference", "test", ["proto"], registry=registry,
                          buckets=metrics.LATENCY_BUCKETS_SECONDS)  # fmt: skip
    local = Histogram("local", "test", ["proto"], registry=registry,
                      buckets=metrics.LATENCY_BUCKETS_SECONDS)  # fmt: skip
    recorder = metrics.LocalHistogram(local, ("grpc",))
    # Every bound exactly (le is inclusive), just above each, zero, negative, beyond the last.
    seconds = [0.0, -1.0, 10.0, *metrics.LATENCY_BUCKETS_SECONDS]
    seconds += [bound * 1.0001 for bound in metrics.LATENCY_BUCKETS_SECONDS]
    for observed in seconds:
        reference.labels("grpc").observe(observed)
        recorder.observe(observed)
    recorder.flush()
    for bound in [*metrics.LATENCY_BUCKETS_SECONDS, float("inf")]:
        le = "+Inf" if bound == float("inf") else str(bound)
        expected = value(registry, "reference_bucket", proto="grpc", le=le)
        assert value(registry, "local_bucket", proto="grpc", le=le) == expected, le
    assert value(registry, "local_count", proto="grpc") == len(seconds)
    assert value(registry, "local_sum", proto="grpc") == value(
        registry, "reference_sum", proto="grpc"
    )


def test_local_histogram_uses_the_buckets_of_its_histogram() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("custom", "test", registry=registry, buckets=(1.0, 5.0))
    recorder = metrics.LocalHistogram(histogram, ())
    for observed in (0.5, 1.0, 3.0, 5.0, 7.0):
        recorder.observe(observed)
    recorder.flush()
    assert value(registry, "custom_bucket", le="1.0") == 2
    assert value(registry, "custom_bucket", le="5.0") == 4
    assert value(registry, "custom_bucket", le="+Inf") == 5
    assert value(registry, "custom_sum") == 16.5


def test_local_histogram_flushes_one_observation_into_every_histogram_it_feeds() -> None:
    registry = CollectorRegistry()
    buckets = (1.0, 5.0)
    handling = Histogram("handling", "test", ["method"], registry=registry, buckets=buckets)
    resolution = Histogram("resolution", "test", ["proto"], registry=registry, buckets=buckets)
    recorder = metrics.LocalHistogram(handling, ("Resolve",), also=((resolution, ("grpc",)),))
    for observed in (0.5, 3.0, 7.0):
        recorder.observe(observed)
    recorder.flush()
    recorder.flush()  # nothing new: nothing added twice
    for name, labels in (("handling", {"method": "Resolve"}), ("resolution", {"proto": "grpc"})):
        assert value(registry, f"{name}_bucket", le="1.0", **labels) == 1
        assert value(registry, f"{name}_bucket", le="5.0", **labels) == 2
        assert value(registry, f"{name}_count", **labels) == 3
        assert value(registry, f"{name}_sum", **labels) == 10.5


def test_local_histogram_refuses_to_feed_a_histogram_with_other_buckets() -> None:
    registry = CollectorRegistry()
    one = Histogram("one", "test", registry=registry, buckets=(1.0, 5.0))
    other = Histogram("other", "test", registry=registry, buckets=(1.0, 2.0))
    with pytest.raises(ValueError, match="other buckets"):
        metrics.LocalHistogram(one, (), also=((other, ()),))


def test_local_histogram_counts_exactly_with_threads_observing_while_flushing() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("threads", "test", registry=registry,
                          buckets=metrics.LATENCY_BUCKETS_SECONDS)  # fmt: skip
    recorder = metrics.LocalHistogram(histogram, ())

    def observe() -> None:
        for _ in range(ADDS_PER_THREAD):
            recorder.observe(0.003)

    work = [threading.Thread(target=observe) for _ in range(THREADS)]
    flushing_while(work, recorder)
    total = THREADS * ADDS_PER_THREAD
    assert value(registry, "threads_count") == total
    assert value(registry, "threads_bucket", le="0.0025") == 0
    assert value(registry, "threads_bucket", le="0.005") == total
    assert abs(value(registry, "threads_sum") - 0.003 * total) < 1e-6


def test_flush_runs_every_registered_callback() -> None:
    registry = CollectorRegistry()
    counter = Counter("callback_test", "test", ["kind"], registry=registry)
    tally = metrics.Tally(counter)
    metrics.on_flush(tally.flush)
    tally.add(("a",), 3)
    metrics.flush()
    assert value(registry, "callback_test_total", kind="a") == 3


def test_the_flusher_thread_flushes_periodically_and_once_more_when_stopped() -> None:
    registry = CollectorRegistry()
    counter = Counter("flusher_test", "test", ["kind"], registry=registry)
    tally = metrics.Tally(counter)
    metrics.on_flush(tally.flush)
    stop = metrics.start_flusher(0.02)
    try:
        tally.add(("a",))
        deadline = time.monotonic() + 5
        while value(registry, "flusher_test_total", kind="a") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert value(registry, "flusher_test_total", kind="a") == 1
    finally:
        stop.set()
    tally.add(("a",))
    metrics.flush()
    assert value(registry, "flusher_test_total", kind="a") == 2


def test_every_declared_metric_follows_the_naming_contract() -> None:
    for metric in metrics._DECLARED:
        name = metric._name
        assert name.startswith(("idnode_", "grpc_server_", "process_")), name
        assert not set(metric._labelnames) & {"identifier", "prefix", "client", "peer"}, name
        if metric._type == "counter":
            assert not name.endswith("_total"), name  # the client library appends it


def test_a_failing_callback_does_not_stop_the_others() -> None:
    registry = CollectorRegistry()
    tally = metrics.Tally(Counter("after_failure", "test", ["kind"], registry=registry))

    def broken() -> None:
        raise OSError("store closed")

    metrics.on_flush(broken)
    metrics.on_flush(tally.flush)
    tally.add(("a",))
    metrics.flush()
    metrics.flush()
    assert value(registry, "after_failure_total", kind="a") == 1
