"""Cached answers written by the protocol: in order with the app's, HEAD and HTTP/1.0 aside."""

from __future__ import annotations

import re
import socket
import time

from tests.http.conftest import Face, url_value

ID = "88.118.8/HOT1"
GET = f"GET /{ID} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def exchange(face: Face, data: bytes, wait: float = 0.5) -> bytes:
    with socket.create_connection(("127.0.0.1", face.port), timeout=5) as client:
        client.sendall(data)
        time.sleep(wait)
        client.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(raw: bytes) -> list[str]:
    """Status codes in the order the responses came (bodies need not end in a newline)."""
    return re.findall(r"HTTP/1\.1 (\d{3}) ", raw.decode())


def test_pipelined_hits_and_app_answers_come_back_in_order(face: Face) -> None:
    face.register(ID, url_value(1, "https://example.com/hot"))
    assert face.get("/" + ID).status == 302  # fills the cache
    hits_before = face.app.cache.answers.hits
    absent = b"GET /88.118.8/absent HTTP/1.1\r\nHost: x\r\n\r\n"
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    raw = exchange(face, GET + absent + GET + health + GET + GET)

    assert statuses(raw) == ["302", "404", "302", "200", "302", "302"]
    assert raw.count(b"location: https://example.com/hot") == 4
    assert face.app.cache.answers.hits - hits_before >= 4


def test_head_gets_headers_without_a_body(face: Face) -> None:
    face.register(ID, url_value(1, "https://example.com/hot"))
    face.get(f"/api/handles/{ID}")

    raw = exchange(face, f"HEAD /api/handles/{ID} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: " in head
    assert body == b""


def test_http_1_0_gets_its_answer_and_the_connection_closes(face: Face) -> None:
    face.register(ID, url_value(1, "https://example.com/hot"))
    face.get("/" + ID)

    raw = exchange(face, f"GET /{ID} HTTP/1.0\r\n\r\n".encode(), wait=0.2)

    assert raw.startswith(b"HTTP/1.1 302") and b"location: https://example.com/hot" in raw


def test_a_hit_carries_a_date_header(face: Face) -> None:
    face.register(ID, url_value(1, "https://example.com/hot"))
    face.get("/" + ID)

    reply = face.get("/" + ID)

    assert reply.status == 302 and reply.headers["date"].endswith("GMT")
