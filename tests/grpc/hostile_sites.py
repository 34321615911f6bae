"""Referred sites that misbehave, on loopback: closed, silent, not gRPC, answering too much."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc

from proto import resolver_pb2


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@contextmanager
def tcp_site(behaviour: str) -> Iterator[str]:
    """A TCP port that accepts and then stays `silent`, or sends `garbage` and closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)  # so the loop sees `stop`: closing does not wake accept()
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if behaviour == "garbage":
                with connection, contextlib.suppress(OSError):
                    connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" * 10)
            else:
                held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


@contextmanager
def oversized_answerer(answer_bytes: int) -> Iterator[str]:
    """A gRPC Resolver whose every answer is `answer_bytes` long."""
    answer = resolver_pb2.ResolveResponse(identifier="x", code=1)
    answer.values.add(index=1, type="blob", data=b"z" * answer_bytes)
    payload = answer.SerializeToString()
    handler = grpc.method_handlers_generic_handler(
        "idnode.v1.Resolver",
        {
            "Resolve": grpc.unary_unary_rpc_method_handler(
                lambda request, context: payload,
                request_deserializer=lambda data: data,
                response_serializer=lambda data: data,
            )
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        handlers=[handler],
        options=[("grpc.max_send_message_length", 64 << 20)],
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)
