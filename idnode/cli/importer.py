"""`idnode import FILE.csv`: bulk registration in batches, with progress and a rejects file.

The CSV has a header with `identifier`, `type`, `data` and optionally `index`,
`ttl`, `public_read`. All rows of one identifier, wherever they are in the file,
form its complete record, which replaces what is stored (idempotent upsert). A
first pass finds identifiers whose rows are not adjacent, and where each one's
last row is; their rows are gathered until then, so only those are held in memory.
A batch is built while the one before it is stored: two are in flight at most.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from proto import handle_pb2, registry_pb2
from registry.errors import IdnodeError
from registry.identifier import parse_key
from registry.values import check

REQUIRED_COLUMNS = ("identifier", "type", "data")
OPTIONAL_COLUMNS = ("index", "ttl", "public_read")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
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


Reply = Callable[[], registry_pb2.BatchRegisterResponse]  # waits for the answer
# Sends a batch and returns at once; the node stores it meanwhile.
Send = Callable[[registry_pb2.BatchRegisterRequest], Reply]


def run(
    text: io.TextIOBase,
    send: Send,
    batch_size: int,
    on_rows: Callable[[int], None] = lambda rows: None,
    summary: Summary | None = None,
) -> Summary:
    """Import every record of the CSV stream through `send`, `batch_size` records per call.

    Counts into `summary` as batches are acknowledged, so a caller that sees a reply
    fail knows what was stored before.
    """
    summary = summary if summary is not None else Summary()
    scattered = _scattered(text)
    text.seek(0)
    batch: list[_Group] = []
    in_flight: tuple[list[_Group], Reply] | None = None
    for group in _groups(text, summary, scattered):
        batch.append(group)
        if len(batch) >= batch_size:
            sent = (batch, send(_request(batch)))
            batch = []
            if in_flight is not None:
                _count(*in_flight, summary)
                on_rows(summary.rows)
            in_flight = sent
    last = (batch, send(_request(batch))) if batch else None
    for sent_batch in (in_flight, last):
        if sent_batch is not None:
            _count(*sent_batch, summary)
    on_rows(summary.rows)
    return summary


def _request(batch: list[_Group]) -> registry_pb2.BatchRegisterRequest:
    return registry_pb2.BatchRegisterRequest(records=[group.record for group in batch])


def _count(batch: list[_Group], reply: Reply, summary: Summary) -> None:
    """Wait for `batch`'s answer and count it (its rejected items with their lines)."""
    answer = reply()
    summary.created += answer.created
    summary.updated += answer.updated
    summary.unchanged += answer.unchanged
    summary.sequence = max(summary.sequence, answer.sequence)
    for group, result in zip(batch, answer.results, strict=True):
        if result.outcome == registry_pb2.BatchItemResult.REJECTED:
            summary.rejected.append(Rejected(group.first_line, group.identifier, result.error))


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each column the import reads is in a row (-1: not in the file)."""

    identifier: int
    type: int
    data: int
    index: int = -1
    ttl: int = -1
    public_read: int = -1


Row = list[str]  # a row's fields as the CSV has them


def _cell(row: Row, position: int) -> str:
    """The field at `position`, "" for a column the file or a short row lacks."""
    return row[position] if 0 <= position < len(row) else ""


def _rows(text: io.TextIOBase) -> Iterator[tuple[int, str, Row, _Columns]]:
    """(line, identifier, row, columns) for each row; a header without the required
    columns or a file that is not CSV stops the import, naming the line."""
    reader = csv.reader(text)
    try:
        header = next(reader, [])
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise BadImportFile(
                f"CSV header lacks column(s) {', '.join(missing)}; expected "
                f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
            )
        columns = _Columns(**{name: header.index(name) for name in KNOWN_COLUMNS if name in header})
        where = columns.identifier
        for row in reader:
            identifier = row[where].strip() if where < len(row) else ""
            yield reader.line_num, identifier, row, columns
    except csv.Error as error:
        raise BadImportFile(f"line {reader.line_num}: {error}") from None


def _scattered(text: io.TextIOBase) -> dict[str, int]:
    """The identifiers whose rows are not all adjacent, each with the line of its last row."""
    last_line: dict[str, int] = {}
    scattered: set[str] = set()
    previous = None
    for line, identifier, _row, _columns in _rows(text):
        if identifier != previous and identifier in last_line:
            scattered.add(identifier)
        last_line[identifier] = line
        previous = identifier
    return {identifier: last_line[identifier] for identifier in scattered}


def _groups(text: io.TextIOBase, summary: Summary, scattered: dict[str, int]) -> Iterator[_Group]:
    """Each identifier's rows as one group, rows of a scattered identifier gathered until its
    last row; an identifier with a bad row is rejected whole (its rows may not replace a
    stored record by a part of it)."""
    current: _Group | None = None
    gathering: dict[str, _Group] = {}
    broken: set[str] = set()
    prefixes: dict[str, str] = {}  # as written -> canonical: a file repeats a few
    for line, identifier, row, columns in _rows(text):
        summary.rows += 1
        if current is not None and identifier != current.identifier:
            if current.identifier not in broken:
                yield current
            current = None
        if identifier in scattered:
            group = gathering.setdefault(
                identifier, _Group(identifier, line, [], handle_pb2.Record(identifier=identifier))
            )
        else:
            if current is None:
                current = _Group(identifier, line, [], handle_pb2.Record(identifier=identifier))
            group = current
        _add_row(group, line, row, columns, broken, summary, prefixes)
        if scattered.get(identifier) == line:
            finished = gathering.pop(identifier)
            if identifier not in broken:
                yield finished
    if current is not None and current.identifier not in broken:
        yield current


def _add_row(
    group: _Group,
    line: int,
    row: Row,
    columns: _Columns,
    broken: set[str],
    summary: Summary,
    prefixes: dict[str, str],
) -> None:
    group.lines.append(line)
    if group.identifier in broken:
        return
    try:
        if len(group.lines) == 1:
            parse_key(group.identifier, prefixes)
        _add_value(group.record.values, row, columns)
    except (IdnodeError, ValueError) as error:
        broken.add(group.identifier)  # never sent: a value it may hold half-made stays here
        summary.rejected.append(Rejected(line, group.identifier, str(error)))


def _add_value(
    values: RepeatedCompositeFieldContainer[handle_pb2.HandleValue], row: Row, columns: _Columns
) -> None:
    """Add the value of `row` to a record's `values` (made there: no copy), checked."""
    position = len(values) + 1
    index_text = _cell(row, columns.index).strip()
    value = values.add(
        index=_number("index", index_text) if index_text else position,
        type=_cell(row, columns.type).strip(),
        data=_cell(row, columns.data).encode("utf-8"),
    )
    ttl_text = _cell(row, columns.ttl).strip()
    if ttl_text:
        value.ttl = _number("ttl", ttl_text)
    public = _cell(row, columns.public_read).strip().lower()
    if public in _FALSE:
        value.public_read = False
    elif public and public not in _TRUE:
        raise ValueError(f"public_read {public!r} is not true or false")
    check(value, position)


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
