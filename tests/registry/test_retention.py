"""Change-log retention: what is kept, and trimming in short transactions."""

from __future__ import annotations

import pytest

from proto import handle_pb2
from registry import retention, verify
from registry.accounts import Account
from registry.registry import Registry
from registry.store import Store


@pytest.mark.parametrize(
    ("last", "keep", "maximum", "acknowledged", "expected"),
    [
        (100, 10, 50, [], 91),  # only the newest `keep` stay
        (5, 10, 50, [], 1),  # a short log is kept whole
        (100, 10, 50, [80], 81),  # the upstream still needs 81..100
        (100, 10, 50, [95], 91),  # acknowledged past the window: the window rules
        (100, 10, 50, [0], 51),  # a silent upstream holds at most `maximum`
        (100, 10, 50, [70, 60], 61),  # the slowest reader decides
    ],
)
def test_keep_from(
    last: int, keep: int, maximum: int, acknowledged: list[int], expected: int
) -> None:
    assert retention.keep_from(last, keep, maximum, acknowledged) == expected


def _register(registry: Registry, admin: Account, count: int) -> None:
    records = [
        handle_pb2.Record(
            identifier=f"88.118.8/T{i}",
            values=[handle_pb2.HandleValue(index=1, type="URL", data=str(i).encode())],
        )
        for i in range(count)
    ]
    for start in range(0, count, 5_000):
        assert registry.batch_register(admin, records[start : start + 5_000]).rejected == 0


def test_trim_keeps_the_window_in_several_transactions(
    store: Store, registry: Registry, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.create_enterprise(admin, code="8")
    _register(registry, admin, 2_500)
    monkeypatch.setattr(retention, "TRIM_CHUNK_ENTRIES", 300)
    with store.read() as txn:
        last = store.last_sequence(txn)

    dropped = retention.trim(store, keep_entries=100, max_entries=1_000, cursors=[])

    with store.read() as txn:
        assert (store.first_sequence(txn), store.last_sequence(txn)) == (last - 99, last)
    assert dropped == last - 100
    assert verify.verify(store).ok
    assert retention.trim(store, keep_entries=100, max_entries=1_000, cursors=[]) == 0


def test_trim_keeps_what_the_upstream_has_not_acknowledged(
    store: Store, registry: Registry, admin: Account
) -> None:
    registry.create_enterprise(admin, code="8")
    _register(registry, admin, 500)
    store.write(lambda batch: batch.put_cursor("upstream", 200))

    retention.trim(store, keep_entries=10, max_entries=10_000, cursors=["upstream"])

    with store.read() as txn:
        assert store.first_sequence(txn) == 201
        assert [e.sequence for e in store.changes_since(txn, 200, limit=1)] == [201]
