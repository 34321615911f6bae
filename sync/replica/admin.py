"""An operator's replication actions on a node's own store: replication credentials, and
promoting a stopped replica to a primary."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from proto import handle_pb2
from registry import accounts
from registry.errors import InvalidRequest
from registry.identity import LOG_ID_KEY, NODE_ID_HEX_CHARS
from registry.store import Store, WriteBatch
from sync.replica import marks

_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
REPLICA_ROLE = handle_pb2.Account.Role.REPLICA


def create_credential(store: Store, name: str) -> str:
    """A new replication credential named `name` on a primary; returns its token (stored
    only hashed). Raises InvalidRequest for a bad or taken name, or on a replica's store
    (its accounts are its primary's)."""
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"credential name {name[:40]!r} must be 1-63 of a-z, 0-9, '.', '-' (a letter or "
            "digit first)"
        )
    token = accounts.new_token()

    def work(batch: WriteBatch) -> None:
        if batch.get_meta(marks.ROLE_KEY) == marks.REPLICA:
            raise InvalidRequest("this is a replica's store: create the credential on its primary")
        if batch.get_account(name) is not None:
            raise InvalidRequest(f"an account named {name!r} exists already")
        batch.put_account(
            handle_pb2.Account(name=name, role=REPLICA_ROLE, created=int(time.time()))
        )
        batch.put_token(accounts.token_hash(token), name)

    store.write(work)
    return token


@dataclass(frozen=True, slots=True)
class Promotion:
    parent_log_id: str  # the primary's log this one continues
    sequence: int  # up to this sequence the two logs are the same entries
    log_id: str  # the new primary's log


def promote(store: Store) -> Promotion:
    """Make a replica's store a primary's: writes are taken from the next start on.

    The change log goes on under a new log id (a write here must never be taken for
    the old primary's write of the same sequence), noting the old log and how far the
    two agree, so the old primary's other replicas that are not ahead continue from
    here without a new copy. Raises InvalidRequest when the store is not a replica's
    whole copy."""

    def work(batch: WriteBatch) -> Promotion:
        store, txn = batch.store, batch.txn
        if not marks.is_replica(store, txn):
            raise InvalidRequest("this data dir is not a replica's: nothing to promote")
        if marks.is_copying(store, txn):
            raise InvalidRequest("this replica is half-way through a copy: it cannot be promoted")
        held = marks.position(store, txn)
        if not held.log_id:
            raise InvalidRequest("this replica never copied its primary: nothing to promote")
        made = secrets.token_hex(NODE_ID_HEX_CHARS // 2)
        marks.put_parent(batch, marks.Parent(held.log_id, held.sequence))
        batch.put_meta(LOG_ID_KEY, made.encode())
        for key in (marks.ROLE_KEY, marks.PRIMARY_KEY):
            marks.delete(batch, key)
        return Promotion(held.log_id, held.sequence, made)

    return store.write(work)
