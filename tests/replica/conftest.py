"""A primary's store with its registry and admin, and an empty replica store, in tmp dirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions

ADMIN_TOKEN = "admin-token-for-replica-tests"


def _open(path: Path) -> Store:
    return Store(str(path), StoreOptions(durable=False))


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[tuple[Store, Registry, handle_pb2.Account]]:
    store = _open(tmp_path / "primary")
    registry = Registry(store, "88.118")
    registry.ensure_node_prefix()
    accounts.ensure_admin(store, ADMIN_TOKEN)
    admin = accounts.authenticate(store, ADMIN_TOKEN)
    yield store, registry, admin
    store.close()


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Store]:
    store = _open(tmp_path / "replica")
    yield store
    store.close()
