"""The SOA serial: the clock in milliseconds when the current epoch began, plus the changes since.

An epoch begins when the zone apex changes (zone, nameservers, their addresses,
SOA fields) and whenever the node asks for one at start. It starts at the
clock (Unix time in milliseconds, mod 2^32) or one past the serial served so
far, whichever is newer in RFC 1982 arithmetic, so the serial never goes back:
not across a configuration change, and not across a restored older backup
(whose serial lags the clock). Within an epoch every change-log entry adds one.
Epochs live in the store's meta database, so every worker computes the same serial.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from registry.store import Store, Txn, WriteBatch

META_KEY = "dns.serial_epochs"
MAX_EPOCHS = 64  # older epochs are forgotten; IXFR from a serial in them falls back to AXFR
SERIAL_MASK = 0xFFFFFFFF
_HALF = 1 << 31
_EPOCH = struct.Struct("!IQ8s")  # first serial, first sequence, apex fingerprint


@dataclass(frozen=True, slots=True)
class Epoch:
    serial: int  # the serial of the zone at `sequence`
    sequence: int
    fingerprint: bytes  # of the apex this epoch serves


def fingerprint(apex_records: Sequence[bytes]) -> bytes:
    """A short digest of everything at the apex except the serial."""
    digest = hashlib.blake2b(digest_size=8)
    for record in apex_records:
        digest.update(len(record).to_bytes(4, "big") + record)
    return digest.digest()


def newer(a: int, b: int) -> bool:
    """RFC 1982: serial `a` is greater than serial `b`."""
    return 0 < (a - b) & SERIAL_MASK < _HALF


def read(store: Store, txn: Txn) -> list[Epoch]:
    raw = store.get_meta(txn, META_KEY) or b""
    return [Epoch(*_EPOCH.unpack_from(raw, at)) for at in range(0, len(raw), _EPOCH.size)]


def serial_at(epochs: Sequence[Epoch], sequence: int) -> int:
    """The serial of the zone at `sequence` (a store without epochs: the sequence itself)."""
    for epoch in reversed(epochs):
        if epoch.sequence <= sequence:
            return (epoch.serial + sequence - epoch.sequence) & SERIAL_MASK
    return sequence & SERIAL_MASK


def sequence_of(
    epochs: Sequence[Epoch], serial: int, apex: bytes, last_sequence: int
) -> int | None:
    """The sequence a secondary holding `serial` has, or None when it cannot be told
    (an older apex, a forgotten epoch, a serial we never served)."""
    end = last_sequence
    for epoch in reversed(epochs):
        offset = (serial - epoch.serial) & SERIAL_MASK
        if offset <= end - epoch.sequence:
            return epoch.sequence + offset if epoch.fingerprint == apex else None
        end = epoch.sequence
    return None


def begin_epoch(
    store: Store, apex: bytes, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
) -> Epoch:
    """Start a new epoch now (call once per node start, before workers serve)."""

    def work(batch: WriteBatch) -> Epoch:
        return _begin(batch, apex, clock_ms())

    return store.write(work)


def ensure_epoch(
    store: Store, apex: bytes, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
) -> None:
    """Begin an epoch unless the current one already serves this apex."""
    with store.read() as txn:
        epochs = read(store, txn)
    if epochs and epochs[-1].fingerprint == apex:
        return

    def work(batch: WriteBatch) -> None:
        found = read(store, batch.txn)
        if not found or found[-1].fingerprint != apex:  # another worker may have won
            _begin(batch, apex, clock_ms())

    store.write(work)


def _begin(batch: WriteBatch, apex: bytes, now_ms: int) -> Epoch:
    epochs = read(batch.store, batch.txn)
    sequence = batch.store.last_sequence(batch.txn)
    current = serial_at(epochs, sequence)
    clock = now_ms & SERIAL_MASK
    epoch = Epoch(clock if newer(clock, current) else (current + 1) & SERIAL_MASK, sequence, apex)
    kept = [*epochs, epoch][-MAX_EPOCHS:]
    batch.put_meta(
        META_KEY, b"".join(_EPOCH.pack(e.serial, e.sequence, e.fingerprint) for e in kept)
    )
    return epoch


RETIRED = b"\x00" * 8  # no apex has this fingerprint: IXFR from a retired epoch is AXFR


def restart(
    batch: WriteBatch,
    served_sequence: int,
    sequence: int,
    clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> None:
    """The change log starts over at `sequence` in this transaction (a replica re-copied by
    snapshot), having served up to `served_sequence`: the serial still moves forward, and
    no serial served before can be the start of an IXFR (the changes in between are not
    known here), so secondaries that hold one transfer the whole zone."""
    epochs = read(batch.store, batch.txn)
    if not epochs:
        return
    current = serial_at(epochs, served_sequence)
    clock = clock_ms() & SERIAL_MASK
    first = clock if newer(clock, current) else (current + 1) & SERIAL_MASK
    retired = [Epoch(e.serial, e.sequence, RETIRED) for e in epochs]
    kept = [*retired, Epoch(first, sequence, epochs[-1].fingerprint)][-MAX_EPOCHS:]
    batch.put_meta(
        META_KEY, b"".join(_EPOCH.pack(e.serial, e.sequence, e.fingerprint) for e in kept)
    )
