"""What a node may send the top-level node: its own prefix, its own identity, never older."""

from __future__ import annotations

from proto import handle_pb2, sync_pb2
from registry.errors import PermissionDenied, SyncRefused
from registry.identifier import is_under, parse, parse_prefix
from registry.nodekey import prefix_handle

RESET_HINT = "If this node rightly replaces it, an operator runs `idnode toplevel node reset {}`"

Op = handle_pb2.ChangeEntry.Operation


def check_identity(state: sync_pb2.NodeStatus, node_id: str) -> None:
    """Raise SyncRefused when the node prefix is homed to another identity (none yet: any)."""
    if state.node_id and node_id != state.node_id:
        raise SyncRefused(
            f"node prefix {state.node_prefix} is homed to node identity {state.node_id}, "
            f"not {node_id or 'a node without one'}: another node, or this one on a new data "
            f"dir; the mirror is kept. {RESET_HINT.format(state.node_prefix)}"
        )


def check_forward(state: sync_pb2.NodeStatus, log_id: str, sequence: int) -> None:
    """Raise SyncRefused for a snapshot of the held change log older than the mirror."""
    if state.log_id == log_id and sequence < state.acked_sequence:
        raise SyncRefused(
            f"this snapshot of node prefix {state.node_prefix} is at sequence {sequence}, "
            f"older than the mirror's {state.acked_sequence} (a restored backup?); "
            f"the mirror is kept. {RESET_HINT.format(state.node_prefix)}"
        )


def check_owned(node_prefix: str, entry: handle_pb2.ChangeEntry) -> None:
    """Raise PermissionDenied for an entry outside the node prefix."""
    if entry.operation == Op.PREFIX_PUT:
        check_prefix(node_prefix, entry.prefix.prefix)
    elif entry.operation == Op.ACCOUNT_PUT:
        for prefix in entry.account.prefixes:  # the node's administrator owns none
            check_prefix(node_prefix, prefix)
    else:
        check_identifier(node_prefix, entry.identifier)


def check_identifier(node_prefix: str, identifier: str) -> None:
    """Under the node prefix, or the node's own prefix record (0.NA/<node prefix>: its key)."""
    parsed = parse(identifier)
    if not is_under(parsed.prefix, node_prefix) and str(parsed) != prefix_handle(node_prefix):
        raise PermissionDenied(f"node {node_prefix} may not write {identifier}")


def check_prefix(node_prefix: str, prefix: str) -> None:
    if not is_under(parse_prefix(prefix), node_prefix):
        raise PermissionDenied(f"node {node_prefix} may not write prefix {prefix}")
