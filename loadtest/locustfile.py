"""Locust scenarios: supply-chain partners resolving over gRPC, phones and scripts over HTTP.

    .venv/bin/locust -f loadtest/locustfile.py ResolverUser --headless -u 50 -r 10 -t 60s \
        --host 127.0.0.1:8600
    .venv/bin/locust -f loadtest/locustfile.py HttpResolverUser --headless -u 50 -r 10 -t 60s \
        --host http://127.0.0.1:8000

Identifiers come from IDNODE_LOCUST_IDENTIFIERS (a file, one per line) or the
demo data `make run` seeds. Each call is reported to Locust as request type
"grpc" named after the method, with its status code as the failure.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import grpc
from locust import HttpUser, User, between, task

from proto import resolver_pb2, resolver_pb2_grpc

DEMO = ["88.118.8/JXDY2106023", "88.118.8/abc-1", "88.118.8/pump/2024/0001", "88.118.8/absent"]


def _identifiers() -> list[str]:
    path = os.environ.get("IDNODE_LOCUST_IDENTIFIERS")
    if not path:
        return DEMO
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


class ResolverUser(User):
    """One partner system: mostly single resolutions, now and then a batch."""

    wait_time = between(0.0, 0.01)
    identifiers = _identifiers()

    def on_start(self) -> None:
        self._channel = grpc.insecure_channel(self.host or "127.0.0.1:8600")
        self._stub = resolver_pb2_grpc.ResolverStub(self._channel)

    def on_stop(self) -> None:
        self._channel.close()

    @task(20)
    def resolve(self) -> None:
        identifier = random.choice(self.identifiers)
        self._timed("Resolve", lambda: self._stub.Resolve(
            resolver_pb2.ResolveRequest(identifier=identifier)))  # fmt: skip

    @task(1)
    def batch_resolve(self) -> None:
        requests = [
            resolver_pb2.ResolveRequest(identifier=random.choice(self.identifiers))
            for _ in range(50)
        ]
        self._timed("BatchResolve", lambda: self._stub.BatchResolve(
            resolver_pb2.BatchResolveRequest(requests=requests)))  # fmt: skip

    def _timed(self, name: str, call: Callable[[], Any]) -> None:
        started = time.perf_counter()
        failure: Exception | None = None
        length = 0
        try:
            length = call().ByteSize()
        except grpc.RpcError as error:
            # NOT_FOUND is an answer, not a failure of the node.
            if not (isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.NOT_FOUND):
                failure = error
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=failure,
            context={},
        )


class HttpResolverUser(HttpUser):
    """A phone scanning QR codes (the redirect, now and then the page) and a script on the
    Handle REST API. A redirect or a 404 for an absent identifier is an answer, not a failure."""

    wait_time = between(0.0, 0.01)
    identifiers = _identifiers()

    @task(10)
    def scan(self) -> None:
        identifier = random.choice(self.identifiers)
        with self.client.get(
            f"/{identifier}", name="/{identifier}", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code in (200, 302, 404):
                response.success()

    @task(2)
    def page(self) -> None:
        identifier = random.choice(self.identifiers)
        with self.client.get(
            f"/{identifier}?noredirect", name="/{identifier}?noredirect", catch_response=True
        ) as response:
            if response.status_code in (200, 404):
                response.success()

    @task(5)
    def rest(self) -> None:
        identifier = random.choice(self.identifiers)
        with self.client.get(
            f"/api/handles/{identifier}", name="/api/handles/{identifier}", catch_response=True
        ) as response:
            if response.status_code in (200, 404):
                response.success()
