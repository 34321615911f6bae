"""A replica's writes: the primary's change-log entries verbatim, snapshots, credentials.

Each entry is written as the primary wrote it: the same sequence, operation, identifier
and commit time, the record or prefix it carries stored where the primary stored it,
and the entry itself borrowing its record from `records` as the primary's newest entry
of an identifier does (registry.changelog). The replica's store is thus laid out like
the primary's, and everything that follows a change log there (each worker's caches,
the DNS serial and IXFR, a further replica) follows it here unchanged.

Only the store's primitives are used (its databases, `changelog.supersede`,
`packing.encode`), never the registry's write rules: the primary applied those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from proto import handle_pb2, replica_pb2, sync_pb2
from registry import chaincopy, changelog, packing
from registry.chain import ChainError
from registry.changelog import RESTARTS_KEY, sequence_key
from registry.store import Store, WriteBatch
from resolver.dns import serial
from sync.replica import marks

_Op = handle_pb2.ChangeEntry.Operation
_WITH_RECORD = (_Op.CREATE, _Op.UPDATE)


class ApplyError(Exception):
    """What the primary sent cannot be applied here (out of order, malformed): the session
    ends and the next one starts from what the store holds."""


def apply_entries(
    store: Store,
    entries: Sequence[handle_pb2.ChangeEntry],
    checkpoints: Sequence[handle_pb2.Checkpoint] = (),
) -> int:
    """Write `entries` (consecutive, the first right after the store's last sequence) in
    one transaction, chained as the primary chained them, then keep the primary's
    `checkpoints` that hold for them (registry.chaincopy); returns the last sequence
    applied. Raises ApplyError."""

    def work(batch: WriteBatch) -> int:
        last = store.last_sequence(batch.txn)
        chained = chaincopy.Extender(batch.txn, store)
        try:
            for entry in entries:
                if entry.sequence != last + 1:
                    raise ApplyError(f"entry {entry.sequence} does not follow {last}")
                apply_entry(batch, entry)
                chained.applied(entry)
                last = entry.sequence
            chained.keep(checkpoints)
        except ChainError as error:
            raise ApplyError(str(error)) from None
        return last

    return store.write(work)


def apply_entry(batch: WriteBatch, entry: handle_pb2.ChangeEntry) -> None:
    """Write one entry and what it carries in `batch`'s transaction, with its own sequence."""
    store, txn = batch.store, batch.txn
    identifier = entry.identifier.encode()
    if not identifier:
        raise ApplyError(f"entry {entry.sequence} names no identifier")
    stored = handle_pb2.ChangeEntry()
    stored.CopyFrom(entry)
    operation = entry.operation
    if operation in _WITH_RECORD:
        changelog.supersede(txn, store, identifier)
        record = handle_pb2.Record(values=entry.record.values)
        txn.put(
            identifier, packing.encode(record, len(identifier), store.page_bytes), db=store.records
        )
        stored.ClearField("record")  # borrowed from `records`, as on the primary
    elif operation == _Op.DELETE:
        changelog.supersede(txn, store, identifier)
        txn.delete(identifier, db=store.borrowed)
        txn.delete(identifier, db=store.records)
    elif operation == _Op.ACCOUNT_PUT:
        pass  # logged only: the account with its secrets comes whole (replace_credentials)
    elif operation == _Op.PREFIX_PUT:
        if entry.prefix.prefix != entry.identifier:
            raise ApplyError(f"entry {entry.sequence} puts a prefix it does not name")
        txn.put(identifier, entry.prefix.SerializeToString(), db=store.prefixes)
    else:
        raise ApplyError(f"entry {entry.sequence} has unknown operation {int(operation)}")
    key = sequence_key(entry.sequence)
    txn.put(key, stored.SerializeToString(), db=store.changelog, append=True)
    if operation in _WITH_RECORD:
        txn.put(identifier, key, db=store.borrowed)
    txn.put(b"sequence", key, db=store.meta)
    batch.sequence = entry.sequence  # a write path that notes the sequence at commit agrees


class SnapshotApplier:
    """Makes the store equal a primary's snapshot, in place, chunk by chunk.

    Prefixes and then records arrive in key order; each chunk is merged in its own
    transaction: what the store holds between the previous key and the next is deleted,
    what differs is written. `finish` deletes what is left after the last key and starts
    the change log over at the snapshot's sequence. Until then the store is marked as
    being copied (readers of a half-merged store are told so by the node's health).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._last = {"prefixes": b"", "records": b""}
        self._records_started = False
        self.records = 0

    def chunk(self, chunk: sync_pb2.SnapshotChunk) -> None:
        """Merge one chunk. Raises ApplyError when keys are out of order."""
        if chunk.prefixes and self._records_started:
            raise ApplyError("snapshot sent a prefix after records")
        prefixes = [(p.prefix.encode(), p.SerializeToString()) for p in chunk.prefixes]
        page_bytes = self._store.page_bytes
        records = []
        for record in chunk.records:
            key = record.identifier.encode()
            stored = handle_pb2.Record(values=record.values)
            records.append((key, packing.encode(stored, len(key), page_bytes)))
        self._records_started = self._records_started or bool(records)

        def work(batch: WriteBatch) -> None:
            marks.put(batch, marks.COPYING, b"1")
            self._merge(batch, "prefixes", prefixes)
            self._merge(batch, "records", records)

        self._store.write(work)
        self.records += len(records)

    def finish(self, end: replica_pb2.SnapshotEnd, start: replica_pb2.FollowStart) -> None:
        """The copy is whole at `end.sequence`: drop what the snapshot did not hold, start the
        change log over there, adopt the primary's log and node prefix."""

        def work(batch: WriteBatch) -> None:
            store, txn = self._store, batch.txn
            served = store.last_sequence(txn)
            self._merge(batch, "prefixes", [], to_end=True)
            self._merge(batch, "records", [], to_end=True)
            txn.drop(store.changelog, delete=False)
            txn.drop(store.borrowed, delete=False)
            try:
                chaincopy.start_over(txn, store, end.sequence, _seed(end))
            except ChainError as error:
                raise ApplyError(str(error)) from None
            txn.put(b"sequence", sequence_key(end.sequence), db=store.meta)
            batch.sequence = end.sequence
            restarts = int(batch.get_meta(RESTARTS_KEY) or b"0") + 1
            batch.put_meta(RESTARTS_KEY, str(restarts).encode())
            serial.restart(batch, served, end.sequence)
            marks.adopt(batch, start, end.sequence, end.timestamp_ns)
            marks.delete(batch, marks.COPYING)

        self._store.write(work)

    def _merge(
        self, batch: WriteBatch, name: str, items: list[tuple[bytes, bytes]], to_end: bool = False
    ) -> None:
        """Make database `name` hold `items` from the last key merged on (`to_end`: and
        nothing after the last of them)."""
        db = getattr(self._store, name)
        txn = batch.txn
        last = self._last[name]
        for key, value in items:
            if key <= last:
                raise ApplyError(f"snapshot keys out of order in {name}")
            _delete_between(txn, db, last, key)
            if txn.get(key, db=db) != value:
                txn.put(key, value, db=db)
            last = key
        self._last[name] = last
        if to_end:
            _delete_between(txn, db, last, None)


def _seed(end: replica_pb2.SnapshotEnd) -> chaincopy.Seed | None:
    if not end.chain_previous:
        return None  # a primary that keeps no chain
    return chaincopy.Seed(end.chain_from, end.chain_previous, list(end.chain_hashes))


def _delete_between(txn: Any, db: Any, after: bytes, before: bytes | None) -> None:
    """Delete the keys of `db` strictly between `after` (b"": from the first) and `before`
    (None: to the end)."""
    with txn.cursor(db=db) as cursor:
        found = cursor.set_range(after) if after else cursor.first()
        if found and after and bytes(cursor.key()) == after:
            found = cursor.next()
        while found and (before is None or bytes(cursor.key()) < before):
            found = cursor.delete()  # moves to the next key


def replace_credentials(
    store: Store, accounts: Sequence[handle_pb2.Account], tokens: Sequence[replica_pb2.TokenEntry]
) -> None:
    """The replica's accounts and tokens become exactly the primary's."""

    def work(batch: WriteBatch) -> None:
        txn = batch.txn
        txn.drop(store.accounts, delete=False)
        txn.drop(store.tokens, delete=False)
        for account in accounts:
            batch.put_account(account)
        for token in tokens:
            batch.put_token(token.token_hash, token.account)

    store.write(work)


def credentials_digest(store: Store, txn: Any) -> bytes:
    """A digest of the accounts and tokens as `txn` sees them (what a replica must hold)."""
    digest = hashlib.sha256()
    for db in (store.accounts, store.tokens):
        for key, value in _items(txn, db):
            digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big"))
            digest.update(value)
        digest.update(b"\x00")
    return digest.digest()


def read_credentials(
    store: Store, txn: Any
) -> tuple[list[handle_pb2.Account], list[replica_pb2.TokenEntry]]:
    accounts = [handle_pb2.Account.FromString(value) for _, value in _items(txn, store.accounts)]
    tokens = [
        replica_pb2.TokenEntry(token_hash=key, account=value.decode())
        for key, value in _items(txn, store.tokens)
    ]
    return accounts, tokens


def _items(txn: Any, db: Any) -> Iterator[tuple[bytes, bytes]]:
    with txn.cursor(db=db) as cursor:
        for key, value in cursor:
            yield bytes(key), bytes(value)
