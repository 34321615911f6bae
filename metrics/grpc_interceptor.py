"""gRPC server metrics in the go-grpc-prometheus shape, for the threaded `grpc.server`.

`grpc_server_started_total`, `grpc_server_handled_total{..., grpc_code}` and
`grpc_server_handling_seconds`, labelled by `grpc_service`, `grpc_method` and
`grpc_type`, with codes spelled as Go spells them (`OK`, `NotFound`, ...) so
that stock gRPC dashboards and alerts work. Only unary-unary methods the server
actually serves are counted: other kinds pass through untouched, and a method
no handler knows is never a label value (clients choose those names freely).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import Histogram

import metrics

# grpc.StatusCode -> the name go-grpc-prometheus puts in grpc_code.
GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

_UnaryBehavior = Callable[[Any, grpc.ServicerContext], Any]
if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:  # generic only in the type stubs
    _Handler = grpc.RpcMethodHandler
    _Interceptor = grpc.ServerInterceptor


class MetricsInterceptor(_Interceptor):
    """Counts and times every unary-unary call; pass to `grpc.server(interceptors=...)`.

    Records into plain recorders (`metrics.Tally`, `metrics.LocalHistogram`)
    that `metrics.flush()` moves into Prometheus, never into Prometheus objects
    on the call path. `also_timed` maps a full method name
    (`/idnode.v1.Resolver/Resolve`) to another histogram (and its label values)
    that its handling time is flushed into as well: one observation per call
    feeds both.
    """

    def __init__(
        self, also_timed: Mapping[str, tuple[Histogram, Sequence[str]]] | None = None
    ) -> None:
        self._also_timed = dict(also_timed or {})
        self._started = metrics.Tally(metrics.GRPC_SERVER_STARTED)
        self._handled = metrics.Tally(metrics.GRPC_SERVER_HANDLED)
        self._histograms: dict[str, metrics.LocalHistogram] = {}  # one per served method
        # method -> (the handler we wrapped, our wrapper): grpc hands us the same
        # handler object for a method on every call, so we wrap it once (a generic
        # handler that builds a new one per call is wrapped per call, nothing leaks).
        self._wrapped: dict[str, tuple[_Handler, _Handler]] = {}
        self._lock = threading.Lock()
        metrics.on_flush(self.flush)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown method, or a streaming kind: not ours to count
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None and wrapped[0] is handler:
            return wrapped[1]
        return self._wrap(method, handler)

    def flush(self) -> None:
        """Move the recorded counts into Prometheus (normally done by `metrics.flush`)."""
        self._started.flush()
        self._handled.flush()
        with self._lock:
            histograms = list(self._histograms.values())
        for histogram in histograms:
            histogram.flush()

    def _wrap(self, method: str, handler: _Handler) -> _Handler:
        service, _, name = method.lstrip("/").rpartition("/")
        labels = (service, name, "unary")
        with self._lock:
            histogram = self._histograms.get(method)
            if histogram is None:
                also = self._also_timed.get(method)
                histogram = metrics.LocalHistogram(
                    metrics.GRPC_SERVER_HANDLING, labels, also=(also,) if also else ()
                )
                self._histograms[method] = histogram
        assert handler.unary_unary is not None
        behavior = _recording(handler.unary_unary, labels, self._started, self._handled, histogram)
        wrapped = grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        with self._lock:
            self._wrapped[method] = (handler, wrapped)
        return wrapped


def _recording(
    behavior: _UnaryBehavior,
    labels: tuple[str, str, str],
    started: metrics.Tally,
    handled: metrics.Tally,
    histogram: metrics.LocalHistogram,
) -> _UnaryBehavior:
    """`behavior`, counting its start, its status code and its duration."""
    handled_labels: dict[grpc.StatusCode | None, tuple[str, ...]] = {
        code: (*labels, name) for code, name in GO_CODE_NAMES.items()
    }
    ok_labels = handled_labels[grpc.StatusCode.OK]
    unknown_labels = handled_labels[grpc.StatusCode.UNKNOWN]
    perf_counter = time.perf_counter

    def call(request: Any, context: grpc.ServicerContext) -> Any:
        started.add(labels)
        begun = perf_counter()
        try:
            response = behavior(request, context)
        except BaseException:
            # grpc sends the code set on the context (context.abort sets it
            # before raising; so may set_code), and UNKNOWN if none was set.
            handled.add(handled_labels.get(_code(context), unknown_labels))
            histogram.observe(perf_counter() - begun)
            raise
        code = _code(context)
        handled.add(ok_labels if code is None else handled_labels.get(code, unknown_labels))
        histogram.observe(perf_counter() - begun)
        return response

    return call


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The code set on `context` (by `set_code` or `abort`), None if none was set."""
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]
    return code
