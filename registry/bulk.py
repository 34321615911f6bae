"""Batch register: records checked and encoded before the write lock, written in key order.

A batch does its per-record work (parsing, value checks, encoding, deflating) before its
transaction begins, so the transaction, which holds LMDB's one writer lock, only looks
records up and puts bytes. It visits them in key order: LMDB then appends to its pages
where keys are new and past the end, and touches each page once where they are not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

from proto import handle_pb2
from registry import packing, values
from registry.errors import IdnodeError
from registry.identifier import excerpt, parse_key
from registry.writebatch import WriteBatch

REJECTED = "rejected"


@dataclass(slots=True)
class BatchResult:
    """What a batch register did, item by item."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    sequence: int = 0
    outcomes: list[str] = field(default_factory=list)  # created|updated|unchanged|rejected
    errors: list[str] = field(default_factory=list)  # reason per item, "" when accepted


class Prepared(NamedTuple):
    """One record of a batch, ready to store (a tuple: a batch makes thousands)."""

    identifier: bytes  # the key, encoded: what the batch is sorted by
    position: int  # in the request
    key: str
    prefix: str
    record: handle_pb2.Record  # values checked and stamped
    encoded: bytes  # as stored under `records` (registry.packing)


def prepare(
    records: Sequence[handle_pb2.Record], now: int, page_bytes: int
) -> tuple[list[Prepared], list[tuple[int, str]]]:
    """Check, stamp and encode every record: the ones to write, in key order (a key
    given twice keeps its order), and the refused ones with their positions and reasons.
    Values are stamped in place (values.stamp_record), a copy of each record costing
    as much again."""
    ready: list[Prepared] = []
    refused: list[tuple[int, str]] = []
    prefixes: dict[str, str] = {}  # as written -> canonical: a batch repeats a few
    for position, record in enumerate(records):
        try:
            prefix, key = parse_key(record.identifier, prefixes)
            stored = values.stamp_record(record, now)  # the request's own record
        except IdnodeError as error:
            refused.append((position, f"{excerpt(record.identifier)}: {error}"))
            continue
        identifier = key.encode()
        plain = packing.without_identifier(stored.SerializeToString())
        encoded = packing.pack(plain, len(identifier), page_bytes)
        ready.append(Prepared(identifier, position, key, prefix, stored, encoded))
    # By identifier; the sort is stable: a key given twice keeps its order.
    ready.sort(key=itemgetter(0))
    return ready, refused


def write(
    batch: WriteBatch,
    ready: Sequence[Prepared],
    authorize: Callable[[str], None],
    refused: Sequence[tuple[int, str]],
) -> BatchResult:
    """Store every prepared record in `batch` unless `authorize(prefix)` raises or the
    record holds those values already; returns the outcome of each item of the request
    (the ready and the refused ones)."""
    size = len(ready) + len(refused)
    outcomes = [""] * size
    errors = [""] * size
    for position, reason in refused:
        outcomes[position], errors[position] = REJECTED, reason
    txn, records = batch.txn, batch.store.records
    allowed = None  # the prefix of the item before, allowed: in key order, a prefix's items
    for item in ready:  # come together
        if item.prefix != allowed:
            try:
                authorize(item.prefix)
            except IdnodeError as error:
                outcomes[item.position] = REJECTED
                errors[item.position] = f"{item.key!r}: {error}"
                continue
            allowed = item.prefix
        existing = txn.get(item.identifier, db=records)
        if existing is not None and _same(bytes(existing), item):
            outcomes[item.position] = "unchanged"
            continue
        batch.put_encoded(item.key, item.encoded, existing is None, absent=existing is None)
        outcomes[item.position] = "created" if existing is None else "updated"
    result = BatchResult(sequence=batch.sequence, outcomes=outcomes, errors=errors)
    for outcome in outcomes:
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def _same(existing: bytes, item: Prepared) -> bool:
    """True when `existing` holds the values `item` would write, times apart. Equal bytes
    say so at once (a batch sent again within the second, a key given twice); else the
    stored record is decoded and compared."""
    if existing == item.encoded:
        return True
    return values.same_content(packing.decode(existing).values, item.record.values)
