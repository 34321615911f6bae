"""The follower through an outage of its primary: backoff, one log line, the recovery said."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import metrics
from registry.store import Store, StoreOptions
from sync.replica.follower import Follower, FollowOptions
from tests.ports import free_port
from tests.replica import nodes
from tests.sync.nodes import wait_until


def _failed(primary: str, code: str) -> float:
    return float(metrics.REPLICA_FAILURES.labels(primary, code)._value.get())


def test_a_primary_that_goes_down_is_logged_once_and_its_return_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    primary_dir = tmp_path / "primary"
    primary = nodes.start_primary(primary_dir, port=port)
    token = nodes.credential(primary_dir, "replica-1")
    store = Store(str(tmp_path / "replica"), StoreOptions(durable=False))
    options = FollowOptions(backoff_initial_seconds=0.05, backoff_max_seconds=0.2)
    follower = Follower(store, address, token, options, draw=lambda: 1.0)
    caplog.set_level(logging.INFO, logger="sync")
    follower.start()
    try:
        wait_until("the copy", lambda: follower.state == "following", 20)
        primary.stop()  # the stream breaks, then every new session is refused a connection
        before = _failed(address, "UNAVAILABLE")
        wait_until("ten failures", lambda: _failed(address, "UNAVAILABLE") >= before + 10, 20)
        assert follower.state == "connecting"
        primary = nodes.start_primary(primary_dir, port=port)
        wait_until("the recovery", lambda: follower.state == "following", 20)
        time.sleep(1.5)  # the primary's first heartbeat: replication goes on
    finally:
        follower.stop()
        primary.stop()
        store.close()
    logged = [r for r in caplog.records if r.name.startswith("sync")]
    problems = [r.getMessage() for r in logged if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and "failing" in problems[0], problems
    assert sum("recovered" in r.getMessage() for r in logged) == 1
