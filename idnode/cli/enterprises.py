"""`idnode enterprise create|list` and `idnode prefix put`: who hosts what, over gRPC."""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from idnode.cli import client
from idnode.cli.accounts import duration
from idnode.cli.client import add_parser
from idnode.cli.output import EXIT_USAGE, emit
from proto import handle_pb2, registry_pb2


def add_parsers(commands: Any) -> None:
    enterprise = commands.add_parser(
        "enterprise", help="manage enterprises", description="Manage enterprises."
    )
    enterprise.set_defaults(run=lambda args: enterprise.print_help() or EXIT_USAGE)
    enterprise_commands = enterprise.add_subparsers(title="commands", metavar="COMMAND")
    create = add_parser(
        enterprise_commands, "create",
        "allocate an enterprise prefix and its token (administrator only)", enterprise_create,
    )  # fmt: skip
    create.add_argument("--code", default="", help="requested enterprise code (default: next)")
    create.add_argument("--name", default="", help="enterprise name (default: none)")
    create.add_argument("--contact", default="", help="contact details (default: none)")
    create.add_argument("--parent", default="", help="parent prefix (default: node prefix)")
    create.add_argument(
        "--expires", type=duration, default=0, metavar="DURATION",
        help="the token expires after this (90d, 24h, ...; default: never)",
    )  # fmt: skip
    listing = add_parser(
        enterprise_commands, "list",
        "enterprises with their prefixes and contacts (administrator only)", enterprise_list,
    )  # fmt: skip
    listing.add_argument("--page-size", type=int, default=100, help="enterprises per page")
    listing.add_argument(
        "--page-token", default="", help="where to continue (default: the first page)"
    )
    listing.add_argument("--all", action="store_true", help="fetch every page")

    prefix = commands.add_parser(
        "prefix", help="derived prefixes and delegation", description="Manage prefixes."
    )
    prefix.set_defaults(run=lambda args: prefix.print_help() or EXIT_USAGE)
    put = add_parser(
        prefix.add_subparsers(title="commands", metavar="COMMAND"), "put",
        "host a derived prefix, or delegate a prefix to the enterprise's own node "
        "(--grpc-site); without a site, delegation ends and this node answers again",
        prefix_put,
    )  # fmt: skip
    put.add_argument("prefix")
    put.add_argument(
        "--grpc-site", default="", metavar="HOST:PORT",
        help="the enterprise node's gRPC address (default: none, served here)",
    )  # fmt: skip
    put.add_argument(
        "--dns-site", default="", metavar="HOST:PORT",
        help="the enterprise node's DNS address (default: none)",
    )  # fmt: skip
    put.add_argument(
        "--http-site", default="", metavar="URL",
        help="the enterprise node's HTTP face, e.g. https://id.example.com; scanned codes "
        "are redirected there (default: none, followed over gRPC)",
    )  # fmt: skip


def enterprise_create(args: argparse.Namespace, opened: grpc.Channel) -> int:
    reply = client.registry_stub(opened).CreateEnterprise(
        registry_pb2.CreateEnterpriseRequest(
            code=args.code,
            name=args.name,
            contact=args.contact,
            parent_prefix=args.parent,
            expires_in_seconds=args.expires,
        ),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    emit(
        args,
        {"prefix": reply.prefix, "account": reply.account, "token": reply.token},
        f"enterprise prefix: {reply.prefix}\ntoken (shown once; stored only hashed): {reply.token}",
    )
    return 0


def enterprise_list(args: argparse.Namespace, opened: grpc.Channel) -> int:
    stub = client.registry_stub(opened)
    token = args.page_token
    found: list[registry_pb2.Enterprise] = []
    while True:
        page = stub.ListEnterprises(
            registry_pb2.ListEnterprisesRequest(page_size=args.page_size, page_token=token),
            metadata=client.metadata(args.token),
            timeout=args.timeout,
        )
        found.extend(page.enterprises)
        token = page.next_page_token
        if not args.all or not token:
            break
    lines = [
        f"{e.prefix:<20} {e.name or '-':<30} {e.contact or '-'}"
        + (f"  derived: {' '.join(e.derived_prefixes)}" if e.derived_prefixes else "")
        + (f"  delegated to {e.sites[0].grpc_address}" if e.sites else "")
        for e in found
    ]
    if token:
        lines.append(f"(more: --page-token {token})")
    emit(
        args,
        {"enterprises": [_enterprise_json(e) for e in found], "next_page_token": token},
        "\n".join(lines) or "no enterprises yet (idnode enterprise create)",
    )
    return 0


def _enterprise_json(enterprise: registry_pb2.Enterprise) -> dict[str, Any]:
    return {
        "account": enterprise.account,
        "prefix": enterprise.prefix,
        "name": enterprise.name,
        "contact": enterprise.contact,
        "created": enterprise.created,
        "derived_prefixes": list(enterprise.derived_prefixes),
        "sites": [_site_json(s) for s in enterprise.sites],
    }


def prefix_put(args: argparse.Namespace, opened: grpc.Channel) -> int:
    if (args.dns_site or args.http_site) and not args.grpc_site:
        raise client.ClientError(
            "--dns-site and --http-site need --grpc-site (the site a referral names)"
        )
    sites = [
        handle_pb2.Site(
            grpc_address=args.grpc_site, dns_address=args.dns_site, http_address=args.http_site
        )
    ]
    info = client.registry_stub(opened).PutPrefix(
        registry_pb2.PutPrefixRequest(prefix=args.prefix, sites=sites if args.grpc_site else []),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    where = f"delegated to {info.sites[0].grpc_address}" if info.sites else "served by this node"
    emit(
        args,
        {
            "prefix": info.prefix,
            "owner": info.owner,
            "sites": [_site_json(s) for s in info.sites],
        },
        f"prefix {info.prefix} (owner {info.owner}): {where}",
    )
    return 0


def _site_json(site: handle_pb2.Site) -> dict[str, str]:
    return {"grpc": site.grpc_address, "dns": site.dns_address, "http": site.http_address}
