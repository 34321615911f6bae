"""Group commit: a process's writes that arrive while a commit is in flight share the next one.

A durable commit waits for the disk (two fsyncs, a millisecond or more here) and LMDB has
one writer at a time, so one commit per request caps a node near a thousand writes a
second however many callers wait. Here every write queues; the first writer to find no
commit in flight leads: it takes the queue (its own write first), runs the writes in one
LMDB write transaction, commits once, then hands the lead to the oldest write that queued
meanwhile and wakes the writers of its group, who sleep on a lock of their own until then.
No thread is started and nothing polls: a write that finds nothing in flight commits at
once, alone.

Every write is acknowledged (its call returns) only after the commit that holds it. A
write that raises fails alone: the group runs again with each write in a nested
transaction, the failing one's is aborted, its caller gets its own exception, the rest of
the group commits. A group that finds the map full runs again, all of it, in a larger
map; a commit the disk refuses fails every write of the group with that error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import lmdb

import metrics
from registry.errors import StoreError
from registry.writebatch import WriteBatch

if TYPE_CHECKING:
    from registry.store import Store

T = TypeVar("T")
MAX_GROUP_WRITES = 64  # per commit; more would only make the group's writers wait longer

_GROUP_SIZES = metrics.LocalHistogram(metrics.STORE_COMMIT_WRITES, ())
metrics.on_flush(_GROUP_SIZES.flush)


class _Write(Generic[T]):
    """One queued write, its outcome, and the lock its writer sleeps on."""

    __slots__ = ("done", "error", "result", "wake", "work")

    def __init__(self, work: Callable[[WriteBatch], T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Lock()
        self.wake.acquire()  # released by the leader: done, or lead now

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set when no error was


class GroupCommit:
    """Commits the writes of the threads of one process in groups (module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._queue: list[_Write[Any]] = []
        self._leading = False  # a commit is in flight, or its successor is about to start
        self._leader = 0  # the thread running the group in flight (0: none)

    @property
    def queued(self) -> int:
        """Writes waiting for a commit to take them (the one in flight excluded)."""
        with self._lock:
            return len(self._queue)

    def write(self, work: Callable[[WriteBatch], T]) -> T:
        """Run `work` in a write transaction shared with the writes queued beside it; return
        its result, or raise its exception, once the transaction is committed.

        `work` may run more than once (when the map grows) and in another thread: it must
        have no effect outside the transaction. Raises StoreError when called from inside
        a `work` (it would wait for its own commit).
        """
        if self._leader == threading.get_ident():
            raise StoreError("a write inside a write: it would wait for its own commit")
        write = _Write(work)
        with self._lock:
            self._queue.append(write)
            follower = self._leading
            self._leading = True
        if follower:
            write.wake.acquire()
            if write.done:
                return write.outcome()
        self._lead()
        return write.outcome()

    def _lead(self) -> None:
        with self._lock:
            group = self._queue[:MAX_GROUP_WRITES]
            del self._queue[:MAX_GROUP_WRITES]
        self._leader = threading.get_ident()
        try:
            self._commit(group)
        finally:
            self._leader = 0
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            if successor is not None:
                successor.wake.release()  # not done: it leads the next group
            for write in group:
                write.done = True
                write.wake.release()

    def _commit(self, group: list[_Write[Any]]) -> None:
        """Run and commit `group`; every write ends with a result or an error.

        The writes first run side by side in the transaction itself; only when one of
        them raises does the group run again, each write in a nested transaction (LMDB
        allocates ~3 MB for each, about 12 us here, which most groups never need)."""
        store = self._store
        try:
            try:
                store.transact(lambda txn: _together(store, txn, group))
            except _Isolate:
                store.transact(lambda txn: _nested(store, txn, group))
        except BaseException as error:
            for write in group:
                if write.error is None:
                    write.result, write.error = None, error
            return
        _GROUP_SIZES.observe(len(group))


_REGROW = (lmdb.MapFullError, lmdb.MapResizedError)  # Store.transact grows or adopts the map


class _Isolate(Exception):
    """A write of a group raised: the group runs again with each write isolated."""


def _together(store: Store, txn: lmdb.Transaction, group: list[_Write[Any]]) -> None:
    """Every write in the transaction itself; a write alone that raises aborts it with
    nothing else in it, and gets its own error. Each write notes its newest sequence in
    `meta` as it ends, so the next one reads the store as if the first had committed."""
    for write in group:
        batch = WriteBatch(store, txn)
        try:
            write.result, write.error = write.work(batch), None
        except _REGROW:
            raise  # the whole group runs again, in a map that fits it
        except Exception as error:
            if len(group) == 1:
                raise
            raise _Isolate from error
        batch.finish()


def _nested(store: Store, txn: lmdb.Transaction, group: list[_Write[Any]]) -> None:
    """Each write in a nested transaction of `txn`, so that one that raises fails alone."""
    for write in group:
        write.result, write.error = None, None  # from an earlier run (the map grew)
        child = store.env.begin(write=True, parent=txn)
        try:
            batch = WriteBatch(store, child)
            result = write.work(batch)
            batch.finish()
        except _REGROW:
            child.abort()
            raise
        except lmdb.Error as error:
            child.abort()
            write.error = store.refused(error)  # what LMDB refused in this write alone
            continue
        except Exception as error:
            child.abort()
            write.error = error
            continue
        except BaseException:
            child.abort()
            raise
        child.commit()
        write.result = result
