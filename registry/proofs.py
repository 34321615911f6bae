"""A record's proof: the change that wrote it, its chain proof and the signed checkpoint.

Asked for on request only, off the resolve path's cache: one read transaction that
reads the change's entry, its checkpoint and the chain hashes of the checkpoint's range
(at most registry.chain.MAX_RANGE_ENTRIES), and builds the Merkle audit path.
"""

from __future__ import annotations

from proto import handle_pb2
from registry import chain, chainlog, changelog, values
from registry.errors import ProofNotReady, ProofUnavailable
from registry.store import Store


def prove(store: Store, key: str) -> handle_pb2.ChainProof:
    """The proof for the record stored under the canonical identifier `key`.

    Raises ProofNotReady when its change is not signed yet, ProofUnavailable when its
    change is no longer in the change log or the store keeps no chain."""
    with store.read() as txn:
        if store.borrowed is None or not chainlog.keeps_chain(txn, store):
            raise ProofUnavailable("this node's store keeps no signed change log")
        noted = txn.get(key.encode(), db=store.borrowed)
        raw = txn.get(bytes(noted), db=store.changelog) if noted is not None else None
        if noted is None or raw is None:
            if chainlog.is_copy(txn, store):
                raise ProofUnavailable(
                    f"this replica holds {key} from the copy it was made from, not the "
                    "change that wrote it: ask its primary"
                )
            raise ProofUnavailable(
                f"the change that wrote {key} is older than the change log keeps"
            )
        sequence = changelog.sequence_of(bytes(noted))
        checkpoint = chainlog.covering(txn, store, sequence)
        newest = chainlog.last_checkpoint(txn, store) if checkpoint is None else None
        if newest is not None and newest.last_sequence >= sequence:
            raise ProofUnavailable(
                f"change {sequence} of {key} is signed in a checkpoint this copy does not "
                "hold (it was copied from its primary after that change): ask the primary"
            )
        if checkpoint is None:
            raise ProofNotReady(
                f"change {sequence} of {key} is not signed yet: the node signs its change "
                "log about once a second; ask again"
            )
        entry = changelog.complete(txn, store, handle_pb2.ChangeEntry.FromString(bytes(raw)))
        try:
            leaves = chainlog.leaves(
                txn, store, checkpoint.first_sequence, checkpoint.last_sequence
            )
        except chain.ChainError as error:
            raise ProofUnavailable(f"no proof for {key}: {error}") from None
        if sequence > checkpoint.first_sequence:
            previous = leaves[sequence - checkpoint.first_sequence - 1]
        else:
            previous = bytes(checkpoint.previous_hash)
    return chain.make_proof(entry, previous, leaves, checkpoint)


def prove_readable(store: Store, key: str, include_restricted: bool) -> handle_pb2.ChainProof:
    """`prove`, for a caller who may read restricted values only when `include_restricted`:
    a proof carries every value of the record (the signature covers them all), so a
    record holding a restricted value is proven only to its owner and the administrator.

    Raises as `prove`, and ProofUnavailable for such a record and another caller."""
    proof = prove(store, key)
    if not include_restricted and not all(map(values.is_public, proof.entry.record.values)):
        raise ProofUnavailable(
            f"{key} holds restricted values, which its proof would show: ask with the "
            "credential of its owner or the administrator"
        )
    return proof
