"""`idnode toplevel …`: the reference top-level node and its homed nodes."""

from __future__ import annotations

import argparse
import os
from typing import Any

import grpc

from idnode.cli import client
from idnode.cli.output import EXIT_USAGE, emit
from proto import handle_pb2, sync_pb2, sync_pb2_grpc
from registry.crypto import certificates

DEFAULT_TOPLEVEL = "127.0.0.1:8700"


def add_parsers(commands: Any) -> None:
    """Add `idnode toplevel …` to the command line."""
    toplevel = commands.add_parser(
        "toplevel", help="run the reference national top-level node",
        description="Run the reference top-level node: prefix homing and referral, mirrors of "
        "the secondary nodes' records, emergency takeover. The administrator token comes from "
        "IDNODE_ADMIN_TOKEN (or is made and shown once).",
    )  # fmt: skip
    toplevel.add_argument(
        "--data-dir", metavar="DIR",
        default=os.environ.get("IDNODE_TOPLEVEL_DATA_DIR", "var-toplevel"),
        help="LMDB data directory (default $IDNODE_TOPLEVEL_DATA_DIR or ./var-toplevel)",
    )  # fmt: skip
    toplevel.add_argument(
        "--grpc-listen", metavar="HOST:PORT", action="append",
        help=f"gRPC address, repeatable (default {DEFAULT_TOPLEVEL})",
    )  # fmt: skip
    toplevel.add_argument(
        "--probe-interval", type=float, default=2.0, metavar="SECONDS",
        help="seconds between health probes of each node's gRPC site (default 2)",
    )  # fmt: skip
    toplevel.add_argument(
        "--probe-failures", type=int, default=2, metavar="N",
        help="consecutive failed probes before takeover starts (default 2)",
    )  # fmt: skip
    env = os.environ.get
    toplevel.add_argument(
        "--tls-cert-file", metavar="PEM", default=env("IDNODE_TOPLEVEL_TLS_CERT_FILE", ""),
        help="serve gRPC over TLS with this certificate chain; SIGHUP reads it again "
        "(default $IDNODE_TOPLEVEL_TLS_CERT_FILE, else plain)",
    )  # fmt: skip
    toplevel.add_argument(
        "--tls-key-file", metavar="PEM", default=env("IDNODE_TOPLEVEL_TLS_KEY_FILE", ""),
        help="the certificate's private key (default $IDNODE_TOPLEVEL_TLS_KEY_FILE)",
    )  # fmt: skip
    toplevel.add_argument(
        "--client-ca-file", metavar="PEM", default=env("IDNODE_TOPLEVEL_CLIENT_CA_FILE", ""),
        help="CAs that sign the nodes' client certificates (mutual TLS; default none)",
    )  # fmt: skip
    toplevel.add_argument(
        "--require-client-cert", action="store_true",
        help="refuse TLS connections without a client certificate from --client-ca-file; "
        "a node's pinned fingerprint then identifies it (default: not required)",
    )  # fmt: skip
    toplevel.add_argument(
        "--sites-ca-file", metavar="PEM", default=env("IDNODE_TOPLEVEL_SITES_CA_FILE", ""),
        help="CAs for the nodes' gRPC sites that announce TLS (health probes, followed "
        "referrals; default: the system's)",
    )  # fmt: skip
    toplevel.add_argument(
        "--metrics-listen", metavar="HOST:PORT", default=env("IDNODE_TOPLEVEL_METRICS_LISTEN", ""),
        help="serve Prometheus /metrics here: failed authentications, limits hit "
        "(default $IDNODE_TOPLEVEL_METRICS_LISTEN, else none)",
    )  # fmt: skip
    toplevel.add_argument("--log-format", choices=["text", "json"], default="text")
    toplevel.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    toplevel.set_defaults(run=_run_toplevel)
    node = toplevel.add_subparsers(title="commands", metavar="COMMAND").add_parser(
        "node", help="manage the homed secondary nodes", description="Manage homed nodes."
    )
    # `idnode toplevel node` alone shows its commands rather than starting the server.
    node.set_defaults(run=lambda args: node.print_help() or EXIT_USAGE)
    node_commands = node.add_subparsers(title="commands", metavar="COMMAND")
    add = _toplevel_client(
        node_commands, "add", "home a node prefix and print the node's credential", _node_add
    )
    add.add_argument("node_prefix", metavar="NODE_PREFIX")
    add.add_argument(
        "--grpc-site", default="", metavar="HOST:PORT",
        help="the node's gRPC address (default: none; the node announces it when it syncs)",
    )  # fmt: skip
    add.add_argument(
        "--dns-site", default="", metavar="HOST:PORT", help="the node's DNS address (default: none)"
    )
    add.add_argument(
        "--node-token",
        default="",
        help="restore this credential instead of a new one (default: a new one)",
    )
    _pin_flags(add)
    add.add_argument(
        "--certificate-only", action="store_true",
        help="issue no token: the pinned client certificate alone identifies the node",
    )  # fmt: skip
    _toplevel_client(node_commands, "list", "homed nodes with sync position and health", _node_list)
    reset = _toplevel_client(
        node_commands, "reset",
        "forget a homed node's identity: the next node to sync with its credential is "
        "accepted, even a new data dir or an older copy, and its snapshot replaces the mirror",
        _node_reset,
    )  # fmt: skip
    reset.add_argument("node_prefix", metavar="NODE_PREFIX")
    pin = _toplevel_client(
        node_commands, "pin",
        "set the client certificate(s) a node must present; to rotate, pin the new one "
        "with --add, move the node to it, then pin it alone (the old one is then refused); "
        "no certificate given: remove the pins (the token alone then identifies the node)",
        _node_pin,
    )  # fmt: skip
    pin.add_argument("node_prefix", metavar="NODE_PREFIX")
    _pin_flags(pin)
    pin.add_argument("--add", action="store_true", help="keep the pins already set")


def _pin_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client-cert", metavar="PEM", action="append", default=[],
        help="pin this client certificate's SHA-256 fingerprint, repeatable (default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--cert-fingerprint", metavar="SHA256", action="append", default=[],
        help="pin this SHA-256 fingerprint (hex; colons allowed), repeatable (default: none)",
    )  # fmt: skip


def _pins(args: argparse.Namespace) -> list[str]:
    """The fingerprints of --client-cert files and --cert-fingerprint values."""
    found = [
        certificates.fingerprint_of_pem(certificates.read_pem(path), path)
        for path in args.client_cert
    ]
    return found + [certificates.parse_fingerprint(text) for text in args.cert_fingerprint]


def _toplevel_client(
    commands: Any, name: str, help_text: str, run: client.Run
) -> argparse.ArgumentParser:
    return client.add_parser(
        commands, name, help_text, run,
        server_variable="IDNODE_UPSTREAM", default_server=DEFAULT_TOPLEVEL,
        timeout_seconds=10.0, token_help="administrator token (default $IDNODE_TOKEN)",
    )  # fmt: skip


def _run_toplevel(args: argparse.Namespace) -> int:
    from idnode.node import toplevel

    return toplevel.main(
        toplevel.TopLevelSettings(
            data_dir=args.data_dir,
            grpc_listen=args.grpc_listen or [DEFAULT_TOPLEVEL],
            probe_interval_seconds=args.probe_interval,
            probe_failures=args.probe_failures,
            log_level=args.log_level,
            log_format=args.log_format,
            tls_cert_file=args.tls_cert_file,
            tls_key_file=args.tls_key_file,
            client_ca_file=args.client_ca_file,
            require_client_cert=args.require_client_cert,
            sites_ca_file=args.sites_ca_file,
            metrics_listen=args.metrics_listen,
        )
    )


def _node_add(args: argparse.Namespace, opened: grpc.Channel) -> int:
    site = handle_pb2.Site(grpc_address=args.grpc_site, dns_address=args.dns_site)
    request = sync_pb2.AddNodeRequest(
        node_prefix=args.node_prefix,
        sites=[site] if args.grpc_site else [],
        token=args.node_token,
        client_cert_sha256=_pins(args),
        certificate_only=args.certificate_only,
    )
    reply = sync_pb2_grpc.TopLevelStub(opened).AddNode(
        request, metadata=client.metadata(args.token), timeout=args.timeout
    )
    lines = [f"node prefix: {reply.node_prefix}"]
    if reply.token:
        lines += [
            f"node credential (shown once; stored only hashed): {reply.token}",
            f"use it as: idnode serve --upstream {args.server} --upstream-token <token>",
        ]
    lines += [f"pinned client certificate: {pin}" for pin in reply.client_cert_sha256]
    emit(
        args,
        {
            "node_prefix": reply.node_prefix,
            "token": reply.token,
            "client_cert_sha256": list(reply.client_cert_sha256),
        },
        "\n".join(lines),
    )
    return 0


def _node_pin(args: argparse.Namespace, opened: grpc.Channel) -> int:
    reply = sync_pb2_grpc.TopLevelStub(opened).PinNode(
        sync_pb2.PinNodeRequest(
            node_prefix=args.node_prefix, client_cert_sha256=_pins(args), add=args.add
        ),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    now = ", ".join(reply.client_cert_sha256) or "none (the token alone identifies the node)"
    emit(
        args,
        {
            "node_prefix": reply.node_prefix,
            "previous": list(reply.previous),
            "client_cert_sha256": list(reply.client_cert_sha256),
        },
        f"node prefix {reply.node_prefix}: pinned {now}",
    )
    return 0


def _node_list(args: argparse.Namespace, opened: grpc.Channel) -> int:
    from google.protobuf import json_format

    reply = sync_pb2_grpc.TopLevelStub(opened).ListNodes(
        sync_pb2.ListNodesRequest(), metadata=client.metadata(args.token), timeout=args.timeout
    )
    nodes = [json_format.MessageToDict(n, preserving_proto_field_name=True) for n in reply.nodes]
    lines = []
    for n in reply.nodes:
        lines.append(
            f"{n.node_prefix:<16} acked {n.acked_sequence:<10} records {n.mirrored_records:<10} "
            f"{'TAKEOVER' if n.takeover else 'reachable' if n.reachable else 'unreachable'}  "
            f"{', '.join(s.grpc_address for s in n.sites) or '(no site)'}  "
            f"identity {n.node_id or '(none yet)'}"
        )
        if n.client_cert_sha256:
            lines.append(f"{'':<16} pinned: {', '.join(n.client_cert_sha256)}")
        if n.refusal:
            lines.append(f"{'':<16} REFUSED: {n.refusal}")
    emit(args, {"nodes": nodes}, "\n".join(lines) or "no nodes homed")
    return 0


def _node_reset(args: argparse.Namespace, opened: grpc.Channel) -> int:
    reply = sync_pb2_grpc.TopLevelStub(opened).ResetNode(
        sync_pb2.ResetNodeRequest(node_prefix=args.node_prefix),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    emit(
        args,
        {
            "node_prefix": reply.node_prefix,
            "previous_node_id": reply.previous_node_id,
            "previous_acked_sequence": reply.previous_acked_sequence,
        },
        f"node prefix {reply.node_prefix}: identity {reply.previous_node_id or '(none)'} "
        f"forgotten; the mirror (up to sequence {reply.previous_acked_sequence}) answers until "
        "the next node to sync replaces it with its snapshot",
    )
    return 0
