"""Answer caches: LRU, positive and negative entries bounded separately in entries and bytes.

Every face (gRPC, HTTP) keeps its finished answers in an `AnswerCache`:

    cache = AnswerCache(max_entries, max_negative_entries, max_bytes, max_negative_bytes)
    found = cache.get(key)                       # None: a miss
    cache.put(key, answer, size_bytes, negative=not_found, group=prefix)
    cache.invalidate(key)                        # a record changed (change log)
    cache.invalidate_groups(lambda g: is_under(g, prefix))  # a prefix changed
    cache.bytes_used, len(cache)                 # for idnode_cache_bytes / _entries

Keys are the canonical form of what was asked (`registry.identifier.cache_key`),
never the raw input. `size_bytes` is the caller's estimate of what the value
holds in memory; the key's own length is added to it. A value larger than its
side's byte bound is not kept at all. Negative answers have their own bounds,
so a flood of misses can never push the found answers out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K", str, bytes)
V = TypeVar("V")


class _Entry(NamedTuple, Generic[V]):
    value: V
    cost_bytes: int
    group: str


class _Side(Generic[K, V]):
    """The positive or the negative entries: LRU order, bounded in count and bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0

    def fits(self, cost_bytes: int) -> bool:
        return self.max_entries > 0 and cost_bytes <= self.max_bytes

    def pop(self, key: K) -> _Entry[V] | None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.cost_bytes
        return entry

    def over(self) -> bool:
        return len(self.entries) > self.max_entries or self.bytes > self.max_bytes


class AnswerCache(Generic[K, V]):
    """Finished answers by key; `get` returns None on a miss. Thread-safe.

    Entries are never mutated after `put`; invalidation comes from the change log.
    Each entry may name a group (for answers: the identifier's prefix), so that a
    change to one prefix drops the answers under it and nothing else.
    """

    def __init__(
        self, max_entries: int, max_negative_entries: int, max_bytes: int, max_negative_bytes: int
    ) -> None:
        self._positive: _Side[K, V] = _Side(max_entries, max_bytes)
        self._negative: _Side[K, V] = _Side(max_negative_entries, max_negative_bytes)
        self._groups: dict[str, set[K]] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.hits = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            self.requests += 1
            side = self._positive
            entry = side.entries.get(key)
            if entry is None:
                side = self._negative
                entry = side.entries.get(key)
                if entry is None:
                    return None
            side.entries.move_to_end(key)
            self.hits += 1
            return entry.value

    def put(
        self, key: K, value: V, size_bytes: int, negative: bool = False, group: str = ""
    ) -> bool:
        """Keep `value` under `key` (replacing any answer of either kind), evicting the
        least recently used entries of its side past the bounds. False when it is too
        large to keep: then no answer is held for `key` at all."""
        cost = size_bytes + _key_bytes(key)
        side = self._negative if negative else self._positive
        with self._lock:
            self._drop(key)  # one answer per key: a stale one of the other kind would shadow it
            if not side.fits(cost):
                return False
            side.entries[key] = _Entry(value, cost, group)
            side.bytes += cost
            if group:
                self._groups.setdefault(group, set()).add(key)
            while side.over():
                self._drop(next(iter(side.entries)))
            return True

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._drop(key)

    def invalidate_groups(self, match: Callable[[str], bool]) -> int:
        """Drop every entry whose group `match`es; returns how many were dropped."""
        with self._lock:
            doomed = [group for group in self._groups if match(group)]
            dropped = 0
            for group in doomed:
                for key in list(self._groups.get(group, ())):
                    self._drop(key)
                    dropped += 1
            return dropped

    def clear(self) -> None:
        with self._lock:
            for side in (self._positive, self._negative):
                side.entries.clear()
                side.bytes = 0
            self._groups.clear()

    @property
    def bytes_used(self) -> int:
        """Bytes held by both sides: the sizes given to `put` plus the keys' lengths."""
        return self._positive.bytes + self._negative.bytes

    def __len__(self) -> int:
        return len(self._positive.entries) + len(self._negative.entries)

    def _drop(self, key: K) -> None:
        entry = self._positive.pop(key) or self._negative.pop(key)
        if entry is None or not entry.group:
            return
        keys = self._groups.get(entry.group)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._groups[entry.group]


def _key_bytes(key: str | bytes) -> int:
    if isinstance(key, bytes) or key.isascii():
        return len(key)
    return len(key.encode("utf-8", "surrogatepass"))
