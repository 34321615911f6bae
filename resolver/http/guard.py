"""The protocol under the app: limits the server library leaves open, and the hot path.

uvicorn's httptools protocol parses; this subclass only counts what the parser
hands it and keeps a deadline per request head, so a client that trickles a
head, sends an endless header or holds thousands of idle connections is cut
off with a clear status before it costs memory.

It also answers a plain keep-alive GET whose answer is cached by writing the
finished bytes at once (a dictionary look-up and one write), without building
an ASGI request cycle and task for it; everything else goes to the app as usual.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

import metrics
from resolver.http.cache import Encoded
from resolver.http.config import HttpOptions

_refused = metrics.Tally(metrics.HTTP_REQUESTS)
metrics.on_flush(_refused.flush)


class HotPath(Protocol):
    """What the app offers the protocol: its cached answers, and a count of those sent."""

    def cached(self, path: str, headers: list[tuple[bytes, bytes]]) -> Encoded | None: ...

    def served(self, method: bytes, status: int) -> None: ...


_date_line: list[object] = [None, b""]  # the server's default headers, and them encoded


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with HttpOptions' bounds; `guarded(options, hot)` makes the class."""

    limits = HttpOptions()
    hot: HotPath | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = self._header_count = self._body_bytes = 0
        self._in_head = self._refused = self._hot_served = False
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
        chunked = any(name == b"transfer-encoding" for name, _ in self.headers)
        if not length and not chunked and self._serve_hot():
            return
        super().on_headers_complete()
        if length or chunked:
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
        if self._hot_served:
            self._hot_served = False
            self.on_response_complete()  # keep-alive and pipelining as after any response
            return
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        busy = self.pipeline or (self.cycle is not None and not self.cycle.response_complete)
        if not busy and not self.transport.is_closing() and self._deadline is None:
            # Idle or trickling, the next head must be complete in time; uvicorn's own
            # keep-alive timer stops at the first byte, this one does not.
            self._arm(self.limits.request_head_timeout_seconds)

    def _serve_hot(self) -> bool:
        """Write a cached answer to a plain GET now; False leaves the request to the app."""
        hot = self.hot
        if hot is None or self.pipeline or self.flow.write_paused:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # a response is still being written: answers must stay in order
        parser = self.parser
        if parser.get_method() != b"GET" or parser.get_http_version() != "1.1":
            return False
        if not parser.should_keep_alive() or parser.should_upgrade():
            return False
        url = self.url
        if url[:1] != b"/" or b"?" in url or b"%" in url or not url.isascii():
            return False
        response = hot.cached(url.decode("ascii"), self.headers)
        if response is None:
            return False
        defaults = self.server_state.default_headers  # the Date header, renewed each second
        if _date_line[0] is not defaults:
            _date_line[:] = [defaults, b"".join(k + b": " + v + b"\r\n" for k, v in defaults)]
        date = _date_line[1]
        assert isinstance(date, bytes)
        self.transport.write(response.status_line + date + response.rest)
        self._hot_served = True
        hot.served(b"GET", response.status)
        return True

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


def guarded(options: HttpOptions, hot: HotPath | None = None) -> type[GuardedProtocol]:
    """The protocol class for one server: `options` as its limits, `hot` its cached answers."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": options, "hot": hot})
