"""Credentials: tokens stored hashed, the administrator, and who may write where."""

from __future__ import annotations

import hashlib
import secrets

from proto import handle_pb2
from registry.errors import AuthenticationRequired, PermissionDenied
from registry.store import Store

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
    """Create the administrator on first start (registry.credentials.ensure_admin)."""
    from registry import credentials  # it builds on this module's primitives

    return credentials.ensure_admin(store, token)


def authenticate(store: Store, token: str) -> Account:
    """The account a token belongs to. Raises AuthenticationFailed for an unknown, expired
    or revoked token (registry.authentication.authenticate)."""
    from registry import authentication

    return authentication.authenticate(store, token).account


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
