"""Bearer-token authentication for the gRPC services, cached briefly per process."""

from __future__ import annotations

import threading

import grpc
from cachetools import TTLCache

from registry import accounts
from registry.accounts import Account
from registry.errors import AuthenticationFailed
from registry.store import Store

TOKEN_CACHE_SECONDS = 5.0  # how long a revoked or changed credential may still be honoured


class Authenticator:
    """Who is calling: the account behind `authorization: Bearer <token>`, or None."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: TTLCache[str, Account] = TTLCache(maxsize=10_000, ttl=TOKEN_CACHE_SECONDS)
        self._lock = threading.Lock()

    def caller(self, context: grpc.ServicerContext) -> Account | None:
        """Raises AuthenticationFailed for a malformed or unknown token."""
        return self.account(bearer_token(context))

    def account(self, token: str | None) -> Account | None:
        """The account of `token` (None for None). Raises AuthenticationFailed."""
        if token is None:
            return None
        with self._lock:
            account = self._cache.get(token)
        if account is None:
            account = accounts.authenticate(self._store, token)
            with self._lock:
                self._cache[token] = account
        return account


def bearer_token(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            text = value if isinstance(value, str) else value.decode()
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationFailed("authorization metadata must be 'Bearer <token>'")
            return token.strip()
    return None
