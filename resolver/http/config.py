"""HTTP face configuration: one frozen dataclass, checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass


class HttpConfigError(ValueError):
    """The HTTP configuration is invalid."""


@dataclass(frozen=True)
class HttpOptions:
    """Limits, timeouts and cache sizes of the HTTP face; every field has a working default."""

    max_request_line_bytes: int = 8192  # method, path and query
    max_header_bytes: int = 16384  # all header names and values together
    max_headers: int = 100
    max_body_bytes: int = 3 << 20  # a full record (1 MiB of data) as hex or base64 JSON
    request_head_timeout_seconds: float = 10.0  # from connect or the last response to a full head
    request_body_timeout_seconds: float = 30.0
    keep_alive_seconds: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 1024  # per worker; past it a new connection gets 503 and is closed
    write_threads: int = 8  # registry writes and referral follow-ups run off the event loop
    cache_entries: int = 200_000
    negative_cache_entries: int = 50_000
    cache_bytes: int = 256 << 20
    negative_cache_bytes: int = 32 << 20
    shutdown_grace_seconds: float = 10.0

    def __post_init__(self) -> None:
        for key in (
            "max_request_line_bytes", "max_header_bytes", "max_headers", "max_body_bytes",
            "max_connections", "write_threads",
        ):  # fmt: skip
            if getattr(self, key) < 1:
                raise HttpConfigError(f"{key}: must be at least 1")
        for key in (
            "request_head_timeout_seconds", "request_body_timeout_seconds", "keep_alive_seconds",
        ):  # fmt: skip
            if getattr(self, key) <= 0:
                raise HttpConfigError(f"{key}: must be positive")
        for key in ("cache_entries", "negative_cache_entries", "cache_bytes"):
            if getattr(self, key) < 0:
                raise HttpConfigError(f"{key}: must not be negative")
