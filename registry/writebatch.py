"""One open write transaction: every change it makes is appended to the change log."""

from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING, Any

import lmdb

from proto import handle_pb2
from registry import chain, chainlog, changelog, packing

if TYPE_CHECKING:
    from registry.store import Store

_SEQ = struct.Struct(">Q")
_Op = handle_pb2.ChangeEntry.Operation
# The enum's members read once: each attribute read of a protobuf enum wrapper goes
# through a Python __getattr__ (0.7 µs), and put_encoded runs once per record written.
_CREATE, _UPDATE = _Op.CREATE, _Op.UPDATE
SEQUENCE_KEY = b"sequence"  # in `meta`: the newest change-log sequence
sequence_key = changelog.sequence_key


class WriteBatch:
    """One open write transaction; every change it makes is appended to the change log.

    `sequence` is the newest sequence so far. It goes to `meta` once, when the write ends
    (`finish`, which group commit calls), not once per change: code that logs a change and
    then needs the newest sequence in the same write reads `sequence`, not the store.
    """

    def __init__(self, store: Store, txn: lmdb.Transaction) -> None:
        self.store = store
        self.txn = txn
        self.sequence = store.last_sequence(txn)
        self._stored_sequence = self.sequence
        self.now_ns = time.time_ns()
        self._last_keys: dict[Any, bytes] = {}  # per database: no key sorts after this one
        # One entry per operation, refilled for each record written: a fresh message
        # per record cost five times as much (this runs once per record of an import).
        self._entries: dict[handle_pb2.ChangeEntry.Operation, handle_pb2.ChangeEntry] = {}

    def finish(self) -> None:
        """Note the newest sequence in `meta` (once per transaction, before its commit)."""
        if self.sequence != self._stored_sequence:
            put_sequence(self.store, self.txn, self.sequence)
            self._stored_sequence = self.sequence

    def get_record(self, key: str) -> handle_pb2.Record | None:
        return self.store.get_record(self.txn, key)

    def get_prefix(self, prefix: str) -> handle_pb2.PrefixInfo | None:
        return self.store.get_prefix(self.txn, prefix)

    def put_record(self, key: str, record: handle_pb2.Record, created: bool) -> int:
        """Store `record` under `key` and log it; returns the change's sequence."""
        stored = handle_pb2.Record()
        stored.values.extend(record.values)
        encoded = packing.encode(stored, len(key.encode()), self.store.page_bytes)
        return self.put_encoded(key, encoded, created)

    def put_encoded(self, key: str, encoded: bytes, created: bool, absent: bool = False) -> int:
        """Store a record already encoded for `records` (registry.packing) under `key`
        and log it; returns the change's sequence. `absent`: the caller has just seen
        that no record is stored under `key` (so no change-log entry borrows one)."""
        store, txn = self.store, self.txn
        identifier = key.encode()
        logged = store.options.changelog
        if logged and not absent:
            changelog.supersede(txn, store, identifier)
        self._put_sorted(store.records, identifier, encoded)
        if not logged:
            return 0
        # The entry borrows its record from `records` (registry.changelog).
        sequence = self.sequence = self.sequence + 1
        entry = self._entry(_CREATE if created else _UPDATE)
        entry.sequence = sequence
        entry.identifier = key
        sequence_bytes = _SEQ.pack(sequence)
        txn.put(sequence_bytes, entry.SerializeToString(), db=store.changelog, append=True)
        self._put_sorted(store.borrowed, identifier, sequence_bytes)
        return sequence

    def _entry(self, operation: handle_pb2.ChangeEntry.Operation) -> handle_pb2.ChangeEntry:
        entry = self._entries.get(operation)
        if entry is None:
            entry = handle_pb2.ChangeEntry(operation=operation, timestamp_ns=self.now_ns)
            self._entries[operation] = entry
        return entry

    def _put_sorted(self, db: Any, key: bytes, value: bytes) -> None:
        """Put, as an append when `key` sorts after every key of the database: LMDB then
        leaves full pages behind it, where a plain put splits them in half, so a bulk
        import in key order would fill its pages only half."""
        last = self._last_keys.get(db)
        if last is None:
            with self.txn.cursor(db=db) as cursor:
                last = bytes(cursor.key()) if cursor.last() else b""
        append = key > last
        self.txn.put(key, value, db=db, append=append)
        self._last_keys[db] = key if append else last

    def delete_record(self, key: str) -> int:
        identifier = key.encode()
        if self.store.options.changelog:
            changelog.supersede(self.txn, self.store, identifier)
            self.txn.delete(identifier, db=self.store.borrowed)
        self.txn.delete(identifier, db=self.store.records)
        return self._log(handle_pb2.ChangeEntry(operation=_Op.DELETE, identifier=key))

    def has_prefix_under(self, prefix: str) -> bool:
        """True when some hosted prefix lies under `prefix` (88.118.8.1 under 88.118.8)."""
        start = (prefix + ".").encode()
        with self.txn.cursor(db=self.store.prefixes) as cursor:
            return bool(cursor.set_range(start)) and bytes(cursor.key()).startswith(start)

    def put_prefix(self, info: handle_pb2.PrefixInfo) -> int:
        self.txn.put(info.prefix.encode(), info.SerializeToString(), db=self.store.prefixes)
        entry = handle_pb2.ChangeEntry(operation=_Op.PREFIX_PUT, identifier=info.prefix)
        entry.prefix.CopyFrom(info)
        return self._log(entry)

    def put_account(self, account: handle_pb2.Account) -> None:
        self.txn.put(account.name.encode(), account.SerializeToString(), db=self.store.accounts)

    def get_account(self, name: str) -> handle_pb2.Account | None:
        return self.store.get_account(self.txn, name)

    def put_token(self, token_hash: bytes, account_name: str) -> None:
        self.txn.put(token_hash, account_name.encode(), db=self.store.tokens)

    def delete_token(self, token_hash: bytes) -> None:
        self.txn.delete(token_hash, db=self.store.tokens)

    def tokens_of(self, account_name: str) -> list[bytes]:
        """The hashes of every token of an account (a scan: for administrative changes)."""
        wanted = account_name.encode()
        with self.txn.cursor(db=self.store.tokens) as cursor:
            return [bytes(key) for key, value in cursor if bytes(value) == wanted]

    def log_account(self, account: handle_pb2.Account) -> int:
        """Log that an account or its credentials changed (ACCOUNT_PUT, `account` as given:
        the caller leaves out every secret); returns the change's sequence."""
        entry = handle_pb2.ChangeEntry(operation=_Op.ACCOUNT_PUT, identifier=account.name)
        entry.account.CopyFrom(account)
        return self._log(entry)

    def put_meta(self, key: str, value: bytes) -> None:
        self.txn.put(key.encode(), value, db=self.store.meta)

    def get_meta(self, key: str) -> bytes | None:
        return self.store.get_meta(self.txn, key)

    def put_cursor(self, name: str, sequence: int) -> None:
        self.txn.put(name.encode(), sequence_key(sequence), db=self.store.cursors)

    def _log(self, entry: handle_pb2.ChangeEntry) -> int:
        if not self.store.options.changelog:
            return 0
        self.sequence += 1
        entry.sequence = self.sequence
        entry.timestamp_ns = self.now_ns
        key = sequence_key(self.sequence)
        self.txn.put(key, entry.SerializeToString(), db=self.store.changelog, append=True)
        return self.sequence

    def trim_changelog(self, keep_from: int, limit: int | None = None) -> int:
        """Drop change-log entries older than `keep_from`, at most `limit` of them, each
        chained first if the signer has not reached it yet (registry.chainlog); returns how
        many were dropped."""
        if chainlog.keeps_chain(self.txn, self.store):
            last_dropped = keep_from - 1
            if limit is not None:
                last_dropped = min(last_dropped, self.store.first_sequence(self.txn) + limit - 1)
            chained = chainlog.chained_to(self.txn, self.store)
            if chained < last_dropped and chainlog.never_chained(self.txn, self.store):
                # an import before the node's first start: the chain starts at the oldest
                # entry kept, as after an upgrade (no one has seen a chain hash yet)
                chainlog.put_origin(self.txn, self.store, last_dropped + 1, chain.GENESIS)
            elif chained < last_dropped:
                chainlog.build(self.txn, self.store, chained, last_dropped - chained)
        dropped = 0
        with self.txn.cursor(db=self.store.changelog) as cursor:
            while cursor.first() and _SEQ.unpack(cursor.key())[0] < keep_from:
                if limit is not None and dropped >= limit:
                    break
                changelog.forget(self.txn, self.store, bytes(cursor.value()), bytes(cursor.key()))
                cursor.delete()
                dropped += 1
        if dropped and self.store.checkpoints is not None:
            chainlog.trim(self.txn, self.store, self.store.first_sequence(self.txn))
        return dropped


def put_sequence(store: Store, txn: lmdb.Transaction, sequence: int) -> None:
    """Note `sequence` as the newest of the change log."""
    txn.put(SEQUENCE_KEY, sequence_key(sequence), db=store.meta)
