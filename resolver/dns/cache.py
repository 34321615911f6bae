"""Encoded answers by normalised question: positive and negative bounded separately,
each in entries and in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict

from resolver.dns.answer import Entry

ENTRY_OVERHEAD_BYTES = 400  # the key and entry objects, their dict slots and the name index
RECENT_MISS_SLOTS = 1 << 16  # one octet each: the names missed lately, by hash


def entry_bytes(key: bytes, entry: Entry) -> int:
    """What one cached answer costs in memory, roughly but never less than its data."""
    post = entry.post if entry.post is not None else b""
    return ENTRY_OVERHEAD_BYTES + 2 * len(key) + len(entry.pre) + len(post) + 4 * 10


class _Bound:
    """One side of the cache: keys in insertion order with their sizes, and two limits."""

    def __init__(self, entries: int, max_bytes: int) -> None:
        # OrderedDict, not dict: taking the oldest key of a dict whose front was deleted
        # walks every deleted slot (a flood of misses made each insert O(entries)).
        self.order: OrderedDict[bytes, int] = OrderedDict()
        self.bytes = 0
        self.max_entries = entries
        self.max_bytes = max_bytes


class WireCache:
    """Entries keyed by lowercase qname + qtype + qclass + EDNS byte; FIFO eviction.

    Readers call `entries.get(key)` without a lock (one dict look-up under the
    GIL); writers hold the lock. Eviction is first-in first-out: a hit costs no
    bookkeeping, and a hot entry that falls out is rebuilt by one LMDB read.
    Every key is its name followed by 5 octets (type, class, EDNS byte).

    A missing name (NXDOMAIN) is worth keeping from its second miss on
    (`seen_missing`): a flood of random names, each asked once, then costs
    neither a lock, an insert and an eviction per name nor the missing names
    that are asked again.
    """

    def __init__(
        self,
        positive_entries: int,
        negative_entries: int,
        positive_bytes: int = 1 << 62,
        negative_bytes: int = 1 << 62,
    ) -> None:
        self.entries: dict[bytes, Entry] = {}
        self._positive = _Bound(positive_entries, positive_bytes)
        self._negative = _Bound(negative_entries, negative_bytes)
        # name -> its one key, or a set of its keys: most names are asked one way only,
        # and a flood of random names must not cost a set each.
        self._by_name: dict[bytes, bytes | set[bytes]] = {}
        self._lock = threading.Lock()
        # A slot per hash of a name missed lately, holding a tag of 1..255 from more bits
        # of the hash: a name whose slot holds its tag was missed before (or, rarely, a
        # name of the same slot and tag was). Read and written without a lock: a race
        # only makes a name wait for a later miss.
        self._recent_misses = bytearray(RECENT_MISS_SLOTS)

    def seen_missing(self, name: bytes) -> bool:
        """True when the missing `name` was missed lately (worth keeping); otherwise notes it."""
        hashed = hash(name)
        slot = hashed & (RECENT_MISS_SLOTS - 1)
        tag = (hashed >> 16) % 255 + 1
        if self._recent_misses[slot] == tag:
            return True
        self._recent_misses[slot] = tag
        return False

    def put(self, name: bytes, key: bytes, entry: Entry, negative: bool) -> None:
        side = self._negative if negative else self._positive
        post = entry.post
        size = (
            ENTRY_OVERHEAD_BYTES + 2 * len(key) + len(entry.pre) + 40
            + (len(post) if post is not None else 0)
        )  # fmt: skip  # entry_bytes(), inline: this runs once per miss
        if side.max_entries <= 0 or size > side.max_bytes:
            return
        entries = self.entries
        by_name = self._by_name
        with self._lock:
            if key in entries:
                return
            order = side.order
            while order and (len(order) >= side.max_entries or side.bytes + size > side.max_bytes):
                oldest, oldest_size = order.popitem(last=False)
                side.bytes -= oldest_size
                entries.pop(oldest, None)
                self._unindex(oldest)
            order[key] = size
            side.bytes += size
            entries[key] = entry
            known = by_name.get(name)
            if known is None:
                by_name[name] = key
            elif isinstance(known, set):
                known.add(key)
            else:
                by_name[name] = {known, key}

    def invalidate(self, name: bytes) -> None:
        """Forget every answer for the lowercase wire name `name`."""
        with self._lock:
            known = self._by_name.pop(name, None)
            for key in known if isinstance(known, set) else ((known,) if known else ()):
                self._forget(key)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self._by_name.clear()
            for side in (self._positive, self._negative):
                side.order.clear()
                side.bytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def positive_bytes(self) -> int:
        return self._positive.bytes

    @property
    def negative_bytes(self) -> int:
        return self._negative.bytes

    def _forget(self, key: bytes) -> None:
        self.entries.pop(key, None)
        for side in (self._positive, self._negative):
            size = side.order.pop(key, None)
            if size is not None:
                side.bytes -= size

    def _unindex(self, key: bytes) -> None:
        """Take an evicted key out of the name index."""
        name = key[:-5]
        known = self._by_name.get(name)
        if known == key:
            del self._by_name[name]
        elif isinstance(known, set):
            known.discard(key)
            if len(known) == 1:
                self._by_name[name] = known.pop()
