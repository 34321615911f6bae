"""How a presented token is checked: a generated one by its SHA-256, a chosen one with scrypt.

A generated token (256 random bits) is found by its SHA-256, the key of the `tokens`
database. A human-chosen administrator token (IDNODE_ADMIN_TOKEN) is kept with scrypt,
salted, its parameters recorded, since a fast hash of a guessable secret can be
searched; scrypt runs once per token and process (a right token is remembered, in
memory, by its SHA-256), and wrong tokens may cost at most SCRYPT_CHECKS_PER_SECOND
checks a second per process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from proto import handle_pb2
from registry import accounts
from registry.errors import AuthenticationFailed, TokenExpired
from registry.store import Store

Account = handle_pb2.Account
Credential = handle_pb2.Credential

SHA256, SCRYPT = "sha256", "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1  # 16 MiB and ~50 ms per check here
SCRYPT_KEY_BYTES = 32
SCRYPT_MAX_MEMORY_BYTES = 64 << 20
SCRYPT_CHECKS_PER_SECOND = 5.0  # failed checks per process: wrong tokens buy little CPU
ID_HEX_CHARS = 16


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who presented a token, and which of their tokens it was."""

    account: Account
    credential_id: str  # "" for a token made before credentials had a life
    expires: int  # seconds since the epoch, 0: never


def credential_id(token_hash: bytes) -> str:
    """A generated token's public name: the start of its SHA-256 (not enough to find it)."""
    return token_hash.hex()[:ID_HEX_CHARS]


def chosen(token: str, now: int, note: str) -> Credential:
    """A credential for a human-chosen token, kept with scrypt."""
    salt = secrets.token_bytes(16)
    return Credential(
        id=secrets.token_hex(ID_HEX_CHARS // 2),
        created=now,
        scheme=SCRYPT,
        salt=salt,
        scrypt_n=SCRYPT_N,
        scrypt_r=SCRYPT_R,
        scrypt_p=SCRYPT_P,
        scrypt_key=_scrypt(token, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P),
        note=note,
    )


def usable_credential(credential: Credential, now: int) -> bool:
    return not credential.revoked and (not credential.expires or credential.expires > now)


class _Bucket:
    """At most `rate` failed slow-hash checks a second in this process (burst: one second's
    worth). Only failures are charged: a right token is checked once and remembered."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def allows(self) -> bool:
        with self._lock:
            self._refill()
            return self._tokens >= 1

    def charge(self) -> None:
        with self._lock:
            self._refill()
            self._tokens -= 1


_slow_checks = _Bucket(SCRYPT_CHECKS_PER_SECOND)
# (store, SHA-256 of a chosen token) -> the admin credential scrypt matched, in memory only:
# scrypt runs once per token and process, not once per call.
_verified: dict[tuple[str, bytes], str] = {}
_verified_lock = threading.Lock()


def authenticate(store: Store, token: str, now: int | None = None) -> Authenticated:
    """The account and credential a token belongs to.

    Raises AuthenticationFailed for an unknown or revoked token, TokenExpired for an expired one.
    """
    at = int(time.time()) if now is None else now
    digest = accounts.token_hash(token)
    with store.read() as txn:
        name = txn.get(digest, db=store.tokens)
        account = store.get_account(txn, bytes(name).decode()) if name is not None else None
        if account is not None:
            return _check(account, credential_id(digest), at, legacy_ok=True)
        admin = store.get_account(txn, accounts.ADMIN_NAME)
    if admin is None or token.startswith("idn_"):  # generated tokens are never scrypt'd
        raise AuthenticationFailed("the bearer token is not valid")
    with _verified_lock:
        remembered = _verified.get((store.path, digest))
    if remembered is not None and any(c.id == remembered for c in admin.credentials):
        return _check(admin, remembered, at, legacy_ok=False)  # checked with scrypt before
    return _check_chosen(store.path, admin, token, digest, at)


def _check_chosen(path: str, admin: Account, token: str, digest: bytes, at: int) -> Authenticated:
    candidates = [c for c in admin.credentials if c.scheme == SCRYPT and usable_credential(c, at)]
    if not candidates:
        raise AuthenticationFailed("the bearer token is not valid")
    if not _slow_checks.allows():
        raise AuthenticationFailed("too many attempts with tokens not issued here; retry")
    for credential in candidates:
        key = _scrypt(
            token, credential.salt, credential.scrypt_n, credential.scrypt_r, credential.scrypt_p
        )
        if hmac.compare_digest(key, credential.scrypt_key):
            with _verified_lock:
                _verified[path, digest] = credential.id
            return Authenticated(admin, credential.id, credential.expires)
    _slow_checks.charge()
    raise AuthenticationFailed("the bearer token is not valid")


def _check(account: Account, wanted_id: str, now: int, legacy_ok: bool) -> Authenticated:
    for credential in account.credentials:
        if credential.id != wanted_id:
            continue
        if credential.revoked:
            raise AuthenticationFailed("the bearer token was revoked")
        if credential.expires and credential.expires <= now:
            raise TokenExpired("the bearer token has expired")
        return Authenticated(account, credential.id, credential.expires)
    if legacy_ok:  # a token made before credentials had a life: valid, never expiring
        return Authenticated(account, wanted_id, 0)
    raise AuthenticationFailed("the bearer token is not valid")


def _scrypt(token: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        token.encode(), salt=salt, n=n, r=r, p=p,
        maxmem=SCRYPT_MAX_MEMORY_BYTES, dklen=SCRYPT_KEY_BYTES,
    )  # fmt: skip
