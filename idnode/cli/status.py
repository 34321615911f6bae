"""`idnode status`: a node's change log, upward sync position, lag and upstream health."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from idnode.cli.local import add_data_dir_flag
from idnode.cli.output import EXIT_USAGE, emit
from sync import status as sync_status

HEALTH_WORDS = ("ok", "unreachable", "failing", "refused", "unknown", "none")
"""What `health` can say: syncing fine; upstream does not answer; upstream answers but the
sync fails; upstream refuses this node's copy (another node identity holds the node prefix,
or the copy is older than its mirror: an operator decides); not known (the node is not
running, or its last report is old); no upstream."""
STALE_REPORT_SECONDS = 10.0


def add_parsers(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="sync position, lag and upstream health of a node",
        description="Show a node's upward sync from its data dir: the change-log sequence, "
        "what the upstream acknowledged, how far behind it is, and the upstream's health, one "
        f"of: {', '.join(HEALTH_WORDS)} (with a detail line saying why).",
    )  # fmt: skip
    add_data_dir_flag(status, "the node's data directory")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(run=show)


def show(args: argparse.Namespace) -> int:
    from idnode.node.master import node_file_path
    from idnode.node.upstream import status_path
    from registry.errors import IdnodeError
    from registry.store import Store, StoreOptions
    from sync.pusher import CURSOR
    from sync.replica import marks

    if not os.path.exists(os.path.join(args.data_dir, "data.mdb")):
        print(f"idnode: no node data in {args.data_dir}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = Store(args.data_dir, StoreOptions(readonly=True))
    except IdnodeError as error:
        print(f"idnode: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with store.read() as txn:
            last = store.last_sequence(txn)
            acked = store.get_cursor(txn, CURSOR)
            pending = next(store.changes_since(txn, acked, 1), None)
            node_prefix = (store.get_meta(txn, "node_prefix") or b"").decode()
            replica = marks.is_replica(store, txn)
    finally:
        store.close()
    running = running_node(node_file_path(args.data_dir))
    if replica:
        return _show_replica(args, node_prefix, running, last)
    upstream = _upstream(running, status_path(args.data_dir), synced_before=acked > 0)
    document: dict[str, Any] = {
        "node_prefix": node_prefix,
        "running": running is not None,
        "last_sequence": last,
        "upstream": upstream,
    }
    text = f"node {node_prefix} ({'running' if running else 'not running'}): change log at {last}"
    if upstream["health"] != "none":
        lag = max(0.0, time.time() - pending.timestamp_ns / 1e9) if pending is not None else 0.0
        document.update(
            acked_sequence=acked, pending_entries=max(0, last - acked), lag_seconds=round(lag, 3)
        )
        text += f", upstream acknowledged {acked} ({last - acked} pending, lag {lag:.1f} s)"
    text += f"\nupstream {upstream['address'] or '(none)'}: {upstream['health']}"
    text += f" — {upstream['detail']}" if upstream["detail"] else ""
    if upstream.get("failures"):
        text += (
            f"\n{upstream['failures']} failures in a row over {upstream['failing_seconds']} s; "
            f"next try {upstream['retry_in_seconds']:.1f} s after the last"
        )
    emit(args, document, text)
    return 0


def _show_replica(
    args: argparse.Namespace, node_prefix: str, running: dict[str, Any] | None, last: int
) -> int:
    """A replica: whom it follows, how far it has applied, its lag and state."""
    from idnode.node.replicas import status_path
    from sync.replica import status as replica_status

    noted = replica_status.read(status_path(args.data_dir))
    age = time.time() - float(noted.get("updated", 0))
    state = str(noted.get("state", "")) if running and age <= STALE_REPORT_SECONDS else "unknown"
    document: dict[str, Any] = {
        "node_prefix": node_prefix,
        "running": running is not None,
        "role": "replica",
        "primary": str(noted.get("primary") or (running or {}).get("replica_of") or ""),
        "state": state,
        "last_sequence": last,
        "applied_sequence": last,
        "primary_sequence": int(noted.get("primary_sequence", last)),
        "lag_seconds": noted.get("lag_seconds") if state != "unknown" else None,
        "node_id": noted.get("node_id", ""),
    }
    for key in ("error", "failures", "retry_in_seconds"):
        if key in noted and state in ("connecting", "failing"):
            document[key] = noted[key]
    text = (
        f"replica of {document['primary'] or '(unknown)'} for node {node_prefix} "
        f"({'running' if running else 'not running'}): {state}\n"
        f"applied {last} of the primary's {document['primary_sequence']}"
    )
    if document["lag_seconds"] is not None:
        text += f", lag {float(document['lag_seconds']):.1f} s"
    if document.get("error"):
        text += f"\n{document.get('failures', 0)} failures in a row: {document['error']}"
    emit(args, document, text)
    return 0


def running_node(path: str) -> dict[str, Any] | None:
    """The running master's self-description, or None when no node runs on the data dir."""
    try:
        with open(path) as handle:
            described: dict[str, Any] = json.load(handle)
        os.kill(int(described["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return described


def _upstream(running: dict[str, Any] | None, path: str, synced_before: bool) -> dict[str, Any]:
    """The upstream's health word and why, from the running pusher's last words."""
    if running is not None and not running.get("upstream"):
        return {"address": "", "health": "none", "detail": "no upstream configured"}
    try:
        with open(path) as handle:
            noted: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        noted = {}
    address = str(noted.get("upstream") or (running or {}).get("upstream") or "")
    if running is None:
        if not synced_before and not noted:
            return {"address": "", "health": "none", "detail": "no upstream configured"}
        return {"address": address, "health": "unknown", "detail": "the node is not running"}
    age = time.time() - float(noted.get("updated", 0))
    state = str(noted.get("state", ""))
    error = str(noted.get("error", ""))
    if not noted or age > STALE_REPORT_SECONDS:
        detail = f"no report from the sync for {age:.0f} s" if noted else "no report yet"
        return {"address": address, "health": "unknown", "detail": detail}
    last_ok = noted.get("last_ok")
    found: dict[str, Any] = {
        "address": address,
        "state": state,
        "node_id": noted.get("node_id", ""),
        "last_ok_seconds_ago": round(time.time() - last_ok, 1) if last_ok else None,
    }
    if state in sync_status.OK_STATES:
        return {**found, "health": "ok", "detail": ""}
    failing_since = noted.get("failing_since")
    found.update(
        failures=int(noted.get("failures", 0)),
        failing_seconds=round(time.time() - failing_since, 1) if failing_since else None,
        retry_in_seconds=noted.get("retry_in_seconds"),
    )
    if state == sync_status.REFUSED_STATE:
        return {**found, "health": "refused", "detail": error}
    if noted.get("code") in sync_status.UNREACHABLE_CODES:
        return {**found, "health": "unreachable", "detail": error}
    # Reachable, but failing: a wrong credential, a homing missing, a refused message…
    return {**found, "health": "failing", "detail": error or state}
