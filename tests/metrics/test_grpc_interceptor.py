"""The gRPC interceptor on a real threaded server: exact counts and real status codes."""

from __future__ import annotations

import collections.abc
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

import metrics
from metrics.grpc_interceptor import GO_CODE_NAMES, MetricsInterceptor
from proto import handle_pb2, resolver_pb2
from resolver.grpc_server import RESOLVER
from tests.grpc.conftest import running_node

SERVICE = "test.v1.Echo"


def ok(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def set_code(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    context.set_details("no such thing")
    return b""


def abort(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad")


def abort_ok(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.OK, "grpc turns this into UNKNOWN")


def raise_error(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise ValueError("handler bug")


def set_code_then_raise(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    raise ValueError("grpc sends the code set before")


def stream(request: bytes, context: grpc.ServicerContext) -> collections.abc.Iterator[bytes]:
    yield request
    yield request


HANDLERS: dict[str, Any] = {
    "Ok": grpc.unary_unary_rpc_method_handler(ok),
    "SetCode": grpc.unary_unary_rpc_method_handler(set_code),
    "Abort": grpc.unary_unary_rpc_method_handler(abort),
    "AbortOk": grpc.unary_unary_rpc_method_handler(abort_ok),
    "Raise": grpc.unary_unary_rpc_method_handler(raise_error),
    "SetCodeThenRaise": grpc.unary_unary_rpc_method_handler(set_code_then_raise),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
}
# method, calls, the code the client sees, the grpc_code label
CASES = [
    ("Ok", 7, grpc.StatusCode.OK, "OK"),
    ("SetCode", 3, grpc.StatusCode.NOT_FOUND, "NotFound"),
    ("Abort", 4, grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"),
    ("AbortOk", 1, grpc.StatusCode.UNKNOWN, "Unknown"),
    ("Raise", 2, grpc.StatusCode.UNKNOWN, "Unknown"),
    ("SetCodeThenRaise", 2, grpc.StatusCode.NOT_FOUND, "NotFound"),
]


def sample(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def labels_of(service: str, method: str) -> dict[str, str]:
    return {"grpc_service": service, "grpc_method": method, "grpc_type": "unary"}


@pytest.fixture
def served() -> collections.abc.Iterator[tuple[grpc.Channel, MetricsInterceptor]]:
    interceptor = MetricsInterceptor()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[interceptor])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, HANDLERS)])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, interceptor
    finally:
        channel.close()
        server.stop(grace=None).wait(10)


def test_every_call_is_counted_once_with_the_code_the_client_saw(
    served: tuple[grpc.Channel, MetricsInterceptor],
) -> None:
    channel, interceptor = served
    before = {
        (method, code): sample("grpc_server_handled_total", **labels_of(SERVICE, method),
                               grpc_code=code)
        for method, _, _, code in CASES
    }  # fmt: skip
    started_before = {
        m: sample("grpc_server_started_total", **labels_of(SERVICE, m)) for m, *_ in CASES
    }
    for method, calls, client_code, _ in CASES:
        call = channel.unary_unary(f"/{SERVICE}/{method}", None, None)
        for _ in range(calls):
            try:
                call(b"x", timeout=10)
                seen = grpc.StatusCode.OK
            except grpc.RpcError as error:
                seen = error.code()
            assert seen == client_code, method
    interceptor.flush()
    for method, calls, _, code in CASES:
        labels = labels_of(SERVICE, method)
        handled = sample("grpc_server_handled_total", **labels, grpc_code=code)
        assert handled - before[method, code] == calls, method
        assert sample("grpc_server_started_total", **labels) - started_before[method] == calls
    assert sample("grpc_server_handling_seconds_count", **labels_of(SERVICE, "Ok")) >= 7


def test_the_real_health_service_is_counted_with_its_codes(
    served: tuple[grpc.Channel, MetricsInterceptor],
) -> None:
    channel, interceptor = served
    labels = labels_of("grpc.health.v1.Health", "Check")
    ok_before = sample("grpc_server_handled_total", **labels, grpc_code="OK")
    missing_before = sample("grpc_server_handled_total", **labels, grpc_code="NotFound")
    count_before = sample("grpc_server_handling_seconds_count", **labels)
    stub = health_pb2_grpc.HealthStub(channel)
    for _ in range(5):
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    interceptor.flush()
    assert sample("grpc_server_handled_total", **labels, grpc_code="OK") - ok_before == 5
    assert sample("grpc_server_handled_total", **labels, grpc_code="NotFound") - missing_before == 1
    assert sample("grpc_server_handling_seconds_count", **labels) - count_before == 6


def test_streaming_and_unknown_methods_pass_through_uncounted(
    served: tuple[grpc.Channel, MetricsInterceptor],
) -> None:
    channel, interceptor = served
    assert list(channel.unary_stream(f"/{SERVICE}/Stream", None, None)(b"y", timeout=10)) == [
        b"y",
        b"y",
    ]
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary("/made.up.Service/AnyName", None, None)(b"", timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    interceptor.flush()
    for family in metrics.GRPC_SERVER_STARTED.collect():
        for found in family.samples:
            assert found.labels["grpc_method"] != "Stream"
            assert found.labels["grpc_service"] != "made.up.Service"


def test_every_status_code_has_a_go_name() -> None:
    assert set(GO_CODE_NAMES) == set(grpc.StatusCode)


def test_a_handler_built_anew_for_every_call_is_counted_without_growing_state() -> None:
    interceptor = MetricsInterceptor()
    details: Any = type("Details", (), {"method": f"/{SERVICE}/Fresh"})()

    class Context:
        def code(self) -> None:
            return None

    labels = labels_of(SERVICE, "Fresh")
    before = sample("grpc_server_handled_total", **labels, grpc_code="OK")
    for _ in range(50):
        handler = interceptor.intercept_service(
            lambda _: grpc.unary_unary_rpc_method_handler(ok), details
        )
        assert handler is not None and handler.unary_unary is not None
        context: Any = Context()
        assert handler.unary_unary(b"z", context) == b"z"
    interceptor.flush()
    assert sample("grpc_server_handled_total", **labels, grpc_code="OK") - before == 50
    assert len(interceptor._histograms) == 1
    assert len(interceptor._wrapped) == 1


class _NoMetadata:
    """The one ServicerContext method a cached anonymous Resolve asks."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


def test_a_resolution_is_timed_once_and_reported_in_both_latency_histograms(
    tmp_path: Path,
) -> None:
    resolution = {"proto": "grpc"}
    with running_node(tmp_path / "data") as node:
        prefix, token = node.enterprise("8")
        value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://a/")
        node.registry.Create(handle_pb2.Record(identifier=f"{prefix}/a", values=[value]),
                             metadata=token)  # fmt: skip
        request = resolver_pb2.ResolveRequest(identifier=f"{prefix}/a")
        metrics.flush()
        duration = sample("idnode_resolve_duration_seconds_count", **resolution)
        resolves = sample("grpc_server_handling_seconds_count", **labels_of(RESOLVER, "Resolve"))
        batches = sample(
            "grpc_server_handling_seconds_count", **labels_of(RESOLVER, "BatchResolve")
        )
        # The handler itself records no latency: its call is timed by the interceptor.
        context: Any = _NoMetadata()
        for _ in range(5):
            node.worker.resolver.resolve(request, context)
        metrics.flush()
        assert sample("idnode_resolve_duration_seconds_count", **resolution) == duration
        for _ in range(7):
            node.resolver.Resolve(request, timeout=10)
        node.resolver.BatchResolve(
            resolver_pb2.BatchResolveRequest(requests=[request, request]), timeout=10
        )
        metrics.flush()
    assert sample("idnode_resolve_duration_seconds_count", **resolution) - duration == 8
    handled = sample("grpc_server_handling_seconds_count", **labels_of(RESOLVER, "Resolve"))
    assert handled - resolves == 7
    batched = sample("grpc_server_handling_seconds_count", **labels_of(RESOLVER, "BatchResolve"))
    assert batched - batches == 1
