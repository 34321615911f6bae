"""Which names exist: those that own records, and the empty non-terminals above them (RFC 8020).

The zone a secondary loads by AXFR holds a name only when some record lives at or
below it, so idnode answers the same: an identifier without public values, a
hosted prefix without published identifiers, or a made-up label is NXDOMAIN,
while the labels between a long identifier's name and its prefix are NOERROR.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from proto import handle_pb2
from registry import packing
from registry.errors import IdnodeError
from registry.identifier import Identifier, parse
from registry.store import Store
from registry.values import is_public
from resolver.dns import mapping, wire

SCAN_LIMIT = 10_000  # identifiers read to find one published below a prefix; past it: exists
MIN_MULTI_LABEL_SUFFIX_BYTES = 37  # shorter suffixes always fit one label
_UNDECIDED = "?"


class Names:
    """Empty non-terminals of the zone, kept in step with the change log.

    Inside long names: every tail of a published identifier's name, in memory
    (built at start from identifiers whose suffix can span labels). Above
    prefixes: one published identifier per prefix path, found on demand and
    forgotten when it stops being published.
    """

    def __init__(self, store: Store, zone: str) -> None:
        self._store = store
        self._zone = zone
        self._tails: dict[bytes, set[str]] = {}  # wire name -> identifiers below it
        self._witness: dict[str, str | None] = {}  # prefix path -> published identifier below
        self._lock = threading.Lock()

    def rebuild(self, hosted: frozenset[str], nodes: frozenset[str]) -> None:
        """Read every identifier whose name can have several suffix labels."""
        tails: dict[bytes, set[str]] = {}
        with self._store.read() as txn, txn.cursor(db=self._store.records) as cursor:
            for raw_key in cursor.iternext(keys=True, values=False):
                key = bytes(raw_key)
                if len(key) - key.find(b"/") - 1 < MIN_MULTI_LABEL_SUFFIX_BYTES:
                    continue
                raw = txn.get(key, db=self._store.records)
                record = packing.decode(bytes(raw)) if raw is not None else None
                identifier = self._published(key.decode(), record, hosted, nodes)
                if identifier is not None:
                    for name in self._tail_names(identifier):
                        tails.setdefault(name, set()).add(str(identifier))
        with self._lock:
            self._tails = tails
            self._witness = {}

    def has_below(self, name: bytes, path: str | None) -> bool:
        """True when a published name lies below the lowercase wire `name`; `path` is the
        prefix path `name` stands for, if it is a prefix or one of its ancestors."""
        if name in self._tails:
            return True
        return path is not None and self._witness.get(path, _UNDECIDED) is not None

    def witness_known(self, path: str) -> bool:
        return path in self._witness

    def find_witness(self, path: str, hosted: frozenset[str], nodes: frozenset[str]) -> str | None:
        """An identifier with a published name below prefix path `path` (a read, no memo)."""
        start = (path + ".").encode()
        with self._store.read() as txn:
            for count, (key, record) in enumerate(self._store.iter_records(txn, start, start[:-1])):
                if key[len(path)] not in "./":
                    break
                if count >= SCAN_LIMIT:
                    return _UNDECIDED
                identifier = self._published(key, record, hosted, nodes)
                if identifier is not None:
                    return str(identifier)
        return None

    def remember_witness(self, path: str, witness: str | None) -> None:
        with self._lock:
            self._witness[path] = witness

    def on_record(
        self,
        key: str,
        record: handle_pb2.Record | None,
        hosted: frozenset[str],
        nodes: frozenset[str],
    ) -> list[bytes]:
        """Follow one identifier's change; returns the wire names whose existence may change."""
        try:
            identifier = parse(key)
        except IdnodeError:
            return []
        published = self._published(key, record, hosted, nodes) is not None
        tails = self._tail_names(identifier)
        paths = _paths(identifier.prefix)
        with self._lock:
            for name in tails:
                below = self._tails.setdefault(name, set())
                if published:
                    below.add(key)
                else:
                    below.discard(key)
                    if not below:
                        del self._tails[name]
            for path in paths:
                if published and self._witness.get(path, _UNDECIDED) is None:
                    self._witness[path] = key
                elif not published and self._witness.get(path) == key:
                    del self._witness[path]  # found again on the next question
        return tails + [self._path_name(path) for path in paths]

    def on_prefix(self, prefix: str, hosted: frozenset[str], nodes: frozenset[str]) -> None:
        """Follow a newly hosted prefix: it may take names over, and bring identifiers in."""
        with self._lock:
            known = {key for below in self._tails.values() for key in below}
            self._witness = {}
        for key in known:  # drop those whose name the new prefix took over
            identifier = parse(key)
            found = mapping.lookup(mapping.relative_labels(identifier), hosted, nodes)
            if found.identifier != identifier:
                self.on_record(key, None, hosted, nodes)
        start = (prefix + "/").encode()
        with self._store.read() as txn:
            added = list(self._store.iter_records(txn, start, start))
        for key, record in added:
            self.on_record(key, record, hosted, nodes)

    def _published(
        self,
        key: str,
        record: handle_pb2.Record | None,
        hosted: Iterable[str],
        nodes: Iterable[str],
    ) -> Identifier | None:
        """The identifier when it has a public value and a name of its own in the zone."""
        if record is None or not any(is_public(v) for v in record.values):
            return None
        try:
            identifier = parse(key)
        except IdnodeError:
            return None
        labels = mapping.relative_labels(identifier)
        if mapping.wire_length(labels, self._zone) > mapping.MAX_NAME_OCTETS:
            return None
        found = mapping.lookup(labels, hosted, nodes)  # type: ignore[arg-type]
        return identifier if found.identifier == identifier else None

    def _tail_names(self, identifier: Identifier) -> list[bytes]:
        names = []
        for labels in mapping.tail_labels(identifier):
            if mapping.wire_length(labels, self._zone) <= mapping.MAX_NAME_OCTETS:
                names.append(wire.name_to_wire(".".join(labels) + "." + self._zone))
        return names

    def _path_name(self, path: str) -> bytes:
        return wire.name_to_wire(".".join(reversed(path.split("."))) + "." + self._zone)


def _paths(prefix: str) -> list[str]:
    """`prefix` and each of its ancestors down to one segment."""
    segments = prefix.split(".")
    return [".".join(segments[:size]) for size in range(len(segments), 0, -1)]
