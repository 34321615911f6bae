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
from registry.crypto.certificates import CertificateError
from resolver.tls import ClientTls, client_tls_if_wanted, open_channel

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


def client_tls(args: argparse.Namespace) -> ClientTls | None:
    """The TLS the flags ask for: any of --tls, --ca-file, --cert-file, --server-name
    (or their IDNODE_* variables) turns it on; None for a plain channel."""
    return client_tls_if_wanted(
        bool(args.tls),
        ca_file=args.ca_file or "",
        cert_file=args.cert_file or "",
        key_file=args.key_file or "",
        server_name=args.server_name or "",
    )


@contextmanager
def channel(server: str, tls: ClientTls | None = None) -> Iterator[grpc.Channel]:
    """The one way the command line reaches a node: a verified TLS channel with `tls`,
    else a plain one. Raises CertificateError for a file that cannot be used."""
    options: list[tuple[str, str | int]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    with open_channel(server, tls, options) as opened:
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
        hint = ""
        if "Socket closed" in (details or "") or "handshake" in (details or "").lower():
            hint = (
                " (a TLS mismatch? a node serving TLS needs --tls or --ca-file; with TLS, "
                "the server's certificate must be signed by --ca-file and name --server)"
            )
        return f"cannot reach {server}: {details}{hint}"
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
    add_tls_flags(sub)
    sub.add_argument("--json", action="store_true", help="print one JSON document")
    sub.add_argument("--timeout", type=float, default=timeout_seconds, help="seconds per call")
    sub.set_defaults(run=lambda args: call(args, run))
    return sub


def add_tls_flags(sub: argparse.ArgumentParser) -> None:
    """--tls, --ca-file, --cert-file, --key-file, --server-name (defaults from IDNODE_*)."""
    env = os.environ.get
    sub.add_argument(
        "--tls", action="store_true", default=env("IDNODE_TLS", "") not in ("", "0", "false"),
        help="connect with TLS and verify the server's certificate (default $IDNODE_TLS; "
        "implied by --ca-file, --cert-file, --server-name)",
    )  # fmt: skip
    sub.add_argument(
        "--ca-file", metavar="PEM", default=env("IDNODE_CA_FILE", ""),
        help="CAs that sign the server's certificate (default $IDNODE_CA_FILE, else the "
        "system's)",
    )  # fmt: skip
    sub.add_argument(
        "--cert-file", metavar="PEM", default=env("IDNODE_CERT_FILE", ""),
        help="client certificate to present, for mutual TLS (default $IDNODE_CERT_FILE)",
    )  # fmt: skip
    sub.add_argument(
        "--key-file", metavar="PEM", default=env("IDNODE_KEY_FILE", ""),
        help="the client certificate's key (default $IDNODE_KEY_FILE)",
    )  # fmt: skip
    sub.add_argument(
        "--server-name", metavar="NAME", default=env("IDNODE_SERVER_NAME", ""),
        help="name the server's certificate must carry (default $IDNODE_SERVER_NAME, else "
        "the --server host)",
    )  # fmt: skip


def call(args: argparse.Namespace, run: Run) -> int:
    """Open a channel to --server and run; failures become one message and an exit code."""
    args.token = resolve_token(args.token)
    try:
        with channel(args.server, client_tls(args)) as opened:
            return run(args, opened)
    except grpc.RpcError as error:
        report(error, args.server, args.json)
        return EXIT_FAILED
    except CertificateError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, ValueError, OSError) as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
