"""The primary's side of replication: the Follow stream and Position, in every worker.

A Follow call starts with what this node holds (`FollowStart`), then a snapshot when the
replica's copy cannot be continued (`plan`), the accounts and tokens, and then the change
log as it commits: batches read exactly as the upward sync reads them
(`sync.batches.next_batch`), a heartbeat carrying the newest sequence every second while
nothing changes, and the accounts and tokens again whenever they changed. A replica
applies what it receives in order and reconnects after any failure from where it stands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from proto import handle_pb2, replica_pb2, sync_pb2
from registry import chaincopy, chainlog
from registry.changelog import sequence_key
from registry.errors import AuthenticationRequired, PermissionDenied, TooLarge, Unavailable
from registry.identity import ensure_log_id, node_id
from registry.store import Store
from resolver.grpc_auth import Authenticator
from resolver.grpc_server import streaming, unary
from sync import batches
from sync.replica import apply, marks

SERVICE = "idnode.v1.Replication"
MAX_CHECKPOINTS_PER_MESSAGE = 256  # about 50 KiB
MAX_FOLLOW_REQUEST_BYTES = 4096
_ALLOWED_ROLES = (handle_pb2.Account.Role.ADMIN, handle_pb2.Account.Role.REPLICA)
# Entries whose transaction may have changed accounts or tokens: an enterprise's onboarding
# (its prefix), and every credential change (rotation, revocation, expiry).
_CREDENTIAL_CHANGES = (handle_pb2.ChangeEntry.PREFIX_PUT, handle_pb2.ChangeEntry.ACCOUNT_PUT)


@dataclass(frozen=True)
class SourceOptions:
    batch_entries: int = 500
    batch_bytes: int = 2 << 20  # well under the 4 MiB a gRPC client receives by default
    snapshot_chunk_records: int = 1000
    snapshot_chunk_bytes: int = 2 << 20
    credentials_chunk_bytes: int = 2 << 20
    poll_seconds: float = 0.002  # how often an idle stream looks for a commit (~2 µs each)
    heartbeat_seconds: float = 1.0
    credentials_check_seconds: float = 1.0  # at most this often while writes go on
    max_streams: int = 4  # per worker: each holds a handler thread for as long as it lasts


@dataclass(frozen=True, slots=True)
class Plan:
    snapshot: bool
    reason: str


def plan(
    request: replica_pb2.FollowRequest,
    log_id: str,
    parent: marks.Parent | None,
    first: int,
    last: int,
    timestamp_at: Callable[[int], int | None],
) -> Plan:
    """Whether a replica at `request` can go on from there, or needs a snapshot first.

    `first`..`last` is the change log held here (first = last + 1 when empty), `parent`
    the log this one continues (a promoted replica's), `timestamp_at(n)` the commit time
    of entry n (None when it is no longer kept)."""
    after = request.after_sequence
    if not request.log_id:
        return Plan(True, "the replica holds no copy yet")
    if request.log_id != log_id:
        continues = parent is not None and request.log_id == parent.log_id
        if not continues or after > parent.sequence:  # type: ignore[union-attr]
            return Plan(True, "the replica holds another change log")
    if after > last:
        return Plan(True, "the replica holds sequences this change log never wrote")
    if after + 1 < first:
        return Plan(True, "the change log no longer reaches back to the replica's position")
    if after and request.after_timestamp_ns:
        found = timestamp_at(after)
        if found is not None and found != request.after_timestamp_ns:
            return Plan(True, "the replica's copy differs from this change log at its position")
    return Plan(False, "incremental")


class ReplicationService:
    """Follow and Position over this node's store."""

    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        node_prefix: str,
        http_site: str = "",
        stopping: threading.Event | None = None,
        options: SourceOptions = SourceOptions(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._auth = authenticator
        self._node_prefix = node_prefix
        self.http_site = http_site  # set once the HTTP face is bound
        self._stopping = stopping or threading.Event()
        self.options = options
        self._clock = clock
        self._streams = threading.BoundedSemaphore(options.max_streams)

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Follow": streaming(
                    self.follow, replica_pb2.FollowRequest, MAX_FOLLOW_REQUEST_BYTES
                ),
                "Position": unary(self.position, replica_pb2.PositionRequest),
            },
        )

    def position(
        self, request: replica_pb2.PositionRequest, context: grpc.ServicerContext
    ) -> replica_pb2.PositionResponse:
        store = self._store
        with store.read() as txn:
            return replica_pb2.PositionResponse(
                last_sequence=store.last_sequence(txn),
                first_sequence=store.first_sequence(txn),
                log_id=marks.position(store, txn).log_id,
                role="replica" if marks.is_replica(store, txn) else "primary",
            )

    def follow(
        self, request: replica_pb2.FollowRequest, context: grpc.ServicerContext
    ) -> Iterator[replica_pb2.FollowMessage]:
        caller = self._auth.caller(context)
        if caller is None:
            raise AuthenticationRequired("following the change log needs a bearer token")
        if caller.role not in _ALLOWED_ROLES:
            raise PermissionDenied("only a replication credential may follow the change log")
        return self._counted(request, context.is_active)

    def _counted(
        self, request: replica_pb2.FollowRequest, active: Callable[[], bool]
    ) -> Iterator[replica_pb2.FollowMessage]:
        """The stream, holding one of the worker's `max_streams` places while it runs."""
        if not self._streams.acquire(blocking=False):
            raise TooLarge(
                f"this worker serves {self.options.max_streams} Follow streams already; "
                "follow a replica instead, or retry"
            )
        try:
            yield from self._stream(request, active)
        finally:
            self._streams.release()

    # The stream -----------------------------------------------------------------------

    def _stream(
        self, request: replica_pb2.FollowRequest, active: Callable[[], bool]
    ) -> Iterator[replica_pb2.FollowMessage]:
        store = self._store
        with store.read() as txn:
            copying = marks.is_copying(store, txn)
            log_id = marks.position(store, txn).log_id
        if copying:
            raise Unavailable("this node is copying its own primary; follow it later")
        if not log_id:
            log_id = ensure_log_id(store)  # a primary that never synced has none yet
        start = self._start(request, log_id)
        yield replica_pb2.FollowMessage(start=start)
        after = request.after_sequence
        signed = _signed_to(store, request)
        if start.snapshot:
            after, signed = yield from self._snapshot(log_id)
        stream = _Credentials(store, self.options)
        with store.read() as txn:
            yield from stream.send(txn)
        yield from self._follow(after, signed, stream, active)

    def _start(self, request: replica_pb2.FollowRequest, log_id: str) -> replica_pb2.FollowStart:
        store = self._store
        with store.read() as txn:
            first, last = store.first_sequence(txn), store.last_sequence(txn)
            parent = marks.parent(store, txn)

            def timestamp_at(sequence: int) -> int | None:
                raw = txn.get(sequence_key(sequence), db=store.changelog)
                return handle_pb2.ChangeEntry.FromString(bytes(raw)).timestamp_ns if raw else None

            decided = plan(request, log_id, parent, first, last, timestamp_at)
        return replica_pb2.FollowStart(
            node_prefix=self._node_prefix,
            log_id=log_id,
            node_id=node_id(store) or "",
            first_sequence=first,
            last_sequence=last,
            snapshot=decided.snapshot,
            reason=decided.reason,
            http_site=self.http_site,
        )

    def _snapshot(self, log_id: str) -> Generator[replica_pb2.FollowMessage, None, tuple[int, int]]:
        """Every prefix and record as of one read transaction, then the seed of the hash
        chain; returns its sequence, and the last checkpoint the replica needs no more."""
        store, options = self._store, self.options
        with store.read() as txn:
            sequence = store.last_sequence(txn)
            raw = txn.get(sequence_key(sequence), db=store.changelog) if sequence else None
            timestamp = handle_pb2.ChangeEntry.FromString(bytes(raw)).timestamp_ns if raw else 0
            first = sync_pb2.SnapshotChunk(
                node_prefix=self._node_prefix, log_id=log_id, sequence=sequence
            )
            chunks = batches.snapshot_chunks(
                first,
                store.iter_prefixes(txn),
                store.iter_records(txn),
                options.snapshot_chunk_records,
                options.snapshot_chunk_bytes,
            )
            for chunk in chunks:
                yield replica_pb2.FollowMessage(snapshot=chunk)
            seed = chaincopy.seed(txn, store, sequence)
        end = replica_pb2.SnapshotEnd(sequence=sequence, timestamp_ns=timestamp)
        if seed is None:
            yield replica_pb2.FollowMessage(snapshot_end=end)
            return sequence, sequence
        end.chain_from, end.chain_previous = seed.first, seed.previous
        end.chain_hashes.extend(seed.hashes)
        yield replica_pb2.FollowMessage(snapshot_end=end)
        return sequence, seed.first - 1

    def _follow(
        self, after: int, signed: int, credentials: _Credentials, active: Callable[[], bool]
    ) -> Iterator[replica_pb2.FollowMessage]:
        """Entries after `after` as they commit, and the checkpoints ending after `signed`
        as they are signed (each with or after the entries it covers)."""
        store, options = self._store, self.options
        beat_due = self._clock() + options.heartbeat_seconds
        while active() and not self._stopping.is_set():
            with store.read() as txn:
                seen = txn.id()  # what this snapshot holds (a probe may run ahead of it)
                if after + 1 < store.first_sequence(txn):
                    raise Unavailable("the change log was trimmed past the replica's position")
                entries = batches.next_batch(
                    store, txn, after, options.batch_entries, options.batch_bytes
                )
                last = store.last_sequence(txn)
                reach = entries[-1].sequence if entries else after
                checkpoints = chainlog.checkpoints_between(
                    txn, store, signed, reach, MAX_CHECKPOINTS_PER_MESSAGE
                )
                digest = credentials.changed(txn, entries, self._clock())
                update = list(credentials.send(txn, digest)) if digest else []
            yield from update
            if entries or checkpoints or self._clock() >= beat_due:
                changes = replica_pb2.Changes(entries=entries, last_sequence=last)
                changes.checkpoints.extend(checkpoints)
                yield replica_pb2.FollowMessage(changes=changes)
                beat_due = self._clock() + options.heartbeat_seconds
            if checkpoints:
                signed = checkpoints[-1].last_sequence
            if entries or len(checkpoints) == MAX_CHECKPOINTS_PER_MESSAGE:
                after = entries[-1].sequence if entries else after
                continue
            self._wait_for_commit(seen, beat_due, active)
        if self._stopping.is_set():
            raise Unavailable("this node is stopping: follow it again in a moment")

    def _wait_for_commit(self, seen: int, until: float, active: Callable[[], bool]) -> None:
        store = self._store
        while store.last_txn_id() == seen and self._clock() < until and active():
            if self._stopping.wait(self.options.poll_seconds):
                return


def _signed_to(store: Store, request: replica_pb2.FollowRequest) -> int:
    """The last checkpoint the replica holds as this store holds it: the replica's newest,
    or 0 (every checkpoint again) when this store's differs (re-signed since)."""
    wanted = request.checkpoint_sequence
    if not wanted:
        return 0
    with store.read() as txn:
        held = chainlog.covering(txn, store, wanted)
    if held is None or held.last_sequence != wanted:
        return 0
    return wanted if held.signed_ns == request.checkpoint_signed_ns else 0


class _Credentials:
    """Sends the accounts and tokens at the start of a stream and again when they changed.

    The change log says that an account changed (ACCOUNT_PUT) but carries no secret, so
    what a replica must hold is found by a digest, computed when a batch creates a prefix
    (an enterprise is created with its account) or changes an account, when the number
    of accounts or tokens moved, or at most every `credentials_check_seconds`; the new
    set goes before the batch read with it."""

    def __init__(self, store: Store, options: SourceOptions) -> None:
        self._store = store
        self._options = options
        self._sent = b""
        self._counts = (-1, -1)
        self._checked = 0.0

    def changed(self, txn: Any, entries: list[handle_pb2.ChangeEntry], now: float) -> bytes | None:
        """The digest of the accounts and tokens when it may have moved and did, else None."""
        counts = (
            txn.stat(self._store.accounts)["entries"],
            txn.stat(self._store.tokens)["entries"],
        )
        created = any(e.operation in _CREDENTIAL_CHANGES for e in entries)
        due = now - self._checked >= self._options.credentials_check_seconds
        if counts == self._counts and not created and not due:
            return None
        self._checked = now
        self._counts = counts
        digest = apply.credentials_digest(self._store, txn)
        return digest if digest != self._sent else None

    def send(self, txn: Any, digest: bytes | None = None) -> Iterator[replica_pb2.FollowMessage]:
        """Every account and token; `digest` is theirs when the caller has it already."""
        found, tokens = apply.read_credentials(self._store, txn)
        self._sent = digest or apply.credentials_digest(self._store, txn)
        self._counts = (len(found), len(tokens))
        chunks = batches.credential_chunks(found, tokens, self._options.credentials_chunk_bytes)
        for chunk in chunks:
            yield replica_pb2.FollowMessage(credentials=chunk)
