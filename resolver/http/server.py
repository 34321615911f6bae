"""The HTTP server of one worker: uvicorn on its own event-loop thread, shared ports.

uvicorn with httptools and uvloop served a fixed response for the least CPU per
request of the stacks measured (loadtest/http_servers.py, docs/http.md). Each
worker binds every address itself with SO_REUSEPORT, so the kernel spreads
connections over the workers as it does for gRPC and DNS.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

import uvicorn
import uvloop

from resolver.http.config import HttpConfigError, HttpOptions
from resolver.http.guard import guarded

log = logging.getLogger("idnode.http")
START_TIMEOUT_SECONDS = 10.0
BACKLOG = 1024


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT`. Raises HttpConfigError."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise HttpConfigError(f"listen: {text!r} is not HOST:PORT (IPv6 as [ADDR]:PORT)")
    return host, int(port)


def listening_socket(address: str) -> socket.socket:
    """A socket bound with SO_REUSEPORT (IPv6 sockets take only IPv6)."""
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class HttpServer:
    """Serves one ASGI app on the given addresses until `stop()` drains it."""

    def __init__(
        self,
        app: Any,
        options: HttpOptions | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._app = app
        self._ssl_context = ssl_context  # HTTPS; its certificate may change between handshakes
        self._options = options or HttpOptions()
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._failure: BaseException | None = None

    def start(self, addresses: Sequence[str]) -> list[tuple[str, int]]:
        """Bind every address and serve; returns the bound (host, port) pairs.

        Raises OSError when an address cannot be bound, RuntimeError when the
        server does not come up.
        """
        for address in addresses:
            self._sockets.append(listening_socket(address))
        options = self._options
        config = uvicorn.Config(
            self._app,
            http=guarded(options, self._app if hasattr(self._app, "cached") else None),
            ws="none",
            loop="none",
            lifespan="off",
            interface="asgi3",
            access_log=False,  # no logging per request: metrics only
            log_config=None,  # the node configures logging, not the server library
            log_level="error",  # a malformed request is answered, not logged
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=options.keep_alive_seconds,  # type: ignore[arg-type]
            timeout_graceful_shutdown=options.shutdown_grace_seconds,  # type: ignore[arg-type]
        )
        config.load()
        config.ssl = self._ssl_context  # uvicorn would build its own from files, once
        self._server = uvicorn.Server(config)
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise RuntimeError(f"HTTP server failed to start: {self._failure}")
            if time.monotonic() > deadline:
                raise RuntimeError("HTTP server did not start in time")
            time.sleep(0.01)
        bound = [sock.getsockname()[:2] for sock in self._sockets]
        return [(str(host), int(port)) for host, port in bound]

    def _run(self) -> None:
        assert self._loop is not None and self._server is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._server.serve(sockets=self._sockets))
        except BaseException as error:  # reported to start() or logged at stop()
            self._failure = error
            log.exception("HTTP server stopped unexpectedly")
        finally:
            self._loop.close()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), close."""
        server, loop, thread = self._server, self._loop, self._thread
        if server is None or loop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)
            thread.join(self._options.shutdown_grace_seconds + 5)
        for sock in self._sockets:
            sock.close()
        self._server = None
