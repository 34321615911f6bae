"""Answer caches: positive and negative entries bounded separately, LRU, thread-safe."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K")
V = TypeVar("V")


class AnswerCache(Generic[K, V]):
    """Finished answers by key; `None` from `get` means a miss.

    Entries are never mutated after `put`; invalidation comes from the change log.
    """

    def __init__(self, positive_entries: int, negative_entries: int) -> None:
        self._positive: LRUCache[K, V] = LRUCache(maxsize=max(positive_entries, 1))
        self._negative: LRUCache[K, V] = LRUCache(maxsize=max(negative_entries, 1))
        self._lock = threading.Lock()
        self.requests = 0
        self.hits = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            self.requests += 1
            found = self._positive.get(key)
            if found is None:
                found = self._negative.get(key)
            if found is not None:
                self.hits += 1
            return found

    def put(self, key: K, value: V, negative: bool = False) -> None:
        with self._lock:
            # One answer per key: a stale entry of the other kind would shadow this one.
            (self._positive if negative else self._negative).pop(key, None)
            (self._negative if negative else self._positive)[key] = value

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._positive.pop(key, None)
            self._negative.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._positive.clear()
            self._negative.clear()

    def __len__(self) -> int:
        return len(self._positive) + len(self._negative)
