"""The replica's side: follows the primary's change log over one gRPC stream and applies it.

One follower runs per replica, in the master process. A session asks the primary to
continue from what the store holds (its log, last sequence and that entry's commit
time); the primary answers with a snapshot first when that cannot be continued. Every
entry is applied in order in the replica's own store (`sync.replica.apply`), so every
worker's caches, the DNS serial and IXFR follow as on the primary. Any failure ends the
session; the next one starts after an exponential, jittered delay from where the store
stands, so a restart or an outage resumes at the last applied sequence.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

import metrics
from proto import handle_pb2, replica_pb2, replica_pb2_grpc
from registry import chainlog
from registry.identity import ensure_node_id
from registry.store import Store
from resolver.tls import ClientTls, channel_credentials, open_channel
from sync.replica import apply, marks, status
from sync.retry import PROTOCOL, REFUSED, Failures, Refusal, SyncError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 << 20  # the channel's own limit; the primary's messages stay far below
MAX_CREDENTIALS_BYTES = 256 << 20  # accounts and tokens gathered before they are applied


@dataclass(frozen=True)
class FollowOptions:
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 10.0
    reconnect_max_seconds: float = 1.0  # gRPC's own reconnection attempts while it is away
    silence_seconds: float = 5.0  # no message (the primary beats every second): reconnect
    status_interval_seconds: float = 1.0


class ProtocolError(SyncError):
    """The primary sent something out of order or malformed."""


class ReplicationFailures(Failures):
    """The follower's failures: logged once per cause, counted in the replica's metrics."""

    what = "replication"
    peer = "primary"
    refusal = "the primary cannot be followed"

    def _declare(self) -> None:
        metrics.REPLICA_FAILURES.labels(self.upstream, PROTOCOL)

    def _count(self, code: str) -> None:
        metrics.REPLICA_FAILURES.labels(self.upstream, code).inc()

    def _cleared(self) -> None:
        pass  # the state gauge says it: `following` again


class Follower:
    """Keeps the store a copy of the primary's; `start()`/`stop()`, `wait_copied()`."""

    def __init__(
        self,
        store: Store,
        primary: str,
        token: str,
        options: FollowOptions = FollowOptions(),
        status_path: str | None = None,
        tls: ClientTls | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.primary = primary
        self.options = options
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._status_path = status_path
        self._tls = tls  # None: a plain channel (a private link); else verified TLS
        # The files are read once, here: an unusable one stops start-up (CertificateError).
        self._credentials = channel_credentials(tls) if tls is not None else None
        self.failures = ReplicationFailures(
            primary, options.backoff_initial_seconds, options.backoff_max_seconds, draw
        )
        self._stop = threading.Event()
        self._copied = threading.Event()
        self._lock = threading.Lock()  # the call to cancel, the report
        self._call: Any = None
        self._channel: grpc.Channel | None = None
        self._thread = threading.Thread(target=self._run, name="replica-follow", daemon=True)
        self._monitor = threading.Thread(target=self._watch, name="replica-watch", daemon=True)
        self.node_id = ensure_node_id(store)
        with store.read() as txn:
            held = marks.position(store, txn)
            copied = bool(held.log_id) and not marks.is_copying(store, txn)
        if copied:
            self._copied.set()
        self.applied = held.sequence
        self.primary_sequence = held.sequence
        # Everything committed before this instant (primary's clock) is applied here.
        self._holds_until = held.timestamp_ns / 1e9 if held.timestamp_ns else 0.0
        self._caught_up = False
        self._last_message = 0.0
        self.state = "connecting"
        self._error: dict[str, Any] = {}
        self._reported = 0.0
        for state in status.STATES:
            metrics.REPLICA_STATE.labels(primary, state).set(0)
        metrics.REPLICA_SNAPSHOTS.labels(primary)
        self._set_state("connecting")

    # Life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._monitor.start()

    def stop(self) -> None:
        """Stop at once: the stream is cancelled; an entry batch is applied whole or not."""
        self._stop.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
            if self._channel is not None:
                self._channel.close()
        for thread in (self._thread, self._monitor):
            if thread.is_alive():
                thread.join(10.0)
        self._report(force=True)

    def wait_copied(self, stop: threading.Event) -> bool:
        """Block until the store holds a whole copy (True) or `stop` is set (False)."""
        while not stop.is_set():
            if self._copied.wait(0.2):
                return True
        return False

    @property
    def copied(self) -> bool:
        return self._copied.is_set()

    def lag_seconds(self, now: float | None = None) -> float:
        """0 while caught up; otherwise how long since the replica last held everything the
        primary had committed (measured from the primary's commit times)."""
        now = time.time() if now is None else now
        fresh = now - self._last_message < self.options.silence_seconds
        if self._caught_up and fresh and self.state == "following":
            return 0.0
        return max(0.0, now - self._holds_until) if self._holds_until else 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except Exception as error:  # the follower must outlive any one session
                if self._stop.is_set():
                    return
                delay = self._failed(error)
                self._stop.wait(delay)

    # A session -------------------------------------------------------------------------

    def _stub(self) -> Any:
        with self._lock:
            if self._channel is None:
                reconnect_ms = int(self.options.reconnect_max_seconds * 1000)
                self._channel = open_channel(
                    self.primary,
                    self._tls,
                    credentials=self._credentials,
                    options=[
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.initial_reconnect_backoff_ms", min(200, reconnect_ms)),
                        ("grpc.max_reconnect_backoff_ms", reconnect_ms),
                    ],
                )
            return replica_pb2_grpc.ReplicationStub(self._channel)

    def _session(self) -> None:
        stub = self._stub()
        with self.store.read() as txn:
            held = marks.position(self.store, txn)
            # a store upgraded without its primary's chain is copied again to get it
            copying = marks.is_copying(self.store, txn) or chainlog.needs_copy(txn, self.store)
            signed = chainlog.last_checkpoint(txn, self.store)
        request = replica_pb2.FollowRequest(
            log_id="" if copying else held.log_id,
            after_sequence=held.sequence,
            after_timestamp_ns=held.timestamp_ns,
            replica_id=self.node_id,
        )
        if signed is not None:
            request.checkpoint_sequence = signed.last_sequence
            request.checkpoint_signed_ns = signed.signed_ns
        with self._lock:
            if self._stop.is_set():
                return
            self._call = stub.Follow(request, metadata=self._metadata)
            self._last_message = time.time()
        try:
            self._consume(iter(self._call))
        finally:
            with self._lock:
                self._call = None

    def _consume(self, messages: Iterator[replica_pb2.FollowMessage]) -> None:
        start = self._next(messages, "start").start
        self._check_start(start)
        if start.snapshot:
            log.info("copying the primary by snapshot", extra={"reason": start.reason})
            self._set_state("copying")
            self._take_snapshot(messages, start)
        else:
            self._note_primary(start)
            self._copied.set()
        self._set_state("following")
        gathered: list[replica_pb2.Credentials] = []
        gathered_bytes = 0
        for message in messages:
            self._heard()
            kind = message.WhichOneof("kind")
            if kind == "changes":
                self._apply(message.changes)
            elif kind == "credentials":
                gathered.append(message.credentials)
                gathered_bytes += message.ByteSize()
                if gathered_bytes > MAX_CREDENTIALS_BYTES:
                    raise ProtocolError("the primary's credentials exceed the replica's bound")
                if message.credentials.last:
                    self._replace_credentials(gathered)
                    gathered, gathered_bytes = [], 0
            else:
                raise ProtocolError(f"unexpected {kind or 'empty'} message while following")
        if not self._stop.is_set():
            raise ProtocolError("the primary ended the stream")

    def _next(self, messages: Iterator[replica_pb2.FollowMessage], kind: str) -> Any:
        message = next(messages, None)
        if message is None:
            raise ProtocolError(f"the stream ended where {kind} was expected")
        self._heard()
        found = message.WhichOneof("kind")
        if found != kind:
            raise ProtocolError(f"expected {kind}, the primary sent {found or 'nothing'}")
        return message

    def _check_start(self, start: replica_pb2.FollowStart) -> None:
        with self.store.read() as txn:
            held = (self.store.get_meta(txn, marks.NODE_PREFIX_KEY) or b"").decode()
        if held and start.node_prefix != held:
            raise Refusal(
                f"the primary serves node prefix {start.node_prefix!r}; "
                f"this replica's data dir holds {held!r}"
            )
        self.primary_sequence = start.last_sequence

    def _take_snapshot(
        self, messages: Iterator[replica_pb2.FollowMessage], start: replica_pb2.FollowStart
    ) -> None:
        applier = apply.SnapshotApplier(self.store)
        self._copied.clear()
        for message in messages:
            self._heard()
            kind = message.WhichOneof("kind")
            if kind == "snapshot":
                applier.chunk(message.snapshot)
                self._report()
            elif kind == "snapshot_end":
                end = message.snapshot_end
                applier.finish(end, start)
                self.applied = end.sequence
                self._holds_until = max(self._holds_until, end.timestamp_ns / 1e9)
                metrics.REPLICA_SNAPSHOTS.labels(self.primary).inc()
                metrics.REPLICA_APPLIED_SEQUENCE.labels(self.primary).set(self.applied)
                log.info(
                    "snapshot of the primary taken in",
                    extra={"sequence": end.sequence, "records": applier.records},
                )
                self._copied.set()
                return
            else:
                raise ProtocolError(f"unexpected {kind or 'empty'} message in a snapshot")
        raise ProtocolError("the stream ended inside a snapshot")

    def _apply(self, changes: replica_pb2.Changes) -> None:
        if changes.entries or changes.checkpoints:
            try:
                self.applied = apply.apply_entries(self.store, changes.entries, changes.checkpoints)
            except apply.ApplyError as error:
                raise ProtocolError(str(error)) from error
        if changes.entries:
            newest = changes.entries[-1].timestamp_ns / 1e9
            self._holds_until = max(self._holds_until, newest)
            metrics.REPLICA_APPLIED_SEQUENCE.labels(self.primary).set(self.applied)
        self.primary_sequence = max(changes.last_sequence, self.applied)
        self._caught_up = self.applied >= changes.last_sequence
        if self._caught_up:
            self._holds_until = max(self._holds_until, time.time())
        if self.failures.count:
            self.failures.recovered()
            self._error = {}
        self._report()

    def _replace_credentials(self, gathered: list[replica_pb2.Credentials]) -> None:
        found: list[handle_pb2.Account] = [a for c in gathered for a in c.accounts]
        tokens = [t for c in gathered for t in c.tokens]
        apply.replace_credentials(self.store, found, tokens)

    def _note_primary(self, start: replica_pb2.FollowStart) -> None:
        with self.store.read() as txn:
            known = marks.primary(self.store, txn)
            log_id = marks.position(self.store, txn).log_id
        if log_id != start.log_id or known.get("http_site") != start.http_site:
            self.store.write(lambda batch: marks.note_primary(batch, start))

    # Failures, state, status -------------------------------------------------------------

    def _failed(self, error: BaseException) -> float:
        failure = self.failures.failed(error)
        self._error = {
            "error": failure.reason,
            "code": failure.code,
            "failures": failure.count,
            "failing_since": failure.since,
            "retry_in_seconds": round(failure.retry_in_seconds, 3),
        }
        refused = failure.code in (REFUSED, "PERMISSION_DENIED", "UNAUTHENTICATED")
        self._caught_up = False
        self._set_state("failing" if refused else "connecting")
        return failure.retry_in_seconds

    def _heard(self) -> None:
        self._last_message = time.time()

    def _watch(self) -> None:
        """Reconnect a stream that went silent (a primary that vanished without closing
        its connections), and keep the report fresh while nothing arrives."""
        while not self._stop.wait(self.options.status_interval_seconds / 2):
            silent = time.time() - self._last_message > self.options.silence_seconds
            with self._lock:
                if silent and self._call is not None:
                    self._call.cancel()
            self._report()

    def _set_state(self, state: str) -> None:
        changed = state != self.state
        self.state = state
        for name in status.STATES:
            metrics.REPLICA_STATE.labels(self.primary, name).set(1 if name == state else 0)
        if changed or state == "connecting":
            self._report(force=True)

    def _report(self, force: bool = False) -> None:
        """Metrics and the status file, at most once per status interval unless forced."""
        now = time.time()
        with self._lock:
            if not force and now - self._reported < self.options.status_interval_seconds:
                return
            self._reported = now
        lag = self.lag_seconds(now)
        metrics.REPLICA_LAG.labels(self.primary).set(lag)
        metrics.REPLICA_APPLIED_SEQUENCE.labels(self.primary).set(self.applied)
        if not self._status_path:
            return
        document: dict[str, Any] = {
            "primary": self.primary,
            "state": self.state,
            "copied": self.copied,
            "applied_sequence": self.applied,
            "primary_sequence": max(self.primary_sequence, self.applied),
            "lag_seconds": round(lag, 3),
            "node_id": self.node_id,
            "updated": now,
            **(self._error if self.state in ("connecting", "failing") else {}),
        }
        with contextlib.suppress(OSError):
            status.write(self._status_path, document)
