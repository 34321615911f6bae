"""Several processes on one store: a complete, gap-free change log and caches that follow it."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest

from proto import handle_pb2
from registry import accounts
from registry.accounts import Account
from registry.errors import HandleNotFound
from registry.identifier import parse
from registry.registry import Registry
from registry.store import Store, StoreOptions
from resolver.cache import AnswerCache
from resolver.follow import CATCH_UP_LIMIT, ChangeFollower
from tests.registry import _workers

Op = handle_pb2.ChangeEntry.Operation
SPAWN = multiprocessing.get_context("spawn")
TINY_MAP_BYTES = 64 * 1024
NOT_FOUND = b"not found"


@pytest.fixture
def store(data_dir: str) -> Iterator[Store]:
    """A tiny map here, so that writes from the other process grow it under this one."""
    opened = Store(data_dir, StoreOptions(map_size_bytes=TINY_MAP_BYTES, durable=False))
    yield opened
    opened.close()


def run_processes(target: Any, *arg_sets: tuple[Any, ...]) -> None:
    processes = [SPAWN.Process(target=target, args=args) for args in arg_sets]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=90)
    for process in processes:
        if process.is_alive():
            process.kill()
        assert process.exitcode == 0


@pytest.mark.parametrize("map_size_bytes", [1 << 30, TINY_MAP_BYTES], ids=["roomy", "tiny"])
def test_two_processes_writing_leave_one_log_entry_per_write_in_order(
    data_dir: str, map_size_bytes: int
) -> None:
    count = 150
    Store(data_dir).close()  # create the environment before either writer opens it
    start = SPAWN.Barrier(2)
    processes = [
        SPAWN.Process(
            target=_workers.write_records, args=(data_dir, worker, count, map_size_bytes, start)
        )
        for worker in (1, 2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=90)
        assert process.exitcode == 0

    store = Store(data_dir, StoreOptions(map_size_bytes=map_size_bytes))
    try:
        with store.read() as txn:
            log = list(store.changes_since(txn, 0))
            stored = {key: list(r.values) for key, r in store.iter_records(txn)}
            last = store.last_sequence(txn)
    finally:
        store.close()

    writers = [e.record.values[0].data[:1] for e in log if e.operation != Op.DELETE]
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    assert switches >= 2  # the two processes really did write at the same time
    total = 2 * _workers.writes_per_worker(count)
    assert [e.sequence for e in log] == list(range(1, total + 1))
    assert last == total
    created = [e.identifier for e in log if e.identifier != _workers.SHARED]
    for worker in (1, 2):
        assert sorted(k for k in created if k.startswith(f"88.118/w{worker}-")) == sorted(
            [f"88.118/w{worker}-{i}" for i in range(count)]
            + [f"88.118/w{worker}-{i - 2}" for i in range(count) if i % 5 == 4]
        )
    assert sum(e.identifier == _workers.SHARED for e in log) == 2 * count
    replayed: dict[str, list[Any]] = {}
    for entry in log:
        if entry.operation == Op.DELETE:
            del replayed[entry.identifier]
        else:
            replayed[entry.identifier] = list(entry.record.values)
    assert replayed == stored
    assert len(stored) == 2 * (count - count // 5) + 1


def test_store_opens_while_another_process_grows_the_map(data_dir: str) -> None:
    Store(data_dir).close()
    started, stop = SPAWN.Event(), SPAWN.Event()
    writer = SPAWN.Process(
        target=_workers.write_until, args=(data_dir, TINY_MAP_BYTES, started, stop)
    )
    writer.start()
    try:
        assert started.wait(timeout=60)
        for _ in range(40):
            store = Store(data_dir, StoreOptions(map_size_bytes=TINY_MAP_BYTES, durable=False))
            with store.read() as txn:
                assert store.last_sequence(txn) > 0
            store.close()
    finally:
        stop.set()
        writer.join(timeout=60)
    assert writer.exitcode == 0


# Following the change log -------------------------------------------------------------


class CachedResolver:
    """The follower pattern the front ends use: poll, look up, fill only if nothing changed."""

    def __init__(self, registry: Registry, follower: ChangeFollower) -> None:
        self.registry = registry
        self.follower = follower
        self.cache: AnswerCache[str, bytes] = AnswerCache(100, 100, 1 << 20, 1 << 20)
        self.dropped_all = 0
        follower.subscribe(self._on_change)

    def _on_change(self, entry: Any) -> None:
        if entry is None:
            self.dropped_all += 1
            self.cache.clear()
        else:
            self.cache.invalidate(entry.identifier)

    def answer(self, identifier: str) -> bytes:
        self.follower.poll()
        hit = self.cache.get(identifier)
        if hit is not None:
            return hit
        with self.follower.lock:
            generation = self.follower.generation
        try:
            found = self.registry.resolve(parse(identifier)).values[0].data
            negative = False
        except HandleNotFound:
            found, negative = NOT_FOUND, True
        with self.follower.lock:
            if self.follower.generation == generation:
                self.cache.put(identifier, found, len(found), negative)
        return bytes(found)


@pytest.fixture
def seeded(registry: Registry, account_a: Account) -> CachedResolver:
    for suffix in "xz":
        registry.create(account_a, f"88.118.8/{suffix}", [url("https://original")])
    return CachedResolver(registry, ChangeFollower(registry.store))


def url(data: str) -> Any:
    return handle_pb2.HandleValue(index=1, type="URL", data=data.encode())


@pytest.mark.parametrize("filler", [0, 3000], ids=["small", "grows-the-map"])
def test_follower_invalidates_cache_for_writes_from_another_process(
    data_dir: str, admin_token: str, enterprise_a: Any, seeded: CachedResolver, filler: int
) -> None:
    cached = seeded
    for identifier in ("88.118.8/x", "88.118.8/y", "88.118.8/z"):
        cached.answer(identifier)
    assert cached.cache.get("88.118.8/x") == b"https://original"
    assert cached.cache.get("88.118.8/y") == NOT_FOUND
    assert cached.cache.get("88.118.8/z") == b"https://original"

    run_processes(
        _workers.change_through_registry,
        (data_dir, enterprise_a.token, TINY_MAP_BYTES, filler),
    )

    assert cached.cache.get("88.118.8/x") == b"https://original"  # stale until the poll
    cached.follower.poll()
    assert cached.cache.get("88.118.8/x") is None
    assert cached.cache.get("88.118.8/y") is None
    assert cached.cache.get("88.118.8/z") is None
    assert cached.answer("88.118.8/x") == b"https://changed"
    assert cached.answer("88.118.8/y") == b"https://changed"
    assert cached.answer("88.118.8/z") == NOT_FOUND
    assert cached.dropped_all == 0
    store = cached.registry.store
    with store.read() as txn:
        assert cached.follower.sequence == store.last_sequence(txn)
    # This process still writes after the other one grew the map under it.
    admin = accounts.authenticate(store, admin_token)
    cached.registry.create(admin, "88.118.8/after", [url("https://after")])
    assert cached.answer("88.118.8/after") == b"https://after"


def test_follower_hands_listeners_each_entry_in_order(
    registry: Registry, account_a: Account
) -> None:
    follower = ChangeFollower(registry.store)
    seen: list[Any] = []
    follower.subscribe(seen.append)
    start = follower.sequence

    registry.create(account_a, "88.118.8/a", [url("1")])
    registry.modify_values(account_a, "88.118.8/a", [url("2")])
    registry.delete(account_a, "88.118.8/a")
    follower.poll()

    assert [(e.sequence, e.operation, e.identifier) for e in seen] == [
        (start + 1, Op.CREATE, "88.118.8/a"),
        (start + 2, Op.UPDATE, "88.118.8/a"),
        (start + 3, Op.DELETE, "88.118.8/a"),
    ]
    assert follower.sequence == start + 3


def test_poll_without_a_change_notifies_nobody_and_keeps_the_generation(
    registry: Registry, store: Store, account_a: Account
) -> None:
    follower = ChangeFollower(store)
    seen: list[Any] = []
    follower.subscribe(seen.append)
    follower.poll()
    generation = follower.generation

    follower.poll()
    store.write(lambda batch: batch.put_cursor("upstream", 7))  # a write outside the log
    follower.poll()

    assert seen == []
    assert follower.generation == generation


def test_generation_moves_when_a_change_lands_so_a_stale_fill_is_skipped(
    registry: Registry, account_a: Account
) -> None:
    registry.create(account_a, "88.118.8/a", [url("old")])
    follower = ChangeFollower(registry.store)
    follower.poll()
    with follower.lock:
        generation = follower.generation
    answer = registry.resolve(parse("88.118.8/a"))  # computed before the write below

    registry.modify_values(account_a, "88.118.8/a", [url("new")])
    follower.poll()

    assert answer.values[0].data == b"old"
    assert follower.generation != generation


def test_follower_drops_everything_when_the_log_it_needs_was_trimmed(
    registry: Registry, store: Store, account_a: Account
) -> None:
    follower = ChangeFollower(store)
    seen: list[Any] = []
    follower.subscribe(seen.append)
    for i in range(5):
        registry.create(account_a, f"88.118.8/{i}", [url(str(i))])
    with store.read() as txn:
        last = store.last_sequence(txn)
    store.write(lambda batch: batch.trim_changelog(last - 1))

    follower.poll()

    assert seen == [None]
    assert follower.sequence == last


def test_follower_drops_everything_when_too_far_behind(
    registry: Registry, store: Store, account_a: Account
) -> None:
    follower = ChangeFollower(store)
    seen: list[Any] = []
    follower.subscribe(seen.append)
    half = CATCH_UP_LIMIT // 2 + 1
    for part in range(2):
        registry.batch_register(
            account_a,
            [
                handle_pb2.Record(identifier=f"88.118.8/{part}-{i}", values=[url(str(i))])
                for i in range(half)
            ],
        )
    follower.poll()

    assert seen == [None]


# The answer cache ---------------------------------------------------------------------


def test_cache_bounds_positive_and_negative_entries_separately() -> None:
    cache: AnswerCache[str, str] = AnswerCache(2, 1, 1 << 20, 1 << 20)
    cache.put("p1", "a", 1)
    cache.put("p2", "b", 1)
    cache.put("n1", "-", 1, negative=True)
    cache.put("n2", "-", 1, negative=True)  # evicts n1 only, never a positive entry

    assert (cache.get("p1"), cache.get("p2"), cache.get("n1"), cache.get("n2")) == (
        "a",
        "b",
        None,
        "-",
    )
    cache.get("p1")
    cache.put("p3", "c", 1)  # evicts the least recently used positive entry, p2
    assert (cache.get("p1"), cache.get("p2"), cache.get("p3")) == ("a", None, "c")
    assert len(cache) == 3


def test_cache_counts_requests_and_hits() -> None:
    cache: AnswerCache[str, str] = AnswerCache(10, 10, 1 << 20, 1 << 20)
    cache.put("a", "x", 1)
    cache.put("b", "-", 1, negative=True)

    for key in ("a", "b", "c", "a"):
        cache.get(key)

    assert (cache.requests, cache.hits) == (4, 3)


def test_cache_invalidate_and_clear_remove_both_kinds() -> None:
    cache: AnswerCache[str, str] = AnswerCache(10, 10, 1 << 20, 1 << 20)
    cache.put("a", "x", 1)
    cache.put("b", "-", 1, negative=True)
    cache.put("c", "y", 1)

    cache.invalidate("a")
    cache.invalidate("b")
    cache.invalidate("never-there")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, "y")
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize("first_negative", [True, False])
def test_cache_keeps_one_answer_per_key_the_latest(first_negative: bool) -> None:
    cache: AnswerCache[str, str] = AnswerCache(10, 10, 1 << 20, 1 << 20)

    cache.put("k", "first", 1, negative=first_negative)
    cache.put("k", "second", 1, negative=not first_negative)

    assert cache.get("k") == "second"
    assert len(cache) == 1
