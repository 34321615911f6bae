"""`idnode replica`: replication credentials on a primary, and promoting a stopped replica."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from idnode.cli.local import add_data_dir_flag
from idnode.cli.output import EXIT_USAGE, emit

PROMOTE_STEPS = """\
next steps (docs/scale-out.md, "Promotion"):
  1. start it as a primary: idnode serve --data-dir {data_dir} (no --replica-of), with the
     old primary's configuration (--node-prefix, --upstream, --upstream-token, listeners)
  2. at the top-level node, hand the node prefix to this node's identity:
     idnode toplevel node reset {node_prefix} --server TOPLEVEL --token ADMIN_TOKEN
  3. point the other replicas at it (--replica-of THIS_NODE) and the load balancer's write
     backend at it; replicas not ahead of sequence {sequence} continue without a new copy"""


def add_parsers(commands: Any) -> None:
    replica = commands.add_parser(
        "replica", help="read replicas: credentials, promotion",
        description="Read replicas follow a primary's change log (docs/scale-out.md).",
    )  # fmt: skip
    actions = replica.add_subparsers(title="actions", metavar="ACTION")
    credential = actions.add_parser(
        "credential", help="make a replication credential on the primary's data dir",
        description="Create an account that may follow this node's change log (and nothing "
        "else) and print its token once; it is stored only hashed. Run it on the primary "
        "(while it serves or not); give the token to the replica as --replica-token.",
    )  # fmt: skip
    credential.add_argument("name", help="the credential's account name (e.g. replica-1)")
    _common(credential)
    credential.set_defaults(run=make_credential)
    promote_ = actions.add_parser(
        "promote", help="make a stopped replica a primary",
        description="Promote a stopped replica: its change log goes on under a new log id, so "
        "its next start (without --replica-of) takes writes. Stop the old primary first: "
        "two primaries of one node prefix diverge. Never automatic.",
    )  # fmt: skip
    _common(promote_)
    promote_.set_defaults(run=promote)


def _common(parser: argparse.ArgumentParser) -> None:
    add_data_dir_flag(parser, "the node's data directory")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def make_credential(args: argparse.Namespace) -> int:
    from registry.errors import IdnodeError
    from sync.replica.admin import create_credential

    store = _open(args.data_dir)
    if store is None:
        return EXIT_USAGE
    try:
        token = create_credential(store, args.name)
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    emit(
        args,
        {"name": args.name, "token": token},
        f"replication credential {args.name} (shown once; stored only hashed):\n  {token}\n"
        f"use it on the replica as: idnode serve --replica-of PRIMARY --replica-token <token>",
    )
    return 0


def promote(args: argparse.Namespace) -> int:
    from idnode.cli.status import running_node
    from idnode.node.master import node_file_path
    from registry.errors import IdnodeError
    from sync.replica.admin import promote as promote_store

    if running_node(node_file_path(args.data_dir)) is not None:
        print(
            f"idnode: a node is running on {args.data_dir}: stop it first (promotion is "
            "done on a stopped replica)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = _open(args.data_dir)
    if store is None:
        return EXIT_USAGE
    try:
        done = promote_store(store)
        with store.read() as txn:
            node_prefix = (store.get_meta(txn, "node_prefix") or b"").decode()
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    steps = PROMOTE_STEPS.format(
        data_dir=args.data_dir, node_prefix=node_prefix or "NODE_PREFIX", sequence=done.sequence
    )
    emit(
        args,
        {
            "node_prefix": node_prefix,
            "log_id": done.log_id,
            "parent_log_id": done.parent_log_id,
            "sequence": done.sequence,
        },
        f"promoted: the change log goes on after sequence {done.sequence} under log "
        f"{done.log_id} (continuing {done.parent_log_id})\n{steps}",
    )
    return 0


def _open(data_dir: str) -> Any:
    from registry.errors import IdnodeError
    from registry.store import Store

    if not os.path.exists(os.path.join(data_dir, "data.mdb")):
        print(f"idnode: no node data in {data_dir}", file=sys.stderr)
        return None
    try:
        return Store(data_dir)
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return None
