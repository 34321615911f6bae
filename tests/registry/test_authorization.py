"""Who may do what: tokens, the administrator, enterprises confined to their own prefixes."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from proto import handle_pb2
from registry import accounts, values
from registry.accounts import Account
from registry.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    InvalidRequest,
    PermissionDenied,
)
from registry.identifier import parse
from registry.registry import Enterprise, Registry
from registry.store import Store

HandleValue = handle_pb2.HandleValue
Record = handle_pb2.Record
THEIRS = "88.118.8/JXDY2106023"

# Every write an enterprise might try on a record of another enterprise.
WRITES: list[Any] = [
    lambda r, c, i: r.create(c, i.replace("JXDY", "NEW-"), [HandleValue(index=1, type="URL")]),
    lambda r, c, i: r.add_values(c, i, [HandleValue(index=9, type="URL")]),
    lambda r, c, i: r.modify_values(c, i, [HandleValue(index=1, type="URL", data=b"x")]),
    lambda r, c, i: r.remove_values(c, i, [1]),
    lambda r, c, i: r.delete(c, i),
    lambda r, c, i: r.put_prefix(c, parse(i).prefix, [handle_pb2.Site(grpc_address="h:1")]),
]
WRITE_IDS = ["create", "add", "modify", "remove", "delete", "put-prefix"]


@pytest.fixture
def theirs(registry: Registry, account_a: Account) -> str:
    registry.create(account_a, THEIRS, [HandleValue(index=1, type="URL", data=b"https://a")])
    registry.create(account_a, "88.118.8.1/derived", [HandleValue(index=1, type="URL")])
    return THEIRS


def last_sequence(store: Store) -> int:
    with store.read() as txn:
        return store.last_sequence(txn)


@pytest.mark.parametrize("identifier", [THEIRS, "88.118.8.1/derived"])
@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_enterprise_may_not_write_under_another_enterprise_prefix(
    registry: Registry,
    store: Store,
    account_b: Account,
    theirs: str,
    write: Any,
    identifier: str,
) -> None:
    before = last_sequence(store)

    with pytest.raises(PermissionDenied) as caught:
        write(registry, account_b, identifier)

    prefix = parse(identifier).prefix
    assert f"may not write under prefix {prefix}" in str(caught.value)
    assert "88.118.9" in str(caught.value)  # and names who tried
    assert last_sequence(store) == before


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_enterprise_may_not_write_at_node_level(
    registry: Registry, account_b: Account, write: Any
) -> None:
    with pytest.raises(PermissionDenied, match=re.escape("prefix 88.118")):
        write(registry, account_b, "88.118/JXDY-node-level")


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_anonymous_write_needs_authentication(
    registry: Registry, store: Store, theirs: str, write: Any
) -> None:
    before = last_sequence(store)

    with pytest.raises(AuthenticationRequired):
        write(registry, None, theirs)

    assert last_sequence(store) == before


@pytest.mark.parametrize("who", ["owner", "admin"])
@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
def test_owner_and_administrator_may_write(
    registry: Registry,
    store: Store,
    account_a: Account,
    admin: Account,
    theirs: str,
    write: Any,
    who: str,
) -> None:
    before = last_sequence(store)

    write(registry, account_a if who == "owner" else admin, theirs)

    assert last_sequence(store) == before + 1


def test_batch_under_another_prefix_is_rejected_item_by_item_naming_the_prefix(
    registry: Registry, store: Store, account_b: Account, theirs: str
) -> None:
    before = last_sequence(store)

    result = registry.batch_register(
        account_b,
        [
            Record(identifier=THEIRS, values=[HandleValue(index=1, type="URL", data=b"hijack")]),
            Record(identifier="88.118.9/own", values=[HandleValue(index=1, type="URL")]),
        ],
    )

    assert result.outcomes == ["rejected", "created"]
    assert "may not write under prefix 88.118.8" in result.errors[0]
    assert last_sequence(store) == before + 1
    assert registry.resolve(parse(THEIRS)).values[0].data == b"https://a"


@pytest.mark.parametrize("token", ["", "idn_not-a-real-token", "x" * 64])
def test_unknown_token_fails_authentication(store: Store, admin: Account, token: str) -> None:
    with pytest.raises(AuthenticationFailed, match="bearer token is not valid"):
        accounts.authenticate(store, token)


def test_enterprise_token_authenticates_as_that_enterprise(
    store: Store, enterprise_a: Enterprise, enterprise_b: Enterprise
) -> None:
    a = accounts.authenticate(store, enterprise_a.token)
    b = accounts.authenticate(store, enterprise_b.token)

    assert (a.name, a.role, list(a.prefixes)) == ("88.118.8", accounts.ENTERPRISE, ["88.118.8"])
    assert (b.name, list(b.prefixes)) == ("88.118.9", ["88.118.9"])


# Reading restricted values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "prefix", "allowed"),
    [
        ("anonymous", "88.118.8", False),
        ("admin", "88.118.8", True),
        ("admin", "88.118", True),
        ("a", "88.118.8", True),
        ("a", "88.118.8.1", True),
        ("a", "88.118.80", False),
        ("a", "88.118", False),
        ("b", "88.118.8", False),
        ("b", "88.118.8.1", False),
    ],
)
def test_may_read_restricted_for_owner_admin_and_others(
    registry: Registry,
    admin: Account,
    account_a: Account,
    account_b: Account,
    who: str,
    prefix: str,
    allowed: bool,
) -> None:
    caller = {"anonymous": None, "admin": admin, "a": account_a, "b": account_b}[who]

    assert registry.may_read_restricted(caller, prefix) is allowed


@pytest.mark.parametrize(
    ("who", "owner", "allowed"),
    [
        ("anonymous", "88.118.8", False),
        ("admin", "88.118.8", True),
        ("admin", accounts.ADMIN_NAME, True),
        ("a", "88.118.8", True),
        ("a", "88.118.9", False),
        ("a", accounts.ADMIN_NAME, False),
    ],
)
def test_may_write_for_owner_and_admin_only(
    admin: Account, account_a: Account, who: str, owner: str, allowed: bool
) -> None:
    caller = {"anonymous": None, "admin": admin, "a": account_a}[who]

    assert accounts.may_write(caller, owner) is allowed


@pytest.mark.parametrize(
    ("who", "visible"),
    [("anonymous", [1]), ("b", [1]), ("a", [1, 2]), ("admin", [1, 2])],
)
def test_restricted_values_are_seen_only_by_owner_and_admin(
    registry: Registry,
    admin: Account,
    account_a: Account,
    account_b: Account,
    who: str,
    visible: list[int],
) -> None:
    registry.create(
        account_a,
        THEIRS,
        [
            HandleValue(index=1, type="URL", data=b"https://public"),
            HandleValue(index=2, type="EMAIL", data=b"qa@a", public_read=False),
        ],
    )
    caller = {"anonymous": None, "admin": admin, "a": account_a, "b": account_b}[who]
    identifier = parse(THEIRS)

    record = registry.resolve(identifier)
    include = registry.may_read_restricted(caller, identifier.prefix)
    shown = values.select(record.values, include_restricted=include)

    assert [v.index for v in shown] == visible


# The administrator ------------------------------------------------------------------------


def test_generated_admin_token_is_returned_once_and_keeps_working(store: Store) -> None:
    token = accounts.ensure_admin(store, None)

    assert token is not None and token.startswith("idn_")
    assert accounts.ensure_admin(store, None) is None
    assert accounts.ensure_admin(store, "another-token-long-enough") is None
    account = accounts.authenticate(store, token)
    assert (account.name, account.role) == (accounts.ADMIN_NAME, accounts.ADMIN)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate(store, "another-token-long-enough")


def test_given_admin_token_is_used_and_not_shown(store: Store) -> None:
    given = "from-IDNODE_ADMIN_TOKEN-0123456789"

    assert accounts.ensure_admin(store, given) is None

    assert accounts.authenticate(store, given).role == accounts.ADMIN
    assert accounts.ensure_admin(store, None) is None  # no second administrator is made


@pytest.mark.parametrize("short", ["", "too-short-15chr"])
def test_given_admin_token_must_be_long_enough(store: Store, short: str) -> None:
    with pytest.raises(InvalidRequest, match="at least 16"):
        accounts.ensure_admin(store, short)

    assert accounts.ensure_admin(store, None) is not None  # nothing was created before


def test_admin_survives_reopening_the_store(data_dir: str) -> None:
    first = Store(data_dir)
    token = accounts.ensure_admin(first, None)
    first.close()

    again = Store(data_dir)
    try:
        assert token is not None
        assert accounts.ensure_admin(again, None) is None
        assert accounts.authenticate(again, token).role == accounts.ADMIN
    finally:
        again.close()


def test_tokens_are_stored_only_hashed(data_dir: str) -> None:
    store = Store(data_dir)
    admin_token = accounts.ensure_admin(store, None)
    assert admin_token is not None
    node = Registry(store, "88.118")
    node.ensure_node_prefix()
    enterprise = node.create_enterprise(accounts.authenticate(store, admin_token), code="8")
    store.close()

    with open(os.path.join(data_dir, "data.mdb"), "rb") as file:
        raw = file.read()

    for token in (admin_token, enterprise.token):
        assert token.encode() not in raw
        assert token[4:].encode() not in raw
        assert accounts.token_hash(token) in raw


def test_new_tokens_are_long_and_distinct() -> None:
    tokens = {accounts.new_token() for _ in range(100)}

    assert len(tokens) == 100
    assert all(len(t) >= 40 and t.startswith("idn_") for t in tokens)


def test_enterprise_may_not_read_restricted_values_of_a_sub_enterprise(
    registry: Registry, admin: Account, account_a: Account
) -> None:
    sub = registry.create_enterprise(admin, parent="88.118.8")

    with pytest.raises(PermissionDenied):
        registry.create(account_a, f"{sub.prefix}/x", [HandleValue(index=1, type="URL")])
    assert registry.may_read_restricted(account_a, sub.prefix) is False
