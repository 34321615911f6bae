"""What the Locust users share: their command-line options and the identifiers they load."""

from __future__ import annotations

import os
from typing import Any

from locust import events

from loadtest.mix import Identifiers


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("idnode", "where the gRPC and DNS users send their load")
    group.add_argument(
        "--grpc-address", env_var="IDNODE_LOCUST_GRPC", default="127.0.0.1:8600",
        help="the node's gRPC HOST:PORT",
    )  # fmt: skip
    group.add_argument(
        "--dns-address", env_var="IDNODE_LOCUST_DNS", default="127.0.0.1:8653",
        help="the node's DNS HOST:PORT (UDP)",
    )  # fmt: skip
    group.add_argument(
        "--zone", env_var="IDNODE_LOCUST_ZONE", default="id.example.", help="the node's DNS zone"
    )
    group.add_argument(
        "--identifiers", env_var="IDNODE_LOCUST_IDENTIFIERS", default="",
        help="file of existing identifiers, one a line (default: the demo node's three)",
    )  # fmt: skip
    group.add_argument(
        "--token", env_var="IDNODE_LOCUST_TOKEN", default="",
        help="bearer token for registrations (without one, gRPC users only resolve)",
    )  # fmt: skip
    group.add_argument(
        "--write-prefix", env_var="IDNODE_LOCUST_WRITE_PREFIX", default="",
        help="prefix registrations go under (default: the first identifier's)",
    )  # fmt: skip


_loaded: dict[str, Identifiers] = {}


def identifiers(options: Any) -> Identifiers:
    """The identifiers every user of this process shares (read once)."""
    path = options.identifiers if options is not None else os.environ.get(
        "IDNODE_LOCUST_IDENTIFIERS", ""
    )  # fmt: skip
    if path not in _loaded:
        _loaded[path] = Identifiers(path)
    return _loaded[path]
