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
from tests.sync.nodes import ADMIN_TOKEN, Proc


@dataclass
class Secondary:
    store: Store
    registry: Registry
    admin: handle_pb2.Account

    def register(self, identifier: str, url: str) -> int:
        value = handle_pb2.HandleValue(index=1, type="URL", data=url.encode())
        records = [handle_pb2.Record(identifier=identifier, values=[value])]
        return self.registry.batch_register(self.admin, records).sequence

    def register_large(self, identifiers: list[str]) -> int:
        """Records of ~975 KB each: legal, near the 1 MiB limit of a record."""
        records = [large_record(identifier) for identifier in identifiers]
        return self.registry.batch_register(self.admin, records).sequence

    def held(self) -> dict[str, bytes]:
        with self.store.read() as txn:
            return {k: r.SerializeToString() for k, r in self.store.iter_records(txn)}


def large_record(identifier: str, values: int = 15, value_bytes: int = 65_000) -> handle_pb2.Record:
    """A legal record of `values` × `value_bytes` (15 × 65,000 = 975 KB by default)."""
    record = handle_pb2.Record(identifier=identifier)
    for index in range(1, values + 1):
        record.values.add(index=index, type="blob", data=bytes([index % 256]) * value_bytes)
    return record


def open_secondary(data_dir: Path) -> Secondary:
    """A secondary node's store and registry in-process (close its store when done)."""
    store = Store(str(data_dir), StoreOptions(map_size_bytes=64 << 20, durable=False))
    registry = Registry(store, "88.118")
    registry.ensure_node_prefix()
    accounts.ensure_admin(store, ADMIN_TOKEN)
    return Secondary(store, registry, accounts.authenticate(store, ADMIN_TOKEN))


@pytest.fixture
def secondary(tmp_path: Path) -> Iterator[Secondary]:
    opened = open_secondary(tmp_path / "node")
    try:
        yield opened
    finally:
        opened.store.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every process a test starts, stopped at the end whatever happened."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        if proc.process.poll() is None:
            proc.stop()


@pytest.fixture
def toplevel(tmp_path: Path) -> Iterator[tuple[TopLevelNode, str]]:
    node = TopLevelNode(str(tmp_path / "toplevel"), ADMIN_TOKEN, map_size_bytes=64 << 20)
    address = node.start(["127.0.0.1:0"])[0]
    try:
        yield node, address
    finally:
        node.stop(0)
