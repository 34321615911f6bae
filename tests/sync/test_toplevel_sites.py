"""The top-level node stores a node's sites only when registry.sites accepts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from proto import handle_pb2
from registry.errors import IdnodeError, InvalidValue, TooLarge
from registry.store import Store, StoreOptions
from sync.toplevel.mirror import Mirror

Site = handle_pb2.Site
GOOD = [Site(grpc_address="127.0.0.1:8600")]


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    store = Store(str(tmp_path / "mirror"), StoreOptions(map_size_bytes=64 << 20, durable=False))
    made = Mirror(store)
    made.add_node("88.118", GOOD)
    return made


@pytest.mark.parametrize(
    ("sites", "error"),
    [
        ([Site(grpc_address="unix:/run/idnode.sock")], InvalidValue),
        ([Site(grpc_address="169.254.169.254:80")], InvalidValue),
        ([Site(grpc_address=f"10.0.0.{n}:1") for n in range(17)], TooLarge),
    ],
    ids=["unix", "link-local", "17-sites"],
)
def test_add_node_and_hello_refuse_bad_sites_and_keep_the_old_ones(
    mirror: Mirror, sites: list[Site], error: type[IdnodeError]
) -> None:
    with pytest.raises(error):
        mirror.add_node("88.118", sites)
    with pytest.raises(error):
        mirror.hello("88.118", "log-1", sites)
    with pytest.raises(error):
        mirror.add_node("88.119", sites)

    assert list(mirror.node("88.118").sites) == GOOD
    assert [n.node_prefix for n in mirror.nodes()] == ["88.118"]
