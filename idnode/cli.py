"""The `idnode` command: serve a node, and the client subcommands that talk to one."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from idnode import __version__, upstream
from idnode import commands as c
from idnode.commands import EXIT_FAILED, EXIT_USAGE

DEFAULT_SERVER = "127.0.0.1:8600"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idnode",
        description="A secondary node of an industrial-internet identifier resolution system.",
    )
    parser.add_argument("--version", action="version", version=f"idnode {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _serve_parser(commands)
    _client_parsers(commands)
    _local_parsers(commands)
    upstream.add_parsers(commands)
    return parser


# serve ---------------------------------------------------------------------


def _serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a secondary node",
        description="Run a secondary node: gRPC and DNS resolution, registry, /metrics. "
        "Precedence, lowest first: defaults, the TOML config file, IDNODE_* variables, flags.",
    )
    add_node_flags(serve)
    serve.set_defaults(run=_run_serve)


def add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config file")
    parser.add_argument("--data-dir", metavar="DIR", help="LMDB data directory (default ./var)")
    parser.add_argument("--node-prefix", metavar="PREFIX", help="node prefix, e.g. 88.118")
    parser.add_argument(
        "--grpc-listen", metavar="HOST:PORT", action="append",
        help="gRPC address, repeatable; [::1]:PORT for IPv6 (default 127.0.0.1:8600)",
    )  # fmt: skip
    parser.add_argument(
        "--dns-listen", metavar="HOST:PORT", action="append",
        help="DNS address (UDP and TCP), repeatable (default 127.0.0.1:8653)",
    )  # fmt: skip
    parser.add_argument("--no-dns", action="store_true", help="do not serve DNS")
    parser.add_argument("--metrics-listen", metavar="HOST:PORT", help="/metrics address")
    parser.add_argument("--zone", metavar="ZONE", help="DNS zone served, e.g. id.example.")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (0: per core)")
    parser.add_argument("--upstream", metavar="HOST:PORT", help="the top-level node")
    parser.add_argument("--upstream-token", metavar="TOKEN", help="credential at the upstream")
    parser.add_argument("--log-format", choices=["text", "json"], help="log line format")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def load_config(args: argparse.Namespace) -> Any:
    from idnode.config import ConfigError, load

    overrides = {
        "data_dir": args.data_dir,
        "node_prefix": args.node_prefix,
        "grpc_listen": tuple(args.grpc_listen) if args.grpc_listen else None,
        "dns_listen": () if args.no_dns else (tuple(args.dns_listen) if args.dns_listen else None),
        "metrics_listen": args.metrics_listen,
        "dns.zone": args.zone,
        "workers": args.workers,
        "upstream": args.upstream,
        "upstream_token": args.upstream_token,
        "log_format": args.log_format,
        "log_level": args.log_level,
    }
    try:
        return load(args.config, overrides)
    except ConfigError as error:
        raise SystemExit(f"idnode: {error}") from None


def _run_serve(args: argparse.Namespace) -> int:
    from idnode import serve

    return serve.main(load_config(args), reload=lambda: load_config(args))


# client subcommands ----------------------------------------------------------


def _client(commands: Any, name: str, help_text: str, run: Callable[..., int]) -> Any:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument(
        "--server", metavar="HOST:PORT", default=os.environ.get("IDNODE_SERVER", DEFAULT_SERVER),
        help=f"node to talk to (default $IDNODE_SERVER or {DEFAULT_SERVER})",
    )  # fmt: skip
    sub.add_argument("--token", help="bearer token (default $IDNODE_TOKEN)")
    sub.add_argument("--json", action="store_true", help="print one JSON document")
    sub.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    sub.set_defaults(run=lambda args: _call(args, run))
    return sub


def _client_parsers(commands: Any) -> None:
    enterprise = commands.add_parser(
        "enterprise", help="manage enterprises", description="Manage enterprises."
    )
    enterprise_commands = enterprise.add_subparsers(title="commands", metavar="COMMAND")
    create = _client(
        enterprise_commands, "create",
        "allocate an enterprise prefix and its token (administrator only)", c.enterprise_create,
    )  # fmt: skip
    create.add_argument("--code", default="", help="requested enterprise code (default: next)")
    create.add_argument("--name", default="", help="enterprise name")
    create.add_argument("--contact", default="", help="contact details")
    create.add_argument("--parent", default="", help="parent prefix (default: node prefix)")

    register = _client(commands, "register", "create or replace one identifier", c.register)
    register.add_argument("identifier")
    register.add_argument(
        "--value", action="append", default=[], metavar="[INDEX:]TYPE=DATA",
        help="a value, repeatable; indexes default to 1, 2, …",
    )  # fmt: skip
    register.add_argument("--file", metavar="JSON", help='values as {"values": [{...}]}')
    register.add_argument("--ttl", type=int, help="ttl in seconds for --value values")
    register.add_argument(
        "--private", action="append", type=int, default=[], metavar="INDEX",
        help="make the value at INDEX readable only by its owner and the administrator",
    )  # fmt: skip
    register.add_argument(
        "--upsert", action="store_true", help="replace the record if it exists (default: create)"
    )

    delete = _client(commands, "delete", "delete an identifier", c.delete)
    delete.add_argument("identifier")

    listing = _client(commands, "list", "list identifiers under a prefix", c.list_prefix)
    listing.add_argument("prefix")
    listing.add_argument("--page-size", type=int, default=100)
    listing.add_argument("--page-token", default="")
    listing.add_argument("--all", action="store_true", help="fetch every page")

    bulk = _client(commands, "import", "bulk-register identifiers from a CSV file", c.import_csv)
    bulk.add_argument("file", metavar="FILE.csv")
    bulk.add_argument("--batch-size", type=int, default=1000, help="records per call (≤10000)")
    bulk.add_argument(
        "--rejects", metavar="FILE", help="where rejected rows go (FILE.rejected.csv)"
    )

    resolve = _client(commands, "resolve", "resolve an identifier", c.resolve)
    resolve.add_argument("identifier")
    resolve.add_argument("--type", action="append", default=[], help="only values of TYPE")
    resolve.add_argument("--index", action="append", type=int, default=[], help="only INDEX")
    resolve.add_argument(
        "--no-follow", action="store_true", help="print a referral instead of following it"
    )

    _client(commands, "whoami", "show the account behind the token", c.whoami)


def _call(args: argparse.Namespace, run: Callable[..., int]) -> int:
    import grpc

    from idnode import client

    args.token = client.resolve_token(args.token)
    try:
        with client.channel(args.server) as opened:
            return run(args, opened)
    except grpc.RpcError as error:
        client.report(error, args.server, args.json)
        return EXIT_FAILED
    except (client.ClientError, ValueError, OSError) as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE


# local subcommands -------------------------------------------------------------


def _local_parsers(commands: Any) -> None:
    name = commands.add_parser(
        "dns-name", help="print the DNS name of an identifier",
        description="Print the DNS name an identifier has under the zone (DESIGN §3).",
    )  # fmt: skip
    name.add_argument("identifier")
    name.add_argument("--zone", default=os.environ.get("IDNODE_DNS_ZONE", "id.example."))
    name.set_defaults(run=c.dns_name)

    backup = commands.add_parser(
        "backup", help="consistent compacted copy of the data dir, while serving",
        description="Copy the LMDB store consistently (one read snapshot) into DEST, "
        "which must not exist or be empty. Safe while the node serves.",
    )  # fmt: skip
    backup.add_argument("dest", metavar="DEST")
    backup.add_argument("--data-dir", default=os.environ.get("IDNODE_DATA_DIR", "var"))
    backup.set_defaults(run=c.backup)

    restore = commands.add_parser(
        "restore", help="restore a backup into an empty data dir",
        description="Verify the backup SRC, then copy it into --data-dir, which must hold no "
        "store yet: live data is never overwritten.",
    )  # fmt: skip
    restore.add_argument("source", metavar="SRC")
    restore.add_argument("--data-dir", default=os.environ.get("IDNODE_DATA_DIR", "var"))
    restore.set_defaults(run=c.restore)

    verify = commands.add_parser(
        "verify", help="check a data dir or backup for consistency",
        description="Check that every record, prefix and change-log entry parses, the change "
        "log is contiguous, and records agree with their newest change. Exit 1 on problems.",
    )  # fmt: skip
    verify.add_argument("--data-dir", default=os.environ.get("IDNODE_DATA_DIR", "var"))
    verify.add_argument("--json", action="store_true", help="print one JSON document")
    verify.set_defaults(run=c.verify)


if __name__ == "__main__":
    sys.exit(main())
