"""Master and worker processes for the multiprocess tests (started with spawn)."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection

TIMEOUT_SECONDS = 20.0


def worker(conn: Connection, resolutions: int, cache_entries: int) -> None:
    """Record `resolutions` resolutions and a cache gauge, flush, then wait to be told to stop."""
    import metrics

    assert metrics.is_multiprocess(), "PROMETHEUS_MULTIPROC_DIR was not inherited"
    requests = metrics.Tally(metrics.RESOLVE_REQUESTS)
    duration = metrics.LocalHistogram(metrics.RESOLVE_DURATION, ("grpc",))
    metrics.on_flush(requests.flush)
    metrics.on_flush(duration.flush)
    metrics.start_flusher(0.05)
    for _ in range(resolutions):
        requests.add(("grpc", "ok"))
        duration.observe(0.0002)
    requests.add(("dns", "not_found"), 3)
    metrics.CACHE_ENTRIES.labels("grpc").set(cache_entries)
    metrics.IDENTIFIERS.set(1000 + cache_entries)
    metrics.flush()
    conn.send(os.getpid())
    conn.poll(TIMEOUT_SECONDS)


def master(conn: Connection, directory: str, listen: str) -> None:
    """Prepare `directory`, serve /metrics, run two workers, obey the test's commands."""
    import metrics
    from metrics import exposition

    metrics.start_flusher(0.05)  # before prepare: harmless, it records nothing itself
    exposition.prepare_multiprocess_dir(directory)
    exposition.set_build_info("1.2.3-test")
    metrics.CHANGELOG_SEQUENCE.set(77)  # declared (and bound) before prepare: rebound
    host, port = exposition.serve_metrics(listen)
    context = multiprocessing.get_context("spawn")
    workers = []
    for resolutions, cache_entries in ((1000, 7), (234, 5)):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker, args=(child_end, resolutions, cache_entries))
        process.start()
        workers.append((process, parent_end))
    pids = []
    for process, parent_end in workers:
        if not parent_end.poll(TIMEOUT_SECONDS):
            raise TimeoutError(f"worker {process.pid} did not report")
        pids.append(parent_end.recv())
    conn.send((host, port, pids))
    try:
        while conn.poll(TIMEOUT_SECONDS):
            command = conn.recv()
            if command == "kill-first":
                process = workers[0][0]
                process.kill()
                process.join(TIMEOUT_SECONDS)
                exposition.worker_exited(process.pid or 0)
                conn.send(process.exitcode)
            else:
                break
    finally:
        for process, parent_end in workers:
            if process.is_alive():
                parent_end.send("stop")
                process.join(TIMEOUT_SECONDS)
        exposition.stop_serving()


def prepare_after_recording(conn: Connection, directory: str) -> None:
    """Record into a labelled metric, then try to switch on multiprocess mode."""
    import metrics
    from metrics import exposition

    metrics.CACHE_ENTRIES.labels("grpc").set(1)
    try:
        exposition.prepare_multiprocess_dir(directory)
    except RuntimeError as error:
        conn.send(
            (
                "refused",
                str(error),
                metrics.is_multiprocess(),
                os.environ.get(exposition.MULTIPROC_ENV),
            )
        )
    else:
        conn.send(("accepted", "", metrics.is_multiprocess(), None))
