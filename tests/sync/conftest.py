"""In-process pieces for the sync tests: a secondary node's store and a top-level node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions
from sync.toplevel.server import TopLevelNode
from tests.sync.nodes import ADMIN_TOKEN


@dataclass
class Secondary:
    store: Store
    registry: Registry
    admin: handle_pb2.Account

    def register(self, identifier: str, url: str) -> int:
        value = handle_pb2.HandleValue(index=1, type="URL", data=url.encode())
        records = [handle_pb2.Record(identifier=identifier, values=[value])]
        return self.registry.batch_register(self.admin, records).sequence


@pytest.fixture
def secondary(tmp_path: Path) -> Iterator[Secondary]:
    store = Store(str(tmp_path / "node"), StoreOptions(map_size_bytes=64 << 20, durable=False))
    registry = Registry(store, "88.118")
    registry.ensure_node_prefix()
    accounts.ensure_admin(store, ADMIN_TOKEN)
    try:
        yield Secondary(store, registry, accounts.authenticate(store, ADMIN_TOKEN))
    finally:
        store.close()


@pytest.fixture
def toplevel(tmp_path: Path) -> Iterator[tuple[TopLevelNode, str]]:
    node = TopLevelNode(str(tmp_path / "toplevel"), ADMIN_TOKEN, map_size_bytes=64 << 20)
    address = node.start(["127.0.0.1:0"])[0]
    try:
        yield node, address
    finally:
        node.stop(0)
