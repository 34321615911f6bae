"""Subcommands that work on this machine, without a node: dns-name, backup, restore, verify."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from idnode.cli.output import EXIT_FAILED, EXIT_USAGE, emit
from idnode.cli.progress import Progress
from registry import storefile
from registry import verify as verify_store
from registry.errors import IdnodeError
from registry.store import Store, StoreOptions


def add_parsers(commands: Any) -> None:
    """dns-name, backup, restore, verify."""
    name = commands.add_parser(
        "dns-name", help="print the DNS name of an identifier",
        description="Print the DNS name an identifier has under the zone (docs/dns.md).",
    )  # fmt: skip
    name.add_argument("identifier")
    name.add_argument("--zone", default=os.environ.get("IDNODE_DNS_ZONE", "id.example."))
    add_data_dir_flag(name, "check the name against the prefixes this store hosts (skipped "
                      "without a store)")  # fmt: skip
    name.set_defaults(run=dns_name)

    backup_ = commands.add_parser(
        "backup", help="consistent compacted copy of the data dir, while serving",
        description="Copy the LMDB store consistently (one read snapshot) into DEST, "
        "which must not exist or be empty. Safe while the node serves.",
    )  # fmt: skip
    backup_.add_argument("dest", metavar="DEST")
    add_data_dir_flag(backup_, "the data directory to copy")
    backup_.set_defaults(run=backup)

    restore_ = commands.add_parser(
        "restore", help="restore a backup into an empty data dir",
        description="Verify the backup SRC, then copy it into --data-dir, which must hold no "
        "store yet: live data is never overwritten.",
    )  # fmt: skip
    restore_.add_argument("source", metavar="SRC")
    add_data_dir_flag(restore_, "the empty data directory to restore into")
    restore_.set_defaults(run=restore)

    verify_ = commands.add_parser(
        "verify", help="check a data dir or backup for consistency",
        description="Check that every record, prefix and change-log entry parses, the change "
        "log is contiguous, and records agree with their newest change; and the change "
        "log's SM3 hash chain: every entry hashes, after the one before it, to its stored "
        "chain hash, and every checkpoint covers those hashes and carries a valid SM2 "
        "signature by the node's key (its HS_PUBKEY value, else DATA_DIR/sm2-key.pem). "
        "An entry, record or chain hash altered or lost, or a checkpoint forged, is a "
        "problem. The store is opened read-only: a running node's data dir can be checked, "
        "and a store of an older schema is checked as it is, not upgraded. Exit 1 on "
        "problems.",
    )  # fmt: skip
    add_data_dir_flag(verify_, "the data directory or backup to check")
    verify_.add_argument("--json", action="store_true", help="print one JSON document")
    verify_.set_defaults(run=verify)


def add_data_dir_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """--data-dir for commands that work on a node's files, defaulting like `serve`."""
    parser.add_argument(
        "--data-dir", metavar="DIR", default=os.environ.get("IDNODE_DATA_DIR", "var"),
        help=f"{what} (default: $IDNODE_DATA_DIR or ./var)",
    )  # fmt: skip


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
    taken = _name_taken(args.identifier, args.data_dir)
    if taken:
        print(
            f"idnode: {args.identifier} has no DNS name: {taken}; resolve it over gRPC",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(name)
    return 0


def _name_taken(identifier: str, data_dir: str) -> str | None:
    """Why the identifier's name belongs to something else in the store's zone, if it does."""
    from registry.identifier import parse
    from resolver.dns.mapping import taken_by

    if not os.path.exists(os.path.join(data_dir, "data.mdb")):
        return None  # no store here: the mapping alone decides
    try:
        store = Store(data_dir, StoreOptions(readonly=True))
    except IdnodeError:
        return None
    try:
        with store.read() as txn:
            hosted = {info.prefix for info in store.iter_prefixes(txn)}
    finally:
        store.close()
    return taken_by(parse(identifier), hosted)


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
    source = _open_existing(args.source, readonly=True)
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
    try:
        storefile.make_data_dir(args.data_dir)
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
    partial = target + ".restoring"
    total = os.path.getsize(os.path.join(args.source, "data.mdb"))
    progress = Progress("restore", total, "bytes")
    private = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, storefile.FILE_MODE)
    os.fchmod(private, storefile.FILE_MODE)  # the store's own mode, whatever the umask
    with open(os.path.join(args.source, "data.mdb"), "rb") as src, open(private, "wb") as dst:
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
    store = _open_existing(args.data_dir, readonly=True)
    if store is None:
        return EXIT_USAGE
    try:
        progress = Progress("verify", 0, "records")
        report = verify_store.verify(store, progress.update)
        progress.finish()
    except IdnodeError as error:  # damage LMDB itself notices (a page of the wrong type)
        print(f"idnode: {args.data_dir}: cannot be read to the end: {error}", file=sys.stderr)
        return EXIT_FAILED
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
        "chain": report.chain,
    }
    verdict = "consistent" if report.ok else f"{len(report.problems)} problem(s)"
    text = (
        f"{args.data_dir}: {verdict}: {report.records} records, {report.prefixes} prefixes, "
        f"{report.changes} changes ({report.first_sequence}..{report.last_sequence})"
    )
    chained = [f"  chain: {report.chain}"] if report.chain else []
    emit(args, document, "\n".join([text, *chained, *(f"  {p}" for p in report.problems)]))
    return 0 if report.ok else EXIT_FAILED


def _open_existing(data_dir: str, readonly: bool = False) -> Store | None:
    if not os.path.exists(os.path.join(data_dir, "data.mdb")):
        print(f"idnode: no store in {data_dir}", file=sys.stderr)
        return None
    try:
        return Store(data_dir, StoreOptions(readonly=readonly))
    except IdnodeError as error:
        print(f"idnode: cannot open {data_dir}: {error}", file=sys.stderr)
        return None


def _progress_bytes(progress: Progress, done: int, total: int) -> None:
    progress.total = total
    progress.update(done)
