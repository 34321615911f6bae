"""gRPC client helpers for the command line: channel, credentials, error messages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from proto import registry_pb2_grpc, resolver_pb2_grpc

MAX_MESSAGE_BYTES = 64 << 20


class ClientError(Exception):
    """A call failed; the message says how, for a person."""


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def resolve_token(token: str | None) -> str | None:
    return token or os.environ.get("IDNODE_TOKEN") or None


@contextmanager
def channel(server: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        server,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    ) as opened:
        yield opened


def resolver_stub(opened: grpc.Channel) -> resolver_pb2_grpc.ResolverStub:
    return resolver_pb2_grpc.ResolverStub(opened)


def registry_stub(opened: grpc.Channel) -> registry_pb2_grpc.RegistryStub:
    return registry_pb2_grpc.RegistryStub(opened)


def report(error: grpc.RpcError, server: str, as_json: bool) -> None:
    """Tell the person what failed: a JSON document on stdout, or a line on stderr."""
    message = describe(error, server)
    if as_json:
        print(json.dumps({"error": message}))
    else:
        print(f"idnode: {message}", file=sys.stderr)


def describe(error: grpc.RpcError, server: str) -> str:
    """One line for a failed call: the status name and the server's message."""
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach {server}: {details}"
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details}"
