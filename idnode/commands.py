"""What each client and local subcommand does once its arguments are parsed."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any

import grpc

from idnode import client, importer
from idnode.progress import Progress
from proto import handle_pb2, registry_pb2, resolver_pb2
from registry import verify as verify_store
from registry.errors import IdnodeError
from registry.store import Store

MAX_REFERRALS = 8
EXIT_FAILED = 1
EXIT_USAGE = 2


def _emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    print(json.dumps(document, ensure_ascii=False) if args.json else text)


def enterprise_create(args: argparse.Namespace, opened: grpc.Channel) -> int:
    reply = client.registry_stub(opened).CreateEnterprise(
        registry_pb2.CreateEnterpriseRequest(
            code=args.code, name=args.name, contact=args.contact, parent_prefix=args.parent
        ),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    _emit(
        args,
        {"prefix": reply.prefix, "account": reply.account, "token": reply.token},
        f"enterprise prefix: {reply.prefix}\ntoken (shown once; stored only hashed): {reply.token}",
    )
    return 0


def register(args: argparse.Namespace, opened: grpc.Channel) -> int:
    record = handle_pb2.Record(identifier=args.identifier)
    record.values.extend(_values_from(args))
    stub = client.registry_stub(opened)
    meta = client.metadata(args.token)
    if args.upsert:
        reply = stub.BatchRegister(
            registry_pb2.BatchRegisterRequest(records=[record]), metadata=meta, timeout=args.timeout
        )
        result = reply.results[0]
        outcome = registry_pb2.BatchItemResult.Outcome.Name(result.outcome).lower()
        if result.outcome == registry_pb2.BatchItemResult.REJECTED:
            _emit(args, {"identifier": args.identifier, "error": result.error}, result.error)
            return EXIT_FAILED
        _emit(
            args,
            {"identifier": args.identifier, "operation": outcome, "sequence": reply.sequence},
            f"{outcome}: {args.identifier}",
        )
        return 0
    written = stub.Create(record, metadata=meta, timeout=args.timeout)
    _emit(
        args,
        {
            "identifier": written.identifier,
            "operation": written.operation,
            "sequence": written.sequence,
            "values": [value_json(v) for v in written.values],
        },
        f"{written.operation}: {written.identifier} ({len(written.values)} values)",
    )
    return 0


def _values_from(args: argparse.Namespace) -> list[handle_pb2.HandleValue]:
    found: list[handle_pb2.HandleValue] = []
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            document = json.load(handle)
        for position, item in enumerate(document.get("values", []), start=1):
            value = handle_pb2.HandleValue(
                index=int(item.get("index", position)),
                type=str(item["type"]),
                data=str(item.get("data", "")).encode(),
            )
            if "ttl" in item:
                value.ttl = int(item["ttl"])
            if item.get("public_read") is False:
                value.public_read = False
            found.append(value)
    for position, text in enumerate(args.value, start=len(found) + 1):
        head, sep, data = text.partition("=")
        if not sep:
            raise client.ClientError(f"--value {text!r} is not [INDEX:]TYPE=DATA")
        index_text, colon, kind = head.rpartition(":")
        if colon and not index_text.isdigit():
            raise client.ClientError(f"--value {text!r}: index {index_text!r} is not a number")
        value = handle_pb2.HandleValue(
            index=int(index_text) if colon else position, type=kind, data=data.encode()
        )
        if args.ttl is not None:
            value.ttl = args.ttl
        found.append(value)
    for value in found:
        if value.index in args.private:
            value.public_read = False
    if not found:
        raise client.ClientError("give at least one --value TYPE=DATA or --file")
    return found


def delete(args: argparse.Namespace, opened: grpc.Channel) -> int:
    written = client.registry_stub(opened).Delete(
        registry_pb2.DeleteRequest(identifier=args.identifier),
        metadata=client.metadata(args.token),
        timeout=args.timeout,
    )
    _emit(
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

        def send(request: registry_pb2.BatchRegisterRequest) -> registry_pb2.BatchRegisterResponse:
            reply: registry_pb2.BatchRegisterResponse = stub.BatchRegister(
                request, metadata=meta, timeout=max(args.timeout, 120.0)
            )
            return reply

        try:
            summary = importer.run(handle, send, args.batch_size, progress.update)
        except importer.BadImportFile as error:
            print(f"idnode: {args.file}: {error}", file=sys.stderr)
            return EXIT_USAGE
    progress.finish()
    rejects = args.rejects or f"{os.path.splitext(args.file)[0]}.rejected.csv"
    if summary.rejected:
        importer.write_rejects(rejects, summary.rejected)
    document: dict[str, Any] = dict(summary.as_dict())
    if summary.rejected:
        document["rejects_file"] = rejects
    _emit(
        args,
        document,
        f"created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}, "
        f"rejected {len(summary.rejected)}"
        + (f" (reasons in {rejects})" if summary.rejected else ""),
    )
    return EXIT_FAILED if summary.rejected else 0


def resolve(args: argparse.Namespace, opened: grpc.Channel) -> int:
    request = resolver_pb2.ResolveRequest(
        identifier=args.identifier, types=args.type, indexes=args.index
    )
    server = args.server
    reply = client.resolver_stub(opened).Resolve(
        request, metadata=client.metadata(args.token), timeout=args.timeout
    )
    hops = 0
    while reply.HasField("referral") and not args.no_follow and reply.referral.sites:
        hops += 1
        if hops > MAX_REFERRALS:
            raise client.ClientError(f"more than {MAX_REFERRALS} referrals; giving up")
        server = reply.referral.sites[0].grpc_address
        with client.channel(server) as referred:
            reply = client.resolver_stub(referred).Resolve(request, timeout=args.timeout)
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
    _emit(args, document, _resolve_text(reply, server, args.server))
    return 0


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
    _emit(
        args,
        {"account": account.name, "role": role, "prefixes": list(account.prefixes)},
        f"{account.name} ({role}) {' '.join(account.prefixes)}",
    )
    return 0


def dns_name(args: argparse.Namespace) -> int:
    from resolver.dns import dns_name as name_of

    try:
        name = name_of(args.identifier, args.zone)
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
    if name is None:
        print(
            f"idnode: {args.identifier} has no DNS name (longer than 255 octets); "
            "resolve it over gRPC",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(name)
    return 0


def backup(args: argparse.Namespace) -> int:
    if os.path.exists(args.dest) and os.listdir(args.dest):
        print(f"idnode: backup destination {args.dest} is not empty", file=sys.stderr)
        return EXIT_USAGE
    store = _open_existing(args.data_dir)
    if store is None:
        return EXIT_USAGE
    try:
        progress = Progress("backup", 0, "bytes")
        store.copy_to(args.dest, lambda done, total: _progress_bytes(progress, done, total))
        progress.finish()
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    print(f"backup written to {args.dest}")
    return 0


def restore(args: argparse.Namespace) -> int:
    target = os.path.join(args.data_dir, "data.mdb")
    if os.path.exists(target):
        print(
            f"idnode: {args.data_dir} already holds a store; restore only into an empty data dir",
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = _open_existing(args.source)
    if source is None:
        return EXIT_USAGE
    try:
        report = verify_store.verify(source)
    finally:
        source.close()
    if not report.ok:
        print(f"idnode: backup {args.source} fails verification:", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILED
    os.makedirs(args.data_dir, exist_ok=True)
    partial = target + ".restoring"
    total = os.path.getsize(os.path.join(args.source, "data.mdb"))
    progress = Progress("restore", total, "bytes")
    with open(os.path.join(args.source, "data.mdb"), "rb") as src, open(partial, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
            progress.advance(len(chunk))
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(partial, target)
    progress.finish()
    print(
        f"restored {report.records} identifiers (change log up to {report.last_sequence}) "
        f"into {args.data_dir}"
    )
    return 0


def verify(args: argparse.Namespace) -> int:
    store = _open_existing(args.data_dir)
    if store is None:
        return EXIT_USAGE
    try:
        progress = Progress("verify", 0, "records")
        report = verify_store.verify(store, progress.update)
        progress.finish()
    finally:
        store.close()
    document = {
        "ok": report.ok,
        "records": report.records,
        "prefixes": report.prefixes,
        "accounts": report.accounts,
        "changes": report.changes,
        "first_sequence": report.first_sequence,
        "last_sequence": report.last_sequence,
        "problems": report.problems,
    }
    verdict = "consistent" if report.ok else f"{len(report.problems)} problem(s)"
    text = (
        f"{args.data_dir}: {verdict}: {report.records} records, {report.prefixes} prefixes, "
        f"{report.changes} changes ({report.first_sequence}..{report.last_sequence})"
    )
    _emit(args, document, "\n".join([text, *(f"  {p}" for p in report.problems)]))
    return 0 if report.ok else EXIT_FAILED


def _open_existing(data_dir: str) -> Store | None:
    if not os.path.exists(os.path.join(data_dir, "data.mdb")):
        print(f"idnode: no store in {data_dir}", file=sys.stderr)
        return None
    try:
        return Store(data_dir)
    except IdnodeError as error:
        print(f"idnode: cannot open {data_dir}: {error}", file=sys.stderr)
        return None


def _progress_bytes(progress: Progress, done: int, total: int) -> None:
    progress.total = total
    progress.update(done)


def value_json(value: Any) -> dict[str, Any]:
    data = bytes(value.data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "b64:" + base64.b64encode(data).decode()
    return {
        "index": value.index,
        "type": value.type,
        "data": text,
        "ttl": value.ttl,
        "timestamp": value.timestamp,
        "public_read": not value.HasField("public_read") or value.public_read,
    }
