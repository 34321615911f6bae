"""Several processes, one scrape: counters add up, dead workers' gauges disappear."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tests.metrics import processes
from tests.metrics.scrape import promtool_check, sample, scrape


def test_two_workers_add_up_and_a_dead_workers_gauges_vanish(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale from a previous run")
    (directory / "notes.txt").write_text("not ours: must survive")
    context = multiprocessing.get_context("spawn")
    conn, child_end = context.Pipe()
    master = context.Process(
        target=processes.master, args=(child_end, str(directory), "127.0.0.1:0")
    )
    master.start()
    try:
        assert conn.poll(processes.TIMEOUT_SECONDS), "master did not start"
        host, port, pids = conn.recv()
        assert not (directory / "counter_999999.db").exists()
        assert (directory / "notes.txt").exists()

        text = scrape(host, port)
        assert sample(text, "idnode_resolve_requests_total", proto="grpc", result="ok") == 1234
        assert sample(text, "idnode_resolve_requests_total", proto="dns", result="not_found") == 6
        assert sample(text, "idnode_resolve_duration_seconds_count", proto="grpc") == 1234
        assert (
            sample(text, "idnode_resolve_duration_seconds_bucket", proto="grpc", le="0.0001") == 0
        )
        assert (
            sample(text, "idnode_resolve_duration_seconds_bucket", proto="grpc", le="0.00025")
            == 1234
        )
        assert sample(text, "idnode_cache_entries", cache="grpc") == 12  # livesum: 7 + 5
        assert sample(text, "idnode_build_info", version="1.2.3-test") == 1
        assert sample(text, "idnode_changelog_sequence") == 77
        assert sample(text, "idnode_identifiers") in (1005.0, 1007.0)  # the newest sample
        assert (sample(text, "process_cpu_seconds_total") or 0) > 0
        assert (sample(text, "process_open_fds") or 0) >= 3  # master and two workers
        assert "pid=" not in text
        promtool_check(text)

        conn.send("kill-first")
        assert conn.poll(processes.TIMEOUT_SECONDS), "master did not reap the worker"
        assert conn.recv() == -9

        text = scrape(host, port)
        assert sample(text, "idnode_resolve_requests_total", proto="grpc", result="ok") == 1234
        assert sample(text, "idnode_resolve_duration_seconds_count", proto="grpc") == 1234
        assert sample(text, "idnode_cache_entries", cache="grpc") == 5  # the dead worker's 7 gone
        assert sample(text, "idnode_identifiers") == 1005  # only the live worker's sample
        assert not list(directory.glob(f"gauge_live*_{pids[0]}.db"))
        assert list(directory.glob(f"counter_{pids[0]}.db"))
        promtool_check(text)
        assert scrape(host, port, "/healthz") == "ok\n"
    finally:
        conn.send("stop")
        master.join(processes.TIMEOUT_SECONDS)
        if master.is_alive():
            master.kill()
    assert master.exitcode == 0


def test_switching_on_multiprocess_mode_after_recording_is_refused(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    conn, child_end = context.Pipe()
    process = context.Process(
        target=processes.prepare_after_recording, args=(child_end, str(tmp_path))
    )
    process.start()
    try:
        assert conn.poll(processes.TIMEOUT_SECONDS)
        outcome, message, multiprocess, env = conn.recv()
    finally:
        process.join(processes.TIMEOUT_SECONDS)
    assert outcome == "refused"
    assert "idnode_cache_entries" in message
    assert not multiprocess
    assert env is None
