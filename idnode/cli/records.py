"""Subcommands that read and write a node's records over gRPC."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import grpc

from idnode.cli import client, importer, proofs, values
from idnode.cli.client import add_parser
from idnode.cli.output import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    emit,
    emit_write,
    fail,
    value_json,
)
from idnode.cli.progress import Progress
from proto import handle_pb2, registry_pb2, resolver_pb2
from resolver.tls import ClientTls

MAX_REFERRALS = 8


def add_parsers(commands: Any) -> None:
    """register, delete, list, import, resolve, whoami."""
    register_ = add_parser(commands, "register", "create or replace one identifier", register)
    register_.add_argument("identifier")
    values.add_value_flags(register_)
    register_.add_argument(
        "--upsert", action="store_true", help="replace the record if it exists (default: create)"
    )

    delete_ = add_parser(commands, "delete", "delete an identifier", delete)
    delete_.add_argument("identifier")

    listing = add_parser(commands, "list", "list identifiers under a prefix", list_prefix)
    listing.add_argument("prefix")
    listing.add_argument("--page-size", type=int, default=100, help="records per page")
    listing.add_argument(
        "--page-token", default="", help="where to continue (default: the first page)"
    )
    listing.add_argument("--all", action="store_true", help="fetch every page")

    bulk = add_parser(commands, "import", "bulk-register identifiers from a CSV file", import_csv)
    bulk.description = (
        "Bulk-register identifiers from a CSV file: a header with identifier,type,data and "
        "optionally index,ttl,public_read; the rows of one identifier form its complete record "
        "(created or replaced). Rejected rows go to the rejects file with their reason, in "
        "input order."
    )
    bulk.epilog = (
        "exit status: 0 every row stored; 1 some rows rejected (see the rejects file) or the "
        "node refused the import; 2 usage error or unreadable file; 3 the node could not be "
        "reached (what was stored before is reported; run the import again to finish)"
    )
    bulk.add_argument("file", metavar="FILE.csv")
    bulk.add_argument("--batch-size", type=int, default=1000, help="records per call (≤10000)")
    bulk.add_argument(
        "--rejects",
        metavar="FILE",
        help="where rejected rows go (default: FILE.rejected.csv beside the input)",
    )

    resolve_ = add_parser(commands, "resolve", "resolve an identifier", resolve)
    resolve_.add_argument("identifier")
    resolve_.add_argument(
        "--type", action="append", default=[], help="only values of TYPE (default: every type)"
    )
    resolve_.add_argument(
        "--index", action="append", type=int, default=[],
        help="only INDEX, repeatable (default: every index)",
    )  # fmt: skip
    resolve_.add_argument(
        "--no-follow", action="store_true", help="print a referral instead of following it"
    )
    proofs.add_flags(resolve_)

    add_parser(commands, "whoami", "show the account behind the token", whoami)


def register(args: argparse.Namespace, opened: grpc.Channel) -> int:
    record = handle_pb2.Record(identifier=args.identifier)
    record.values.extend(values.from_args(args))
    stub = client.registry_stub(opened)
    meta = client.metadata(args.token)
    if args.upsert:
        reply = stub.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=[record]), metadata=meta, timeout=args.timeout
        )
        result = reply.results[0]
        outcome = registry_pb2.BatchItemResult.Outcome.Name(result.outcome).lower()
        if result.outcome == registry_pb2.BatchItemResult.REJECTED:
            return fail(args, {"identifier": args.identifier, "error": result.error}, result.error)
        emit(
            args,
            {"identifier": args.identifier, "operation": outcome, "sequence": reply.sequence},
            f"{outcome}: {args.identifier}",
        )
        return 0
    try:
        written = stub.Create(record, metadata=meta, timeout=args.timeout)
    except grpc.RpcError as error:
        if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.ALREADY_EXISTS:
            message = f"{args.identifier} already exists; use --upsert to replace it"
            return fail(args, {"identifier": args.identifier, "error": message}, message)
        raise
    return emit_write(args, written)


def delete(args: argparse.Namespace, opened: grpc.Channel) -> int:
    written = client.registry_stub(opened).Delete(
        registry_pb2.DeleteRequest(identifier=args.identifier),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    emit(
        args,
        {"identifier": written.identifier, "operation": "deleted", "sequence": written.sequence},
        f"deleted: {written.identifier}",
    )
    return 0


def list_prefix(args: argparse.Namespace, opened: grpc.Channel) -> int:
    stub = client.registry_stub(opened)
    token = args.page_token
    records: list[dict[str, Any]] = []
    while True:
        page = stub.List(
            registry_pb2.ListRequest(
                prefix=args.prefix, page_size=args.page_size, page_token=token
            ),
            metadata=client.metadata(args.token),
            timeout=args.timeout,
        )
        for record in page.records:
            records.append(
                {"identifier": record.identifier, "values": [value_json(v) for v in record.values]}
            )
            if not args.json:
                print(record.identifier)
        token = page.next_page_token
        if not args.all or not token:
            break
    if args.json:
        print(json.dumps({"records": records, "next_page_token": token}, ensure_ascii=False))
    elif token:
        print(f"(more: --page-token {token})", file=sys.stderr)
    return 0


def import_csv(args: argparse.Namespace, opened: grpc.Channel) -> int:
    if not 1 <= args.batch_size <= 10_000:
        raise client.ClientError("--batch-size must be between 1 and 10000")
    stub = client.registry_stub(opened)
    meta = client.metadata(args.token)
    with open(args.file, encoding="utf-8", newline="") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)
        handle.seek(0)
        progress = Progress(f"importing {os.path.basename(args.file)}", total, "rows")

        def send(request: registry_pb2.BatchRegisterRequest) -> importer.Reply:
            future = stub.BatchRegister.future(
                request, metadata=meta, timeout=max(args.timeout, 120.0)
            )
            return future.result  # type: ignore[no-any-return]

        summary = importer.Summary()
        try:
            importer.run(handle, send, args.batch_size, progress.update, summary)
        except importer.BadImportFile as error:
            print(f"idnode: {args.file}: {error}", file=sys.stderr)
            return EXIT_USAGE
        except grpc.RpcError as error:
            progress.finish()
            return _import_stopped(args, summary, error)
    progress.finish()
    rejects = args.rejects or f"{os.path.splitext(args.file)[0]}.rejected.csv"
    if summary.rejected:
        importer.write_rejects(rejects, summary.rejected)
    document: dict[str, Any] = dict(summary.as_dict())
    if summary.rejected:
        document["rejects_file"] = rejects
    emit(
        args,
        document,
        f"created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}, "
        f"rejected {len(summary.rejected)}"
        + (f" (reasons in {rejects})" if summary.rejected else ""),
    )
    return EXIT_FAILED if summary.rejected else 0


def _import_stopped(
    args: argparse.Namespace, summary: importer.Summary, error: grpc.RpcError
) -> int:
    """A call failed part way: say what was stored; exit 3 when the node could not be reached."""
    stored = summary.created + summary.updated + summary.unchanged
    reason = client.describe(error, args.server)
    fail(
        args,
        {**summary.as_dict(), "error": reason},
        f"{reason}; stopped after {stored} identifiers were stored (up to sequence "
        f"{summary.sequence}); run the import again to finish (stored rows come back unchanged)",
    )
    code = error.code() if isinstance(error, grpc.Call) else None
    unreachable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return EXIT_UNREACHABLE if code in unreachable else EXIT_FAILED


def resolve(args: argparse.Namespace, opened: grpc.Channel) -> int:
    request = resolver_pb2.ResolveRequest(
        identifier=args.identifier, types=args.type, indexes=args.index, proof=args.verify
    )
    server = args.server
    reply = proofs.resolve_with_proof(client.resolver_stub(opened), request, args, args.token)
    hops = 0
    while reply.HasField("referral") and not args.no_follow and reply.referral.sites:
        hops += 1
        if hops > MAX_REFERRALS:
            raise client.ClientError(f"more than {MAX_REFERRALS} referrals; giving up")
        site = reply.referral.sites[0]
        server = site.grpc_address
        # A site that announces TLS is verified against --ca-file (else the system's CAs).
        tls = ClientTls(ca_file=args.ca_file) if site.grpc_tls else None
        with client.channel(server, tls) as referred:
            reply = proofs.resolve_with_proof(client.resolver_stub(referred), request, args, None)
            if args.verify and not reply.HasField("referral"):
                return _show(args, reply, server, proofs.check(args, reply, referred, server))
    outcome = proofs.check(args, reply, opened, server) if args.verify else None
    return _show(args, reply, server, outcome)


def _show(
    args: argparse.Namespace,
    reply: resolver_pb2.ResolveResponse,
    server: str,
    outcome: proofs.Outcome | None,
) -> int:
    document: dict[str, Any] = {
        "identifier": reply.identifier,
        "code": reply.code,
        "values": [value_json(v) for v in reply.values],
    }
    if reply.takeover:
        document["takeover"] = True
    if server != args.server:
        document["answered_by"] = server
    if reply.HasField("referral"):
        document["referral"] = {
            "code": reply.referral.code,
            "prefix": reply.referral.prefix,
            "sites": [{"grpc": s.grpc_address, "dns": s.dns_address} for s in reply.referral.sites],
        }
    text = _resolve_text(reply, server, args.server)
    if outcome is None:
        emit(args, document, text)
        return 0
    document["proof"] = outcome.document
    emit(args, document, "\n".join([text, *outcome.lines]))
    return 0 if outcome.ok else EXIT_FAILED


def _resolve_text(reply: resolver_pb2.ResolveResponse, server: str, asked: str) -> str:
    lines = [reply.identifier]
    if server != asked:
        lines[0] += f"  (answered by {server}{', takeover' if reply.takeover else ''})"
    if reply.HasField("referral"):
        sites = ", ".join(s.grpc_address for s in reply.referral.sites) or "unknown"
        lines.append(f"  referral {reply.referral.code} for {reply.referral.prefix}: {sites}")
    for value in reply.values:
        shown = value_json(value)
        private = "" if shown["public_read"] else "  (restricted)"
        lines.append(f"  {value.index:>4}  {value.type:<16} {shown['data']}{private}")
    return "\n".join(lines)


def whoami(args: argparse.Namespace, opened: grpc.Channel) -> int:
    account = client.registry_stub(opened).WhoAmI(
        registry_pb2.WhoAmIRequest(), metadata=client.metadata(args.token), timeout=args.timeout
    )
    role = handle_pb2.Account.Role.Name(account.role).lower()
    emit(
        args,
        {"account": account.name, "role": role, "prefixes": list(account.prefixes)},
        f"{account.name} ({role}) {' '.join(account.prefixes)}",
    )
    return 0
