"""Cost of metric recording on the hot path (not a test; run it by hand).

    .venv/bin/python -m tests.metrics.bench_recording

Prints nanoseconds per Tally.add, LocalHistogram.observe and per intercepted
call (wrapper alone, with a fake context), then microseconds per real unary
gRPC call on loopback with and without the interceptor.
"""

from __future__ import annotations

import statistics
import time
import timeit
from concurrent import futures
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

import metrics
from metrics.grpc_interceptor import MetricsInterceptor

CALLS = 2000


class FakeContext:
    def code(self) -> None:
        return None


def per_call_ns(statement: Any, number: int = 200_000) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e9


def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def serve(interceptors: list[Any]) -> tuple[grpc.Server, grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=interceptors)
    handler = grpc.method_handlers_generic_handler(
        "bench.v1.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


def grpc_call_us(rounds: int = 10) -> tuple[float, float]:
    """Median microseconds per call without and with the interceptor, rounds interleaved."""
    plain, intercepted = serve([]), serve([MetricsInterceptor()])
    calls = [
        channel.unary_unary("/bench.v1.Echo/Echo", None, None)
        for channel in (plain[1], intercepted[1])
    ]
    timings: list[list[float]] = [[], []]
    try:
        for _ in range(rounds):
            for index, call in enumerate(calls):
                for _ in range(200):
                    call(b"x", timeout=10)
                begun = time.perf_counter()
                for _ in range(CALLS):
                    call(b"x", timeout=10)
                timings[index].append((time.perf_counter() - begun) / CALLS * 1e6)
        return statistics.median(timings[0]), statistics.median(timings[1])
    finally:
        for server, channel in (plain, intercepted):
            channel.close()
            server.stop(None).wait(10)


def main() -> None:
    registry = CollectorRegistry()
    tally = metrics.Tally(Counter("bench", "bench", ["proto", "result"], registry=registry))
    histogram = metrics.LocalHistogram(
        Histogram("bench_seconds", "bench", ["proto"], registry=registry), ("grpc",)
    )
    labels = ("grpc", "ok")
    print(f"Tally.add:               {per_call_ns(lambda: tally.add(labels)):7.0f} ns")
    print(f"LocalHistogram.observe:  {per_call_ns(lambda: histogram.observe(0.0003)):7.0f} ns")
    interceptor = MetricsInterceptor()
    handler = grpc.unary_unary_rpc_method_handler(echo)
    details: Any = type("Details", (), {"method": "/bench.v1.Echo/Echo"})()
    wrapped = interceptor.intercept_service(lambda _: handler, details)
    assert wrapped is not None and wrapped.unary_unary is not None
    behavior = wrapped.unary_unary
    context: Any = FakeContext()
    bare = per_call_ns(lambda: echo(b"x", context))
    recorded = per_call_ns(lambda: behavior(b"x", context))
    lookup = per_call_ns(lambda: interceptor.intercept_service(lambda _: handler, details))
    print(
        f"interceptor wrapper:     {recorded - bare:7.0f} ns per call (+ handler lookup "
        f"{lookup:.0f} ns)"
    )
    without, with_ = grpc_call_us()
    print(
        f"unary gRPC call, loopback: {without:6.1f} us without, {with_:6.1f} us with "
        f"the interceptor ({with_ - without:+.1f} us)"
    )


if __name__ == "__main__":
    main()
