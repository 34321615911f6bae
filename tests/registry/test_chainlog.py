"""The checkpoints of a window of the change log, as a push or a replica's message takes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proto import handle_pb2
from registry import chainlog
from registry.store import Store, StoreOptions

ENTRIES_PER_CHECKPOINT = 5


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(str(tmp_path / "store"), StoreOptions(durable=False, map_size_bytes=256 << 20))
    yield opened
    opened.close()


def _sign(store: Store, count: int) -> None:
    """`count` checkpoints of ENTRIES_PER_CHECKPOINT entries each, from sequence 1."""
    with store.env.begin(write=True) as txn:
        for n in range(count):
            first = n * ENTRIES_PER_CHECKPOINT + 1
            checkpoint = handle_pb2.Checkpoint(
                first_sequence=first, last_sequence=first + ENTRIES_PER_CHECKPOINT - 1
            )
            chainlog.put_checkpoint(txn, store, checkpoint)


def _ends(store: Store, after: int, through: int, limit: int = 0) -> list[int]:
    with store.read() as txn:
        found = chainlog.checkpoints_between(txn, store, after, through, limit)
    return [c.last_sequence for c in found]


@pytest.mark.parametrize(
    ("after", "through", "limit", "ends"),
    [
        (0, 20, 0, [5, 10, 15, 20]),
        (0, 19, 0, [5, 10, 15]),  # the one ending past `through` is left for later
        (5, 20, 0, [10, 15, 20]),  # the one ending at `after` is already held
        (4, 10, 0, [5, 10]),
        (0, 50, 2, [5, 10]),
        (12, 12, 0, []),
        (20, 10, 0, []),
        (45, 100, 0, [50]),
        (50, 100, 0, []),  # past the newest
    ],
)
def test_a_window_holds_the_checkpoints_ending_inside_it(
    store: Store, after: int, through: int, limit: int, ends: list[int]
) -> None:
    _sign(store, 10)

    assert _ends(store, after, through, limit) == ends


def test_a_store_without_a_chain_has_no_checkpoints(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), StoreOptions(durable=False))
    store.checkpoints = None  # a store from before the chain (schema 3) opens none
    try:
        assert _ends(store, 0, 100) == []
    finally:
        store.close()


def test_a_long_backlog_taken_window_by_window_reads_each_checkpoint_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    count, window_entries = 20_000, 512
    _sign(store, count)
    decode = handle_pb2.Checkpoint.FromString
    decoded: list[int] = []

    def counted(data: bytes) -> handle_pb2.Checkpoint:
        decoded.append(1)
        return decode(data)

    monkeypatch.setattr(handle_pb2.Checkpoint, "FromString", staticmethod(counted))
    ends: list[int] = []
    last = count * ENTRIES_PER_CHECKPOINT
    for after in range(0, last, window_entries):
        ends.extend(_ends(store, after, min(after + window_entries, last)))

    assert ends == [(n + 1) * ENTRIES_PER_CHECKPOINT for n in range(count)]
    # Reading every checkpoint after a window's start (as the pusher did) decoded
    # count²/2 / (window / 5) of them: about 2,000,000 here, against 20,000.
    assert len(decoded) == count
