"""What the Locust users share: their command-line options and the identifiers they load."""

from __future__ import annotations

import os
from typing import Any

import grpc
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
    group.add_argument(
        "--ca-file", env_var="IDNODE_LOCUST_CA_FILE", default="",
        help="CA of a node serving TLS (idnode dev-cert's ca.pem): the gRPC user connects "
        "with TLS, the HTTP user verifies --host https://... against it",
    )  # fmt: skip
    group.add_argument(
        "--tls", env_var="IDNODE_LOCUST_TLS", action="store_true", default=False,
        help="gRPC over TLS verified with the system's CAs (implied by --ca-file)",
    )  # fmt: skip


def grpc_channel(options: Any) -> grpc.Channel:
    """The gRPC user's channel: plain, or TLS verified against --ca-file (else the
    system's CAs) when --ca-file or --tls is given."""
    address = options.grpc_address if options is not None else "127.0.0.1:8600"
    ca_file = options.ca_file if options is not None else ""
    if not ca_file and not (options is not None and options.tls):
        return grpc.insecure_channel(address)
    roots = None
    if ca_file:
        with open(ca_file, "rb") as handle:
            roots = handle.read()
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(roots))


_loaded: dict[str, Identifiers] = {}


def identifiers(options: Any) -> Identifiers:
    """The identifiers every user of this process shares (read once)."""
    path = options.identifiers if options is not None else os.environ.get(
        "IDNODE_LOCUST_IDENTIFIERS", ""
    )  # fmt: skip
    if path not in _loaded:
        _loaded[path] = Identifiers(path)
    return _loaded[path]
