"""The top-level node's check of what a node sends: its change log must hash to checkpoints
signed by the SM2 key the node registered at its first sync.

The mirror keeps, per node, the chain hash of the acknowledged sequence. A push extends
that chain entry by entry (registry.chain), and every checkpoint the push carries must
state the same head hash at its last sequence, the same previous hash where the mirror
knows it, and the Merkle root of its range when the push holds the whole range; its
signature must verify. Anything else refuses the whole push (ChainBroken), in the
transaction that would have applied it, so none of it is applied. Entries past the last
checkpoint checked are accepted while they stay within one checkpoint's range: the next
push must bring the checkpoint that covers them.
"""

from __future__ import annotations

from collections.abc import Sequence

from proto import handle_pb2, sync_pb2
from registry import chain
from registry.crypto import sm2
from registry.errors import ChainBroken, InvalidRequest, SyncRefused


def register_key(state: sync_pb2.NodeStatus, point: bytes) -> bool:
    """Note the node's public key at its first sync; True when this call registered it.

    A node that sends none (a version before signed checkpoints) is not checked. Raises
    InvalidRequest for a key that is not an SM2 point, SyncRefused for another key than
    the registered one (an administrator's reset forgets it)."""
    if not point:
        return False
    try:
        sm2.PublicKey(point)
    except sm2.SM2Error as error:
        raise InvalidRequest(f"the node's public key: {error}") from None
    if not state.public_key:
        state.public_key = point
        return True
    if state.public_key != point:
        raise SyncRefused(
            f"node {state.node_prefix} presents another SM2 public key than the one it "
            "registered at its first sync; if its key was replaced, reset the node"
        )
    return False


def needs_rebase(state: sync_pb2.NodeStatus) -> bool:
    """True when the node signs but the mirror does not know the chain hash of what it
    holds (a mirror made before checkpoints existed): only a snapshot can set it."""
    return bool(state.public_key) and state.acked_sequence > 0 and not state.chain_hash


class PushCheck:
    """Follows one push's entries, then checks the push's checkpoints against them."""

    def __init__(self, state: sync_pb2.NodeStatus, log_id: str) -> None:
        self._state = state
        self._log_id = log_id
        self._key = sm2.PublicKey(state.public_key) if state.public_key else None
        self._start = state.acked_sequence
        self._head = state.chain_hash or chain.GENESIS
        self._hashes: list[bytes] = []  # chain hashes of the entries applied, in order

    def applied(self, entry: handle_pb2.ChangeEntry) -> None:
        """`entry` (the next sequence) is being applied."""
        if self._key is not None:
            self._head = chain.link(self._head, chain.entry_bytes(entry))
            self._hashes.append(self._head)

    def finish(self, checkpoints: Sequence[handle_pb2.Checkpoint]) -> None:
        """Check `checkpoints` against the entries applied and note the new chain hash in
        the node's state. Raises ChainBroken."""
        if self._key is None:
            return
        state = self._state
        acked = self._start + len(self._hashes)
        checked = state.checkpoint_sequence
        for checkpoint in sorted(checkpoints, key=lambda c: c.last_sequence):
            if checked < checkpoint.last_sequence <= acked:
                self._check(checkpoint)
                checked = checkpoint.last_sequence
        if acked - checked > chain.MAX_RANGE_ENTRIES:
            raise ChainBroken(
                f"node {state.node_prefix} sent changes up to {acked}, more than "
                f"{chain.MAX_RANGE_ENTRIES} past its last signed checkpoint ({checked})"
            )
        state.chain_hash = self._head
        state.checkpoint_sequence = checked

    def _hash_at(self, sequence: int) -> bytes | None:
        if sequence == self._start:
            return self._state.chain_hash or chain.GENESIS
        if self._start < sequence <= self._start + len(self._hashes):
            return self._hashes[sequence - self._start - 1]
        return None

    def _check(self, checkpoint: handle_pb2.Checkpoint) -> None:
        assert self._key is not None
        first, last = checkpoint.first_sequence, checkpoint.last_sequence
        where = f"node {self._state.node_prefix}, checkpoint {first}..{last}"
        try:
            chain.check_checkpoint(checkpoint, self._key)
        except chain.ChainError as error:
            raise ChainBroken(f"{where}: {error}") from None
        if checkpoint.log_id != self._log_id:
            raise ChainBroken(f"{where}: signed for another change log")
        if checkpoint.head_hash != self._hash_at(last):
            raise ChainBroken(
                f"{where}: the changes received do not hash to the signed head (a change "
                f"up to {last} was altered, reordered or lost)"
            )
        previous = self._hash_at(first - 1)
        if previous is not None and previous != checkpoint.previous_hash:
            raise ChainBroken(f"{where}: it does not follow the chain received before it")
        if first > self._start:
            leaves = self._hashes[first - self._start - 1 : last - self._start]
            if chain.merkle_root(leaves) != checkpoint.merkle_root:
                raise ChainBroken(f"{where}: its Merkle root is not that of its changes")


def check_snapshot(
    state: sync_pb2.NodeStatus, log_id: str, sequence: int, checkpoint: handle_pb2.Checkpoint
) -> None:
    """A snapshot of a signing node carries its checkpoint at the snapshot's sequence (the
    mirror's chain resumes from its head once the snapshot is whole). Raises ChainBroken."""
    if not state.public_key or sequence == 0:
        return
    where = f"node {state.node_prefix}, snapshot at {sequence}"
    if checkpoint.last_sequence != sequence:
        raise ChainBroken(f"{where}: no signed checkpoint ends at the snapshot's sequence")
    try:
        chain.check_checkpoint(checkpoint, sm2.PublicKey(state.public_key))
    except chain.ChainError as error:
        raise ChainBroken(f"{where}: {error}") from None
    if checkpoint.log_id != log_id:
        raise ChainBroken(f"{where}: the checkpoint is signed for another change log")


def forget(state: sync_pb2.NodeStatus) -> None:
    """An administrator's reset: the next node to sync registers its key afresh."""
    state.public_key = b""
    state.chain_hash = b""
    state.checkpoint_sequence = 0
