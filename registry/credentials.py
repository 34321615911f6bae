"""Credentials with a life: issue, rotate with a grace period, revoke, expire, last use.

A token is never stored (registry.authentication says how one is checked). Each is
described in its account (`Account.credentials`): id, created, expires, revoked, last
used. Every change is an ACCOUNT_PUT in the change log, carrying the account without
any secret, so that it syncs upstream and is audited.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from proto import handle_pb2
from registry import accounts
from registry.authentication import (
    SCRYPT,
    SHA256,
    chosen,
    credential_id,
    usable_credential,
)
from registry.errors import (
    AuthenticationRequired,
    InvalidRequest,
    PermissionDenied,
    PrefixNotFound,
)
from registry.store import Store, WriteBatch

Account = handle_pb2.Account
Credential = handle_pb2.Credential

MAX_DURATION_SECONDS = 100 * 366 * 86400
LAST_USED_RESOLUTION_SECONDS = 60


def public(account: Account) -> Account:
    """`account` without any secret: what the change log, WhoAmI and listings show."""
    shown = Account()
    shown.CopyFrom(account)
    for credential in shown.credentials:
        for secret in ("salt", "scrypt_key", "scrypt_n", "scrypt_r", "scrypt_p"):
            credential.ClearField(secret)
    return shown


def check_duration(seconds: int, what: str) -> int:
    """Raise InvalidRequest for a negative or absurd duration."""
    if not 0 <= seconds <= MAX_DURATION_SECONDS:
        raise InvalidRequest(f"{what} must be from 0 to {MAX_DURATION_SECONDS} seconds")
    return seconds


# Issuing ------------------------------------------------------------------------------


def ensure_admin(store: Store, token: str | None) -> str | None:
    """Create the administrator on first start, or give it the chosen token.

    A chosen token (IDNODE_ADMIN_TOKEN) is kept with scrypt, unless it has the form of a
    generated one (`idn_…`: a restored token), kept like those. Without one, a token is
    made and returned (to be shown once); None otherwise. A store whose administrator
    token was chosen before it was kept with scrypt has it moved to scrypt now.
    Raises InvalidRequest for a chosen token shorter than MIN_TOKEN_CHARS.
    """
    if token is not None and len(token) < accounts.MIN_TOKEN_CHARS:
        raise InvalidRequest(
            f"IDNODE_ADMIN_TOKEN must be at least {accounts.MIN_TOKEN_CHARS} characters long"
        )
    now = int(time.time())

    def work(batch: WriteBatch) -> str | None:
        account = batch.get_account(accounts.ADMIN_NAME)
        if account is not None:
            if token is not None and not token.startswith("idn_"):
                _move_to_scrypt(batch, account, token, now)
            return None
        account = Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN, created=now)
        made = None
        if token is None:
            made = grant(batch, account, now, 0, "created")
        elif token.startswith("idn_"):
            digest = accounts.token_hash(token)
            batch.put_token(digest, account.name)
            account.credentials.append(
                Credential(id=credential_id(digest), created=now, scheme=SHA256, note="chosen")
            )
        else:
            account.credentials.append(chosen(token, now, "chosen"))
        store_account(batch, account)
        return made

    result: str | None = store.write(work)
    return result


def _move_to_scrypt(batch: WriteBatch, admin: Account, token: str, now: int) -> None:
    """The chosen token, stored with SHA-256 by an earlier version: keep it with scrypt."""
    digest = accounts.token_hash(token)
    if batch.txn.get(digest, db=batch.store.tokens) is None:
        return  # not stored that way (already moved, or the token was rotated away)
    batch.delete_token(digest)
    kept = [c for c in admin.credentials if c.id != credential_id(digest)]
    del admin.credentials[:]
    admin.credentials.extend(kept)
    admin.credentials.append(chosen(token, now, "chosen"))
    store_account(batch, admin)


def grant(batch: WriteBatch, account: Account, now: int, expires_in: int, note: str) -> str:
    """Make a new generated token for `account` (changed in place, not yet stored)."""
    token = accounts.new_token()
    digest = accounts.token_hash(token)
    batch.put_token(digest, account.name)
    account.credentials.append(
        Credential(
            id=credential_id(digest),
            created=now,
            expires=now + expires_in if expires_in else 0,
            scheme=SHA256,
            note=note,
        )
    )
    return token


def store_account(batch: WriteBatch, account: Account) -> int:
    """Store `account` and log the change (without secrets); returns its sequence."""
    batch.put_account(account)
    return batch.log_account(public(account))


# Rotating, revoking --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rotated:
    account: str
    token: str
    credential: Credential
    old_valid_until: int


def rotate(
    store: Store,
    caller: Account | None,
    name: str,
    grace_seconds: int,
    expires_in: int,
    now: int | None = None,
) -> Rotated:
    """Issue a new token for account `name` (default: the caller's); its other tokens stay
    valid `grace_seconds` more (0: end now), never longer than they would have.

    Raises AuthenticationRequired, PermissionDenied (another's account, unless admin),
    PrefixNotFound for an unknown account, InvalidRequest for a bad duration.
    """
    check_duration(grace_seconds, "the grace period")
    check_duration(expires_in, "the expiry")
    at = int(time.time()) if now is None else now
    target = _target(caller, name, "rotate")

    def work(batch: WriteBatch) -> Rotated:
        account = _load(batch, target)
        until = at + grace_seconds
        for credential in account.credentials:
            if usable_credential(credential, at) and (
                not credential.expires or credential.expires > until
            ):
                credential.expires = until
        for credential in account.credentials:
            if credential.expires and credential.expires <= at and not credential.revoked:
                _retire(batch, credential, at)  # no grace: the old tokens end now
        _prune(batch, account, at)
        token = grant(batch, account, at, expires_in, "rotated")
        store_account(batch, account)
        return Rotated(account.name, token, account.credentials[-1], until)

    return store.write(work)


def revoke(
    store: Store, caller: Account | None, name: str, wanted_id: str, now: int | None = None
) -> list[str]:
    """Revoke one token of account `name` (default: the caller's), or all with `wanted_id`
    empty; returns the ids revoked.

    Raises AuthenticationRequired, PermissionDenied (another's account unless admin; the
    administrator's last usable token), PrefixNotFound for an unknown account or token id.
    """
    at = int(time.time()) if now is None else now
    target = _target(caller, name, "revoke")

    def work(batch: WriteBatch) -> list[str]:
        account = _load(batch, target)
        chosen_ones = [
            c for c in account.credentials if usable_credential(c, at) and wanted_id in ("", c.id)
        ]
        if wanted_id and not chosen_ones:
            raise PrefixNotFound(f"account {target} has no usable token {wanted_id!r}")
        left = [c for c in account.credentials if usable_credential(c, at) and c not in chosen_ones]
        if account.role == accounts.ADMIN and not left:
            raise PermissionDenied(
                "the administrator's last token cannot be revoked: rotate it instead"
            )
        for credential in chosen_ones:
            _retire(batch, credential, at)
        _prune(batch, account, at)
        store_account(batch, account)
        return [c.id for c in chosen_ones]

    return store.write(work)


def _target(caller: Account | None, name: str, what: str) -> str:
    if caller is None:
        raise AuthenticationRequired(f"to {what} a token, send a bearer token")
    target = name or caller.name
    if target != caller.name:
        accounts.require_admin(caller, f"{what} another account's tokens")
    return target


def _load(batch: WriteBatch, name: str) -> Account:
    """The account, with a credential for each token made before credentials had a life."""
    account = batch.get_account(name)
    if account is None:
        raise PrefixNotFound(f"no account {name!r}")
    known = {c.id for c in account.credentials}
    for digest in batch.tokens_of(name):
        if credential_id(digest) not in known:
            account.credentials.append(
                Credential(id=credential_id(digest), created=account.created, scheme=SHA256)
            )
    return account


def _retire(batch: WriteBatch, credential: Credential, now: int) -> None:
    """End a token now: mark it revoked; a generated one leaves the `tokens` index."""
    credential.revoked = now
    if credential.scheme != SCRYPT:
        for digest in _digests_with_id(batch, credential.id):
            batch.delete_token(digest)


def _digests_with_id(batch: WriteBatch, wanted: str) -> list[bytes]:
    """The `tokens` keys a generated token's id names (its id is the start of its key)."""
    try:
        prefix = bytes.fromhex(wanted)
    except ValueError:
        return []
    with batch.txn.cursor(db=batch.store.tokens) as cursor:
        if not cursor.set_range(prefix):
            return []
        found = []
        for key in cursor.iternext(keys=True, values=False):
            if not bytes(key).startswith(prefix):
                break
            found.append(bytes(key))
        return found


KEEP_ENDED_SECONDS = 30 * 86400


def _prune(batch: WriteBatch, account: Account, now: int) -> None:
    """Forget tokens that ended over a month ago (the audit log keeps their story)."""
    kept = [
        c
        for c in account.credentials
        if usable_credential(c, now) or max(c.revoked, c.expires) > now - KEEP_ENDED_SECONDS
    ]
    for credential in account.credentials:
        if credential not in kept and credential.scheme != SCRYPT:
            for digest in _digests_with_id(batch, credential.id):
                batch.delete_token(digest)
    del account.credentials[:]
    account.credentials.extend(kept)


# Last use --------------------------------------------------------------------------------


def record_use(store: Store, used: Mapping[tuple[str, str], int]) -> int:
    """Note when tokens were last used ((account, credential id) -> seconds since the
    epoch), in one write and only where the stored time is a minute older; not a change
    worth logging. Returns how many credentials were updated."""
    if not used:
        return 0
    by_account: dict[str, dict[str, int]] = {}
    for (name, cid), at in used.items():
        by_account.setdefault(name, {})[cid] = at

    def work(batch: WriteBatch) -> int:
        changed = 0
        for name, times in by_account.items():
            account = batch.get_account(name)
            if account is None:
                continue
            known = {c.id: c for c in account.credentials}
            before = changed
            for cid, at in times.items():
                credential = known.get(cid)
                if credential is None:  # a token made before credentials had a life
                    credential = known[cid] = Credential(
                        id=cid, created=account.created, scheme=SHA256
                    )
                    account.credentials.append(credential)
                    credential = account.credentials[-1]
                if at - credential.last_used >= LAST_USED_RESOLUTION_SECONDS:
                    credential.last_used = at
                    changed += 1
            if changed > before:
                batch.put_account(account)
        return changed

    return store.write(work)


def last_used(account: Account) -> int:
    return max((c.last_used for c in account.credentials), default=0)
