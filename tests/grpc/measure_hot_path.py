"""CPU per Resolve in the handler on a cache hit, with and without metric recording.

The handler counts the call; its timing is the gRPC interceptor's (measured by
tests.metrics.bench_recording), once per call for both latency histograms.

    .venv/bin/python -m tests.grpc.measure_hot_path

The gRPC framework's own cost per call (~200-360 µs of server CPU here) is not
included: this isolates what idnode adds, and what its metrics add to that.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from idnode.config import Config
from idnode.node.worker import Worker
from proto import handle_pb2, resolver_pb2
from registry import accounts


class _Context:
    """The one ServicerContext method the hit path calls."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python"),)


def _per_call_microseconds(call: object, rounds: int = 5, calls: int = 100_000) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            call()  # type: ignore[operator]
        timings.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(timings)


def main() -> None:
    worker = Worker(Config(data_dir=tempfile.mkdtemp(), node_prefix="88.118", dns_listen=()))
    try:
        worker.registry.ensure_node_prefix()
        admin = handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)
        worker.registry.create_enterprise(admin, code="8")
        worker.registry.create(
            admin, "88.118.8/X", [handle_pb2.HandleValue(index=1, type="URL", data=b"u")]
        )
        request = resolver_pb2.ResolveRequest(identifier="88.118.8/X")
        context = _Context()
        service = worker.resolver

        def call() -> bytes:
            return service.resolve(request, context)  # type: ignore[arg-type]

        with_metrics = _per_call_microseconds(call)
        service._requests.add = lambda *args: None  # type: ignore[method-assign]
        without_metrics = _per_call_microseconds(call)
        print(
            f"Resolve handler, cache hit: {with_metrics:.2f} µs with metrics, "
            f"{without_metrics:.2f} µs without (median of 5 x 100,000 calls)"
        )
    finally:
        worker.stop()


if __name__ == "__main__":
    main()
