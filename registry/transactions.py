"""How the store lends transactions: the gate a map resize needs, read snapshots, errors."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import lmdb

from registry.errors import StoreError


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Where LMDB's exceptions become our own for reads (Store.transact and copy_to translate
    theirs where they also decide to grow the map or re-raise in the caller's thread)."""
    try:
        yield
    except lmdb.Error as error:
        raise StoreError(f"store error: {type(error).__name__}: {error}") from error


class Gate:
    """Readers and writers share the map; a resize needs it to itself (LMDB's rule)."""

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._active = 0
        self._resizing = False

    def enter(self) -> None:
        with self._lock:
            while self._resizing:
                self._lock.wait()
            self._active += 1

    def leave(self) -> None:
        with self._lock:
            self._active -= 1
            if self._resizing and self._active == 0:
                self._lock.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._lock:
            while self._resizing:
                self._lock.wait()
            self._resizing = True
            while self._active:
                self._lock.wait()
        try:
            yield
        finally:
            with self._lock:
                self._resizing = False
                self._lock.notify_all()


class Snapshot:
    """A read transaction as `Store.read()` lends it: get, cursor, stat, id, until the block
    ends. Then it lets go of the LMDB transaction: py-lmdb keeps a finished read
    transaction's reader slot for as long as the transaction object lives, so a reference
    kept past the block (a traceback a cache holds, whose frames hold the snapshot) would
    hold a slot, and a few hundred of them would leave no slot for any reader."""

    __slots__ = ("_txn", "cursor", "get", "id", "stat")
    get: Callable[..., Any]
    cursor: Callable[..., Any]
    stat: Callable[..., Any]
    id: Callable[[], int]  # LMDB's id of the snapshot's transaction

    def __init__(self, txn: lmdb.Transaction) -> None:
        self._txn: lmdb.Transaction | None = txn
        self.get, self.cursor, self.stat, self.id = txn.get, txn.cursor, txn.stat, txn.id

    def end(self) -> None:
        """Abort the transaction and drop every reference to it."""
        txn, self._txn = self._txn, None
        self.get = self.cursor = self.stat = self.id = _ended
        if txn is not None:
            txn.abort()


def _ended(*_args: Any, **_kwargs: Any) -> Any:
    raise StoreError("a read snapshot was used after its block ended")


# What the store's read methods take: a snapshot, or the transaction of a write.
Txn = Snapshot | lmdb.Transaction
