"""One group commit made on purpose: a first write held in flight until the others queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proto import handle_pb2
from registry.groupcommit import GroupCommit
from registry.store import Store
from registry.writebatch import WriteBatch

WAIT_SECONDS = 30


def record(data: bytes) -> handle_pb2.Record:
    return handle_pb2.Record(values=[handle_pb2.HandleValue(index=1, type="URL", data=data)])


def put(key: str, data: bytes = b"x") -> Callable[[WriteBatch], tuple[int, int]]:
    """A write of `key` that returns (its sequence, the id of the transaction it ran in)."""

    def work(batch: WriteBatch) -> tuple[int, int]:
        sequence = batch.put_record(key, record(data), created=True)
        return sequence, batch.txn.id()

    return work


def put_then_fail(key: str, error: Exception) -> Callable[[WriteBatch], Any]:
    def work(batch: WriteBatch) -> Any:
        batch.put_record(key, record(b"never"), created=True)
        raise error

    return work


@dataclass
class Outcomes:
    results: dict[int, Any] = field(default_factory=dict)
    errors: dict[int, BaseException] = field(default_factory=dict)
    committed_on_return: dict[int, bool] = field(default_factory=dict)


FIRST = -1  # the position of the write held in flight, in Outcomes


def one_group(store: Store, works: list[Callable[[WriteBatch], Any]], keys: list[str]) -> Outcomes:
    """Hold a first write in flight until every one of `works` has queued, then let all go:
    `works` then form the next group. Returns their outcomes, and the first's at FIRST."""
    committer = GroupCommit(store)
    in_flight, release = threading.Event(), threading.Event()

    def leader_work(batch: WriteBatch) -> tuple[int, int]:
        in_flight.set()
        assert release.wait(WAIT_SECONDS)
        return put("88.118/first")(batch)

    outcomes = Outcomes()

    def follower(position: int) -> None:
        try:
            outcomes.results[position] = committer.write(works[position])
        except Exception as error:
            outcomes.errors[position] = error
        with store.read() as txn:  # what the caller may rely on once write() returned
            outcomes.committed_on_return[position] = (
                store.get_record(txn, keys[position]) is not None
            )

    def first() -> None:
        try:
            outcomes.results[FIRST] = committer.write(leader_work)
        except Exception as error:
            outcomes.errors[FIRST] = error

    leader = threading.Thread(target=first)
    leader.start()
    assert in_flight.wait(WAIT_SECONDS)
    followers = [threading.Thread(target=follower, args=(i,)) for i in range(len(works))]
    for thread in followers:
        thread.start()
    while committer.queued < len(works):
        threading.Event().wait(0.001)
    release.set()
    for thread in [leader, *followers]:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive()
    return outcomes
