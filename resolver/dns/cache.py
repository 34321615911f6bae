"""Encoded answers by normalised question: positive and negative bounded separately."""

from __future__ import annotations

import threading

from resolver.dns.answer import Entry


class WireCache:
    """Entries keyed by lowercase qname + qtype + qclass + EDNS byte; FIFO eviction.

    Readers call `entries.get(key)` without a lock (one dict look-up under the
    GIL); writers hold the lock. Eviction is first-in first-out: a hit costs no
    bookkeeping, and a hot entry that falls out is rebuilt by one LMDB read.
    """

    def __init__(self, positive_entries: int, negative_entries: int) -> None:
        self.entries: dict[bytes, Entry] = {}
        self._positive: dict[bytes, None] = {}
        self._negative: dict[bytes, None] = {}
        self._by_name: dict[bytes, set[bytes]] = {}
        self._positive_limit = positive_entries
        self._negative_limit = negative_entries
        self._lock = threading.Lock()

    def put(self, name: bytes, key: bytes, entry: Entry, negative: bool) -> None:
        order, limit = (
            (self._negative, self._negative_limit)
            if negative
            else (self._positive, self._positive_limit)
        )
        if limit <= 0:
            return
        with self._lock:
            if key in self.entries:
                return
            while len(order) >= limit:
                self._drop(next(iter(order)))
            order[key] = None
            self.entries[key] = entry
            self._by_name.setdefault(name, set()).add(key)

    def invalidate(self, name: bytes) -> None:
        """Forget every answer for the lowercase wire name `name`."""
        with self._lock:
            for key in self._by_name.pop(name, ()):
                self.entries.pop(key, None)
                self._positive.pop(key, None)
                self._negative.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self._positive.clear()
            self._negative.clear()
            self._by_name.clear()

    def __len__(self) -> int:
        return len(self.entries)

    def _drop(self, key: bytes) -> None:
        self.entries.pop(key, None)
        self._positive.pop(key, None)
        self._negative.pop(key, None)
        name = key[: key.index(0) + 1]  # cached names never hold a zero octet inside a label
        keys = self._by_name.get(name)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_name[name]
