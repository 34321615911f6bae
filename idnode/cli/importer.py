"""`idnode import FILE.csv`: bulk registration in batches, with progress and a rejects file.

The CSV has a header with `identifier`, `type`, `data` and optionally `index`,
`ttl`, `public_read`. Rows of one identifier must be adjacent; together they
form its complete record, which replaces what is stored (idempotent upsert).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from proto import handle_pb2, registry_pb2
from registry.errors import IdnodeError
from registry.identifier import parse
from registry.values import check

REQUIRED_COLUMNS = ("identifier", "type", "data")
OPTIONAL_COLUMNS = ("index", "ttl", "public_read")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class BadImportFile(Exception):
    """The file cannot be imported at all (the message says why)."""


@dataclass
class Rejected:
    line: int
    identifier: str
    reason: str


@dataclass
class Summary:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    sequence: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "sequence": self.sequence,
        }


@dataclass
class _Group:
    identifier: str
    first_line: int
    lines: list[int]
    record: handle_pb2.Record


Send = Callable[[registry_pb2.BatchRegisterRequest], registry_pb2.BatchRegisterResponse]


def run(
    text: io.TextIOBase,
    send: Send,
    batch_size: int,
    on_rows: Callable[[int], None] = lambda rows: None,
    summary: Summary | None = None,
) -> Summary:
    """Import every record of the CSV stream through `send`, `batch_size` records per call.

    Counts into `summary` as batches are acknowledged, so a caller that sees `send`
    fail knows what was stored before.
    """
    summary = summary if summary is not None else Summary()
    batch: list[_Group] = []
    for group in _groups(text, summary):
        batch.append(group)
        if len(batch) >= batch_size:
            _flush(batch, send, summary)
            on_rows(summary.rows)
    if batch:
        _flush(batch, send, summary)
    on_rows(summary.rows)
    return summary


def _flush(batch: list[_Group], send: Send, summary: Summary) -> None:
    reply = send(registry_pb2.BatchRegisterRequest(records=[g.record for g in batch]))
    summary.created += reply.created
    summary.updated += reply.updated
    summary.unchanged += reply.unchanged
    summary.sequence = max(summary.sequence, reply.sequence)
    for group, result in zip(batch, reply.results, strict=True):
        if result.outcome == registry_pb2.BatchItemResult.REJECTED:
            summary.rejected.append(Rejected(group.first_line, group.identifier, result.error))
    batch.clear()


def _groups(text: io.TextIOBase, summary: Summary) -> Iterator[_Group]:
    reader = csv.DictReader(text)
    columns = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise BadImportFile(
            f"CSV header lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    current: _Group | None = None
    broken: set[str] = set()
    for row in reader:
        summary.rows += 1
        line = reader.line_num
        identifier = (row.get("identifier") or "").strip()
        if current is not None and identifier != current.identifier:
            if current.identifier not in broken:
                yield current
            current = None
        if current is None:
            current = _Group(identifier, line, [], handle_pb2.Record(identifier=identifier))
        current.lines.append(line)
        if identifier in broken:
            continue
        try:
            if len(current.lines) == 1:
                parse(identifier)
            current.record.values.append(_value(row, len(current.record.values) + 1))
        except (IdnodeError, ValueError) as error:
            broken.add(identifier)
            summary.rejected.append(Rejected(line, identifier, str(error)))
    if current is not None and current.identifier not in broken:
        yield current


def _value(row: dict[str, str | None], position: int) -> handle_pb2.HandleValue:
    index_text = (row.get("index") or "").strip()
    value = handle_pb2.HandleValue(
        index=_number("index", index_text) if index_text else position,
        type=(row.get("type") or "").strip(),
        data=(row.get("data") or "").encode("utf-8"),
    )
    ttl_text = (row.get("ttl") or "").strip()
    if ttl_text:
        value.ttl = _number("ttl", ttl_text)
    public = (row.get("public_read") or "").strip().lower()
    if public in _FALSE:
        value.public_read = False
    elif public and public not in _TRUE:
        raise ValueError(f"public_read {public!r} is not true or false")
    check(value, position)
    return value


def _number(column: str, text: str) -> int:
    if not text.isdigit() or int(text) >= 2**32:
        raise ValueError(f"{column} {text!r} is not a whole number from 0 to 4294967295")
    return int(text)


def write_rejects(path: str, rejected: list[Rejected]) -> None:
    """The rejected rows with their reasons, in the order of the input file."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "identifier", "reason"])
        for item in sorted(rejected, key=lambda r: r.line):
            writer.writerow([item.line, item.identifier, item.reason])
