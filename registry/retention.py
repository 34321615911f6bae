"""How much of the change log to keep, and trimming the rest in short transactions."""

from __future__ import annotations

from collections.abc import Sequence

from registry.store import Store

TRIM_CHUNK_ENTRIES = 10_000  # per write transaction, so writers never wait long


def keep_from(last: int, keep_entries: int, max_entries: int, acknowledged: Sequence[int]) -> int:
    """The oldest sequence to keep.

    The newest `keep_entries` always stay (IXFR and lagging caches read them);
    so does everything a reader such as the upstream has not acknowledged yet,
    unless that would keep more than `max_entries` (then it gets a snapshot).
    """
    first_kept = last - keep_entries + 1
    for sequence in acknowledged:
        first_kept = min(first_kept, sequence + 1)
    return max(first_kept, last - max_entries + 1, 1)


def trim(store: Store, keep_entries: int, max_entries: int, cursors: Sequence[str]) -> int:
    """Drop change-log entries no longer needed; returns how many were dropped."""
    with store.read() as txn:
        last = store.last_sequence(txn)
        acknowledged = [store.get_cursor(txn, name) for name in cursors]
    target = keep_from(last, keep_entries, max_entries, acknowledged)
    dropped = 0
    while True:
        removed = store.write(lambda batch: batch.trim_changelog(target, TRIM_CHUNK_ENTRIES))
        dropped += removed
        if removed < TRIM_CHUNK_ENTRIES:
            return dropped
