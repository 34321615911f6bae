"""The gRPC server: Resolver and Registry services, health checking, reflection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any, Protocol

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from prometheus_client import Histogram

import metrics
from proto import handle_pb2, registry_pb2, resolver_pb2
from registry.errors import IdnodeError
from registry.identifier import excerpt
from resolver.grpc_errors import RpcFailure, status_of
from resolver.grpc_registry import RegistryService
from resolver.tls import CertificateSource

log = logging.getLogger(__name__)

RESOLVER = "idnode.v1.Resolver"
REGISTRY = "idnode.v1.Registry"
# Largest requests the resolver accepts, checked before they are parsed: an identifier
# is at most 255 bytes, so these leave ample room for type and index filters.
MAX_RESOLVE_REQUEST_BYTES = 16 << 10
MAX_BATCH_RESOLVE_REQUEST_BYTES = 4 << 20
MALFORMED_LOG_INTERVAL_SECONDS = 60.0

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"

Handler = Callable[[Any, grpc.ServicerContext], Any]


class Refused:
    """What a request deserializer returns instead of raising: grpc would log a
    traceback for every malformed request, and anyone may send them."""

    __slots__ = ("message", "status")

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        self.status = status
        self.message = message


def guarded(handler: Handler) -> Handler:
    """End the call with the status of a domain error; an unexpected one is INTERNAL, logged."""

    def call(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Refused):
            context.abort(request.status, request.message)
        try:
            return handler(request, context)
        except RpcFailure as failure:
            status, message = failure.status, failure.message
        except IdnodeError as error:
            status, message = status_of(error), str(error)
        except Exception:
            log.exception("unexpected error in %s", getattr(handler, "__name__", "handler"))
            status, message = grpc.StatusCode.INTERNAL, "internal error"
        context.abort(status, message)

    call.__name__ = getattr(handler, "__name__", "call")
    return call


def unary(
    handler: Handler, request_type: Any, raw_response: bool = False, max_request_bytes: int = 0
) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary method: `handler` guarded, requests parsed safely (bounded by
    `max_request_bytes` when given, below the server's message limit)."""
    return grpc.unary_unary_rpc_method_handler(
        guarded(handler),
        request_deserializer=_Parser(request_type, _method_name(handler), max_request_bytes),
        response_serializer=_identity if raw_response else _serialize,
    )


def streaming(
    handler: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
    request_type: Any,
    max_request_bytes: int = 0,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A server-streaming method: `handler` returns the messages' iterator; a domain error,
    raised before the first message or between two, ends the call with its status."""
    name = _method_name(handler)

    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if isinstance(request, Refused):
            context.abort(request.status, request.message)
        try:
            yield from handler(request, context)
            return
        except RpcFailure as failure:
            status, message = failure.status, failure.message
        except IdnodeError as error:
            status, message = status_of(error), str(error)
        except Exception:
            if not context.is_active():
                return  # the caller went away mid-stream
            log.exception("unexpected error in %s", name)
            status, message = grpc.StatusCode.INTERNAL, "internal error"
        context.abort(status, message)

    return grpc.unary_stream_rpc_method_handler(
        call,
        request_deserializer=_Parser(request_type, name, max_request_bytes),
        response_serializer=_serialize,
    )


class _Parser:
    """Request bytes to a message, or to `Refused` for one too large or not protobuf;
    malformed ones are counted and logged once per interval, never one line each."""

    _lock = threading.Lock()
    _last_log = -MALFORMED_LOG_INTERVAL_SECONDS
    _unlogged = 0

    def __init__(self, request_type: Any, method: str, max_request_bytes: int) -> None:
        self._parse = request_type.FromString
        self._type_name = request_type.DESCRIPTOR.full_name
        self._method = method
        self._max_bytes = max_request_bytes
        self._malformed = metrics.Tally(metrics.GRPC_MALFORMED_REQUESTS)
        self._too_large = metrics.Tally(metrics.LIMIT_HITS)
        metrics.on_flush(self._malformed.flush)
        metrics.on_flush(self._too_large.flush)

    def __call__(self, data: bytes) -> Any:
        if self._max_bytes and len(data) > self._max_bytes:
            self._too_large.add(("request_bytes",))
            return Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._method} request is {len(data)} bytes, more than {self._max_bytes}",
            )
        try:
            return self._parse(data)
        except DecodeError as error:
            self._malformed.add((self._method,))
            self._log(error)
            return Refused(
                grpc.StatusCode.INVALID_ARGUMENT, f"request is not a valid {self._type_name}"
            )

    def _log(self, error: DecodeError) -> None:
        now = time.monotonic()
        cls = type(self)
        with cls._lock:
            cls._unlogged += 1
            if now - cls._last_log < MALFORMED_LOG_INTERVAL_SECONDS:
                return
            count, cls._unlogged, cls._last_log = cls._unlogged, 0, now
        log.warning(
            "malformed gRPC requests: %d since the last report (latest: %s, %s)",
            count, self._method, excerpt(str(error)),
        )  # fmt: skip


def _method_name(handler: Handler) -> str:
    """The gRPC method a handler serves: `batch_resolve` -> `BatchResolve`."""
    name = getattr(handler, "__name__", "call")
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _identity(data: bytes) -> bytes:
    return data


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


class Resolving(Protocol):
    """What `resolver_handler` serves (this node's ResolverService, the top-level node's
    resolver): Resolve answers an encoded ResolveResponse."""

    def resolve(self, request: Any, context: grpc.ServicerContext) -> bytes: ...

    def batch_resolve(
        self, request: Any, context: grpc.ServicerContext
    ) -> resolver_pb2.BatchResolveResponse: ...


def resolver_handler(service: Resolving) -> grpc.GenericRpcHandler[Any, Any]:
    """Resolve and BatchResolve, each request bounded in bytes before it is parsed."""
    return grpc.method_handlers_generic_handler(
        RESOLVER,
        {
            "Resolve": unary(
                service.resolve,
                resolver_pb2.ResolveRequest,
                raw_response=True,
                max_request_bytes=MAX_RESOLVE_REQUEST_BYTES,
            ),
            "BatchResolve": unary(
                service.batch_resolve,
                resolver_pb2.BatchResolveRequest,
                max_request_bytes=MAX_BATCH_RESOLVE_REQUEST_BYTES,
            ),
        },
    )


def resolution_timing() -> dict[str, tuple[Histogram, tuple[str, ...]]]:
    """For the metrics interceptor: Resolve and BatchResolve calls are resolutions, so
    their handling time makes `idnode_resolve_duration_seconds{proto="grpc"}` as well
    (timed once per call, flushed into both histograms)."""
    resolution = (metrics.RESOLVE_DURATION, ("grpc",))
    return {f"/{RESOLVER}/Resolve": resolution, f"/{RESOLVER}/BatchResolve": resolution}


def registry_handler(service: RegistryService) -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        REGISTRY,
        {
            "Create": unary(service.create, handle_pb2.Record),
            "AddValues": unary(service.add_values, handle_pb2.Record),
            "ModifyValues": unary(service.modify_values, handle_pb2.Record),
            "RemoveValues": unary(service.remove_values, registry_pb2.RemoveValuesRequest),
            "Delete": unary(service.delete, registry_pb2.DeleteRequest),
            "BatchRegister": unary(
                service.batch_register, registry_pb2.BatchRegisterRequest, raw_response=True
            ),
            "List": unary(service.list, registry_pb2.ListRequest),
            "CreateEnterprise": unary(
                service.create_enterprise, registry_pb2.CreateEnterpriseRequest
            ),
            "PutPrefix": unary(service.put_prefix, registry_pb2.PutPrefixRequest),
            "WhoAmI": unary(service.who_am_i, registry_pb2.WhoAmIRequest),
            "ListEnterprises": unary(service.list_enterprises, registry_pb2.ListEnterprisesRequest),
            "ListAccounts": unary(service.list_accounts, registry_pb2.ListAccountsRequest),
            "RotateToken": unary(service.rotate_token, registry_pb2.RotateTokenRequest),
            "RevokeToken": unary(service.revoke_token, registry_pb2.RevokeTokenRequest),
        },
    )


def enable_reflection(server: grpc.Server, service_names: Sequence[str]) -> None:
    """Server reflection under both names clients ask for: grpc.reflection.v1 (what grpcurl
    and Postman try first) and v1alpha. The two are the same messages in two packages, so
    one servicer answers both, and v1's descriptors are published for clients that ask."""
    _publish_reflection_v1()
    names = [*service_names, reflection.SERVICE_NAME, REFLECTION_V1]
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=_serialize,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),)
    )


def _publish_reflection_v1() -> None:
    """Add grpc/reflection/v1/reflection.proto to the default pool (once): v1alpha's file
    with the package renamed, so `describe grpc.reflection.v1.ServerReflection` works."""
    pool = descriptor_pool.Default()
    name = "grpc/reflection/v1/reflection.proto"
    try:
        pool.FindFileByName(name)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    proto.name, proto.package = name, "grpc.reflection.v1"
    for message in proto.message_type:
        for item in message.field:
            if item.type_name:
                item.type_name = item.type_name.replace(old, new)
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(old, new)
        method.output_type = method.output_type.replace(old, new)
    pool.Add(proto)


class GrpcServer:
    """A threaded grpc.server (measured faster than grpc.aio for this load) on one or more ports."""

    def __init__(
        self,
        handlers: Sequence[grpc.GenericRpcHandler[Any, Any]],
        service_names: Sequence[str],
        threads: int,
        max_message_bytes: int,
        interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    ) -> None:
        self.health = health.HealthServicer()
        self._service_names = list(service_names)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
            handlers=list(handlers),
            interceptors=list(interceptors),
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, [*self._service_names, health.SERVICE_NAME])
        self.set_serving(False)

    def start(self, listen: Sequence[str], tls: CertificateSource | None = None) -> list[int]:
        """Bind every HOST:PORT (port 0 picks one) and start; returns the bound ports.
        With `tls`, every port serves TLS with its certificate (reloaded by `tls.reload()`)."""
        ports = []
        for address in listen:
            if tls is None:
                port = self.server.add_insecure_port(address)
            else:
                port = self.server.add_secure_port(address, tls.grpc_credentials())
            if port == 0:
                raise OSError(f"cannot listen for gRPC on {address}")
            ports.append(port)
        self.server.start()
        return ports

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._service_names]:
            self.health.set(name, status)

    def stop(self, grace_seconds: float) -> None:
        """Report NOT_SERVING, stop accepting, finish in-flight calls within the grace period."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_seconds).wait()
