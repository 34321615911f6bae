"""Credentials with a life: rotation with grace, revocation, expiry, scrypt for a chosen
administrator token, last use recorded coarsely, every change logged without secrets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import accounts, authentication, credentials, enterprises, verify
from registry.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    InvalidRequest,
    PermissionDenied,
    PrefixNotFound,
    TokenExpired,
)
from registry.registry import Registry
from registry.store import SCHEMA_VERSION, Store, StoreOptions, WriteBatch
from tests.registry.conftest import START_TIME

CHOSEN = "a-long-human-chosen-admin-token"
NOW = int(time.time())
DAY = 86400


def account_changes(store: Store) -> list[handle_pb2.ChangeEntry]:
    with store.read() as txn:
        return [
            e for e in store.changes_since(txn, 0)
            if e.operation == handle_pb2.ChangeEntry.ACCOUNT_PUT
        ]  # fmt: skip


def no_secrets(entry: handle_pb2.ChangeEntry) -> bool:
    return not any(c.salt or c.scrypt_key for c in entry.account.credentials)


@pytest.fixture
def admin(store: Store) -> handle_pb2.Account:
    assert credentials.ensure_admin(store, CHOSEN) is None
    return accounts.authenticate(store, CHOSEN)


def test_a_chosen_admin_token_is_kept_with_scrypt_and_never_logged(
    store: Store, admin: handle_pb2.Account
) -> None:
    [credential] = admin.credentials
    assert credential.scheme == "scrypt" and len(credential.salt) == 16
    assert (credential.scrypt_n, credential.scrypt_r, credential.scrypt_p) == (1 << 14, 8, 1)
    with store.read() as txn:
        assert txn.get(accounts.token_hash(CHOSEN), db=store.tokens) is None  # no fast hash
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(store, CHOSEN + "x")
    [entry] = account_changes(store)
    assert entry.account.name == "admin" and no_secrets(entry)
    assert verify.verify(store).ok


def test_an_admin_token_stored_with_sha256_before_moves_to_scrypt(store: Store) -> None:
    def old_style(batch: WriteBatch) -> None:  # what the previous version wrote
        batch.put_account(handle_pb2.Account(name="admin", role=accounts.ADMIN, created=1))
        batch.put_token(accounts.token_hash(CHOSEN), "admin")

    store.write(old_style)
    assert accounts.authenticate(store, CHOSEN).name == "admin"  # a token of no record: valid
    credentials.ensure_admin(store, CHOSEN)
    with store.read() as txn:
        assert txn.get(accounts.token_hash(CHOSEN), db=store.tokens) is None
    admin = accounts.authenticate(store, CHOSEN)
    assert [c.scheme for c in admin.credentials] == ["scrypt"]


def test_rotation_keeps_the_old_token_for_the_grace_period(
    store: Store, registry: Registry, admin: handle_pb2.Account
) -> None:
    made = registry.create_enterprise(admin, code="8")
    rotated = credentials.rotate(
        store, None if False else accounts.authenticate(store, made.token), "", DAY, 0, NOW
    )
    assert rotated.account == "88.118.8" and rotated.old_valid_until == NOW + DAY
    assert authentication.authenticate(store, made.token, NOW + DAY - 1).account.name == "88.118.8"
    with pytest.raises(TokenExpired, match="expired"):
        authentication.authenticate(store, made.token, NOW + DAY)
    assert (
        authentication.authenticate(store, rotated.token, NOW + 10 * DAY).credential_id
        == rotated.credential.id
    )
    # No grace: the old token ends at once and leaves the index.
    again = credentials.rotate(store, admin, "88.118.8", 0, 0, NOW + 1)
    for old in (made.token, rotated.token):
        with pytest.raises(AuthenticationFailed):
            authentication.authenticate(store, old, NOW + 2)
    assert authentication.authenticate(store, again.token, NOW + 2).account.name == "88.118.8"
    entries = account_changes(store)
    assert [e.identifier for e in entries] == ["admin", "88.118.8", "88.118.8", "88.118.8"]
    assert all(no_secrets(e) for e in entries)
    assert verify.verify(store).ok


def test_expiry_at_creation(store: Store, registry: Registry, admin: handle_pb2.Account) -> None:
    made = registry.create_enterprise(admin, code="9", expires_in_seconds=3600)
    created = authentication.authenticate(
        store, made.token, int(START_TIME)
    )  # the registry's clock
    assert created.expires == int(START_TIME) + 3600
    with pytest.raises(TokenExpired, match="expired"):
        authentication.authenticate(store, made.token, created.expires)
    with pytest.raises(InvalidRequest):
        registry.create_enterprise(admin, code="10", expires_in_seconds=-1)


def test_revocation_and_who_may_do_it(
    store: Store, registry: Registry, admin: handle_pb2.Account
) -> None:
    first = registry.create_enterprise(admin, code="8")
    second = registry.create_enterprise(admin, code="9")
    holder = accounts.authenticate(store, first.token)
    with pytest.raises(PermissionDenied):
        credentials.revoke(store, holder, "88.118.9", "", NOW)
    with pytest.raises(PermissionDenied):
        credentials.rotate(store, holder, "88.118.9", 0, 0, NOW)
    with pytest.raises(AuthenticationRequired):
        credentials.revoke(store, None, "88.118.9", "", NOW)
    with pytest.raises(PrefixNotFound):
        credentials.revoke(store, admin, "88.118.9", "0000000000000000", NOW)
    other = accounts.authenticate(store, second.token)
    [revoked] = credentials.revoke(store, admin, "88.118.9", other.credentials[0].id, NOW)
    assert revoked == other.credentials[0].id
    with pytest.raises(AuthenticationFailed):
        authentication.authenticate(store, second.token, NOW)
    assert credentials.revoke(store, holder, "", "", NOW) == [holder.credentials[0].id]  # its own
    with pytest.raises(AuthenticationFailed):
        authentication.authenticate(store, first.token, NOW)
    with pytest.raises(PermissionDenied, match="last token"):
        credentials.revoke(store, admin, "", "", NOW)


def test_tokens_made_before_credentials_had_a_life_rotate_and_revoke(
    store: Store, registry: Registry, admin: handle_pb2.Account
) -> None:
    legacy = accounts.new_token()

    def old_style(batch: WriteBatch) -> None:
        batch.put_account(
            handle_pb2.Account(
                name="88.118.7", role=accounts.ENTERPRISE, prefixes=["88.118.7"], created=5
            )
        )
        batch.put_token(accounts.token_hash(legacy), "88.118.7")

    store.write(old_style)
    found = authentication.authenticate(store, legacy, NOW)
    assert found.account.name == "88.118.7" and found.expires == 0
    rotated = credentials.rotate(store, admin, "88.118.7", 3600, 0, NOW)
    assert authentication.authenticate(store, legacy, NOW + 3599).account.name == "88.118.7"
    with pytest.raises(TokenExpired, match="expired"):
        authentication.authenticate(store, legacy, NOW + 3600)
    assert authentication.authenticate(store, rotated.token, NOW + 3600).account.name == "88.118.7"


def test_last_use_is_recorded_to_the_minute_without_a_log_entry(
    store: Store, registry: Registry, admin: handle_pb2.Account
) -> None:
    made = registry.create_enterprise(admin, code="8")
    found = authentication.authenticate(store, made.token, NOW)
    with store.read() as txn:
        sequence = store.last_sequence(txn)
    assert credentials.record_use(store, {("88.118.8", found.credential_id): NOW}) == 1
    assert credentials.record_use(store, {("88.118.8", found.credential_id): NOW + 30}) == 0
    assert credentials.record_use(store, {("88.118.8", found.credential_id): NOW + 60}) == 1
    with store.read() as txn:
        assert store.last_sequence(txn) == sequence  # not a change worth syncing
    page, _ = enterprises.list_accounts(store, admin)
    listed = {s.account.name: s for s in page}
    assert listed["88.118.8"].last_used == NOW + 60
    assert listed["88.118.8"].prefixes == ["88.118.8"]
    assert all(not c.salt and not c.scrypt_key for s in page for c in s.account.credentials)
    with pytest.raises(PermissionDenied):
        enterprises.list_accounts(store, accounts.authenticate(store, made.token))


def test_account_listing_pages(store: Store, registry: Registry, admin: handle_pb2.Account) -> None:
    for code in range(1, 6):
        registry.create_enterprise(admin, code=str(code))
    names: list[str] = []
    token = ""
    while True:
        page, token = enterprises.list_accounts(store, admin, 2, token)
        names += [s.account.name for s in page]
        if not token:
            break
    assert names == ["88.118.1", "88.118.2", "88.118.3", "88.118.4", "88.118.5", "admin"]


def test_a_schema_2_store_is_upgraded_and_its_tokens_still_work(tmp_path: Path) -> None:
    """A store as the previous version left it: schema 2, tokens under SHA-256 only."""
    token = accounts.new_token()
    store = Store(str(tmp_path / "old"), StoreOptions(durable=False))

    def as_version_2(batch: WriteBatch) -> None:
        batch.put_meta("schema", b"2")
        batch.put_account(handle_pb2.Account(name="admin", role=accounts.ADMIN, created=1))
        batch.put_token(accounts.token_hash(token), "admin")

    store.write(as_version_2)
    store.close()
    store = Store(str(tmp_path / "old"), StoreOptions(durable=False))
    try:
        with store.read() as txn:
            assert store.get_meta(txn, "schema") == SCHEMA_VERSION == b"4"  # 2 -> 3 -> 4
        assert authentication.authenticate(store, token, NOW).account.name == "admin"
        rotated = credentials.rotate(store, accounts.authenticate(store, token), "", 0, 0, NOW)
        with pytest.raises(AuthenticationFailed):
            authentication.authenticate(store, token, NOW)
        assert authentication.authenticate(store, rotated.token, NOW).account.name == "admin"
        assert verify.verify(store).ok
    finally:
        store.close()
