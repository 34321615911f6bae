"""A record's proof: the change that wrote it, its chain proof and the signed checkpoint.

Asked for on request only, off the resolve path's cache: one read transaction that
reads the change's entry, its checkpoint and the chain hashes of the checkpoint's range
(at most registry.chain.MAX_RANGE_ENTRIES), and builds the Merkle audit path.
"""

from __future__ import annotations

from proto import handle_pb2
from registry import chain, chainlog, changelog
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
            raise ProofUnavailable(
                f"the change that wrote {key} is older than the change log keeps"
            )
        sequence = changelog.sequence_of(bytes(noted))
        checkpoint = chainlog.covering(txn, store, sequence)
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
