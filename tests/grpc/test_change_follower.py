"""The change follower: an idle poll reads LMDB's meta pages, and sees every commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from proto import handle_pb2
from registry.store import Store, StoreOptions, WriteBatch
from resolver.follow import ChangeFollower

WRITE_FROM_ANOTHER_PROCESS = """
import sys
from proto import handle_pb2
from registry.store import Store, StoreOptions
store = Store(sys.argv[1], StoreOptions(durable=False))
value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://other/")
store.write(lambda batch: batch.put_record(sys.argv[2], handle_pb2.Record(values=[value]),
                                           created=True))
store.close()
"""


class CountingStore(Store):
    """A store that counts how often LMDB's `env.info()` is asked for the last commit."""

    asked = 0

    def last_txn_id(self) -> int:
        self.asked += 1
        return super().last_txn_id()


def _put(store: Store, identifier: str) -> None:
    def work(batch: WriteBatch) -> None:
        value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://example.com/")
        batch.put_record(identifier, handle_pb2.Record(values=[value]), created=True)

    store.write(work)


def test_polls_read_the_meta_pages_rather_than_asking_lmdb_for_its_info(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        follower = ChangeFollower(store)
        seen: list[str] = []
        follower.subscribe(lambda entry: seen.append(entry.identifier if entry else "*"))
        for _ in range(100):
            follower.poll()
        _put(store, "88.118/a")
        follower.poll()
        follower.poll()
        assert seen == ["88.118/a"]
        assert store.asked == 0
    finally:
        store.close()


def test_a_commit_by_another_process_is_seen_by_the_next_poll(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        follower = ChangeFollower(store)
        seen: list[str] = []
        follower.subscribe(lambda entry: seen.append(entry.identifier if entry else "*"))
        follower.poll()
        for name in ("88.118/x", "88.118/y"):
            subprocess.run(
                [sys.executable, "-c", WRITE_FROM_ANOTHER_PROCESS, store.path, name],
                check=True, timeout=60,
            )  # fmt: skip
            follower.poll()
        assert seen == ["88.118/x", "88.118/y"]
        assert follower.sequence == 2
    finally:
        store.close()
