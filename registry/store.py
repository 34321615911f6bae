"""The LMDB store: one environment, named databases, the change log written in every write."""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import lmdb

from proto import handle_pb2
from registry import changelog, packing, storefile, transactions, upgrade
from registry.errors import StoreError
from registry.groupcommit import GroupCommit
from registry.transactions import Snapshot
from registry.transactions import Txn as Txn  # what the read methods take
from registry.writebatch import SEQUENCE_KEY
from registry.writebatch import WriteBatch as WriteBatch  # where the store's users find it

T = TypeVar("T")
log = logging.getLogger("registry.store")

DEFAULT_MAP_SIZE_BYTES = 1 << 30
MAX_DBS = 16
# 2: the newest change of an identifier borrows its record (registry.changelog); a build
# that reads 1 would pass such entries on empty, so it must refuse a store at 2.
# 3: credentials have a life (registry.credentials): expiry, grace and scrypt-hashed tokens
# a build that reads 2 would not enforce, so it must refuse a store at 3.
# 4: the change log's SM3 hash chain and signed checkpoints (registry.chainlog), which a
# build that reads 3 would leave behind as the log grows.
SCHEMA_VERSION = b"4"
# schema -> the next; registry.upgrade makes a backup first and does the work of the
# steps that add data (3 -> 4 chains every entry kept).
_UPGRADES = {b"1": b"2", b"2": b"3", b"3": b"4"}
CHANGELOG_KEY = "changelog"
CHANGELOG_OFF = b"off"

_SEQ = struct.Struct(">Q")
sequence_key = changelog.sequence_key


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How the environment is opened."""

    map_size_bytes: int = DEFAULT_MAP_SIZE_BYTES
    durable: bool = True  # fsync on every commit; False risks the last commits on power loss
    max_readers: int = 512
    readonly: bool = False
    # False only for a store nothing follows (the top-level node's mirror): writes
    # then leave no change-log entries and return sequence 0.
    changelog: bool = True


@contextlib.contextmanager
def _opening(path: str) -> Iterator[None]:
    """Where opening the environment fails: one line naming the data dir and the cause."""
    try:
        yield
    except lmdb.Error as error:
        cause = str(error.args[0]) if error.args else type(error).__name__
        cause = cause.removeprefix(f"{path}: ")
        raise StoreError(f"data dir {path}: cannot open the store: {cause}") from error


class Store:
    """One LMDB environment with the node's named databases.

    Open it in the process that uses it, never before a fork. Every write goes
    through `write()`, which appends to the change log in the same transaction.
    """

    def __init__(self, path: str, options: StoreOptions = StoreOptions()) -> None:
        self.path = path
        self.options = options
        self.closed = False
        self._gate = transactions.Gate()
        self._space = storefile.SpaceAlarm(path)
        self._group = GroupCommit(self)
        storefile.prepare(path, create=not options.readonly)
        with _opening(path):
            map_size = options.map_size_bytes
            for _attempt in range(32):
                try:
                    self._open(path, options, map_size)
                    break
                except lmdb.MapResizedError:
                    # Another process grew the data past the size this one opened with:
                    # adopt the size that process recorded (0: take it from the file).
                    map_size = 0
            else:
                raise StoreError(f"data dir {path}: the map kept growing while it was opened")
        if not options.readonly:
            try:
                storefile.make_private(path)
                storefile.reserve_lock_file(path)
                self._check_schema()
            except BaseException:
                self.env.close()
                raise

    def _open(self, path: str, options: StoreOptions, map_size: int) -> None:
        self.env = lmdb.open(
            path,
            map_size=map_size,
            max_dbs=MAX_DBS,
            sync=options.durable,
            metasync=options.durable,
            readonly=options.readonly,
            max_readers=options.max_readers,
            readahead=False,
            subdir=True,
            mode=storefile.FILE_MODE,
        )
        try:
            self._open_dbs(create=not options.readonly)
        except BaseException:
            self.env.close()
            raise
        self.page_bytes = int(self.env.stat()["psize"])

    def _open_dbs(self, create: bool) -> None:
        self.records = self.env.open_db(b"records", create=create)
        self.prefixes = self.env.open_db(b"prefixes", create=create)
        self.accounts = self.env.open_db(b"accounts", create=create)
        self.tokens = self.env.open_db(b"tokens", create=create)
        self.changelog = self.env.open_db(b"changelog", create=create)
        self.borrowed: Any = None  # read-only at schema 1: no entry borrows its record
        with contextlib.suppress(lmdb.NotFoundError):
            self.borrowed = self.env.open_db(b"borrowed", create=create)
        self.cursors = self.env.open_db(b"cursors", create=create)
        self.meta = self.env.open_db(b"meta", create=create)
        # None below schema 4 (no chain yet): made by create_chain_dbs once the schema is
        # known, so that the backup made before an upgrade is the older store untouched.
        self.chain: Any = None
        self.checkpoints: Any = None
        with contextlib.suppress(lmdb.NotFoundError):
            self.chain = self.env.open_db(b"chain", create=False)
            self.checkpoints = self.env.open_db(b"checkpoints", create=False)

    def create_chain_dbs(self) -> None:
        """Make the chain's databases (a new store, or the upgrade to schema 4)."""
        if self.chain is None:
            self.chain = self.env.open_db(b"chain", create=True)
            self.checkpoints = self.env.open_db(b"checkpoints", create=True)

    def schema(self) -> bytes | None:
        """The store's schema version (None: a new store). Raises StoreError for one this
        build cannot read: written by a newer idnode."""
        with self.read() as txn:
            found = self.get_meta(txn, "schema")
        if found is not None and found != SCHEMA_VERSION and found not in _UPGRADES:
            raise StoreError(
                f"data dir {self.path} has schema version {found.decode()}, this build "
                f"reads {SCHEMA_VERSION.decode()}: it was written by a newer idnode; run "
                "that version, or restore a backup made for this one"
            )
        return found

    def _check_schema(self) -> None:
        found = self.schema()
        if found is not None and found != SCHEMA_VERSION:
            upgrade.run(self, found, _UPGRADES)
        self.create_chain_dbs()

        def work(batch: WriteBatch) -> None:  # through write(): it adopts or grows the map
            if batch.get_meta("schema") is None:
                batch.put_meta("schema", SCHEMA_VERSION)
            if not self.options.changelog and batch.get_meta(CHANGELOG_KEY) != CHANGELOG_OFF:
                batch.put_meta(CHANGELOG_KEY, CHANGELOG_OFF)  # so that `verify` expects none

        self.write(work)

    def close(self) -> None:
        self.closed = True
        self.env.close()

    # Transactions -----------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Snapshot]:
        """A read-only snapshot; adopts a map grown by another process.

        The snapshot lets go of its LMDB transaction when the block ends, so that a
        reference kept to it cannot hold a reader slot (see `Snapshot`).
        """
        self._gate.enter()
        try:
            with transactions.translated():
                try:
                    snapshot = Snapshot(self.env.begin(buffers=False))
                except lmdb.MapResizedError:
                    self._gate.leave()
                    try:
                        self._adopt_map_size()
                    finally:
                        self._gate.enter()  # the outer finally leaves it exactly once
                    snapshot = Snapshot(self.env.begin(buffers=False))
            try:
                with transactions.translated():
                    yield snapshot
            finally:
                snapshot.end()
        finally:
            self._gate.leave()

    def read_record(self, key: str) -> handle_pb2.Record | None:
        """`get_record` in a snapshot of its own, for a lookup per request: the same gate
        and errors as `read()` without its context managers (~3 us of a ~4 us read).
        Raises StoreError."""
        self._gate.enter()
        try:
            txn = self.env.begin(buffers=False)
        except lmdb.Error:
            self._gate.leave()
            with self.read() as snapshot:  # adopts a map grown by another process, or raises
                return self.get_record(snapshot, key)
        try:
            raw = txn.get(key.encode(), db=self.records)
        except lmdb.Error as error:
            raise StoreError(f"store error: {type(error).__name__}: {error}") from error
        finally:
            txn.abort()
            del txn  # a traceback kept of this frame must not hold the reader slot (Snapshot)
            self._gate.leave()
        # Decoded once the transaction is gone: a DecodeError's traceback holds no frame
        # that holds it.
        return packing.decode(raw) if raw is not None else None

    def write(self, work: Callable[[WriteBatch], T]) -> T:
        """Run `work` in a write transaction; return its result once that is committed.

        Writes from several threads that arrive while a commit is in flight share the
        next transaction, each in a nested one of its own (registry.groupcommit): an
        exception from `work` fails its own write alone, and reaches its caller. The map
        grows and `work` runs again when the store is full, so `work` must have no
        effect outside the transaction. Raises StoreOutOfSpace when the disk is full,
        StoreError when LMDB fails otherwise.
        """
        return self._group.write(work)

    def transact(self, body: Callable[[lmdb.Transaction], T]) -> T:
        """Run `body` in one LMDB write transaction and commit it (for the group commit).

        Grows the map, or adopts one another process grew, and runs `body` again; LMDB's
        other failures become StoreOutOfSpace or StoreError.
        """
        for _attempt in range(32):
            self._gate.enter()
            grow = adopt = False
            try:
                txn = self.env.begin(write=True)
            except lmdb.MapResizedError:
                self._gate.leave()
                self._adopt_map_size()
                continue
            except lmdb.Error as error:
                self._gate.leave()
                raise self.refused(error) from error
            try:
                result = body(txn)
                txn.commit()
                self._space.committed()
                return result
            except lmdb.MapFullError:
                txn.abort()
                grow = True
            except lmdb.MapResizedError:
                txn.abort()
                adopt = True
            except lmdb.Error as error:
                txn.abort()
                raise self.refused(error) from error
            except BaseException:
                txn.abort()
                raise
            finally:
                self._gate.leave()
            if grow:
                self._grow()
            elif adopt:
                self._adopt_map_size()
        raise StoreError("store could not grow its map to fit the write")

    def refused(self, error: lmdb.Error) -> StoreError:
        """The domain error for a write LMDB refused with `error` (StoreOutOfSpace for a
        full disk, logged and counted; StoreError otherwise)."""
        return self._space.failed(error)

    def _grow(self) -> None:
        with self._gate.exclusive(), transactions.translated():
            size = self.env.info()["map_size"]
            self.env.set_mapsize(size * 2)

    def _adopt_map_size(self) -> None:
        with self._gate.exclusive(), transactions.translated():
            self.env.set_mapsize(0)

    # Reads ------------------------------------------------------------------

    def last_txn_id(self) -> int:
        """LMDB's last committed transaction id: a cheap "has anything changed?" probe."""
        return int(self.env.info()["last_txnid"])

    def keeps_changelog(self, txn: Txn) -> bool:
        """False for a store written without a change log (the top-level node's mirror)."""
        return txn.get(CHANGELOG_KEY.encode(), db=self.meta) != CHANGELOG_OFF

    def last_sequence(self, txn: Txn) -> int:
        """The newest change-log sequence, 0 when nothing was ever written."""
        raw = txn.get(SEQUENCE_KEY, db=self.meta)
        return _SEQ.unpack(raw)[0] if raw else 0

    def first_sequence(self, txn: Txn) -> int:
        """The oldest sequence the change log still keeps (last + 1 when empty)."""
        with txn.cursor(db=self.changelog) as cursor:
            if cursor.first():
                return int(_SEQ.unpack(cursor.key())[0])
        return self.last_sequence(txn) + 1

    def changes_since(
        self, txn: Txn, after: int, limit: int | None = None
    ) -> Iterator[handle_pb2.ChangeEntry]:
        """Change-log entries with sequence > `after`, oldest first, each with the record
        after its change."""
        with txn.cursor(db=self.changelog) as cursor:
            if not cursor.set_range(sequence_key(after + 1)):
                return
            for count, (_key, value) in enumerate(cursor, start=1):
                entry = handle_pb2.ChangeEntry.FromString(bytes(value))
                yield changelog.complete(txn, self, entry)
                if limit is not None and count >= limit:
                    return

    def get_record(self, txn: Txn, key: str) -> handle_pb2.Record | None:
        raw = txn.get(key.encode(), db=self.records)
        return packing.decode(bytes(raw)) if raw is not None else None

    def get_prefix(self, txn: Txn, prefix: str) -> handle_pb2.PrefixInfo | None:
        raw = txn.get(prefix.encode(), db=self.prefixes)
        return handle_pb2.PrefixInfo.FromString(bytes(raw)) if raw is not None else None

    def iter_prefixes(self, txn: Txn) -> Iterator[handle_pb2.PrefixInfo]:
        with txn.cursor(db=self.prefixes) as cursor:
            for _key, value in cursor:
                yield handle_pb2.PrefixInfo.FromString(bytes(value))

    def iter_records(
        self, txn: Txn, start: bytes = b"", stop_prefix: bytes = b""
    ) -> Iterator[tuple[str, handle_pb2.Record]]:
        """Records in key order from `start`, while keys begin with `stop_prefix`."""
        with txn.cursor(db=self.records) as cursor:
            if not cursor.set_range(start):
                return
            for raw_key, value in cursor:
                key = bytes(raw_key)  # bytes already (buffers=False): no copy, for the types
                if not key.startswith(stop_prefix):
                    return
                yield key.decode(), packing.decode(bytes(value))

    def record_count(self, txn: Txn) -> int:
        return int(txn.stat(self.records)["entries"])

    def size_bytes(self) -> int:
        """Bytes of the map in use (pages up to the last one written)."""
        info = self.env.info()
        return int((info["last_pgno"] + 1) * self.env.stat()["psize"])

    def map_size_bytes(self) -> int:
        return int(self.env.info()["map_size"])

    def get_account(self, txn: Txn, name: str) -> handle_pb2.Account | None:
        raw = txn.get(name.encode(), db=self.accounts)
        return handle_pb2.Account.FromString(bytes(raw)) if raw is not None else None

    def iter_accounts(self, txn: Txn, start: str = "") -> Iterator[handle_pb2.Account]:
        """Accounts in name order from `start`."""
        with txn.cursor(db=self.accounts) as cursor:
            if not cursor.set_range(start.encode()):
                return
            for _key, value in cursor:
                yield handle_pb2.Account.FromString(bytes(value))

    def get_cursor(self, txn: Txn, name: str) -> int:
        raw = txn.get(name.encode(), db=self.cursors)
        return _SEQ.unpack(raw)[0] if raw else 0

    def get_meta(self, txn: Txn, key: str) -> bytes | None:
        value = txn.get(key.encode(), db=self.meta)
        return bytes(value) if value is not None else None

    def copy_to(self, dest: str, progress: Callable[[int, int], None] | None = None) -> None:
        """A consistent, compacted copy into the empty directory `dest`, while serving; the
        copy is as private as the store (a directory this makes 0700, the file 0600)."""
        if not os.path.exists(dest):
            os.makedirs(dest, mode=storefile.DIR_MODE)
            os.chmod(dest, storefile.DIR_MODE)
        expected = max(self.size_bytes(), 1)
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            # A reader for the whole copy: a map resize in this process waits for it.
            self._gate.enter()
            try:
                self.env.copy(dest, compact=True)
            except BaseException as error:  # re-raised in the caller's thread
                failure.append(error)
            finally:
                self._gate.leave()
                done.set()

        worker = threading.Thread(target=run, name="backup", daemon=True)
        worker.start()
        target = os.path.join(dest, "data.mdb")
        while not done.wait(0.2):
            if progress and os.path.exists(target):
                progress(min(os.path.getsize(target), expected), expected)
        worker.join()
        storefile.make_private(dest)
        if failure:
            if isinstance(failure[0], lmdb.Error):
                raise StoreError(f"backup failed: {failure[0]}") from failure[0]
            raise failure[0]
        if progress:
            progress(expected, expected)


def describe(store: Store) -> dict[str, Any]:
    """Store facts for status output and metrics."""
    with store.read() as txn:
        return {
            "identifiers": store.record_count(txn),
            "sequence": store.last_sequence(txn),
            "first_sequence": store.first_sequence(txn),
            "size_bytes": store.size_bytes(),
            "map_size_bytes": store.map_size_bytes(),
        }
