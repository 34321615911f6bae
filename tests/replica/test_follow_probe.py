"""The change follower: an idle poll reads LMDB's meta pages, sees every commit, and trusts
what its snapshot holds, not the probe that woke it."""

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


class AheadProbe(Store):
    """A store whose "has anything changed?" probe runs `ahead` commits ahead of what new
    read snapshots hold: LMDB writes the meta page a moment before readers see the commit."""

    ahead = 0

    def last_txn_id(self) -> int:
        return super().last_txn_id() + self.ahead


def _put(store: Store, identifier: str) -> None:
    def work(batch: WriteBatch) -> None:
        value = handle_pb2.HandleValue(index=1, type="URL", data=b"https://example.com/")
        batch.put_record(identifier, handle_pb2.Record(values=[value]), created=True)

    store.write(work)


def _following(follower: ChangeFollower) -> list[str]:
    """What `follower` hands its listeners: identifiers, "*" for "drop everything"."""
    seen: list[str] = []
    follower.subscribe(lambda entry: seen.append(entry.identifier if entry else "*"))
    return seen


def test_polls_read_the_meta_pages_rather_than_asking_lmdb_for_its_info(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        follower = ChangeFollower(store)
        seen = _following(follower)
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
        seen = _following(follower)
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


def test_a_commit_seen_by_the_probe_before_the_snapshot_is_not_skipped(tmp_path: Path) -> None:
    store = AheadProbe(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        _put(store, "88.118/a")
        follower = ChangeFollower(store, last_txn_id=store.last_txn_id)
        seen = _following(follower)
        store.ahead = 1  # the next commit shows in the probe, not yet in snapshots
        follower.poll()
        assert seen == []
        store.ahead = 0
        _put(store, "88.118/b")  # now committed: probe and snapshots agree
        follower.poll()
        assert seen == ["88.118/b"]
        assert follower.sequence == 2
    finally:
        store.close()


def test_the_dns_face_does_not_skip_a_commit_its_probe_saw_early(tmp_path: Path) -> None:
    import dns.message
    import dns.rcode

    from resolver.dns import Handler
    from tests.dns.nodes import make_node, make_options, value

    node = make_node(tmp_path)
    try:
        handler = Handler(node.store, node.follower, make_options())
        ahead = [0]
        probe = handler._last_txn_id
        handler._last_txn_id = lambda: probe() + ahead[0]
        query = dns.message.make_query("late.8.118.88.id.example.", "TXT").to_wire()

        def rcode() -> int:
            reply = handler.handle_wire(query, "127.0.0.1")
            assert reply is not None
            return dns.message.from_wire(reply).rcode()

        assert rcode() == dns.rcode.NXDOMAIN  # cached as absent
        ahead[0] = 1  # the next commit shows in the meta pages before snapshots hold it
        assert rcode() == dns.rcode.NXDOMAIN
        ahead[0] = 0
        node.registry.create(node.admin, "88.118.8/late", [value(1, "batch", "B-1")])
        assert rcode() == dns.rcode.NOERROR
    finally:
        node.store.close()


def test_an_idle_upward_sync_wakes_for_a_commit_its_last_read_did_not_hold(
    tmp_path: Path,
) -> None:
    import time

    from sync.pusher import Pusher, PushOptions

    store = AheadProbe(str(tmp_path / "data"), StoreOptions(durable=False))
    try:
        pusher = Pusher(store, "88.118", "127.0.0.1:1", "token-for-the-probe-test",
                        options=PushOptions(status_interval_seconds=5.0))  # fmt: skip
        with store.read() as txn:
            pusher._read_txn_id = txn.id()  # as _push_once leaves it: nothing to push
        _put(store, "88.118/a")  # committed after that read, before the wait began
        started = time.monotonic()
        pusher._wait_for_change()
        assert time.monotonic() - started < 2.0  # not the whole 5 s interval
    finally:
        store.close()
