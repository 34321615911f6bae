"""The upward sync: pushes the change log to the top-level node from the acknowledged sequence.

One pusher runs per node (in the master process). It never blocks a registration:
it only reads the store, in its own thread, and writes nothing but its cursor.

A session is: Hello (announce sites and the node's identity, learn what the upstream
holds), decide where to resume (`sync.plan`), a snapshot when the log cannot serve,
then Push batches of consecutive entries, bounded in entries and bytes
(`sync.batches`). The upstream applies each entry once, in order, and replies with
its acknowledged sequence, which the pusher stores durably in its cursor after the
reply: a crash between the two only resends entries the upstream skips. Any failure
ends the session; the next starts after an exponential, jittered delay
(`sync.retry`), or as soon as the channel reconnects after the upstream was away.
An idle session ends every few seconds too, so that the next Hello notices an
upstream that lost its copy while nothing was registered.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

import metrics
from proto import handle_pb2, sync_pb2, sync_pb2_grpc
from registry import chainlog, nodekey
from registry.identity import ensure_log_id, ensure_node_id
from registry.signer import Signer
from registry.store import Store
from resolver.tls import ClientTls, open_channel
from sync import batches, status
from sync.plan import resume_point
from sync.retry import REFUSED, Failure, Failures, SyncError

log = logging.getLogger(__name__)

CURSOR = "upstream"
MAX_MESSAGE_BYTES = 64 << 20  # the channel's own limit; batches stay far below it


@dataclass(frozen=True)
class PushOptions:
    batch_entries: int = 500
    batch_bytes: int = 2 << 20  # half the gRPC default receive limit of 4 MiB
    snapshot_chunk_records: int = 1000
    snapshot_chunk_bytes: int = 2 << 20
    idle_poll_seconds: float = 0.01  # how often an idle pusher looks for new entries (~2 µs)
    call_timeout_seconds: float = 30.0
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 30.0
    # gRPC's own reconnection attempts while the upstream is away (a TCP connect each),
    # which wake the backoff as soon as it is back.
    reconnect_max_seconds: float = 1.0
    stats_interval_seconds: float = 60.0
    hello_interval_seconds: float = 5.0  # an idle pusher re-checks what the upstream holds
    status_interval_seconds: float = 1.0


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
        tls: ClientTls | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.store = store
        # With a signer, only signed entries go up, each push with its checkpoints.
        self._signer = signer
        self._signing = signer  # None, for a session, when the store keeps no chain
        self.node_prefix = node_prefix
        self.upstream = upstream
        self.options = options
        self.sites = list(sites)
        # A node homed by its client certificate alone sends no token.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._tls = tls
        self._renew = False  # set by renew_channel(): the next session opens a new channel
        self._resolutions = resolutions
        self._status_path = status_path
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by the channel coming back
        self._thread = threading.Thread(target=self._run, name="upstream-sync", daemon=True)
        self._channel: grpc.Channel | None = None
        self._closing = threading.Lock()  # no subscription to a channel stop() closed
        self._log_id = ensure_log_id(store)
        self.node_id = ensure_node_id(store)
        self._acked = self._stored_cursor()
        self._read_txn_id = -1
        self.failures = Failures(
            upstream, options.backoff_initial_seconds, options.backoff_max_seconds, draw
        )
        self._status: dict[str, Any] = {
            "upstream": upstream, "state": "starting", "node_id": self.node_id
        }  # fmt: skip
        self._status_written = 0.0
        self._stats_due = 0.0
        self._stats_from = (time.time(), self._last_sequence(), self._resolved())
        metrics.SYNC_ACKED_SEQUENCE.labels(upstream).set(self._acked)

    # Life cycle ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: closing the channel cancels a call in flight (it is resent later)."""
        with self._closing:
            self._stop.set()
            self._wake.set()
            if self._channel is not None:
                self._channel.close()
        if self._thread.is_alive():
            self._thread.join(10.0)

    def renew_channel(self) -> None:
        """Open a new channel at the next session: the TLS files are read again (a reloaded
        client certificate). The session in progress finishes on the current one."""
        self._renew = True

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
                failure = self.failures.failed(error)
                self._note_failure(failure)
                self._update_lag()
                self._wait_for_upstream(failure.retry_in_seconds)

    def _wait_for_upstream(self, seconds: float) -> None:
        """Wait `seconds`, or less: until the channel is ready again after being down.

        Subscribing with try_to_connect keeps gRPC reconnecting (at most
        `reconnect_max_seconds` apart) while the upstream is away. A channel that stays
        ready (the upstream answers, but fails the sync) never cuts the wait short.
        """
        channel = self._channel
        if channel is None:
            self._stop.wait(seconds)
            return
        was_down = False

        def watch(state: grpc.ChannelConnectivity) -> None:
            nonlocal was_down
            if state != grpc.ChannelConnectivity.READY:
                was_down = True
            elif was_down:
                self._wake.set()

        with self._closing:
            if self._stop.is_set():
                return
            self._wake.clear()
            channel.subscribe(watch, try_to_connect=True)
        try:
            self._wake.wait(seconds)
        finally:
            with contextlib.suppress(ValueError):  # stop() closed it, which unsubscribed all
                channel.unsubscribe(watch)

    # A session ---------------------------------------------------------------------

    def _stub(self) -> Any:
        with self._closing:
            if self._stop.is_set():
                raise SyncError("stopping")
            if self._renew and self._channel is not None:
                self._channel.close()
                self._channel = None
            self._renew = False
            if self._channel is None:
                reconnect_ms = int(self.options.reconnect_max_seconds * 1000)
                self._channel = open_channel(
                    self.upstream,
                    self._tls,
                    options=[
                        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.initial_reconnect_backoff_ms", min(200, reconnect_ms)),
                        ("grpc.max_reconnect_backoff_ms", reconnect_ms),
                    ],
                )
            return sync_pb2_grpc.TopLevelStub(self._channel)

    def _call(self, method: Callable[..., Any], request: Any, timeout: float = 0.0) -> Any:
        return method(
            request,
            metadata=self._metadata,
            timeout=timeout or self.options.call_timeout_seconds,
        )

    def _session(self) -> None:
        stub = self._stub()
        with self.store.read() as txn:
            first, last = self.store.first_sequence(txn), self.store.last_sequence(txn)
            # a store without a chain (a promoted copy of a primary that kept none) pushes
            # unsigned, as a node from before checkpoints did
            chained = chainlog.keeps_chain(txn, self.store)
        self._signing = self._signer if chained else None
        hello = self._call(
            stub.Hello,
            sync_pb2.HelloRequest(
                node_prefix=self.node_prefix,
                log_id=self._log_id,
                node_id=self.node_id,
                sites=self.sites,
                first_sequence=first,
                last_sequence=last,
                public_key=self._signing.key.public_key.point if self._signing else b"",
            ),
        )
        resume = resume_point(self._acked, hello.acked_sequence, first, last)
        if not self.failures.count:
            self._note("connected")
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
            self.failures.recovered()  # caught up: nothing left to push
            self._report_stats(stub)
            self._note("idle")
            if time.monotonic() - checked > self.options.hello_interval_seconds:
                return  # a new session's Hello notices an upstream that lost its copy
            self._wait_for_change()

    def _push_once(self, stub: Any) -> bool:
        """Push the next batch; False when there was nothing to push."""
        options = self.options
        if self._signing is not None:
            self._signing.sign_pending()
        with self.store.read() as txn:
            self._read_txn_id = txn.id()  # what an idle wait compares with
            first = self.store.first_sequence(txn)
            entries = batches.next_batch(
                self.store, txn, self._acked, options.batch_entries, options.batch_bytes
            )
            checkpoints = self._signed(txn, entries)
        if self._acked + 1 < first:
            self._snapshot(stub)  # the log was trimmed past what the upstream holds
            return True
        if not entries:
            metrics.SYNC_LAG.labels(self.upstream).set(0)
            return False
        metrics.SYNC_LAG.labels(self.upstream).set(_age_seconds(entries[0]))
        request = sync_pb2.PushRequest(
            node_prefix=self.node_prefix, log_id=self._log_id, node_id=self.node_id
        )
        request.entries.extend(entries)
        request.checkpoints.extend(checkpoints)
        reply = self._call(stub.Push, request)
        if reply.snapshot_needed or reply.acked_sequence < self._acked:
            self._snapshot(stub)
            return True
        if reply.acked_sequence > entries[-1].sequence:
            raise SyncError(
                f"upstream acknowledged {reply.acked_sequence} past {entries[-1].sequence}"
            )
        metrics.SYNC_PUSHES.labels(self.upstream, "ok").inc()
        if reply.acked_sequence > self._acked:
            self.failures.recovered()
        self._save_cursor(reply.acked_sequence)
        self._note("pushing")
        return True

    def _signed(self, txn: Any, entries: list[handle_pb2.ChangeEntry]) -> list[Any]:
        """Cut `entries` back to the signed ones (in place); the checkpoints ending among
        them, for the upstream to check (registry.chain)."""
        if self._signing is None or not entries:
            return []
        newest = chainlog.last_checkpoint(txn, self.store)
        signed_to = newest.last_sequence if newest is not None else 0
        while entries and entries[-1].sequence > signed_to:
            entries.pop()
        if not entries:
            return []
        first, last = entries[0].sequence, entries[-1].sequence
        return chainlog.checkpoints_between(txn, self.store, first - 1, last)

    def _snapshot(self, stub: Any) -> None:
        """Send every record and prefix as of one read snapshot, then resume after it; with
        a signer, at the newest checkpoint, which the first chunk carries (the records may
        be newer: the entries after it are pushed again, and applying them is idempotent)."""
        options = self.options
        if self._signing is not None:
            self._signing.sign_pending()
        with self.store.read() as txn:
            sequence = self.store.last_sequence(txn)
            first = sync_pb2.SnapshotChunk(
                node_prefix=self.node_prefix, log_id=self._log_id, node_id=self.node_id
            )
            if self._signing is not None:
                newest = chainlog.last_checkpoint(txn, self.store)
                sequence = newest.last_sequence if newest is not None else 0
                if newest is not None:
                    first.checkpoint.CopyFrom(newest)
            first.sequence = sequence
            chunks = batches.snapshot_chunks(
                first,
                self.store.iter_prefixes(txn),
                self.store.iter_records(txn),
                options.snapshot_chunk_records,
                options.snapshot_chunk_bytes,
            )
            reply = self._call(
                stub.Snapshot, chunks, timeout=max(options.call_timeout_seconds, 600.0)
            )
        if reply.acked_sequence != sequence:
            raise SyncError(f"snapshot at {sequence} acknowledged as {reply.acked_sequence}")
        metrics.SYNC_PUSHES.labels(self.upstream, "snapshot").inc()
        self.failures.recovered()
        self._save_cursor(sequence)
        log.info("snapshot acknowledged", extra={"sequence": sequence})

    # Statistics --------------------------------------------------------------------

    def _report_stats(self, stub: Any) -> None:
        now = time.time()
        if now < self._stats_due:
            return
        started, sequence_then, resolved_then = self._stats_from
        with self.store.read() as txn:
            own = self.store.get_record(txn, nodekey.prefix_handle(self.node_prefix))
            # the node's own prefix record (its HS_PUBKEY) is not a registered identifier
            identifiers = self.store.record_count(txn) - (own is not None)
            sequence = self.store.last_sequence(txn)
            enterprises = sum(1 for _ in self.store.iter_prefixes(txn)) - 1
        resolved = self._resolved()
        report = sync_pb2.StatsReport(
            node_prefix=self.node_prefix,
            period_start=int(started),
            period_end=int(now),
            identifiers=identifiers,
            registrations=max(0, sequence - sequence_then),
            resolutions=max(0, resolved - resolved_then),
            enterprise_prefixes=max(0, enterprises),
        )
        self._call(stub.ReportStats, report)
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
        """Until a commit after the last read (or the status interval). The last read's
        own transaction id, not a probe taken after it: a commit between the two would
        wait for the next one, and the probe can run a commit ahead of new readers."""
        seen = self._read_txn_id
        deadline = time.monotonic() + self.options.status_interval_seconds
        while time.monotonic() < deadline and self.store.last_txn_id() == seen:
            if self._stop.wait(self.options.idle_poll_seconds):
                return

    def _note_failure(self, failure: Failure) -> None:
        self._note(
            status.REFUSED_STATE if failure.code == REFUSED else "failing",
            error=failure.reason,
            code=failure.code,
            failures=failure.count,
            failing_since=failure.since,
            retry_in_seconds=round(failure.retry_in_seconds, 3),
        )

    def _note(self, state: str, **extra: Any) -> None:
        """Keep `idnode status`'s view of the sync (a small JSON file) at most once a second."""
        now = time.time()
        changed = state != self._status.get("state") or "error" in extra
        self._status.update(extra, state=state, acked_sequence=self._acked)
        if state in status.OK_STATES:
            self._status["last_ok"] = now
            for key in ("error", "code", "failures", "failing_since", "retry_in_seconds"):
                self._status.pop(key, None)
        if not self._status_path:
            return
        if not changed and now - self._status_written < self.options.status_interval_seconds:
            return
        self._status["updated"] = now
        status.write(self._status_path, self._status)
        self._status_written = now


def _age_seconds(entry: handle_pb2.ChangeEntry) -> float:
    return max(0.0, time.time() - entry.timestamp_ns / 1e9)
