"""Consistency checks of a data dir: every record parses, the change log is whole and agrees."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from proto import handle_pb2
from registry import changelog, packing, values, verifychain
from registry.errors import IdnodeError
from registry.identifier import parse, parse_prefix
from registry.store import Store, Txn

MAX_PROBLEMS = 100
RECENT_CHANGES = 200_000
_SEQ = struct.Struct(">Q")
_DELETE = handle_pb2.ChangeEntry.DELETE


@dataclass
class Report:
    records: int = 0
    prefixes: int = 0
    accounts: int = 0
    changes: int = 0
    first_sequence: int = 0
    last_sequence: int = 0
    problems: list[str] = field(default_factory=list)
    chain: str = ""  # what the hash-chain check covered (registry.verifychain)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: Store, progress: Callable[[int], None] = lambda n: None) -> Report:
    """Check one read snapshot of `store`; problems are listed, never repaired. Raises
    StoreError for a store of a newer schema (never misread) or one LMDB cannot read."""
    store.schema()
    report = Report()
    with store.read() as txn:
        latest = _check_changelog(store, txn, report)
        logged = _keeps_changelog(store, txn, report)
        # With the whole history at hand, every record must come from some change.
        complete = logged and report.first_sequence <= 1 and report.last_sequence <= RECENT_CHANGES
        with txn.cursor(db=store.records) as cursor:
            for key, raw in cursor:
                report.records += 1
                if report.records % 10_000 == 0:
                    progress(report.records)
                identifier = bytes(key).decode("utf-8", "replace")
                _check_record(identifier, bytes(raw), latest, report)
                if complete and identifier not in latest:
                    report.problem(f"record {identifier} has no change-log entry")
        _check_borrowing(store, txn, latest, report)
        for identifier, entry in latest.items():
            stored = txn.get(identifier.encode(), db=store.records)
            if entry.operation == _DELETE and stored is not None:
                report.problem(f"{identifier}: the change log says deleted, but the record exists")
            elif entry.operation != _DELETE and stored is None:
                report.problem(f"{identifier}: the change log has it, but the record is missing")
        with txn.cursor(db=store.prefixes) as cursor:
            for key, raw in cursor:
                report.prefixes += 1
                _check_prefix(bytes(key).decode("utf-8", "replace"), bytes(raw), report)
        report.accounts = int(txn.stat(store.accounts)["entries"])
        verifychain.check(store, txn, report)
    progress(report.records)
    return report


def _keeps_changelog(store: Store, txn: Txn, report: Report) -> bool:
    """Whether records should agree with a change log. The top-level node's mirror keeps
    none (it is marked so; a copy made before the mark existed shows it by never having
    logged anything): its log must then be empty."""
    if store.keeps_changelog(txn) and (report.changes or report.last_sequence):
        return True
    if report.changes or report.last_sequence:
        report.problem(
            f"the store keeps no change log, but has {report.changes} change-log entries "
            f"up to sequence {report.last_sequence}"
        )
    return False


def _check_changelog(store: Store, txn: Txn, report: Report) -> dict[str, handle_pb2.ChangeEntry]:
    """Keys contiguous and matching their entries; returns the newest entry of each identifier
    changed in the last RECENT_CHANGES (memory stays bounded however long the log is)."""
    latest: dict[str, handle_pb2.ChangeEntry] = {}
    expected = 0
    compare_from = store.last_sequence(txn) - RECENT_CHANGES
    with txn.cursor(db=store.changelog) as cursor:
        for key, raw in cursor:
            sequence = _SEQ.unpack(bytes(key))[0]
            if expected and sequence != expected:
                report.problem(f"change log jumps from {expected - 1} to {sequence}")
            if not report.first_sequence:
                report.first_sequence = sequence
            expected = sequence + 1
            report.changes += 1
            try:
                entry = handle_pb2.ChangeEntry.FromString(bytes(raw))
            except DecodeError:
                report.problem(f"change {sequence} does not parse")
                continue
            if entry.sequence != sequence:
                report.problem(f"change {sequence} carries sequence {entry.sequence}")
            if entry.operation == handle_pb2.ChangeEntry.ACCOUNT_PUT:
                _check_account_entry(entry, report)
                continue
            if entry.operation == handle_pb2.ChangeEntry.PREFIX_PUT:
                continue
            try:
                parse(entry.identifier)
            except IdnodeError as error:
                report.problem(f"change {sequence} names no valid identifier: {error}")
                continue
            if sequence > compare_from:
                before = latest.get(entry.identifier)
                if before is not None and changelog.borrows(before):
                    report.problem(
                        f"change {before.sequence} of {entry.identifier} has no record of its "
                        f"own, but change {sequence} followed it"
                    )
                latest[entry.identifier] = entry
    report.last_sequence = store.last_sequence(txn)
    if expected and report.last_sequence != expected - 1:
        report.problem(
            f"meta sequence {report.last_sequence} differs from the newest change {expected - 1}"
        )
    return latest


def _check_record(
    key: str, raw: bytes, latest: dict[str, handle_pb2.ChangeEntry], report: Report
) -> None:
    try:
        identifier = parse(key)
    except IdnodeError as error:
        report.problem(f"record key {key!r}: {error}")
        return
    if str(identifier) != key:
        report.problem(f"record key {key!r} is not canonical")
    try:
        record = packing.decode(raw)
    except DecodeError:
        report.problem(f"record {key} does not parse")
        return
    try:
        values.check_stored(record.values)
    except IdnodeError as error:
        report.problem(f"record {key}: {error}")
    entry = latest.get(key)
    if entry is None or changelog.borrows(entry):
        return  # a borrowing entry stands for exactly the stored record
    if list(entry.record.values) != list(record.values):
        report.problem(f"record {key} differs from its newest change-log entry")


def _check_borrowing(
    store: Store, txn: Txn, latest: dict[str, handle_pb2.ChangeEntry], report: Report
) -> None:
    """Each newest entry without a record is noted as borrowing it, and each note names a
    change-log entry of that identifier that has no record of its own."""
    for identifier, entry in latest.items():
        noted = txn.get(identifier.encode(), db=store.borrowed) if store.borrowed else None
        if changelog.borrows(entry) and noted != changelog.sequence_key(entry.sequence):
            report.problem(
                f"change {entry.sequence} of {identifier} has no record of its own and is not "
                "noted as borrowing it"
            )
    if store.borrowed is None:
        return
    with txn.cursor(db=store.borrowed) as cursor:
        for key, raw_sequence in cursor:
            identifier = bytes(key).decode("utf-8", "replace")
            sequence = changelog.sequence_of(bytes(raw_sequence))
            raw = txn.get(bytes(raw_sequence), db=store.changelog)
            noted_entry = handle_pb2.ChangeEntry.FromString(bytes(raw)) if raw else None
            if (
                noted_entry is None
                or noted_entry.identifier != identifier
                or not changelog.borrows(noted_entry)
            ):
                report.problem(
                    f"{identifier} is noted as borrowing its record in change {sequence}, "
                    "which is not a change of it without a record"
                )


def _check_prefix(key: str, raw: bytes, report: Report) -> None:
    try:
        info = handle_pb2.PrefixInfo.FromString(raw)
        if parse_prefix(key) != key or info.prefix != key:
            report.problem(f"prefix entry {key!r} is not canonical or does not match its key")
    except (DecodeError, IdnodeError) as error:
        report.problem(f"prefix entry {key!r}: {error}")


_SECRET_FIELDS = ("salt", "scrypt_key")


def _check_account_entry(entry: handle_pb2.ChangeEntry, report: Report) -> None:
    """A credential change names its account, and never carries a secret (it syncs up)."""
    if entry.account.name != entry.identifier:
        report.problem(
            f"change {entry.sequence} is for account {entry.identifier!r} but carries "
            f"account {entry.account.name!r}"
        )
    if any(getattr(c, f) for c in entry.account.credentials for f in _SECRET_FIELDS):
        report.problem(f"change {entry.sequence} carries a credential's secret")
