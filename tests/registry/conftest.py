"""Fixtures for the domain and store tests: a real LMDB store in tmp_path and its accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import accounts
from registry.accounts import Account
from registry.registry import Enterprise, Registry
from registry.store import Store, StoreOptions

NODE_PREFIX = "88.118"
START_TIME = 1_700_000_000.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START_TIME) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


@pytest.fixture
def store(data_dir: str) -> Iterator[Store]:
    # Not durable: the tests do not cut the power, and fsync per commit only slows them.
    opened = Store(data_dir, StoreOptions(durable=False))
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(store: Store, clock: FakeClock) -> Registry:
    node = Registry(store, NODE_PREFIX, clock=clock)
    node.ensure_node_prefix()
    return node


@pytest.fixture
def admin_token(store: Store) -> str:
    token = accounts.ensure_admin(store, None)
    assert token is not None
    return token


@pytest.fixture
def admin(store: Store, admin_token: str) -> Account:
    return accounts.authenticate(store, admin_token)


@pytest.fixture
def enterprise_a(registry: Registry, admin: Account) -> Enterprise:
    return registry.create_enterprise(
        admin, code="8", name="Jiangxi Motors", contact="a@example.com"
    )


@pytest.fixture
def enterprise_b(registry: Registry, admin: Account) -> Enterprise:
    return registry.create_enterprise(admin, code="9", name="Other Works", contact="b@example.com")


@pytest.fixture
def account_a(store: Store, enterprise_a: Enterprise) -> Account:
    return accounts.authenticate(store, enterprise_a.token)


@pytest.fixture
def account_b(store: Store, enterprise_b: Enterprise) -> Account:
    return accounts.authenticate(store, enterprise_b.token)
