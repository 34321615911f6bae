"""Shared helpers for the DNS tests: a populated node on a real LMDB store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions
from resolver.dns import DnsOptions
from resolver.follow import ChangeFollower

ZONE = "id.example."
NODE_PREFIX = "88.118"
ADMIN_TOKEN = "admin-token-for-dns-tests"


@dataclass
class Node:
    store: Store
    registry: Registry
    admin: handle_pb2.Account
    enterprise: str  # the enterprise prefix, "88.118.8"
    follower: ChangeFollower


def value(index: int, kind: str, data: bytes | str, **extra: object) -> handle_pb2.HandleValue:
    raw = data.encode() if isinstance(data, str) else data
    return handle_pb2.HandleValue(index=index, type=kind, data=raw, **extra)  # type: ignore[arg-type]


def make_node(tmp_path: Path) -> Node:
    store = Store(str(tmp_path / "data"), StoreOptions(map_size_bytes=64 << 20, durable=False))
    registry = Registry(store, NODE_PREFIX)
    registry.ensure_node_prefix()
    accounts.ensure_admin(store, ADMIN_TOKEN)
    admin = accounts.authenticate(store, ADMIN_TOKEN)
    registry.create_enterprise(admin, code="8", name="Jiangxi Dianyuan")
    registry.create(
        admin,
        "88.118.8/JXDY2106023",
        [
            value(1, "URL", "https://example.com/p/JXDY2106023"),
            value(2, "product.name", "变压器 transformer"),
            value(3, "secret", "hidden", public_read=False),
        ],
    )
    registry.create(admin, "88.118.8/abc-1", [value(1, "batch", "B-42", ttl=600)])
    registry.create(admin, "88.118.8/empty", [value(1, "secret", "x", public_read=False)])
    return Node(store, registry, admin, "88.118.8", ChangeFollower(store))


def make_options(**overrides: object) -> DnsOptions:
    fields: dict[str, object] = {"zone": ZONE, "rrl_responses_per_second": 0}
    fields.update(overrides)
    return DnsOptions(**fields)  # type: ignore[arg-type]


def zone_serial(node: Node) -> int:
    """The SOA serial the zone has now (epochs and the change log)."""
    from resolver.dns import serial

    with node.store.read() as txn:
        return serial.serial_at(serial.read(node.store, txn), node.store.last_sequence(txn))
