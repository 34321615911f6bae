"""The pure wire handler: request bytes in, reply bytes (or nothing) out, no socket I/O."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import metrics
from proto import handle_pb2
from registry import errors
from registry.errors import IdnodeError
from registry.identifier import parse
from registry.store import Store
from resolver.dns import answer, identity, mapping, records, rrl, serial, transfer, wire
from resolver.dns.cache import WireCache
from resolver.dns.config import DnsOptions
from resolver.dns.cookies import Cookies, secret_for
from resolver.dns.names import Names
from resolver.dns.stats import DnsStats
from resolver.follow import ChangeFollower

_Op = handle_pb2.ChangeEntry.Operation
_SIMPLE_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT hi
_MISS = 1
_HIT = 2
_NO_COOKIE = 0
_CLIENT_COOKIE = 1  # a client cookie, with no server cookie or one we did not make
_GOOD_COOKIE = 2  # a server cookie we made for this client: not spoofed, never rate-limited
EPOCH_RECHECK_SECONDS = 1.0  # a new serial epoch begun by another process shows within this
_log = logging.getLogger(__name__)

ERROR_RCODES: dict[type[IdnodeError], int] = {
    errors.IdnodeError: wire.SERVFAIL,
    errors.InvalidIdentifier: wire.NXDOMAIN,  # no identifier has that name
    errors.InvalidValue: wire.SERVFAIL,
    errors.InvalidRequest: wire.FORMERR,
    errors.HandleNotFound: wire.NXDOMAIN,
    errors.HandleAlreadyExists: wire.SERVFAIL,
    errors.ValueNotFound: wire.NOERROR,  # the name exists, the data does not: NODATA
    errors.ValueAlreadyExists: wire.SERVFAIL,
    errors.PrefixNotFound: wire.NXDOMAIN,
    errors.PrefixAlreadyExists: wire.SERVFAIL,
    errors.NotResponsible: wire.REFUSED,
    errors.Referred: wire.REFUSED,
    errors.PermissionDenied: wire.REFUSED,
    errors.AuthenticationRequired: wire.REFUSED,
    errors.AuthenticationFailed: wire.REFUSED,
    errors.TooLarge: wire.SERVFAIL,
    errors.StoreError: wire.SERVFAIL,
    errors.StoreOutOfSpace: wire.SERVFAIL,
    errors.Unavailable: wire.SERVFAIL,
    errors.SyncRefused: wire.REFUSED,
}
"""The rcode each domain error becomes when it escapes a lookup (a test checks it is complete)."""


class Handler:
    """Answers DNS messages for one zone from the store, through a cache of finished answers.

    `handle_wire` answers one message (UDP, or TCP outside transfers);
    `handle_tcp` also streams AXFR/IXFR. Neither raises: a failure inside
    becomes SERVFAIL.
    """

    def __init__(
        self,
        store: Store,
        follower: ChangeFollower,
        options: DnsOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._follower = follower
        self._options = options
        self.apex = records.Apex(options.zone, options.nameservers, options.glue)
        serial.ensure_epoch(store, self.apex.fingerprint)
        self.zone = self._load_zone()
        answer.check_nameserver_names(self.apex, self.zone)
        self.names = Names(store, options.zone)
        self.names.rebuild(self.zone.hosted, self.zone.nodes)
        self.cache = WireCache(
            options.cache_entries, options.negative_cache_entries,
            options.cache_bytes, options.negative_cache_bytes,
        )  # fmt: skip
        self._entries = self.cache.entries  # the same dict for the cache's whole life
        self._clock = clock
        self._rrl: rrl.RateLimiter | None = None
        self.set_rate_limit(options.rrl_responses_per_second, options.rrl_slip)
        self._rrl_actions = metrics.Tally(metrics.DNS_RRL_ACTIONS)
        metrics.on_flush(self._rrl_actions.flush)
        self.stats = DnsStats(self.cache)
        self.identity = options.identity or identity.default_identity()
        self._nsid = (
            wire.option(wire.OPTION_NSID, self.identity.encode()[:255]) if options.nsid else b""
        )
        self._cookies = (
            Cookies(secret_for(store, options.cookie_secret)) if options.cookies else None
        )
        self._serial_sequence = -1
        self._serial_recheck = 0.0  # perf_counter time after which epochs are read again
        self._serial = b"\x00\x00\x00\x00"
        follower.subscribe(self._on_change)

    # The hot path -------------------------------------------------------------

    def set_rate_limit(self, responses_per_second: int, slip: int) -> None:
        """Change response-rate limiting while serving (SIGHUP); 0 turns it off.

        The node's budget is shared by `rrl_workers` processes: each takes its part.
        """
        share = -(-responses_per_second // self._options.rrl_workers)
        self._rrl = (
            rrl.RateLimiter(
                share, slip, self._clock, self._options.rrl_table_size,
                self._options.rrl_exempt_loopback,
            )
            if responses_per_second
            else None
        )  # fmt: skip

    def handle_wire(self, data: bytes, source: str, tcp: bool = False) -> bytes | None:
        """The reply to one request from `source` (an IP address), or None to stay silent."""
        started = time.perf_counter()
        size = len(data)
        try:  # free in 3.11 when nothing raises; nothing may escape to the server loop
            if size >= 17 and not data[2] & 0xF8 and data[4:11] == _SIMPLE_COUNTS:
                end = data.find(0, 12, 268)  # a name is at most 255 octets: no key from more
                qend = end + 5
                arcount = data[11]
                edns = b""
                limit = 65535 if tcp else wire.MIN_PAYLOAD
                if arcount == 0:
                    if qend == size:
                        edns = b"\x00"
                elif (
                    arcount == 1
                    and size >= qend + 11
                    and data[qend : qend + 3] == b"\x00\x00\x29"
                    and data[qend + 6] == 0
                    and qend + 11 == size
                    and data[qend + 9] == 0
                    and data[qend + 10] == 0
                ):  # EDNS without options; options (cookie, NSID) take the parsed path
                    edns = b"\x02" if data[qend + 7] & 0x80 else b"\x01"
                    if not tcp:
                        limit = data[qend + 3] << 8 | data[qend + 4]
                        limit = (
                            wire.EDNS_PAYLOAD
                            if limit > wire.EDNS_PAYLOAD
                            else (limit if limit > wire.MIN_PAYLOAD else wire.MIN_PAYLOAD)
                        )
                if edns and end > 12:  # (find gave -1 past 255 octets: qend != size)
                    key = data[12 : end + 1].lower() + data[end + 1 : qend] + edns
                    self._follower.poll()
                    entry = self._entries.get(key)
                    if entry is not None:
                        if entry.size + qend - 12 > limit:
                            entry = answer.truncated(entry)
                        return self._finish(data, qend, entry, source, tcp, _HIT, started)
            return self._slow(data, source, tcp, started)
        except IdnodeError as error:
            rcode = ERROR_RCODES.get(type(error), wire.SERVFAIL)
        except Exception:  # a bad request is answered and the server stays up
            _log.exception("DNS request failed")
            rcode = wire.SERVFAIL
        if size < 12 or data[2] & 0x80:
            return None
        question = wire.read_question(data) if data[4:6] == b"\x00\x01" else None
        echoed = data[12 : question[3]] if question else b""
        return self._send(wire.error_reply(data, rcode, echoed), source, tcp, 0, started, rcode)

    def _finish(
        self,
        data: bytes,
        qend: int,
        entry: answer.Entry,
        source: str,
        tcp: bool,
        cache: int,
        started: float,
        options: bytes = b"",
        cookie: int = _NO_COOKIE,
    ) -> bytes | None:
        limiter = self._rrl
        if (
            not tcp
            and limiter is not None
            and cookie != _GOOD_COOKIE
            and not limiter.exempt(source)
        ):
            action = limiter.check(source, *self._rrl_bucket(data, qend, entry))
            if action:  # decided before building a reply it may drop
                return self._limited(action, data, qend, options if cookie else b"")
        headers, pre, post, _size, rcode = entry
        flags = (data[2] & 1) | ((data[3] >> 3) & 2)
        if post is None:
            reply = data[:2] + headers[flags] + data[12:qend] + pre
        else:
            sequence = self._follower.sequence
            if sequence != self._serial_sequence or started > self._serial_recheck:
                self._serial = wire.U32.pack(self.serial_of(sequence))
                self._serial_sequence = sequence
                self._serial_recheck = started + EPOCH_RECHECK_SECONDS
            reply = b"".join((data[:2], headers[flags], data[12:qend], pre, self._serial, post))
        if options:  # our OPT ends every EDNS reply: give it the options
            reply = reply[:-2] + wire.U16.pack(len(options)) + options
        self.stats.add("tcp" if tcp else "udp", rcode, cache)
        self.stats.duration.observe(time.perf_counter() - started)
        return reply

    def _rrl_bucket(self, data: bytes, qend: int, entry: answer.Entry) -> tuple[int, bytes]:
        """The response class and the name its rate-limiting bucket is keyed by."""
        if entry.rcode == wire.NXDOMAIN:
            return rrl.NXDOMAIN, self.apex.zone_wire  # random names to one victim share one
        if entry.rcode != wire.NOERROR:
            return rrl.ERROR, b""
        kind = rrl.NODATA if entry.headers[0][4:6] == b"\x00\x00" else rrl.ANSWER
        return kind, data[12 : qend - 4].lower()

    def _limited(self, action: int, data: bytes, qend: int, cookie_options: bytes) -> bytes | None:
        kind = "drop" if action == rrl.DROP else ("badcookie" if cookie_options else "slip")
        self._rrl_actions.add((kind,))
        return rrl.limited_reply(action, data, qend, cookie_options)

    def _send(
        self, reply: bytes, source: str, tcp: bool, cache: int, started: float, rcode: int
    ) -> bytes | None:
        """Count and return an error or refusal reply with `rcode` (extended rcodes included)."""
        limiter = self._rrl
        if not tcp and limiter is not None and not limiter.exempt(source):
            action = limiter.check(source, rrl.ERROR, b"")
            if action:
                question = wire.read_question(reply)
                return self._limited(action, reply, question[3] if question else 12, b"")
        self.stats.add("tcp" if tcp else "udp", rcode, cache)
        self.stats.duration.observe(time.perf_counter() - started)
        return reply

    def _edns_options(self, query: wire.Query, source: str) -> tuple[bytes, int]:
        """The options our reply carries (NSID, COOKIE) and what the client's cookie proved."""
        options = self._nsid if query.nsid else b""
        if not query.cookie or self._cookies is None:
            return options, _NO_COOKIE
        cookie, valid = self._cookies.answer(query.cookie, source)
        return options + cookie, _GOOD_COOKIE if valid else _CLIENT_COOKIE

    def serial_of(self, sequence: int) -> int:
        """The SOA serial of the zone at change-log `sequence`."""
        with self._store.read() as txn:
            return serial.serial_at(serial.read(self._store, txn), sequence)

    # Everything that is not a cache hit --------------------------------------------

    def _slow(self, data: bytes, source: str, tcp: bool, started: float) -> bytes | None:
        if len(data) < 12 or data[2] & 0x80:
            return None  # too short to answer, or a response: never reply to a reply
        opcode = (data[2] >> 3) & 0xF
        question = wire.read_question(data) if data[4:6] == b"\x00\x01" else None
        echoed = data[12 : question[3]] if question else b""
        if opcode not in (wire.OPCODE_QUERY, wire.OPCODE_NOTIFY):
            reply = wire.error_reply(data, wire.NOTIMP, echoed)
            return self._send(reply, source, tcp, 0, started, wire.NOTIMP)
        if question is None:
            reply = wire.error_reply(data, wire.FORMERR)
            return self._send(reply, source, tcp, 0, started, wire.FORMERR)
        try:
            query = wire.parse_query(data)
        except wire.WireError:
            reply = wire.error_reply(data, wire.FORMERR, echoed)
            return self._send(reply, source, tcp, 0, started, wire.FORMERR)
        if query.qclass == identity.CLASS_CH and query.opcode == wire.OPCODE_QUERY:
            version = self._options.version or None
            shown = None if self._options.hide_identity else self.identity
            reply, chaos_rcode = identity.chaos_reply(data, query, shown, version)
            return self._send(reply, source, tcp, 0, started, chaos_rcode)
        rcode = self._refusal(query, source, tcp)
        if rcode is not None:
            options = self._edns_options(query, source)[0] if rcode != wire.BADVERS else b""
            reply = wire.error_reply(data, rcode, echoed, query, options)
            if rcode == wire.NOERROR:  # a NOTIFY acknowledged
                reply = reply[:2] + bytes((reply[2] | 0x04,)) + reply[3:]
            return self._send(reply, source, tcp, 0, started, rcode)
        qtype = query.qtype
        name = query.qname.lower()
        self._follower.poll()
        options, cookie = self._edns_options(query, source) if query.edns else (b"", _NO_COOKIE)
        if qtype == wire.IXFR:  # over UDP: our SOA tells the client to come back over TCP
            entry = self._build(name, wire.SOA, query.edns, query.dnssec_ok)
            assert entry is not None
            qend = query.question_end
            return self._finish(data, qend, entry, source, tcp, 0, started, options, cookie)
        edns = (b"\x02" if query.dnssec_ok else b"\x01") if query.edns else b"\x00"
        key = name + data[query.question_end - 4 : query.question_end] + edns
        outcome = _HIT
        entry = self._entries.get(key)
        if entry is None:
            outcome = _MISS
            generation = self._follower.generation
            zone = self.zone
            entry = self._build(name, qtype, query.edns, query.dnssec_ok)
            if entry is None:
                reply = wire.error_reply(data, wire.REFUSED, echoed, query, options)
                return self._send(reply, source, tcp, 0, started, wire.REFUSED)
            if b"\x00" not in name[:-1]:
                with self._follower.lock:
                    if self._follower.generation == generation and zone is self.zone:
                        negative = entry.rcode != wire.NOERROR or entry.post is not None
                        self.cache.put(name, key, entry, negative)
        limit = 65535
        if not tcp:
            limit = min(max(query.payload, wire.MIN_PAYLOAD), wire.EDNS_PAYLOAD)
            if not query.edns:
                limit = wire.MIN_PAYLOAD
        if entry.size + len(query.qname) + 4 + len(options) > limit:
            entry = answer.truncated(entry)
        qend = query.question_end
        return self._finish(data, qend, entry, source, tcp, outcome, started, options, cookie)

    def _refusal(self, query: wire.Query, source: str, tcp: bool) -> int | None:
        """The rcode for a request we do not look up, or None to look it up."""
        if query.edns and query.edns_version != 0:
            return wire.BADVERS
        if query.signed:
            return wire.REFUSED  # no TSIG keys are configured, so no signature can verify
        if query.qtype in (wire.OPT, wire.TSIG, wire.TKEY):
            return wire.FORMERR
        if query.qtype in (wire.MAILA, wire.MAILB):
            return wire.NOTIMP
        if query.qclass not in (wire.CLASS_IN, wire.CLASS_ANY):
            return wire.REFUSED
        if query.opcode == wire.OPCODE_NOTIFY:  # we are the primary; acknowledge and ignore
            return wire.NOERROR if query.qname.lower() == self.apex.zone_wire else wire.REFUSED
        if query.qtype in (wire.AXFR, wire.IXFR):
            if query.qtype == wire.AXFR or tcp or not self.transfer_allowed(source):
                return wire.REFUSED  # AXFR needs TCP, where handle_tcp serves it
            if query.qname.lower() != self.apex.zone_wire:
                return wire.REFUSED
        return None

    def _build(self, name: bytes, qtype: int, edns: bool, dnssec_ok: bool) -> answer.Entry | None:
        """The answer for a lowercase name, read from the store; None outside the zone."""
        zone = self.zone
        found = zone.find(name)
        if found is None:
            return None
        sets: records.RRsets | None = {}
        exists = False
        addresses = self.apex.addresses.get(name)
        if name == self.apex.zone_wire:
            sets, exists = None, True
        elif addresses is not None:  # a nameserver inside the zone
            sets, exists = addresses, True
        elif name in self.apex.address_parents:
            exists = True
        else:
            if found.identifier is not None:
                with self._store.read() as txn:
                    record = self._store.get_record(txn, str(found.identifier))
                if record is not None:
                    sets = records.rrsets(record.values, len(name))
                exists = bool(sets)  # any public value gives a TXT (or the dns.omitted one)
            if not exists:
                exists = self.names.has_below(name, None) or (
                    found.exists and self._node_has_below(zone, name)
                )
        flag = (2 if dnssec_ok else 1) if edns else 0
        return answer.build(self.apex, len(name), qtype, exists, sets, flag)

    def _node_has_below(self, zone: answer.Zone, name: bytes) -> bool:
        """True when a published name lies below the prefix node `name` (memoised per path)."""
        labels = wire.labels_of(name)
        relative = labels[: len(labels) - len(zone.zone_labels)]
        path = ".".join(label.decode("ascii") for label in reversed(relative))
        if self.names.witness_known(path):
            return self.names.has_below(name, path)
        generation = self._follower.generation
        witness = self.names.find_witness(path, zone.hosted, zone.nodes)
        with self._follower.lock:
            if self._follower.generation == generation and zone is self.zone:
                self.names.remember_witness(path, witness)
        return witness is not None

    # Zone transfers ------------------------------------------------------------------

    def handle_tcp(self, data: bytes, source: str) -> Iterator[bytes]:
        """The reply messages to one request received over TCP (several for AXFR/IXFR)."""
        question = None
        if len(data) >= 12 and not data[2] & 0xF8 and data[4:6] == b"\x00\x01":
            question = wire.read_question(data)
        if question is None or question[1] not in (wire.AXFR, wire.IXFR):
            reply = self.handle_wire(data, source, tcp=True)
            if reply is not None:
                yield reply
            return
        started = time.perf_counter()
        allowed = self.transfer_allowed(source)
        if (yield from transfer.serve(self._store, self.apex, data, question[3], allowed)):
            self.stats.add("tcp", wire.NOERROR, 0)
            self.stats.duration.observe(time.perf_counter() - started)

    def transfer_allowed(self, source: str) -> bool:
        return transfer.allowed(source, self._options.transfer_networks)

    # Following the change log ---------------------------------------------------------

    def _load_zone(self) -> answer.Zone:
        with self._store.read() as txn:
            hosted = {info.prefix for info in self._store.iter_prefixes(txn)}
        return answer.Zone(self.apex, hosted)

    def _on_change(self, entry: handle_pb2.ChangeEntry | None) -> None:
        if entry is None:
            self.zone = self._load_zone()
            self.names.rebuild(self.zone.hosted, self.zone.nodes)
            self.cache.clear()
            return
        if entry.operation == _Op.PREFIX_PUT:
            if entry.prefix.prefix not in self.zone.hosted:
                self.zone = answer.Zone(self.apex, {*self.zone.hosted, entry.prefix.prefix})
                self.names.on_prefix(entry.prefix.prefix, self.zone.hosted, self.zone.nodes)
                self.cache.clear()  # a new prefix can take over names that mapped elsewhere
            return
        try:
            identifier = parse(entry.identifier)
        except IdnodeError:
            return
        labels = mapping.relative_labels(identifier)
        self.cache.invalidate(wire.name_to_wire(".".join(labels) + "." + self.apex.zone))
        record = entry.record if entry.operation != _Op.DELETE else None
        for name in self.names.on_record(
            entry.identifier, record, self.zone.hosted, self.zone.nodes
        ):
            self.cache.invalidate(name)  # the names above it may appear or vanish
