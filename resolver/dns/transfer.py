"""AXFR and IXFR (RFC 5936, RFC 1995) streamed from one LMDB snapshot and the change log."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Generator, Iterable, Iterator, Sequence

from proto import handle_pb2
from registry.errors import IdnodeError
from registry.identifier import parse
from registry.store import Store, Txn, sequence_key
from resolver.dns import mapping, records, serial, wire
from resolver.dns.answer import Zone

MESSAGE_BYTES = 16_000  # a TCP message is closed once it holds this much
MAX_MESSAGE_RECORD_BYTES = (
    65_000  # a record set that would push a message past this starts the next
)
MAX_IXFR_CHANGES = 100_000  # more changes than this: a full transfer is cheaper
MAX_HISTORY_SCAN = 200_000  # change-log entries read backwards to find old versions
_Op = handle_pb2.ChangeEntry.Operation
_log = logging.getLogger(__name__)


def allowed(source: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """True when `source` lies in one of `networks`."""
    try:
        address = ipaddress.ip_address(source.partition("%")[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


def serve(
    store: Store, apex: records.Apex, data: bytes, question_end: int, allowed: bool
) -> Generator[bytes, None, bool]:
    """The reply messages to an AXFR or IXFR request; returns whether it was served."""
    echoed = data[12:question_end]
    try:
        query = wire.parse_query(data)
    except wire.WireError:
        yield wire.error_reply(data, wire.FORMERR, echoed)
        return False
    refused = (
        not allowed
        or query.qname.lower() != apex.zone_wire
        or query.signed
        or query.qclass != wire.CLASS_IN
    )
    if refused:
        yield wire.error_reply(data, wire.REFUSED, echoed, query)
        return False
    serial_from = None
    if query.qtype == wire.IXFR:
        serial_from = client_serial(data, query)
        if serial_from is None:
            yield wire.error_reply(data, wire.FORMERR, echoed, query)
            return False
    try:
        yield from messages(store, apex, data, query, serial_from)
    except Exception:  # the client sees the transfer fail; the server stays up
        _log.exception("zone transfer failed")
        yield wire.error_reply(data, wire.SERVFAIL, echoed, query)
        return False
    return True


def client_serial(data: bytes, query: wire.Query) -> int | None:
    """The serial of the SOA an IXFR request carries in its authority section."""
    if query.nscount != 1 or query.authority_offset < 0:
        return None
    offset = wire.skip_name(data, query.authority_offset)
    rtype, _rclass, _ttl, rdlen = wire.RR_FIXED.unpack_from(data, offset)
    rdata = offset + 10
    if rtype != wire.SOA:
        return None
    rdata = wire.skip_name(data, wire.skip_name(data, rdata))
    if rdata + 20 > offset + 10 + rdlen:
        return None
    return int(wire.U32.unpack_from(data, rdata)[0])


class _Packer:
    """Groups records into TCP messages of about MESSAGE_BYTES."""

    def __init__(self, data: bytes, query: wire.Query) -> None:
        self._ident = data[:2]
        self._flags = wire.U16.pack(0x8400 | (query.flags & 0x0110))
        self._question = data[12 : query.question_end]
        self._opt = wire.opt_record(query.dnssec_ok) if query.edns else b""
        self._records: list[bytes] = []
        self._bytes = 0

    def add(self, group: Sequence[bytes]) -> bytes | None:
        """Take one record set, kept in one message; returns a finished message if one is full."""
        size = sum(len(record) for record in group)
        full = None
        if self._bytes + size > MAX_MESSAGE_RECORD_BYTES:
            full = self.flush()
        self._records.extend(group)
        self._bytes += size
        if full is None and self._bytes >= MESSAGE_BYTES:
            full = self.flush()
        return full

    def flush(self) -> bytes | None:
        if not self._records:
            return None
        counts = wire.U16.pack(1 if self._question else 0) + wire.U16.pack(len(self._records))
        message = b"".join(
            (self._ident, self._flags, counts, b"\x00\x00", wire.U16.pack(1 if self._opt else 0),
             self._question, *self._records, self._opt)
        )  # fmt: skip
        self._question = b""  # RFC 5936 §2.2: only the first message repeats the question
        self._records = []
        self._bytes = 0
        return message


def messages(
    store: Store, apex: records.Apex, data: bytes, query: wire.Query, client_serial: int | None
) -> Iterator[bytes]:
    """The reply messages to an AXFR (`client_serial` None) or an IXFR from `client_serial`."""
    packer = _Packer(data, query)
    with store.read() as txn:
        last = store.last_sequence(txn)
        hosted = {info.prefix for info in store.iter_prefixes(txn)}
        zone = Zone(apex, hosted)
        epochs = serial.read(store, txn)
        ours = serial.serial_at(epochs, last)
        current = apex.soa_rr(ours)
        if client_serial is None:
            stream: Iterable[Sequence[bytes]] = _full(store, txn, zone, current)
        else:
            start = serial.sequence_of(epochs, client_serial, apex.fingerprint, last)
            diff = None
            if not serial.newer(ours, client_serial):
                diff = [current]  # up to date, or ahead of us: one SOA says so (RFC 1995 §4)
            elif start is not None:
                diff = _incremental(store, txn, zone, last, start, current, client_serial)
            stream = [(r,) for r in diff] if diff is not None else _full(store, txn, zone, current)
        for group in stream:
            message = packer.add(group)
            if message is not None:
                yield message
    message = packer.flush()
    if message is not None:
        yield message


def _full(store: Store, txn: Txn, zone: Zone, soa: bytes) -> Iterator[Sequence[bytes]]:
    """The zone as record sets: SOA, NS, nameserver addresses, every identifier's sets, SOA."""
    yield (soa,)
    owner = zone.apex.zone_wire
    yield [
        records.rr(owner, wire.NS, records.NS_TTL_SECONDS, rdata) for rdata in zone.apex.ns_rdata
    ]
    yield from zone.apex.address_records()
    for key, record in store.iter_records(txn):
        yield from _sets_of(zone, key, record)
    yield (soa,)


def _records_of(zone: Zone, key: str, record: handle_pb2.Record | None) -> list[bytes]:
    """An identifier's records as the zone holds them: none when it has no name of its own."""
    return [rr for group in _sets_of(zone, key, record) for rr in group]


def _sets_of(zone: Zone, key: str, record: handle_pb2.Record | None) -> list[list[bytes]]:
    """An identifier's record sets, each a list of records in wire form."""
    if record is None:
        return []
    try:
        identifier = parse(key)
    except IdnodeError:
        return []
    labels = mapping.relative_labels(identifier)
    if mapping.wire_length(labels, zone.apex.zone) > mapping.MAX_NAME_OCTETS:
        return []
    if mapping.lookup(labels, zone.hosted, zone.nodes).identifier != identifier:
        return []  # a longer hosted prefix owns this name
    owner = wire.name_to_wire(".".join(labels) + "." + zone.apex.zone)
    return [
        [records.rr(owner, rtype, ttl, rdata) for rdata in rdatas]
        for rtype, (ttl, rdatas) in records.rrsets(record.values, len(owner)).items()
    ]


def _incremental(
    store: Store,
    txn: Txn,
    zone: Zone,
    last: int,
    start: int,
    current: bytes,
    client_serial: int,
) -> list[bytes] | None:
    """The IXFR body from sequence `start` (the client's) to `last`, or None when only a
    full transfer can answer."""
    if start >= last:
        return [current]  # up to date: one SOA says so (RFC 1995 §4)
    if start < store.first_sequence(txn) - 1 or last - start > MAX_IXFR_CHANGES:
        return None  # the log no longer reaches that far back
    first_op: dict[str, int] = {}
    after: dict[str, handle_pb2.Record | None] = {}
    for change in store.changes_since(txn, start):
        if change.operation == _Op.ACCOUNT_PUT:
            continue  # a credential changed: no name did (the serial moves all the same)
        if change.operation == _Op.PREFIX_PUT:
            return None  # a new prefix may move names; a full transfer is simplest and right
        first_op.setdefault(change.identifier, change.operation)
        after[change.identifier] = change.record if change.operation != _Op.DELETE else None
    before: dict[str, handle_pb2.Record | None] = {
        key: None for key, operation in first_op.items() if operation == _Op.CREATE
    }
    missing = {key for key in first_op if key not in before}
    if missing and not _history(store, txn, start, missing, before):
        return None
    removed: list[bytes] = []
    added: list[bytes] = []
    for key in first_op:
        old = _records_of(zone, key, before[key])
        new = _records_of(zone, key, after[key])
        if old == new:
            continue
        removed.extend(r for r in old if r not in new)
        added.extend(r for r in new if r not in old)
    return [current, zone.apex.soa_rr(client_serial), *removed, current, *added, current]


def _history(
    store: Store,
    txn: Txn,
    start: int,
    missing: set[str],
    before: dict[str, handle_pb2.Record | None],
) -> bool:
    """Fill `before` with each missing identifier's record as of `start`, reading backwards."""
    with txn.cursor(db=store.changelog) as cursor:
        if not cursor.set_key(sequence_key(start)):
            return False
        for _scanned in range(MAX_HISTORY_SCAN):
            change = handle_pb2.ChangeEntry.FromString(bytes(cursor.value()))
            if change.identifier in missing:
                missing.discard(change.identifier)
                before[change.identifier] = (
                    change.record if change.operation != _Op.DELETE else None
                )
                if not missing:
                    return True
            if not cursor.prev():
                return False
    return False
