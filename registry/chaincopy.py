"""A copy's hash chain: a replica chains the entries it applies and keeps its primary's
checkpoints, so that it proves records and passes `verify` as its primary does.

The chain hash of an entry depends only on the entry and the hash before it, so a copy
that applies the same entries computes the same hashes. A copy taken by snapshot at
sequence S starts from a seed its primary sends: the chain hashes from the first entry
the next checkpoint may cover up to S, and the hash before them. A checkpoint is kept
once its head hash, previous hash and Merkle root are those of the copy's own chain
hashes (its signature is the primary's affair: partners and `verify` check it against
the HS_PUBKEY the copy holds); one that differs means the copy diverged, and is refused.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proto import handle_pb2
from registry import chain, chainlog
from registry.chain import ChainError

MAX_SEED_HASHES = 1 << 14  # 512 KiB of hashes: a signer that far behind is a problem already
_SEQ = struct.Struct(">Q")


@dataclass(frozen=True)
class Seed:
    """How a copy taken at `sequence` goes on with the chain (see the module docstring)."""

    first: int  # chain hashes below are of entries first..sequence
    previous: bytes  # the chain hash of entry first - 1
    hashes: list[bytes]


def seed(txn: Any, dbs: Any, sequence: int) -> Seed | None:
    """The seed for a copy of this store at `sequence` (its last), None when the store
    keeps no chain (or no longer holds the hashes a copy would need)."""
    if not chainlog.keeps_chain(txn, dbs):
        return None
    newest = chainlog.last_checkpoint(txn, dbs)
    first = newest.last_sequence + 1 if newest is not None else chainlog.origin(txn, dbs)[0]
    first = min(max(first, sequence + 1 - MAX_SEED_HASHES), sequence + 1)
    # Computed from the entries: the signer may not have stored the newest hashes yet.
    start = min(chainlog.chained_to(txn, dbs), first - 1)  # its hash is stored
    if sequence - start > 4 * MAX_SEED_HASHES:
        return None  # a signer that far behind: the copy goes without, until its next one
    try:
        hashes = [chainlog.hash_at(txn, dbs, start)]
        hashes += chainlog.compute(txn, dbs, start, sequence - start)
    except ChainError:
        return None
    if len(hashes) != sequence - start + 1:
        return None
    skip = first - 1 - start  # hashes[skip] is entry first - 1's
    return Seed(first, hashes[skip], hashes[skip + 1 :])


def start_over(txn: Any, dbs: Any, sequence: int, given: Seed | None) -> None:
    """A copy now holds its primary's records at `sequence`, and no change log: its chain
    starts again from `given` (none: the copy keeps no chain until its next snapshot).
    Raises ChainError for a seed that does not reach `sequence`."""
    txn.drop(dbs.chain, delete=False)
    txn.drop(dbs.checkpoints, delete=False)
    if given is None:
        txn.put(chainlog.STATE_KEY, chainlog.OFF, db=dbs.meta)
        return
    if len(given.previous) != len(chain.GENESIS) or given.first + len(given.hashes) != sequence + 1:
        raise ChainError(f"the primary's chain seed does not reach sequence {sequence}")
    for offset, chain_hash in enumerate(given.hashes):
        if len(chain_hash) != len(chain.GENESIS):
            raise ChainError("the primary's chain seed holds a hash that is not 32 bytes")
        txn.put(_SEQ.pack(given.first + offset), chain_hash, db=dbs.chain, append=True)
    chainlog.put_origin(txn, dbs, given.first, given.previous)
    txn.delete(chainlog.STATE_KEY, db=dbs.meta)


class Extender:
    """Chains the entries a copy applies, in one write transaction."""

    def __init__(self, txn: Any, dbs: Any) -> None:
        self._txn = txn
        self._dbs = dbs
        self._on = chainlog.keeps_chain(txn, dbs)
        self._head: bytes | None = None

    def applied(self, entry: handle_pb2.ChangeEntry) -> None:
        """`entry`, with its record, was applied at its own sequence."""
        if not self._on:
            return
        head = self._head
        if head is None:
            head = chainlog.hash_at(self._txn, self._dbs, entry.sequence - 1)
        self._head = chain.link(head, chain.entry_bytes(entry))
        self._txn.put(_SEQ.pack(entry.sequence), self._head, db=self._dbs.chain, append=True)

    def keep(self, checkpoints: Sequence[handle_pb2.Checkpoint]) -> int:
        """Keep the primary's `checkpoints` that hold for this copy's chain (one that
        replaces another, re-signed, too); returns how many. Those starting before the
        copy's chain are left out. Raises ChainError for one that differs from it."""
        if not self._on:
            return 0
        kept = 0
        first_chained = chainlog.origin(self._txn, self._dbs)[0]
        for checkpoint in checkpoints:
            if checkpoint.first_sequence < first_chained:
                continue
            self._check(checkpoint)
            chainlog.put_checkpoint(self._txn, self._dbs, checkpoint, replace=True)
            kept += 1
        return kept

    def _check(self, checkpoint: handle_pb2.Checkpoint) -> None:
        first, last = checkpoint.first_sequence, checkpoint.last_sequence
        if not 0 < first <= last or last - first >= chain.MAX_RANGE_ENTRIES:
            raise ChainError(f"the primary's checkpoint {first}..{last} is impossible")
        leaves = chainlog.leaves(self._txn, self._dbs, first, last)
        previous = chainlog.hash_at(self._txn, self._dbs, first - 1)
        if (
            previous != checkpoint.previous_hash
            or leaves[-1] != checkpoint.head_hash
            or chain.merkle_root(leaves) != checkpoint.merkle_root
        ):
            raise ChainError(
                f"the primary's checkpoint {first}..{last} is not that of the entries this "
                "copy applied: the copy differs from its primary"
            )
