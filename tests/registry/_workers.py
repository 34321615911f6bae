"""Entry points for the processes the concurrency tests spawn; each opens its own store."""

from __future__ import annotations

import time
from multiprocessing.synchronize import Barrier, Event

from proto import handle_pb2
from registry import accounts
from registry.registry import Registry
from registry.store import Store, StoreOptions, WriteBatch

SHARED = "88.118/shared"


def record(data: str) -> handle_pb2.Record:
    return handle_pb2.Record(
        values=[handle_pb2.HandleValue(index=1, type="URL", data=data.encode(), ttl=60)]
    )


def put(store: Store, key: str, data: str) -> int:
    def work(batch: WriteBatch) -> int:
        created = batch.get_record(key) is None
        return batch.put_record(key, record(data), created=created)

    return store.write(work)


def delete(store: Store, key: str) -> int:
    def work(batch: WriteBatch) -> int:
        return batch.delete_record(key)

    return store.write(work)


def writes_per_worker(count: int) -> int:
    """How many change-log entries `write_records` makes."""
    return 2 * count + count // 5


def write_records(path: str, worker: int, count: int, map_size_bytes: int, start: Barrier) -> None:
    """Create `count` records, update a record every worker shares, delete every fifth one."""
    store = Store(path, StoreOptions(map_size_bytes=map_size_bytes, durable=False))
    start.wait(timeout=60)  # both processes have the store open: now write at the same time
    padding = "p" * 300  # so that a small map fills and grows while both processes write
    try:
        for i in range(count):
            put(store, f"88.118/w{worker}-{i}", f"{worker}-{i}-{padding}")
            put(store, SHARED, f"{worker}-{i}")
            if i % 5 == 4:
                delete(store, f"88.118/w{worker}-{i - 2}")
            time.sleep(0.0002)  # LMDB's writer lock is not fair: let the other process in
    finally:
        store.close()


def write_until(path: str, map_size_bytes: int, started: Event, stop: Event) -> None:
    """Keep adding records, growing the map, until told to stop."""
    store = Store(path, StoreOptions(map_size_bytes=map_size_bytes, durable=False))
    try:
        for i in range(200_000):
            if stop.is_set():
                break
            put(store, f"88.118/grow-{i}", "g" * 2000)
            started.set()
    finally:
        store.close()


def change_through_registry(path: str, token: str, map_size_bytes: int, filler: int) -> None:
    """As another node worker would: modify x, create y, delete z, then fill the map."""
    store = Store(path, StoreOptions(map_size_bytes=map_size_bytes, durable=False))
    try:
        node = Registry(store, "88.118")
        caller = accounts.authenticate(store, token)
        value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://changed")
        node.modify_values(caller, "88.118.8/x", [value])
        node.create(caller, "88.118.8/y", [value])
        node.delete(caller, "88.118.8/z")
        filled = [
            handle_pb2.Record(
                identifier=f"88.118.8/fill-{i}",
                values=[handle_pb2.HandleValue(index=1, type="URL", data=b"f" * 1000)],
            )
            for i in range(filler)
        ]
        if filled:
            node.batch_register(caller, filled)
    finally:
        store.close()
