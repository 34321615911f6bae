"""The change log's entries on disk: the newest change of an identifier borrows its record.

Every entry means (sequence, operation, identifier, record after). Storing the record in
the entry as well as under `records` doubled the store for a fresh import, and for
records of ~2 KB (each a page of LMDB overflow) quadrupled it. So the newest CREATE or
UPDATE of an identifier is stored without its record, which is exactly what `records`
holds for it, and `borrowed` notes its sequence (identifier -> sequence). When a later
change supersedes that entry, the entry gets its record written in first, in the same
transaction. Readers therefore see every entry whole: `complete` fills a borrowing entry
from `records`, and an entry read straight from disk that has been superseded (IXFR's
search for an older version) already holds its record.
"""

from __future__ import annotations

import struct
from typing import Any

from proto import handle_pb2
from registry import packing

_SEQ = struct.Struct(">Q")
_Op = handle_pb2.ChangeEntry.Operation
RESTARTS_KEY = "changelog_restarts"
"""In `meta`: how often the change log started over in place (a replica re-copied by
snapshot, whose sequences need not move); every follower then drops all it derived."""
_WITH_RECORD = (_Op.CREATE, _Op.UPDATE)


def sequence_key(sequence: int) -> bytes:
    """The change-log key of `sequence`: big-endian, so keys sort by sequence."""
    return _SEQ.pack(sequence)


def sequence_of(key: bytes) -> int:
    return int(_SEQ.unpack(key)[0])


def supersede(txn: Any, dbs: Any, identifier: bytes) -> None:
    """Before `identifier` changes again: give its newest entry, if it borrows, the record
    it stands for (the one stored now). The caller then notes the new entry, or drops the
    note on a delete."""
    borrowing = txn.get(identifier, db=dbs.borrowed)
    if borrowing is None:
        return
    raw = txn.get(borrowing, db=dbs.changelog)
    current = txn.get(identifier, db=dbs.records)
    if raw is None or current is None:
        return  # trimmed already (or nothing to stand for)
    # Appending field 4 (record) to the serialised entry is what setting it would give,
    # without parsing the entry or the record: this runs for every update.
    record = field(1, identifier) + packing.plain(bytes(current))
    txn.put(borrowing, bytes(raw) + field(4, record), db=dbs.changelog)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def complete(txn: Any, dbs: Any, entry: handle_pb2.ChangeEntry) -> handle_pb2.ChangeEntry:
    """`entry` with its record: a borrowing entry gets the one stored under `records`."""
    if entry.operation in _WITH_RECORD and not entry.HasField("record"):
        current = txn.get(entry.identifier.encode(), db=dbs.records)
        entry.record.identifier = entry.identifier
        if current is not None:
            entry.record.MergeFromString(packing.plain(bytes(current)))
    return entry


def borrows(entry: handle_pb2.ChangeEntry) -> bool:
    """True for an entry stored without its record (the identifier's newest change)."""
    return entry.operation in _WITH_RECORD and not entry.HasField("record")


def forget(txn: Any, dbs: Any, raw_entry: bytes, key: bytes) -> None:
    """An entry is being trimmed: if it was its identifier's borrowing one, end that."""
    entry = handle_pb2.ChangeEntry.FromString(raw_entry)
    if borrows(entry):
        identifier = entry.identifier.encode()
        if txn.get(identifier, db=dbs.borrowed) == key:
            txn.delete(identifier, db=dbs.borrowed)
