"""The upward sync: pushes the change log to the top-level node from the acknowledged sequence.

One pusher runs per node (in the master process). It never blocks a registration:
it only reads the store, in its own thread, and writes nothing but its cursor.

A session is: Hello (announce sites, learn what the upstream holds), decide where to
resume (`sync.plan`), a snapshot when the log cannot serve, then Push batches of
consecutive entries. The upstream applies each entry once, in order, and replies
with its acknowledged sequence, which the pusher stores durably in its cursor
after the reply: a crash between the two only resends entries the upstream skips.
Any failure ends the session; the next starts after an exponential, jittered delay.
An idle session ends every few seconds too, so that the next Hello notices an
upstream that lost its copy while nothing was registered.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

import metrics
from proto import handle_pb2, sync_pb2, sync_pb2_grpc
from registry.errors import IdnodeError
from registry.store import Store
from sync.plan import resume_point

log = logging.getLogger(__name__)

CURSOR = "upstream"
LOG_ID_KEY = "sync_log_id"


class SyncError(Exception):
    """The upstream answered something the protocol does not allow."""


@dataclass(frozen=True)
class PushOptions:
    batch_entries: int = 500
    snapshot_chunk_records: int = 1000
    idle_poll_seconds: float = 0.01  # how often an idle pusher looks for new entries (~2 µs)
    call_timeout_seconds: float = 30.0
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 30.0
    stats_interval_seconds: float = 60.0
    hello_interval_seconds: float = 5.0  # an idle pusher re-checks what the upstream holds
    status_interval_seconds: float = 1.0


def backoff_seconds(failures: int, options: PushOptions, draw: Callable[[], float]) -> float:
    """Exponential in the consecutive failures, capped, with "equal jitter" (half fixed)."""
    ceiling = min(options.backoff_max_seconds, options.backoff_initial_seconds * 2.0**failures)
    return ceiling / 2 + draw() * ceiling / 2


def log_id(store: Store) -> str:
    """This change log's identity, made once per data dir: a new one tells the upstream
    that sequences start over (a wiped or replaced data dir)."""
    with store.read() as txn:
        found = store.get_meta(txn, LOG_ID_KEY)
    if found is not None:
        return found.decode()

    def work(batch: Any) -> str:
        existing = batch.get_meta(LOG_ID_KEY)
        if existing is not None:
            return str(existing.decode())
        made = secrets.token_hex(16)
        batch.put_meta(LOG_ID_KEY, made.encode())
        return made

    return str(store.write(work))


class Pusher:
    """Keeps the upstream's mirror of this node up to date; `start()`/`stop()`."""

    def __init__(
        self,
        store: Store,
        node_prefix: str,
        upstream: str,
        token: str,
        sites: Sequence[handle_pb2.Site] = (),
        options: PushOptions = PushOptions(),
        resolutions: Callable[[], int] | None = None,
        status_path: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.node_prefix = node_prefix
        self.upstream = upstream
        self.options = options
        self.sites = list(sites)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._resolutions = resolutions
        self._status_path = status_path
        self._draw = draw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream-sync", daemon=True)
        self._channel: grpc.Channel | None = None
        self._log_id = log_id(store)
        self._acked = self._stored_cursor()
        self._failures = 0
        self._status: dict[str, Any] = {"upstream": upstream, "state": "starting"}
        self._status_written = 0.0
        self._stats_due = 0.0
        self._stats_from = (time.time(), self._last_sequence(), self._resolved())
        metrics.SYNC_ACKED_SEQUENCE.labels(upstream).set(self._acked)

    # Life cycle ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: closing the channel cancels a call in flight (it is resent later)."""
        self._stop.set()
        if self._channel is not None:
            self._channel.close()
        if self._thread.is_alive():
            self._thread.join(10.0)

    @property
    def acked(self) -> int:
        return self._acked

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except Exception as error:  # the sync must outlive a bug in one session, too
                if self._stop.is_set():
                    return  # cancelled by stop()
                self._failures += 1
                delay = backoff_seconds(self._failures, self.options, self._draw)
                reason = _describe(error)
                metrics.SYNC_PUSHES.labels(self.upstream, "error").inc()
                self._note("backoff", error=reason, retry_in_seconds=round(delay, 3))
                if isinstance(error, (grpc.RpcError, IdnodeError, SyncError, ValueError)):
                    log.warning("upstream sync failed; retrying", extra={"error": reason})
                else:
                    log.exception("upstream sync session failed")
                self._update_lag()
                self._stop.wait(delay)

    # A session ---------------------------------------------------------------------

    def _stub(self) -> Any:
        if self._stop.is_set():
            raise SyncError("stopping")
        if self._channel is None:
            self._channel = grpc.insecure_channel(
                self.upstream,
                options=[
                    ("grpc.max_send_message_length", 64 << 20),
                    ("grpc.max_receive_message_length", 64 << 20),
                ],
            )
        return sync_pb2_grpc.TopLevelStub(self._channel)

    def _session(self) -> None:
        stub = self._stub()
        with self.store.read() as txn:
            first, last = self.store.first_sequence(txn), self.store.last_sequence(txn)
        hello = stub.Hello(
            sync_pb2.HelloRequest(
                node_prefix=self.node_prefix,
                log_id=self._log_id,
                sites=self.sites,
                first_sequence=first,
                last_sequence=last,
            ),
            metadata=self._metadata,
            timeout=self.options.call_timeout_seconds,
        )
        self._failures = 0
        resume = resume_point(self._acked, hello.acked_sequence, first, last)
        self._note("connected", error="")
        if resume.snapshot:
            log.info("sending a snapshot upstream", extra={"reason": resume.reason})
            self._snapshot(stub)
        else:
            self._save_cursor(resume.after)
        self._report_stats(stub)
        checked = time.monotonic()
        while not self._stop.is_set():
            if self._push_once(stub):
                checked = time.monotonic()
                continue
            self._report_stats(stub)
            self._note("idle")
            if time.monotonic() - checked > self.options.hello_interval_seconds:
                return  # a new session's Hello notices an upstream that lost its copy
            self._wait_for_change()

    def _push_once(self, stub: Any) -> bool:
        """Push the next batch; False when there was nothing to push."""
        with self.store.read() as txn:
            first = self.store.first_sequence(txn)
            entries = list(self.store.changes_since(txn, self._acked, self.options.batch_entries))
        if self._acked + 1 < first:
            self._snapshot(stub)  # the log was trimmed past what the upstream holds
            return True
        if not entries:
            metrics.SYNC_LAG.labels(self.upstream).set(0)
            return False
        metrics.SYNC_LAG.labels(self.upstream).set(_age_seconds(entries[0]))
        reply = stub.Push(
            sync_pb2.PushRequest(
                node_prefix=self.node_prefix, log_id=self._log_id, entries=entries
            ),
            metadata=self._metadata,
            timeout=self.options.call_timeout_seconds,
        )
        if reply.snapshot_needed or reply.acked_sequence < self._acked:
            self._snapshot(stub)
            return True
        if reply.acked_sequence > entries[-1].sequence:
            raise SyncError(
                f"upstream acknowledged {reply.acked_sequence} past {entries[-1].sequence}"
            )
        metrics.SYNC_PUSHES.labels(self.upstream, "ok").inc()
        self._save_cursor(reply.acked_sequence)
        self._note("pushing")
        return True

    def _snapshot(self, stub: Any) -> None:
        """Send every record and prefix as of one read snapshot, then resume after it."""
        with self.store.read() as txn:
            sequence = self.store.last_sequence(txn)
            reply = stub.Snapshot(
                self._chunks(txn, sequence),
                metadata=self._metadata,
                timeout=max(self.options.call_timeout_seconds, 600.0),
            )
        if reply.acked_sequence != sequence:
            raise SyncError(f"snapshot at {sequence} acknowledged as {reply.acked_sequence}")
        metrics.SYNC_PUSHES.labels(self.upstream, "snapshot").inc()
        self._save_cursor(sequence)
        log.info("snapshot acknowledged", extra={"sequence": sequence})

    def _chunks(self, txn: Any, sequence: int) -> Iterator[sync_pb2.SnapshotChunk]:
        chunk = sync_pb2.SnapshotChunk(
            node_prefix=self.node_prefix, log_id=self._log_id, sequence=sequence
        )
        chunk.prefixes.extend(self.store.iter_prefixes(txn))
        for key, record in self.store.iter_records(txn):
            record.identifier = key
            chunk.records.append(record)
            if len(chunk.records) >= self.options.snapshot_chunk_records:
                yield chunk
                chunk = sync_pb2.SnapshotChunk(node_prefix=self.node_prefix)
        yield chunk

    # Statistics --------------------------------------------------------------------

    def _report_stats(self, stub: Any) -> None:
        now = time.time()
        if now < self._stats_due:
            return
        started, sequence_then, resolved_then = self._stats_from
        with self.store.read() as txn:
            identifiers = self.store.record_count(txn)
            sequence = self.store.last_sequence(txn)
            enterprises = sum(1 for _ in self.store.iter_prefixes(txn)) - 1
        resolved = self._resolved()
        stub.ReportStats(
            sync_pb2.StatsReport(
                node_prefix=self.node_prefix,
                period_start=int(started),
                period_end=int(now),
                identifiers=identifiers,
                registrations=max(0, sequence - sequence_then),
                resolutions=max(0, resolved - resolved_then),
                enterprise_prefixes=max(0, enterprises),
            ),
            metadata=self._metadata,
            timeout=self.options.call_timeout_seconds,
        )
        self._stats_from = (now, sequence, resolved)
        self._stats_due = now + self.options.stats_interval_seconds

    def _resolved(self) -> int:
        return self._resolutions() if self._resolutions is not None else 0

    # Cursor, lag, status ---------------------------------------------------------------

    def _stored_cursor(self) -> int:
        with self.store.read() as txn:
            return self.store.get_cursor(txn, CURSOR)

    def _save_cursor(self, sequence: int) -> None:
        # Only a change is written: every write moves LMDB's transaction id, which
        # sends each worker's cache follower to read the change log.
        if sequence != self._acked:
            self.store.write(lambda batch: batch.put_cursor(CURSOR, sequence))
        self._acked = sequence
        metrics.SYNC_ACKED_SEQUENCE.labels(self.upstream).set(sequence)

    def _last_sequence(self) -> int:
        with self.store.read() as txn:
            return self.store.last_sequence(txn)

    def _update_lag(self) -> None:
        with self.store.read() as txn:
            pending = next(self.store.changes_since(txn, self._acked, 1), None)
        metrics.SYNC_LAG.labels(self.upstream).set(_age_seconds(pending) if pending else 0)

    def _wait_for_change(self) -> None:
        seen = self.store.last_txn_id()
        deadline = time.monotonic() + self.options.status_interval_seconds
        while time.monotonic() < deadline and self.store.last_txn_id() == seen:
            if self._stop.wait(self.options.idle_poll_seconds):
                return

    def _note(self, state: str, **extra: Any) -> None:
        """Keep `idnode status`'s view of the sync (a small JSON file) at most once a second."""
        now = time.time()
        changed = state != self._status.get("state") or "error" in extra
        self._status.update(extra, state=state, acked_sequence=self._acked)
        if state in ("connected", "pushing", "idle"):
            self._status["last_ok"] = now
        if not self._status_path:
            return
        if not changed and now - self._status_written < self.options.status_interval_seconds:
            return
        self._status["updated"] = now
        temporary = self._status_path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(self._status, handle)
        os.replace(temporary, self._status_path)
        self._status_written = now


def _age_seconds(entry: handle_pb2.ChangeEntry) -> float:
    return max(0.0, time.time() - entry.timestamp_ns / 1e9)


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.Call):
        return f"{error.code().name}: {error.details()}"
    return str(error)
