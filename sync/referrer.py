"""Where a prefix outside this node lives: asks the top-level node, caches answers by TTL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from proto import sync_pb2, sync_pb2_grpc
from registry import sites
from registry.crypto.certificates import CertificateError
from registry.registry import Referral
from resolver.cache import AnswerCache
from resolver.tls import ClientTls, channel_credentials, open_channel

log = logging.getLogger(__name__)

NEGATIVE_TTL_SECONDS = 5.0  # an unknown prefix, or the upstream away: ask again soon
MAX_ENTRIES = 10_000
MAX_BYTES = 16 << 20
MAX_LOCATE_REPLY_BYTES = 64 << 10  # a prefix and at most registry.sites.MAX_SITES sites

_Cached = tuple[float, Referral | None]  # (expiry on the clock, the answer)


class UpstreamReferrer:
    """Callable `prefix -> Referral | None` for a worker's Resolver (one per process)."""

    def __init__(
        self,
        upstream: str,
        timeout_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        tls: ClientTls | None = None,
    ) -> None:
        self._upstream = upstream
        self._tls = tls
        self._timeout = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: AnswerCache[str, _Cached] = AnswerCache(
            MAX_ENTRIES, MAX_ENTRIES, MAX_BYTES, MAX_BYTES
        )
        self._channel: grpc.Channel | None = None
        self._stub: sync_pb2_grpc.TopLevelStub | None = None  # made with the channel
        self._credentials: grpc.ChannelCredentials | None = None
        self._usable = self._read_credentials()

    def _read_credentials(self) -> bool:
        """Read the TLS files now (at start and on renew_channel, never while resolving);
        False, said once, when they cannot be used."""
        if self._tls is None:
            return True
        try:
            self._credentials = channel_credentials(self._tls)
        except CertificateError as error:
            log.error("cannot ask the upstream where a prefix lives: %s", error)
            return False
        return True

    def __call__(self, prefix: str) -> Referral | None:
        """Where canonical `prefix` lives, None when unknown or the upstream is away."""
        now = self._clock()
        cached = self._cache.get(prefix)
        if cached is not None and cached[0] > now:
            return cached[1]
        referral, ttl = self._ask(prefix)
        size = 100 + sum(site.ByteSize() for site in referral.sites) if referral else 0
        self._cache.put(prefix, (now + ttl, referral), size, negative=referral is None)
        return referral

    def _ask(self, prefix: str) -> tuple[Referral | None, float]:
        with self._lock:
            if not self._usable:
                return None, NEGATIVE_TTL_SECONDS
            if self._stub is None:
                # Under the lock: grpcio crashes the process when a stub is made on a
                # channel that renew_channel has just closed.
                self._channel = open_channel(
                    self._upstream,
                    self._tls,
                    options=[("grpc.max_receive_message_length", MAX_LOCATE_REPLY_BYTES)],
                    credentials=self._credentials,
                )
                self._stub = sync_pb2_grpc.TopLevelStub(self._channel)
            stub = self._stub
        try:
            reply = stub.Locate(sync_pb2.LocateRequest(prefix=prefix), timeout=self._timeout)
        except (grpc.RpcError, ValueError):  # ValueError: renewed meanwhile, channel closed
            return None, NEGATIVE_TTL_SECONDS
        usable = tuple(s for s in reply.sites if sites.is_valid_address(s.grpc_address))
        if not usable:
            return None, NEGATIVE_TTL_SECONDS
        return Referral(reply.code, reply.prefix, usable, reply.ttl), float(reply.ttl)

    def renew_channel(self) -> None:
        """Read the TLS files again; the next question opens a new channel with them."""
        with self._lock:
            self._usable = self._read_credentials()
            old, self._channel, self._stub = self._channel, None, None
        if old is not None:
            old.close()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
