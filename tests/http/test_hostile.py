"""Hostile input: oversized, slow, many, malformed. Clear refusals, bounded memory, data intact."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import accounts
from resolver.http import HttpOptions
from tests.http.conftest import Face, start_face, stop_face, url_value

ID = "88.118.8/SAFE1"
LIMITS = HttpOptions(
    max_request_line_bytes=1024, max_header_bytes=2048, max_headers=20, max_body_bytes=4096,
    request_head_timeout_seconds=0.6, request_body_timeout_seconds=0.6, keep_alive_seconds=5,
    max_connections=20, negative_cache_entries=100, negative_cache_bytes=64 << 10,
)  # fmt: skip


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[Face]:
    face = start_face(tmp_path, LIMITS)
    face.register(ID, url_value(1, "https://example.com/safe"))
    try:
        yield face
    finally:
        assert_intact(face)
        stop_face(face)


def assert_intact(face: Face) -> None:
    """The record the tests attack is still as it was, and nothing else was written."""
    reply = face.get(f"/api/handles/{ID}")
    assert reply.status == 200
    assert [v["data"]["value"] for v in reply.json()["values"]] == ["https://example.com/safe"]
    with face.store.read() as txn:
        # node prefix, the administrator, the enterprise's prefix and account, the record
        assert face.store.last_sequence(txn) == 5


def send(face: Face, data: bytes, wait: float = 3.0) -> bytes:
    """Send `data`, then read until the server closes or `wait` passes."""
    with socket.create_connection(("127.0.0.1", face.port), timeout=wait) as client:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            client.sendall(data)
        chunks = []
        try:
            while chunk := client.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n", b"431"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-N: 1\r\n" * 50 + b"\r\n", b"431"),
        (b"PUT /api/handles/" + ID.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"PUT /api/handles/" + ID.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         + (b"1000\r\n" + b"x" * 4096 + b"\r\n") * 4 + b"0\r\n\r\n", b"413"),
        (b"GET /\xe6\x89\xb9 HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
        (b"NONSENSE\r\n\r\n", b"400"),
    ],
    ids=["long-target", "big-header", "many-headers", "declared-body", "chunked-body", "raw-utf8", "garbage"],
)  # fmt: skip
def test_oversized_or_malformed_requests_get_a_clear_status(
    tight: Face, request_bytes: bytes, status: bytes
) -> None:
    reply = send(tight, request_bytes)

    assert reply.startswith(b"HTTP/1.1 " + status), reply[:200]
    assert len(reply) < 2000


def test_a_trickled_head_is_cut_off_with_408(tight: Face) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", tight.port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        for _ in range(30):  # one header every 0.1 s: never complete, never idle
            try:
                client.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            client.settimeout(0.1)
            try:
                reply += client.recv(4096)
                if reply:
                    break
            except TimeoutError:
                continue

    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
    assert time.monotonic() - started < 2.5


def test_silent_and_idle_connections_are_closed(tight: Face) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=5) as silent:
        assert silent.recv(100) == b""  # closed, nothing to answer
    with socket.create_connection(("127.0.0.1", tight.port), timeout=8) as idle:
        idle.sendall(f"GET /{ID} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert idle.recv(4096).startswith(b"HTTP/1.1 302")
        started = time.monotonic()
        assert idle.recv(100) == b""
        assert time.monotonic() - started < 5


def test_a_body_that_stops_coming_closes_the_connection(tight: Face) -> None:
    head = (f"PUT /api/handles/{ID} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            f"Authorization: Bearer {tight.enterprise_token}\r\n\r\n").encode()  # fmt: skip

    reply = send(tight, head + b'{"values": [', wait=5)

    assert b"201" not in reply and b"200 OK" not in reply


def test_connections_past_the_cap_are_refused_and_the_rest_keep_working(tmp_path: Path) -> None:
    face = start_face(tmp_path, HttpOptions(max_connections=20, request_head_timeout_seconds=30))
    face.register(ID, url_value(1, "https://example.com/safe"))
    held = [socket.create_connection(("127.0.0.1", face.port), timeout=5) for _ in range(20)]
    try:
        for client in held:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        refused = send(face, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503")
        held[0].sendall(f"GET /{ID} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert held[0].recv(4096).startswith(b"HTTP/1.1 302")
    finally:
        for client in held:
            client.close()
        stop_face(face)


def test_pipelined_requests_slower_than_the_head_deadline_are_all_answered(
    tmp_path: Path,
) -> None:
    """The head deadline waits for a new request; it must not cut off queued ones."""
    tight = start_face(tmp_path, LIMITS)
    tight.register(ID, url_value(1, "https://example.com/safe"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts, never answers: each follow-up waits out its timeout
    admin = accounts.authenticate(tight.store, tight.admin_token)
    site = handle_pb2.Site(grpc_address=f"127.0.0.1:{silent.getsockname()[1]}")
    tight.registry.put_prefix(admin, "88.118.8.7", [site])
    slow = b"GET /88.118.8.7/far HTTP/1.1\r\nHost: x\r\n\r\n"
    fast = f"GET /{ID} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", tight.port), timeout=15) as client:
            client.sendall(slow + fast + slow)
            received = b""
            while received.count(b"HTTP/1.1 ") < 3:
                chunk = client.recv(65536)
                assert chunk, f"closed after {received.count(b'HTTP/1.1 ')} answers"
                received += chunk
    finally:
        silent.close()
        stop_face(tight)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"503", b"302", b"503"]


def test_many_distinct_misses_keep_the_cache_and_memory_bounded(tight: Face) -> None:
    def rss_bytes() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    before = rss_bytes()
    with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as client:
        for batch in range(40):
            requests = b"".join(
                f"GET /88.118.8/miss-{batch}-{i}-{'x' * 150} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                for i in range(50)
            )
            client.sendall(requests)
            received = b""
            while received.count(b"HTTP/1.1 404") < 50:
                chunk = client.recv(1 << 20)
                assert chunk, f"closed after {received.count(b'HTTP/1.1 404')} answers"
                received += chunk

    cache = tight.app.cache.answers
    assert len(cache) <= 100 + 1  # the negative bound (plus the one positive entry)
    assert cache.bytes_used <= (64 << 10) + 4096  # the negative bound and the one answer
    assert rss_bytes() - before < 64 << 20


def test_huge_value_and_query_are_refused_with_short_messages(tight: Face) -> None:
    headers = {"Authorization": f"Bearer {tight.enterprise_token}"}
    too_many = "&".join(f"index={i}" for i in range(100))

    query = tight.request("GET", f"/api/handles/{ID}?{too_many}", headers=headers)
    body = json.dumps({"values": [{"index": 2, "type": "x", "data": "y" * 5000}]}).encode()
    big = tight.request("PUT", f"/api/handles/{ID}?index=2", body, headers)

    assert (query.status, query.json()["responseCode"]) == (400, 4)
    assert "query string" in query.json()["message"]
    assert big.status == 413
