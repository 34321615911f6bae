"""gRPC client subcommands: their common flags, channel, credentials, error messages."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from idnode.cli.output import EXIT_FAILED, EXIT_USAGE
from proto import registry_pb2_grpc, resolver_pb2_grpc

MAX_MESSAGE_BYTES = 64 << 20
DEFAULT_SERVER = "127.0.0.1:8600"

Run = Callable[[argparse.Namespace, grpc.Channel], int]
"""A client subcommand's body: parsed arguments and an open channel in, exit code out."""


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


def add_parser(
    commands: Any,
    name: str,
    help_text: str,
    run: Run,
    *,
    server_variable: str = "IDNODE_SERVER",
    default_server: str = DEFAULT_SERVER,
    timeout_seconds: float = 30.0,
    token_help: str = "bearer token (default $IDNODE_TOKEN)",
) -> argparse.ArgumentParser:
    """A subcommand that talks to a node: --server, --token, --json, --timeout, then `run`."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument(
        "--server", metavar="HOST:PORT", default=os.environ.get(server_variable, default_server),
        help=f"node to talk to (default ${server_variable} or {default_server})",
    )  # fmt: skip
    sub.add_argument("--token", help=token_help)
    sub.add_argument("--json", action="store_true", help="print one JSON document")
    sub.add_argument("--timeout", type=float, default=timeout_seconds, help="seconds per call")
    sub.set_defaults(run=lambda args: call(args, run))
    return sub


def call(args: argparse.Namespace, run: Run) -> int:
    """Open a channel to --server and run; failures become one message and an exit code."""
    args.token = resolve_token(args.token)
    try:
        with channel(args.server) as opened:
            return run(args, opened)
    except grpc.RpcError as error:
        report(error, args.server, args.json)
        return EXIT_FAILED
    except (ClientError, ValueError, OSError) as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
