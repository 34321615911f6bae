"""Locust gRPC user: a partner system resolving identifiers, now and then registering one."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, between, task

from loadtest.locust_common import grpc_channel, identifiers
from loadtest.mix import REGISTER_WEIGHT, RESOLVE_WEIGHT
from proto import handle_pb2, resolver_pb2, resolver_pb2_grpc
from proto import registry_pb2_grpc as registry_grpc

# gRPC's own threads must yield to gevent, or one blocking call stalls every user.
grpc_gevent.init_gevent()

TIMEOUT_SECONDS = 10.0


class GrpcUser(User):
    """95 % Resolve (four in five existing, one in five missing), 5 % Create.

    Reported as request type "grpc": "Resolve existing" must answer OK, "Resolve
    missing" NOT_FOUND, "Create" OK; any other status is a failure.
    """

    wait_time = between(0.0, 0.01)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self._identifiers = identifiers(options)
        self._channel = grpc_channel(options)
        self._resolver = resolver_pb2_grpc.ResolverStub(self._channel)
        self._registry = registry_grpc.RegistryStub(self._channel)
        self._token = options.token if options else ""
        self._write_prefix = (options.write_prefix if options else "") or (
            self._identifiers.prefixes[0]
        )

    def on_stop(self) -> None:
        self._channel.close()

    @task(RESOLVE_WEIGHT)
    def resolve(self) -> None:
        identifier, exists = self._identifiers.pick()
        request = resolver_pb2.ResolveRequest(identifier=identifier)
        expected = grpc.StatusCode.OK if exists else grpc.StatusCode.NOT_FOUND
        name = "Resolve existing" if exists else "Resolve missing"
        self._timed(
            name, expected, lambda: self._resolver.Resolve(request, timeout=TIMEOUT_SECONDS)
        )

    @task(REGISTER_WEIGHT)
    def register(self) -> None:
        if not self._token:
            self.resolve()  # no credential: this user only resolves
            return
        record = handle_pb2.Record(identifier=f"{self._write_prefix}/locust-{secrets.token_hex(8)}")
        record.values.add(index=1, type="URL", data=b"https://example.com/locust")
        metadata = (("authorization", f"Bearer {self._token}"),)
        self._timed(
            "Create",
            grpc.StatusCode.OK,
            lambda: self._registry.Create(record, metadata=metadata, timeout=TIMEOUT_SECONDS),
        )

    def _timed(self, name: str, expected: grpc.StatusCode, call: Callable[[], Any]) -> None:
        started = time.perf_counter()
        failure: Exception | None = None
        length = 0
        try:
            length = call().ByteSize()
            if expected != grpc.StatusCode.OK:
                failure = AssertionError(f"expected {expected.name}, got OK")
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code != expected:
                failure = error
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=failure,
            context={},
        )
