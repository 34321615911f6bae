"""`idnode populate`: write N benchmark identifiers straight into a data dir, fast.

Identifiers are PREFIX/p0000000000, PREFIX/p0000000001, ... (ten digits, so key
order is numeric order), each with a URL value (index 1,
https://example.com/p/NUMBER) and a `batch` value (index 2). They are written
through the store's write batches in large key-sorted transactions, each record
with its change-log entry as any registration has; at the end the change log is
trimmed as the running node would trim it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from typing import Any

from idnode.cli.output import EXIT_USAGE, emit
from idnode.cli.progress import Progress
from idnode.config import Config, ConfigError, load
from proto import handle_pb2
from registry import accounts, retention, values
from registry.errors import IdnodeError
from registry.identifier import is_under, parse_prefix
from registry.registry import Registry
from registry.store import Store, WriteBatch
from sync.pusher import CURSOR as SYNC_CURSOR

MAX_COUNT = 1_000_000_000
DIGITS = 10
ESTIMATED_BYTES_PER_IDENTIFIER = 600  # record and change-log entry with B-tree slack
DEFAULT_TRANSACTION_RECORDS = 100_000
MAX_TRANSACTION_RECORDS = 1_000_000
HandleValue = handle_pb2.HandleValue


def add_parsers(commands: Any) -> None:
    populate = commands.add_parser(
        "populate", help="write N benchmark identifiers straight into a data dir",
        description="Write --count identifiers PREFIX/p0000000000 ... (ten digits, from "
        "--start) with a URL and a batch value into the data dir, in large key-sorted "
        "transactions with their change-log entries, then trim the change log as the node "
        "does. For benchmarks (make bench SCALE=...); rerunning rewrites the same records. "
        "A fresh data dir is initialised as `idnode serve` would.",
    )  # fmt: skip
    populate.add_argument(
        "--count", type=int, required=True, help="identifiers to write (required, no default)"
    )
    populate.add_argument(
        "--start", type=int, default=0, help="number of the first identifier (default: 0)"
    )
    populate.add_argument("--prefix", help="prefix to write under (default: NODE_PREFIX.99; "
                          "allocated as an enterprise prefix when absent)")  # fmt: skip
    populate.add_argument("--config", metavar="FILE", help="TOML config file (default: none)")
    populate.add_argument("--data-dir", metavar="DIR", help="LMDB data directory (default: var)")
    populate.add_argument("--node-prefix", metavar="PREFIX", help="node prefix (default: 88.118)")
    populate.add_argument(
        "--transaction-records", type=int, default=DEFAULT_TRANSACTION_RECORDS,
        help="identifiers per write transaction",
    )  # fmt: skip
    populate.add_argument("--json", action="store_true", help="print one JSON document")
    populate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    problem = _check_arguments(args)
    if problem:
        print(f"idnode populate: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load(args.config, {"data_dir": args.data_dir, "node_prefix": args.node_prefix})
        prefix = parse_prefix(args.prefix or f"{config.node_prefix}.99")
    except (ConfigError, IdnodeError) as error:
        print(f"idnode populate: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not is_under(prefix, parse_prefix(config.node_prefix)):
        print(
            f"idnode populate: prefix {prefix} is not under the node prefix {config.node_prefix}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from idnode.node import bootstrap

    store = bootstrap.initialise(_sized(config, args.count))
    try:
        return _populate(args, config, store, prefix)
    except IdnodeError as error:
        print(f"idnode populate: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()


def _check_arguments(args: argparse.Namespace) -> str:
    if not 1 <= args.count <= MAX_COUNT:
        return f"--count must be between 1 and {MAX_COUNT:,}, not {args.count}"
    if args.start < 0 or args.start + args.count > 10**DIGITS:
        return f"--start and --count must number identifiers from 0 below {10**DIGITS:,}"
    if not 1 <= args.transaction_records <= MAX_TRANSACTION_RECORDS:
        return f"--transaction-records must be between 1 and {MAX_TRANSACTION_RECORDS:,}"
    return ""


def _sized(config: Config, count: int) -> Config:
    """The configuration with a map big enough for `count` more identifiers, so no
    transaction has to run again after the map grew."""
    path = os.path.join(config.data_dir, "data.mdb")
    present = os.path.getsize(path) if os.path.exists(path) else 0
    wanted = present + count * ESTIMATED_BYTES_PER_IDENTIFIER
    return dataclasses.replace(config, map_size_bytes=max(config.map_size_bytes, wanted))


def _populate(args: argparse.Namespace, config: Config, store: Store, prefix: str) -> int:
    _host(Registry(store, config.node_prefix), prefix)
    started = time.monotonic()
    progress = Progress("populate", args.count, "identifiers")
    created = 0
    end = args.start + args.count
    for first in range(args.start, end, args.transaction_records):
        last = min(first + args.transaction_records, end)
        created += store.write(functools.partial(_write, prefix=prefix, first=first, last=last))
        progress.update(last - args.start)
    progress.finish()
    written_seconds = time.monotonic() - started
    dropped = retention.trim(
        store, config.changelog_keep_entries, config.changelog_max_entries,
        [SYNC_CURSOR] if config.upstream else [],
    )  # fmt: skip
    document = _describe(store, prefix, args, created, written_seconds, dropped)
    emit(
        args,
        document,
        f"{args.count:,} identifiers under {prefix} ({created:,} new) in {written_seconds:.1f} s "
        f"({document['identifiers_per_second']:,.0f}/s); change log trimmed by {dropped:,}; "
        f"{document['identifiers']:,} identifiers, {document['store_bytes'] / 2**20:,.0f} MiB "
        f"in use, {document['record_bytes_per_identifier']:.0f} B of records per identifier",
    )
    return 0


def _host(registry: Registry, prefix: str) -> None:
    """Allocate `prefix` when it is not hosted yet (raises IdnodeError when it cannot be)."""
    admin = handle_pb2.Account(name=accounts.ADMIN_NAME, role=accounts.ADMIN)
    home = registry.home(prefix)
    if home is not None and home.prefix == prefix:
        if home.sites:
            raise IdnodeError(f"prefix {prefix} is delegated to an enterprise node")
        return
    parent, _, code = prefix.rpartition(".")
    if parent == registry.node_prefix:
        registry.create_enterprise(admin, code=code)
        print(f"allocated enterprise prefix {prefix}", file=sys.stderr)
    else:
        registry.put_prefix(admin, prefix, ())


def _write(batch: WriteBatch, prefix: str, first: int, last: int) -> int:
    """Identifiers `first` .. `last` - 1 in key order; returns how many were new."""
    now = int(time.time())
    ttl = values.DEFAULT_TTL_SECONDS
    batch_value = HandleValue(index=2, type="batch", data=b"2026-11", ttl=ttl, timestamp=now)
    records, txn = batch.store.records, batch.txn
    created = 0
    for number in range(first, last):
        key = f"{prefix}/p{number:0{DIGITS}d}"
        url = HandleValue(
            index=1, type="URL", data=b"https://example.com/p/%d" % number, ttl=ttl, timestamp=now
        )
        new = txn.get(key.encode(), db=records) is None
        batch.put_record(key, handle_pb2.Record(values=[url, batch_value]), created=new)
        created += new
    return created


def _describe(
    store: Store, prefix: str, args: argparse.Namespace, created: int, seconds: float, dropped: int
) -> dict[str, Any]:
    with store.read() as txn:
        identifiers = store.record_count(txn)
        stat = txn.stat(store.records)
        last_sequence = store.last_sequence(txn)
    pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
    record_bytes = pages * stat["psize"]
    store_bytes = store.size_bytes()
    return {
        "prefix": prefix,
        "first": f"{prefix}/p{args.start:0{DIGITS}d}",
        "last": f"{prefix}/p{args.start + args.count - 1:0{DIGITS}d}",
        "written": args.count,
        "created": created,
        "seconds": round(seconds, 3),
        "identifiers_per_second": round(args.count / seconds if seconds else 0.0, 1),
        "changes_trimmed": dropped,
        "last_sequence": last_sequence,
        "identifiers": identifiers,
        "store_bytes": store_bytes,
        "record_bytes": record_bytes,
        "store_bytes_per_identifier": round(store_bytes / identifiers, 1),
        "record_bytes_per_identifier": round(record_bytes / identifiers, 1),
    }
