"""The pusher through failures: backoff that a Hello does not reset, one log line per cause,
the failure counted and shown, and a prompt return once the upstream is back."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

import metrics
from sync.pusher import Pusher, PushOptions
from sync.toplevel.server import TopLevelNode
from tests.sync.conftest import Secondary
from tests.sync.nodes import ADMIN_TOKEN, free_port, wait_until


def errors_counted(upstream: str, code: str) -> float:
    return float(metrics.SYNC_FAILURES.labels(upstream, code)._value.get())


def test_a_push_that_always_fails_backs_off_logs_once_and_shows_in_status(
    secondary: Secondary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Hello succeeds every time; every Push is larger than the upstream accepts.
    node = TopLevelNode(
        str(tmp_path / "tiny-limit"), ADMIN_TOKEN, map_size_bytes=64 << 20,
        max_message_bytes=256 << 10,
    )  # fmt: skip
    address = node.start(["127.0.0.1:0"])[0]
    _, token = node.mirror.add_node("88.118", [])
    secondary.register_large(["88.118/too-large-for-this-upstream"])
    status_path = tmp_path / "sync-status.json"
    options = PushOptions(backoff_initial_seconds=0.1, backoff_max_seconds=6.4)
    pusher = Pusher(
        secondary.store, "88.118", address, token, options=options,
        status_path=str(status_path), draw=lambda: 1.0,
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger="sync")
    try:
        pusher.start()
        time.sleep(5.0)
        # Waits of 0.2, 0.4, 0.8, 1.6, 3.2 s after refused pushes of ~0.1 s each: five
        # sessions in 5 s. Restarting the backoff at every successful Hello made them
        # 12 or more (and ~50 % CPU when the refusal is quick).
        failed = metrics.SYNC_PUSHES.labels(address, "error")._value.get()
        assert 3 <= failed <= 7
        assert pusher.failures.count == failed
        assert metrics.SYNC_CONSECUTIVE_FAILURES.labels(address)._value.get() == failed
        assert errors_counted(address, "RESOURCE_EXHAUSTED") == failed
        noted = json.loads(status_path.read_text())
        assert noted["state"] == "failing" and noted["code"] == "RESOURCE_EXHAUSTED"
        assert noted["retry_in_seconds"] == min(6.4, 0.1 * 2 ** noted["failures"])
        assert node.mirror.node("88.118").acked_sequence == 0
    finally:
        pusher.stop()
        node.stop(0)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "RESOURCE_EXHAUSTED" in warnings[0].__dict__["error"]


def test_registrations_made_during_an_outage_arrive_promptly_after_it(
    secondary: Secondary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    data_dir = str(tmp_path / "toplevel")
    node = TopLevelNode(data_dir, ADMIN_TOKEN, map_size_bytes=64 << 20)
    address = node.start([f"127.0.0.1:{port}"])[0]
    _, token = node.mirror.add_node("88.118", [])
    # The real schedule, without jitter: waits of 0.4, 0.8, 1.6, 3.2, 6.4 s…
    options = PushOptions(stats_interval_seconds=0.2)
    pusher = Pusher(secondary.store, "88.118", address, token, options=options, draw=lambda: 1.0)
    caplog.set_level(logging.INFO, logger="sync")
    pusher.start()
    try:
        first = secondary.register("88.118/before", "https://example.com/before")
        wait_until("the first push", lambda: pusher.acked == first, 10)
        node.stop(0)
        for n in range(200):
            last = secondary.register(f"88.118/outage-{n}", f"https://example.com/{n}")
        failed = metrics.SYNC_PUSHES.labels(address, "error")
        wait_until("five failed sessions", lambda: failed._value.get() >= 5, 20)
        # Now the pusher waits 6.4 s before its next session: the upstream comes back
        # early in that wait.
        time.sleep(0.5)
        node = TopLevelNode(data_dir, ADMIN_TOKEN, map_size_bytes=64 << 20)
        node.start([address])
        back = time.monotonic()
        wait_until("the catch-up", lambda: node.mirror.node("88.118").acked_sequence == last, 10)
        caught_up_seconds = time.monotonic() - back
        assert caught_up_seconds < 3.0  # gRPC reconnects at most a second apart
        assert node.mirror.mirror_records("88.118") == secondary.held()
        wait_until("the recovery", lambda: pusher.failures.count == 0, 5)
    finally:
        pusher.stop()
        node.stop(0)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("sync")]
    assert sum("failing" in line for line in logged) == 1, logged
    assert sum("recovered" in line for line in logged) == 1, logged
