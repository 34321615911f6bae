"""Identifiers of a delegated prefix: redirect to its node's HTTP site, else follow over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions
from resolver.follow import ChangeFollower
from resolver.grpc_auth import Authenticator
from resolver.grpc_resolve import ResolverService
from resolver.grpc_server import RESOLVER, GrpcServer, resolver_handler
from tests.http.conftest import Face, url_value

DELEGATED = "88.118.8.7"


def delegate(face: Face, site: handle_pb2.Site) -> None:
    admin = accounts.authenticate(face.store, face.admin_token)
    face.registry.put_prefix(admin, DELEGATED, [site])


@pytest.fixture
def enterprise_node(tmp_path: Path) -> Iterator[str]:
    """The enterprise's own node, serving DELEGATED over gRPC, with one identifier."""
    store = Store(str(tmp_path / "enterprise"), StoreOptions(durable=False))
    registry = Registry(store, DELEGATED)
    registry.ensure_node_prefix()
    token = accounts.ensure_admin(store, None)
    assert token is not None
    registry.create(accounts.authenticate(store, token), f"{DELEGATED}/far",
                    [url_value(1, "https://enterprise.example/far")])  # fmt: skip
    resolver = ResolverService(registry, ChangeFollower(store), Authenticator(store), 100, 100)
    server = GrpcServer([resolver_handler(resolver)], [RESOLVER], threads=4,
                        max_message_bytes=1 << 20, interceptors=[])  # fmt: skip
    port = server.start(["127.0.0.1:0"])[0]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)
        store.close()


def test_a_site_with_an_http_face_gets_the_redirect(face: Face) -> None:
    delegate(
        face,
        handle_pb2.Site(grpc_address="127.0.0.1:1", http_address="https://id.enterprise.example/"),
    )

    proxy = face.get("/" + quote(f"{DELEGATED}/批次-1"))
    page = face.get(f"/{DELEGATED}/x?noredirect")
    rest = face.get(f"/api/handles/{DELEGATED}/x?type=URL")

    assert proxy.status == 302
    assert (
        proxy.headers["location"]
        == f"https://id.enterprise.example/{DELEGATED}/%E6%89%B9%E6%AC%A1-1"
    )
    assert page.headers["location"] == f"https://id.enterprise.example/{DELEGATED}/x?noredirect"
    assert (
        rest.headers["location"]
        == f"https://id.enterprise.example/api/handles/{DELEGATED}/x?type=URL"
    )


def test_a_site_without_one_is_followed_over_grpc(face: Face, enterprise_node: str) -> None:
    delegate(face, handle_pb2.Site(grpc_address=enterprise_node))

    proxy = face.get(f"/{DELEGATED}/far")
    rest = face.get(f"/api/handles/{DELEGATED}/far")
    absent = face.get(f"/api/handles/{DELEGATED}/absent")

    assert (proxy.status, proxy.headers["location"]) == (302, "https://enterprise.example/far")
    assert rest.status == 200 and rest.json()["handle"] == f"{DELEGATED}/far"
    assert rest.json()["values"][0]["data"]["value"] == "https://enterprise.example/far"
    assert (absent.status, absent.json()["responseCode"]) == (404, 100)


def test_an_unreachable_site_is_503_not_a_hang(face: Face) -> None:
    delegate(face, handle_pb2.Site(grpc_address="127.0.0.1:1"))

    reply = face.get(f"/api/handles/{DELEGATED}/far")

    assert (reply.status, reply.json()["responseCode"]) == (503, 3)
