"""A real HTTP face per test: LMDB store in tmp_path, the shared resolver, uvicorn on port 0."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions
from resolver.auth import Authenticator
from resolver.follow import ChangeFollower
from resolver.grpc_auth import Authenticator as GrpcAuthenticator
from resolver.grpc_resolve import ResolverService
from resolver.http import HttpApp, HttpOptions, HttpServer

NODE_PREFIX = "88.118"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Face:
    store: Store
    registry: Registry
    app: HttpApp
    server: HttpServer
    port: int
    admin_token: str
    enterprise_prefix: str
    enterprise_token: str
    host: str = "127.0.0.1"
    connections: list[http.client.HTTPConnection] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Reply:
        return self.request(
            "GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )

    def put(self, path: str, document: Any, token: str | None = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("PUT", path, json.dumps(document).encode(), headers)

    def delete(self, path: str, token: str | None = None) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.request("DELETE", path, headers=headers)

    def register(self, identifier: str, *values: handle_pb2.HandleValue) -> None:
        caller = accounts.authenticate(self.store, self.admin_token)
        self.registry.create(caller, identifier, list(values))


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def url_value(index: int, url: str, **extra: Any) -> handle_pb2.HandleValue:
    return handle_pb2.HandleValue(index=index, type="URL", data=url.encode(), **extra)


def text_value(index: int, kind: str, text: str, **extra: Any) -> handle_pb2.HandleValue:
    return handle_pb2.HandleValue(index=index, type=kind, data=text.encode(), **extra)


def start_face(tmp_path: Path, options: HttpOptions | None = None, host: str = "127.0.0.1") -> Face:
    store = Store(str(tmp_path / "data"), StoreOptions(durable=False))
    registry = Registry(store, NODE_PREFIX)
    registry.ensure_node_prefix()
    token = accounts.ensure_admin(store, None)
    assert token is not None
    admin = accounts.authenticate(store, token)
    enterprise = registry.create_enterprise(admin, code="8", name="Jiangxi Motors")
    follower = ChangeFollower(store)
    resolver = ResolverService(registry, follower, GrpcAuthenticator(store), 1000, 1000)
    app = HttpApp(registry, follower, Authenticator(store), resolver.answer, options)
    server = HttpServer(app, options)
    address = f"[{host}]:0" if ":" in host else f"{host}:0"
    port = server.start([address])[0][1]
    return Face(
        store, registry, app, server, port, token, enterprise.prefix, enterprise.token, host
    )


def stop_face(face: Face) -> None:
    face.server.stop()
    face.app.close()
    face.store.close()


@pytest.fixture
def face(tmp_path: Path) -> Iterator[Face]:
    started = start_face(tmp_path)
    try:
        yield started
    finally:
        stop_face(started)
