"""Limits the server library leaves open: head and body sizes, head deadline, connection cap.

uvicorn's httptools protocol parses; this subclass only counts what the parser
hands it and keeps a deadline per request head, so a client that trickles a
head, sends an endless header or holds thousands of idle connections is cut
off with a clear status before it costs memory.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

import metrics
from resolver.http.config import HttpOptions

_refused = metrics.Tally(metrics.HTTP_REQUESTS)
metrics.on_flush(_refused.flush)


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with HttpOptions' bounds; `guarded(options)` makes the class."""

    limits = HttpOptions()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = self._header_count = self._body_bytes = 0
        self._in_head = self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.max_connections:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections")
            return
        self._arm(self.limits.request_head_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._header_count = self._body_bytes = 0
        self._in_head = True
        if self._deadline is None:  # a pipelined request: its head gets its own deadline
            self._arm(self.limits.request_head_timeout_seconds)

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_request_line_bytes:
            limit = self.limits.max_request_line_bytes
            self._refuse(HTTPStatus.REQUEST_URI_TOO_LONG, f"request target over {limit} bytes")
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_bytes += len(name) + len(value) + 4
        self._header_count += 1
        limits = self.limits
        if self._head_bytes > limits.max_request_line_bytes + limits.max_header_bytes:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                         f"headers larger than {limits.max_header_bytes} bytes")  # fmt: skip
            return
        if self._header_count > limits.max_headers:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                         f"more than {limits.max_headers} headers")  # fmt: skip
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._in_head = False
        length = 0
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value) if value.isdigit() else 0
        if length > self.limits.max_body_bytes:
            self._refuse_body()
            return
        super().on_headers_complete()
        if length or any(name == b"transfer-encoding" for name, _ in self.headers):
            self._arm(self.limits.request_body_timeout_seconds)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._refuse_body()
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._deadline is None:
            # Idle or trickling, the next head must be complete in time; uvicorn's own
            # keep-alive timer stops at the first byte, this one does not.
            self._arm(self.limits.request_head_timeout_seconds)

    # Deadlines and refusals ----------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._in_head:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, "request head not complete in time")
        elif self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a body that stopped coming: the app sees a disconnect
        elif not self.transport.is_closing():
            self.transport.close()  # idle: nothing to answer

    def _refuse_body(self) -> None:
        limit = self.limits.max_body_bytes
        self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {limit} bytes")

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        """Answer `status` with `reason` and close; later parser callbacks are ignored."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        body = reason.encode() + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status.value, status.phrase.encode(), len(body), body)
        )
        self.transport.close()
        _refused.add(("other", f"{status.value // 100}xx"))  # before the app knew the method


def guarded(options: HttpOptions) -> type[GuardedProtocol]:
    """The protocol class for one server, with `options` as its limits."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": options})
