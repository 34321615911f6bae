"""The top-level node's state over its own LMDB store: homed nodes, their mirrors, statistics.

Layout in the store's named databases:
- `meta`, key `node:<node prefix>`: the node's NodeStatus (sites, identity, log id,
  acknowledged sequence, last statistics); the runtime fields (reachable, takeover,
  refusal) are not stored.
- `records`: every node's mirrored records by identifier (node prefixes never nest,
  so one database holds all mirrors without collision).
- `prefixes`: the nodes' enterprise and derived prefixes (with their sites when delegated).
- `accounts`/`tokens`: the administrator and one credential per node.

The top-level node has no downstream, so it writes the mirror directly and keeps no
change log of its own: an applied batch and its acknowledged sequence commit in one
transaction, which is what makes de-duplication by (node, sequence) exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from proto import handle_pb2, sync_pb2
from registry import accounts, packing
from registry import sites as sites_rule
from registry.errors import (
    HandleNotFound,
    InvalidRequest,
    NotResponsible,
    PrefixNotFound,
)
from registry.identifier import is_under, parent_prefixes, parse, parse_prefix
from registry.nodekey import prefix_handle
from registry.store import Store, WriteBatch
from sync.toplevel import chaincheck, guards
from sync.toplevel.pins import fingerprints

NODE_KEY = "node:"
NODE_REFERRAL_TTL_SECONDS = 60
DELEGATION_TTL_SECONDS = 3600
TAKEOVER_TTL_SECONDS = 5  # short: the home node may be back any moment

Op = handle_pb2.ChangeEntry.Operation


@dataclass(frozen=True, slots=True)
class Home:
    """Where a prefix lives: a homed node, or an enterprise prefix delegated to its own node."""

    code: int  # 302 node prefix, 303 delegated enterprise prefix
    prefix: str
    node_prefix: str
    sites: tuple[handle_pb2.Site, ...]


@dataclass(frozen=True, slots=True)
class Hello:
    """What a session starts from: the mirror holds every entry up to `acked_sequence`."""

    acked_sequence: int
    registered: bool  # this Hello registered the node's identity


class Mirror:
    """Homed nodes and their mirrors; every method is one LMDB transaction."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    # Nodes --------------------------------------------------------------------

    def add_node(
        self,
        node_prefix: str,
        sites: Iterable[handle_pb2.Site],
        token: str = "",
        pins: Iterable[str] = (),
        certificate_only: bool = False,
    ) -> tuple[str, str]:
        """Home `node_prefix` and issue its credential (or adopt `token`; none with
        `certificate_only`); `pins` are the client-certificate fingerprints it must present.

        Adding a homed prefix again issues a new credential (the old one stays valid) and
        replaces the pins when some are given.
        Raises InvalidRequest when it nests with another homed node prefix, for a malformed
        fingerprint or a certificate-only node without one, InvalidValue or TooLarge for
        sites registry.sites refuses.
        """
        prefix = parse_prefix(node_prefix)
        wanted = list(sites)
        sites_rule.check_sites(wanted)
        pinned = fingerprints(pins)
        if token and len(token) < accounts.MIN_TOKEN_CHARS:
            raise InvalidRequest(f"a node token must be at least {accounts.MIN_TOKEN_CHARS} chars")
        if certificate_only and (token or not pinned):
            raise InvalidRequest("a node homed by certificate alone needs a pin and no token")
        chosen = "" if certificate_only else token or accounts.new_token()

        def work(batch: WriteBatch) -> None:
            for other in self._nodes(batch.txn):
                if other.node_prefix == prefix:
                    continue
                if is_under(prefix, other.node_prefix) or is_under(other.node_prefix, prefix):
                    raise InvalidRequest(
                        f"node prefix {prefix} nests with homed node prefix {other.node_prefix}"
                    )
            state = self._state(batch.txn, prefix) or sync_pb2.NodeStatus(node_prefix=prefix)
            if wanted:
                del state.sites[:]
                state.sites.extend(wanted)
            if pinned:
                del state.client_cert_sha256[:]
                state.client_cert_sha256.extend(pinned)
            self._put_state(batch, state)
            batch.put_account(
                accounts.Account(
                    name=prefix, role=accounts.ENTERPRISE, prefixes=[prefix], created=self._now()
                )
            )
            if chosen:
                batch.put_token(accounts.token_hash(chosen), prefix)

        self.store.write(work)
        return prefix, chosen

    def pin(
        self, node_prefix: str, pins: Iterable[str], add: bool = False
    ) -> sync_pb2.PinNodeResponse:
        """Set the client certificates a node must present (rotation: pin the new one,
        `add` to keep the old during the change, then pin the new one alone).

        Raises PrefixNotFound, InvalidRequest for a malformed fingerprint.
        """
        pinned = fingerprints(pins)

        def work(batch: WriteBatch) -> sync_pb2.PinNodeResponse:
            state = self._require(batch, parse_prefix(node_prefix))
            reply = sync_pb2.PinNodeResponse(
                node_prefix=state.node_prefix, previous=state.client_cert_sha256
            )
            kept = list(state.client_cert_sha256) if add else []
            del state.client_cert_sha256[:]
            state.client_cert_sha256.extend(dict.fromkeys([*kept, *pinned]))
            reply.client_cert_sha256.extend(state.client_cert_sha256)
            self._put_state(batch, state)
            return reply

        return self.store.write(work)

    def pins(self, node_prefix: str) -> list[str]:
        """The fingerprints `node_prefix` must present; [] when none is pinned or the prefix
        is not homed (the token check then refuses)."""
        with self.store.read() as txn:
            state = self._state(txn, node_prefix)
        return list(state.client_cert_sha256) if state is not None else []

    def node(self, node_prefix: str) -> sync_pb2.NodeStatus:
        """The stored state of a homed node. Raises PrefixNotFound."""
        with self.store.read() as txn:
            state = self._state(txn, node_prefix)
        if state is None:
            raise PrefixNotFound(f"node prefix {node_prefix} is not homed here")
        return state

    def nodes(self) -> list[sync_pb2.NodeStatus]:
        with self.store.read() as txn:
            return list(self._nodes(txn))

    def mirrored_count(self, node_prefix: str) -> int:
        with self.store.read() as txn:
            return sum(1 for _ in self._mirror_keys(txn, node_prefix))

    def hello(
        self,
        node_prefix: str,
        log_id: str,
        sites: Iterable[handle_pb2.Site],
        node_id: str = "",
        public_key: bytes = b"",
    ) -> Hello:
        """Start a session: registers the node's identity at its first sync, announces its
        sites, and says what the mirror holds of this change log. For another log id that
        is 0, and the mirror stays until the node's snapshot replaces it (an empty mirror
        adopts the log id at once: the log may then start from its first entry).

        The node's SM2 public key is registered at its first sync too (its checkpoints
        must verify under it from then on; sync.toplevel.chaincheck).

        Raises SyncRefused when the node prefix is homed to another identity or key,
        InvalidValue or TooLarge for sites registry.sites refuses.
        """
        announced = list(sites)
        sites_rule.check_sites(announced)

        def work(batch: WriteBatch) -> Hello:
            state = self._require(batch, node_prefix)
            guards.check_identity(state, node_id)
            registered = bool(node_id) and not state.node_id
            if registered:
                state.node_id = node_id
            if chaincheck.register_key(state, public_key):
                registered = True
            if announced:
                del state.sites[:]
                state.sites.extend(announced)
            if state.log_id != log_id and self._holds_nothing(batch.txn, node_prefix):
                state.log_id = log_id  # nothing to replace: the log may start from 0
                state.acked_sequence = 0
                state.chain_hash, state.checkpoint_sequence = b"", 0
            self._put_state(batch, state)
            held = state.acked_sequence if state.log_id == log_id else 0
            return Hello(acked_sequence=held, registered=registered)

        return self.store.write(work)

    def reset(self, node_prefix: str) -> sync_pb2.ResetNodeResponse:
        """Forget the node's identity and change log: the next node to sync with the node
        prefix's credential registers its identity, and its snapshot replaces the mirror
        even when older. The mirror keeps answering (takeover) until then."""

        def work(batch: WriteBatch) -> sync_pb2.ResetNodeResponse:
            state = self._require(batch, node_prefix)
            reply = sync_pb2.ResetNodeResponse(
                node_prefix=state.node_prefix,
                previous_node_id=state.node_id,
                previous_acked_sequence=state.acked_sequence,
            )
            state.node_id = state.log_id = ""
            state.acked_sequence = 0
            chaincheck.forget(state)
            self._put_state(batch, state)
            return reply

        return self.store.write(work)

    # Sync ---------------------------------------------------------------------

    def apply(
        self,
        node_prefix: str,
        log_id: str,
        entries: Iterable[handle_pb2.ChangeEntry],
        node_id: str = "",
        checkpoints: Iterable[handle_pb2.Checkpoint] = (),
    ) -> sync_pb2.PushResponse:
        """Apply entries past the acknowledged sequence, in order, in one transaction.

        Entries already applied are skipped (at-least-once delivery); a gap stops
        the batch and the reply's acknowledged sequence tells the node where to
        resume. Raises PermissionDenied for an entry outside the node prefix (and
        applies none of the batch), SyncRefused for another node identity, ChainBroken
        (applying none of the batch) when a signing node's entries do not hash to its
        `checkpoints` (sync.toplevel.chaincheck).
        """
        batch_entries = list(entries)
        signed = list(checkpoints)

        def work(batch: WriteBatch) -> sync_pb2.PushResponse:
            state = self._require(batch, node_prefix)
            guards.check_identity(state, node_id)
            if state.log_id != log_id or chaincheck.needs_rebase(state):
                return sync_pb2.PushResponse(acked_sequence=0, snapshot_needed=True)
            acked = state.acked_sequence
            check = chaincheck.PushCheck(state, log_id)
            for entry in batch_entries:
                guards.check_owned(node_prefix, entry)
                if entry.sequence <= acked:
                    continue  # a duplicate: applied before
                if entry.sequence != acked + 1:
                    break  # a gap: the node resends from acked + 1 (or sends a snapshot)
                self._apply_entry(batch, node_prefix, entry)
                check.applied(entry)
                acked = entry.sequence
            check.finish(signed)
            if acked != state.acked_sequence:
                state.acked_sequence = acked
                state.last_push = self._now()
                self._put_state(batch, state)
            return sync_pb2.PushResponse(acked_sequence=acked)

        return self.store.write(work)

    def _apply_entry(
        self, batch: WriteBatch, node_prefix: str, entry: handle_pb2.ChangeEntry
    ) -> None:
        if entry.operation in (Op.CREATE, Op.UPDATE):
            batch.put_record(entry.identifier, entry.record, created=entry.operation == Op.CREATE)
        elif entry.operation == Op.DELETE:
            batch.delete_record(entry.identifier)
        elif entry.operation == Op.PREFIX_PUT and entry.prefix.prefix != node_prefix:
            batch.put_prefix(entry.prefix)
        # ACCOUNT_PUT (a node's credential changed) is accepted, in order, and not kept: the
        # mirror answers resolutions, and credentials stay with the node that checks them.

    def begin_snapshot(
        self,
        node_prefix: str,
        log_id: str,
        sequence: int,
        node_id: str = "",
        checkpoint: handle_pb2.Checkpoint | None = None,
    ) -> None:
        """Discard the node's mirror before a snapshot's chunks arrive (acknowledged: 0).

        Raises SyncRefused, keeping the mirror, for another node identity, or for a
        snapshot of the same change log older than what the mirror holds; ChainBroken
        when a signing node's snapshot lacks its signed checkpoint at `sequence`.
        """

        def work(batch: WriteBatch) -> None:
            state = self._require(batch, node_prefix)
            guards.check_identity(state, node_id)
            guards.check_forward(state, log_id, sequence)
            chaincheck.check_snapshot(
                state, log_id, sequence, checkpoint or handle_pb2.Checkpoint()
            )
            state.chain_hash, state.checkpoint_sequence = b"", 0  # set when it is whole
            if node_id and not state.node_id:
                state.node_id = node_id
            self._clear_mirror(batch, node_prefix)
            state.log_id = log_id
            state.acked_sequence = 0
            self._put_state(batch, state)

        self.store.write(work)

    def snapshot_chunk(self, node_prefix: str, chunk: sync_pb2.SnapshotChunk) -> None:
        """Store one chunk's records and prefixes. Raises PermissionDenied outside the node."""

        def work(batch: WriteBatch) -> None:
            for record in chunk.records:
                guards.check_identifier(node_prefix, record.identifier)
                batch.put_record(record.identifier, record, created=True)
            for info in chunk.prefixes:
                guards.check_prefix(node_prefix, info.prefix)
                if info.prefix != node_prefix:
                    batch.put_prefix(info)

        self.store.write(work)

    def finish_snapshot(
        self, node_prefix: str, log_id: str, sequence: int, chain_hash: bytes = b""
    ) -> int:
        """The snapshot is complete: it stands for every entry up to `sequence`, whose
        chain hash (checked by begin_snapshot) is `chain_hash`."""

        def work(batch: WriteBatch) -> int:
            state = self._require(batch, node_prefix)
            if state.log_id != log_id:
                raise InvalidRequest("another session replaced the node's change log meanwhile")
            state.acked_sequence = sequence
            if state.public_key:
                state.chain_hash, state.checkpoint_sequence = chain_hash, sequence
            state.last_push = self._now()
            state.snapshots += 1
            self._put_state(batch, state)
            return sequence

        return self.store.write(work)

    def record_stats(self, node_prefix: str, report: sync_pb2.StatsReport) -> None:
        def work(batch: WriteBatch) -> None:
            state = self._require(batch, node_prefix)
            state.last_stats.CopyFrom(report)
            self._put_state(batch, state)

        self.store.write(work)

    # Resolution ---------------------------------------------------------------

    def home(self, prefix: str) -> Home | None:
        """The longest homed prefix that `prefix` is under: a delegated one, or a node's."""
        canonical = parse_prefix(prefix)
        with self.store.read() as txn:
            for candidate in parent_prefixes(canonical):
                state = self._state(txn, candidate)
                if state is not None:
                    return Home(302, candidate, candidate, tuple(state.sites))
                info = self.store.get_prefix(txn, candidate)
                if info is not None and info.sites:
                    node = self._node_of(txn, candidate)
                    return Home(303, candidate, node, tuple(info.sites))
        return None

    def record(self, identifier: str) -> handle_pb2.Record:
        """A mirrored record. Raises HandleNotFound, NotResponsible for an unhomed prefix."""
        parsed = parse(identifier)
        key = str(parsed)
        with self.store.read() as txn:
            if self._node_of(txn, parsed.prefix) == "":
                raise NotResponsible(f"no node is homed for prefix {parsed.prefix}")
            record = self.store.get_record(txn, key)
        if record is None:
            raise HandleNotFound(f"identifier {key} not found in the mirror")
        record.identifier = key
        return record

    def mirror_records(self, node_prefix: str) -> dict[str, bytes]:
        """Every mirrored record of a node, serialised, by identifier (for checks and tests)."""
        with self.store.read() as txn:
            return {
                key.decode(): packing.decode(
                    bytes(txn.get(key, db=self.store.records) or b"")
                ).SerializeToString()
                for key in self._mirror_keys(txn, node_prefix)
            }

    # Internals ----------------------------------------------------------------

    def _require(self, batch: WriteBatch, node_prefix: str) -> sync_pb2.NodeStatus:
        state = self._state(batch.txn, node_prefix)
        if state is None:
            raise PrefixNotFound(f"node prefix {node_prefix} is not homed here")
        return state

    def _state(self, txn: Any, node_prefix: str) -> sync_pb2.NodeStatus | None:
        raw = self.store.get_meta(txn, NODE_KEY + node_prefix)
        return sync_pb2.NodeStatus.FromString(raw) if raw is not None else None

    def _nodes(self, txn: Any) -> Iterable[sync_pb2.NodeStatus]:
        with txn.cursor(db=self.store.meta) as cursor:
            if not cursor.set_range(NODE_KEY.encode()):
                return
            for key, value in cursor:
                if not bytes(key).startswith(NODE_KEY.encode()):
                    return
                yield sync_pb2.NodeStatus.FromString(value)

    def _node_of(self, txn: Any, prefix: str) -> str:
        for candidate in parent_prefixes(prefix):
            if self._state(txn, candidate) is not None:
                return candidate
        return ""

    def _put_state(self, batch: WriteBatch, state: sync_pb2.NodeStatus) -> None:
        stored = sync_pb2.NodeStatus()
        stored.CopyFrom(state)
        stored.ClearField("reachable")
        stored.ClearField("takeover")
        stored.ClearField("mirrored_records")
        stored.ClearField("refusal")
        batch.put_meta(NODE_KEY + state.node_prefix, stored.SerializeToString())

    def _mirror_keys(self, txn: Any, node_prefix: str) -> Iterable[bytes]:
        own = prefix_handle(node_prefix).encode()  # the node's prefix record: its key
        if txn.get(own, db=self.store.records) is not None:
            yield own
        for start in (node_prefix + "/", node_prefix + "."):
            with txn.cursor(db=self.store.records) as cursor:
                if not cursor.set_range(start.encode()):
                    continue
                for key in cursor.iternext(keys=True, values=False):
                    if not bytes(key).startswith(start.encode()):
                        break
                    yield bytes(key)

    def _mirrored_prefixes(self, txn: Any, node_prefix: str) -> Iterable[bytes]:
        start = (node_prefix + ".").encode()
        with txn.cursor(db=self.store.prefixes) as cursor:
            if not cursor.set_range(start):
                return
            for found in cursor.iternext(keys=True, values=False):
                if not bytes(found).startswith(start):
                    return
                yield bytes(found)

    def _holds_nothing(self, txn: Any, node_prefix: str) -> bool:
        keys = (self._mirror_keys(txn, node_prefix), self._mirrored_prefixes(txn, node_prefix))
        return all(next(iter(found), None) is None for found in keys)

    def _clear_mirror(self, batch: WriteBatch, node_prefix: str) -> None:
        for key in list(self._mirror_keys(batch.txn, node_prefix)):
            batch.delete_record(key.decode())
        for key in list(self._mirrored_prefixes(batch.txn, node_prefix)):
            batch.txn.delete(key, db=self.store.prefixes)

    def _now(self) -> int:
        return int(self._clock())
