"""Fixtures for the DNS face: a real LMDB store with an enterprise and some identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from resolver.dns import DnsServer
from resolver.dns.handler import Handler
from tests.dns.nodes import NODE_PREFIX, Node, make_node, make_options


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    made = make_node(tmp_path)
    yield made
    made.store.close()


@pytest.fixture
def handler(node: Node) -> Handler:
    return Handler(node.store, node.follower, make_options())


@pytest.fixture
def server(node: Node) -> Iterator[tuple[DnsServer, int]]:
    dns = DnsServer(node.store, NODE_PREFIX, node.follower, make_options())
    bound = dns.start(["127.0.0.1:0", "[::1]:0"])
    yield dns, bound[0][1]
    dns.stop()
