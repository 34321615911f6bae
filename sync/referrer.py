"""Where a prefix outside this node lives: asks the top-level node, caches answers by TTL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc

from proto import sync_pb2, sync_pb2_grpc
from registry.registry import Referral

NEGATIVE_TTL_SECONDS = 5.0  # an unknown prefix, or the upstream away: ask again soon
MAX_ENTRIES = 10_000


class UpstreamReferrer:
    """Callable `prefix -> Referral | None` for a worker's Resolver (one per process)."""

    def __init__(
        self,
        upstream: str,
        timeout_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._upstream = upstream
        self._timeout = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Referral | None]] = {}
        self._channel: grpc.Channel | None = None

    def __call__(self, prefix: str) -> Referral | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(prefix)
        if cached is not None and cached[0] > now:
            return cached[1]
        referral, ttl = self._ask(prefix)
        with self._lock:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[prefix] = (now + ttl, referral)
        return referral

    def _ask(self, prefix: str) -> tuple[Referral | None, float]:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self._upstream)
        try:
            reply = sync_pb2_grpc.TopLevelStub(self._channel).Locate(
                sync_pb2.LocateRequest(prefix=prefix), timeout=self._timeout
            )
        except grpc.RpcError:
            return None, NEGATIVE_TTL_SECONDS
        if not reply.sites:
            return None, NEGATIVE_TTL_SECONDS
        referral = Referral(reply.code, reply.prefix, tuple(reply.sites), reply.ttl)
        return referral, float(reply.ttl)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
