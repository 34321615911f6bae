"""Credentials: tokens stored hashed, the administrator, and who may write where."""

from __future__ import annotations

import hashlib
import secrets
import time

from proto import handle_pb2
from registry.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    InvalidRequest,
    PermissionDenied,
)
from registry.store import Store, WriteBatch

Account = handle_pb2.Account
ADMIN = handle_pb2.Account.Role.ADMIN
ENTERPRISE = handle_pb2.Account.Role.ENTERPRISE
ADMIN_NAME = "admin"
MIN_TOKEN_CHARS = 16


def new_token() -> str:
    """A fresh credential: 256 random bits, URL-safe."""
    return "idn_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """Tokens are random and long, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).digest()


def ensure_admin(store: Store, token: str | None) -> str | None:
    """Create the administrator on first start.

    Uses `token` when given (IDNODE_ADMIN_TOKEN), else makes one. Returns the
    token when it was created by this call and must be shown once, else None.
    """
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise InvalidRequest(
            f"IDNODE_ADMIN_TOKEN must be at least {MIN_TOKEN_CHARS} characters long"
        )

    def work(batch: WriteBatch) -> str | None:
        if batch.get_account(ADMIN_NAME) is not None:
            return None
        chosen = token or new_token()
        batch.put_account(Account(name=ADMIN_NAME, role=ADMIN, created=int(time.time())))
        batch.put_token(token_hash(chosen), ADMIN_NAME)
        return chosen if token is None else None

    return store.write(work)


def authenticate(store: Store, token: str) -> Account:
    """The account a token belongs to. Raises AuthenticationFailed."""
    digest = token_hash(token)
    with store.read() as txn:
        name = txn.get(digest, db=store.tokens)
        raw = txn.get(bytes(name), db=store.accounts) if name is not None else None
    if raw is None:
        raise AuthenticationFailed("the bearer token is not valid")
    return Account.FromString(bytes(raw))


def may_write(account: Account | None, owner: str) -> bool:
    """True when `account` may change records of a prefix owned by `owner`, or read its
    values that are not publicly readable: the owner and the administrator."""
    if account is None:
        return False
    return account.role == ADMIN or account.name == owner


def require_admin(account: Account | None, what: str) -> None:
    """Raise AuthenticationRequired for no caller, PermissionDenied for one not the admin."""
    if account is None:
        raise AuthenticationRequired(f"only the node administrator may {what}: no bearer token")
    if account.role != ADMIN:
        raise PermissionDenied(f"only the node administrator may {what}")
