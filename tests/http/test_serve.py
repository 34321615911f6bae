"""`idnode serve --http-listen`: every worker on the shared port, IPv4 and IPv6, drain on SIGTERM."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from pathlib import Path

from tests.node.conftest import ADMIN_TOKEN, start_node


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def request(address: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    host, port = split(address)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if method != "GET" else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def listeners(port: int) -> set[int]:
    """Pids with a listening TCP socket on `port`."""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True)
    return {
        int(part.split("=")[1])
        for part in out.stdout.replace(",", " ").split()
        if part.startswith("pid=")
    }


def test_every_worker_serves_http_on_ipv4_and_ipv6_and_sees_every_write(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", "--workers", "2", "--http-listen", "127.0.0.1:0",
                      "--http-listen", "[::1]:0")  # fmt: skip
    try:
        v4, v6 = node.ready["http"]
        assert len(listeners(split(v4)[1])) == 2 and len(listeners(split(v6)[1])) == 2
        path = "/api/handles/88.118/shared-1"
        for round_number in range(3):
            url = f"https://example.com/{round_number}"
            body = json.dumps({"values": [{"index": 1, "type": "URL", "data": url}]}).encode()
            assert request(v4, "PUT", path, body)[0] in (200, 201)
            # Fresh connections land on either worker; each must answer the new value.
            for address in (v4, v6) * 6:
                status, reply = request(address, "GET", path)
                assert status == 200 and json.loads(reply)["values"][0]["data"]["value"] == url
    finally:
        assert node.stop() == 0


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    node = start_node(tmp_path / "data", "--http-listen", "127.0.0.1:0")
    host, port = split(node.ready["http"][0])
    body = json.dumps({"values": [{"index": 1, "type": "URL", "data": "https://example.com/d"}]})
    head = (
        f"PUT /api/handles/88.118/drained HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=20) as client:
        client.sendall(head + body[:10].encode())
        time.sleep(0.3)
        node.process.send_signal(15)  # the master drains its workers
        time.sleep(1.5)  # past the drain period: the listener is closing, this request is not
        client.sendall(body[10:].encode())
        reply = client.recv(4096)
    assert reply.startswith(b"HTTP/1.1 201"), reply[:100]
    assert node.process.wait(30) == 0
    node.stop()
