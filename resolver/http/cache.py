"""Encoded HTTP responses by canonical identifier and variant, kept correct from the change log."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from proto import handle_pb2
from registry.identifier import is_under
from resolver.cache import AnswerCache
from resolver.follow import ChangeFollower
from resolver.http.config import HttpOptions

# Every way one identifier is answered; an invalidation drops them all.
VARIANTS = ("rest", "proxy-en", "proxy-zh", "page-en", "page-zh")
SEPARATOR = "\x00"  # between identifier and variant in a key: never part of an identifier
ENTRY_OVERHEAD_BYTES = 300  # the two message dicts, the key and the cache's bookkeeping

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A finished response, never mutated: the two ASGI messages that send it, and the
    same response as HTTP/1.1 bytes around the Date header, which the protocol writes
    as they are for a plain GET (resolver/http/guard.py)."""

    status: int
    start: dict[str, Any]
    body: dict[str, Any]
    result: str  # resolve result for metrics ("" when the request was no resolution)
    size_bytes: int
    status_line: bytes  # b"HTTP/1.1 302 Found\r\n"
    rest: bytes  # the other headers, the blank line and the body


def encoded(status: int, headers: Headers, body: bytes, result: str = "") -> Encoded:
    """Encode once: the server writes these messages or bytes as they are on every hit."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    status_line = b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
    rest = b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body
    size = ENTRY_OVERHEAD_BYTES + 2 * (len(body) + sum(len(k) + len(v) for k, v in headers))
    return Encoded(
        status,
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
        result,
        size,
        status_line,
        rest,
    )


class ResponseCache:
    """One bounded cache per worker; a change to an identifier drops all its variants,
    a change to a prefix (created, delegated) every answer under it."""

    def __init__(self, follower: ChangeFollower, options: HttpOptions) -> None:
        self.answers: AnswerCache[str, Encoded] = AnswerCache(
            options.cache_entries,
            options.negative_cache_entries,
            options.cache_bytes,
            options.negative_cache_bytes,
        )
        self._follower = follower
        follower.subscribe(self._invalidate)

    def get(self, key: str, variant: str) -> Encoded | None:
        """`key` is the identifier's cache key (registry.identifier.cache_key)."""
        return self.answers.get(key + SEPARATOR + variant)

    def fill(
        self, key: str, variant: str, response: Encoded, generation: int, negative: bool
    ) -> None:
        """Keep `response` unless a change landed since `generation` was read."""
        prefix = key[: key.find("/")]
        with self._follower.lock:
            if self._follower.generation == generation:
                self.answers.put(
                    key + SEPARATOR + variant, response, response.size_bytes, negative, prefix
                )

    def _invalidate(self, entry: handle_pb2.ChangeEntry | None) -> None:
        if entry is None:
            self.answers.clear()
        elif entry.operation == handle_pb2.ChangeEntry.ACCOUNT_PUT:
            return  # a credential changed: no answer did
        elif entry.operation == handle_pb2.ChangeEntry.PREFIX_PUT:
            changed = entry.identifier
            self.answers.invalidate_groups(lambda prefix: is_under(prefix, changed))
        else:
            for variant in VARIANTS:
                self.answers.invalidate(entry.identifier + SEPARATOR + variant)
