"""The node chains and signs its change log: SM3 chain hashes, then SM2 checkpoints.

This runs in the master, never on a write: every `interval` (and before each upward
push, so that what is pushed is signed) it chains the entries written since (one SM3
each, computed in a read snapshot, stored in transactions of CHAIN_CHUNK_ENTRIES), then
covers them in ranges of at most registry.chain.MAX_RANGE_ENTRIES, one SM2 signature
each. A write only appends its entry: the chain costs it nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from proto import handle_pb2
from registry import chain, chainlog, storefile
from registry.crypto import sm2
from registry.identity import ensure_log_id
from registry.store import Store, WriteBatch

log = logging.getLogger("registry.signer")
CHAIN_CHUNK_ENTRIES = 4096  # chain hashes stored per write transaction: ~4 ms of its lock


class Signer:
    """Signs the change log of `store` with `key`; thread-safe."""

    def __init__(
        self, store: Store, key: sm2.PrivateKey, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.store = store
        self.key = key
        self._clock = clock
        self._lock = threading.Lock()

    def sign_pending(self, up_to: int | None = None) -> list[handle_pb2.Checkpoint]:
        """Chain the new entries and sign those after the last checkpoint, up to `up_to`
        (default: the newest); returns the checkpoints made. Nothing while the store's disk
        is full (storefile.low_space). Raises ChainError when the store lacks chain hashes."""
        if storefile.low_space(self.store.path):
            return []  # its writes would fail, each counted as a refused write: later
        with self._lock:
            self._chain_new()
            made = self._prepare(up_to)
            if made:
                self.store.write(lambda batch: self._put(batch, made))
            return made

    def _chain_new(self) -> None:
        """Chain the entries written since the last run, a chunk per write transaction."""
        store = self.store
        while True:
            with store.read() as txn:
                if not chainlog.keeps_chain(txn, store) or not store.keeps_changelog(txn):
                    return
                chained = chainlog.chained_to(txn, store)
                if chained >= store.last_sequence(txn):
                    return
                hashes = chainlog.compute(txn, store, chained, CHAIN_CHUNK_ENTRIES)

            def put(batch: WriteBatch, after: int = chained, found: list[bytes] = hashes) -> None:
                if chainlog.chained_to(batch.txn, store) == after:  # else a trim chained them
                    chainlog.put_hashes(batch.txn, store, after + 1, found)

            store.write(put)

    def resign_foreign(self) -> int:
        """Re-sign, with this node's key and log id, every kept checkpoint when the newest
        was signed by another key or for another change log: a promoted replica's (its
        primary signed them), or a node whose key was lost and made anew. Ranges and
        hashes stay: the node vouches for the chain it holds, each range's hashes checked
        against the checkpoint first. Returns how many were re-signed. Raises ChainError
        for a checkpoint that does not hold for the chain hashes kept."""
        store = self.store
        log_id = ensure_log_id(store)
        with self._lock:
            with store.read() as txn:
                newest = chainlog.last_checkpoint(txn, store)
                if newest is None or (
                    newest.log_id == log_id
                    and self.key.public_key.verify(chain.signed_bytes(newest), newest.signature)
                ):
                    return 0
                made = [self._resign(txn, old, log_id) for old in chainlog.checkpoints(txn, store)]

            def put(batch: WriteBatch) -> None:
                for checkpoint in made:
                    chainlog.put_checkpoint(batch.txn, store, checkpoint, replace=True)

            store.write(put)
        return len(made)

    def _resign(self, txn: Any, old: handle_pb2.Checkpoint, log_id: str) -> handle_pb2.Checkpoint:
        first, last = old.first_sequence, old.last_sequence
        leaves = chainlog.leaves(txn, self.store, first, last)
        new = chain.make_checkpoint(
            log_id, first, bytes(old.previous_hash), leaves, self.key, self._clock()
        )
        if new.head_hash != old.head_hash or new.merkle_root != old.merkle_root:
            raise chain.ChainError(
                f"checkpoint {first}..{last} does not hold for the chain hashes kept: run "
                "idnode verify"
            )
        return new

    def _prepare(self, up_to: int | None) -> list[handle_pb2.Checkpoint]:
        store = self.store
        log_id = ensure_log_id(store)
        with store.read() as txn:
            if not chainlog.keeps_chain(txn, store) or not store.keeps_changelog(txn):
                return []
            last = store.last_sequence(txn)
            end = last if up_to is None else min(up_to, last)
            end = min(end, chainlog.chained_to(txn, store))  # writes go on while it chains
            newest = chainlog.last_checkpoint(txn, store)
            start = (
                newest.last_sequence + 1 if newest is not None else chainlog.origin(txn, store)[0]
            )
            start = max(start, store.first_sequence(txn))
            if start > end:
                return []
            previous = chainlog.hash_at(txn, store, start - 1)
            ranges = []
            for first in range(start, end + 1, chain.MAX_RANGE_ENTRIES):
                last_of_range = min(first + chain.MAX_RANGE_ENTRIES - 1, end)
                ranges.append((first, chainlog.leaves(txn, store, first, last_of_range)))
        made = []
        for first, leaves in ranges:
            checkpoint = chain.make_checkpoint(
                log_id, first, previous, leaves, self.key, self._clock()
            )
            made.append(checkpoint)
            previous = leaves[-1]
        return made

    def _put(self, batch: WriteBatch, made: list[handle_pb2.Checkpoint]) -> None:
        newest = chainlog.last_checkpoint(batch.txn, self.store)
        if newest is not None and newest.last_sequence >= made[0].first_sequence:
            return  # another signer got there first: its checkpoints stand
        for checkpoint in made:
            chainlog.put_checkpoint(batch.txn, self.store, checkpoint)


class Signing:
    """The master's signing thread: `sign_pending` at once, then every `interval_seconds`."""

    def __init__(self, signer: Signer, interval_seconds: float) -> None:
        self.signer = signer
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chain-signer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        paused = ""
        first = True  # at once: what was written while no node ran (an import, an upgrade)
        while first or not self._stop.wait(self._interval):
            first = False
            # On a full disk sign_pending waits for space (its writes would fail, each
            # counted as a refused write); said once here.
            full = storefile.low_space(self.signer.store.path)
            if full != paused:
                if full:
                    log.warning("chaining and signing paused: no space", extra={"reason": full})
                else:
                    log.warning("chaining and signing resumed")
                paused = full
            try:
                self.signer.sign_pending()
            except Exception:  # the node keeps serving; the next interval tries again
                log.exception("signing the change log failed; retrying at the next interval")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
