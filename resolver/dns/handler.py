"""The pure wire handler: request bytes in, reply bytes (or nothing) out, no socket I/O."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import metrics
from registry.errors import IdnodeError
from registry.store import Store
from resolver.dns import answer, identity, records, rrl, serial, transfer, wire
from resolver.dns.cache import WireCache
from resolver.dns.config import DnsOptions
from resolver.dns.cookies import Cookies, secret_for
from resolver.dns.lookup import ZoneLookup
from resolver.dns.names import Names
from resolver.dns.rcodes import ERROR_RCODES
from resolver.dns.stats import HIT, MISS, NO_CACHE, Counts, DnsStats, slot
from resolver.follow import ChangeFollower

_SIMPLE_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT hi
# Types a plain question may ask on the fast path; the others take the parsed path
# (OPT/TSIG/TKEY: FORMERR, MAILA/MAILB: NOTIMP, AXFR/IXFR: transfers).
_PARSED_TYPES = frozenset((wire.OPT, wire.TSIG, wire.TKEY, wire.MAILA, wire.MAILB, wire.AXFR,
                           wire.IXFR))  # fmt: skip
_NO_COOKIE = 0
_CLIENT_COOKIE = 1  # a client cookie, with no server cookie or one we did not make
_GOOD_COOKIE = 2  # a server cookie we made for this client: not spoofed, never rate-limited
EPOCH_RECHECK_SECONDS = 1.0  # a new serial epoch begun by another process shows within this
_log = logging.getLogger(__name__)
__all__ = ["ERROR_RCODES", "Handler"]


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
        self.cache = WireCache(
            options.cache_entries, options.negative_cache_entries,
            options.cache_bytes, options.negative_cache_bytes,
        )  # fmt: skip
        self.lookup = ZoneLookup(store, follower, self.apex, self.cache)
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
        self._last_txn_id = follower.last_txn_id  # the meta pages, mapped once per process
        self._seen_txn_id = -1  # the follower has applied every commit up to this one

    @property
    def zone(self) -> answer.Zone:
        return self.lookup.zone

    @property
    def names(self) -> Names:
        return self.lookup.names

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

    # The hot path -------------------------------------------------------------

    def handle_wire(
        self, data: bytes, source: str, tcp: bool = False, counts: Counts | None = None
    ) -> bytes | None:
        """The reply to one request from `source` (an IP address), or None to stay silent.

        `counts` (from `stats.counts()`) takes the response's count and duration when
        only the calling thread writes to it, as the UDP loop's does; without it the
        handler's shared, locked counts take them.
        """
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
                    if self._last_txn_id() != self._seen_txn_id:
                        self._catch_up()
                    # The question as sent first: most names come lowercase, and one with
                    # a capital in it can equal no key (cached names are lowercase).
                    key = data[12:qend] + edns
                    entry = self._entries.get(key)
                    cache = HIT
                    if entry is None:
                        name = data[12 : end + 1].lower()
                        key = name + data[end + 1 : qend] + edns
                        entry = self._entries.get(key)
                        if entry is None:
                            entry = self._fill(data, end, name, key, edns[0])
                            if entry is None:
                                return self._slow(data, source, tcp, started, counts)
                            cache = MISS
                    if entry.size + qend - 12 > limit:
                        entry = answer.truncated(entry)
                    return self._finish(data, qend, key, entry, source, tcp, cache, started, counts)
            return self._slow(data, source, tcp, started, counts)
        except IdnodeError as error:
            rcode = ERROR_RCODES.get(type(error), wire.SERVFAIL)
        except Exception:  # a bad request is answered and the server stays up
            _log.exception("DNS request failed")
            rcode = wire.SERVFAIL
        if size < 12 or data[2] & 0x80:
            return None
        question = wire.read_question(data) if data[4:6] == b"\x00\x01" else None
        echoed = data[12 : question[3]] if question else b""
        reply = wire.error_reply(data, rcode, echoed)
        return self._send(reply, source, tcp, started, rcode, counts)

    def _catch_up(self) -> None:
        """Apply the commits made since the last look (by any process) to the caches."""
        # What the follower's snapshot held, not what the probe said: a commit shows in
        # the meta pages a moment before new readers see it, and taking the probe's id
        # for a snapshot without that commit would skip it until the next commit.
        self._follower.poll()
        self._seen_txn_id = self._follower.txn_id

    def _fill(
        self, data: bytes, end: int, name: bytes, key: bytes, flag: int
    ) -> answer.Entry | None:
        """A cache miss of a plain IN question: its answer, built and cached; None when the
        question needs the parsed path (a malformed name, another class or a special type)."""
        if data[end + 3] != 0 or data[end + 4] != wire.CLASS_IN:
            return None  # (class and type first: a flood of other classes skips the walk)
        qtype = data[end + 1] << 8 | data[end + 2]
        if qtype in _PARSED_TYPES:
            return None
        offset = 12
        while offset < end:  # the first zero octet must end the name, label by label
            length = data[offset]
            if length > 63:
                return None
            offset += length + 1
        if offset != end:
            return None
        return self.lookup.fill(name, key, qtype, flag)

    def _finish(
        self,
        data: bytes,
        qend: int,
        key: bytes,
        entry: answer.Entry,
        source: str,
        tcp: bool,
        cache: int,
        started: float,
        counts: Counts | None,
        options: bytes = b"",
        cookie: int = _NO_COOKIE,
    ) -> bytes | None:
        limiter = self._rrl
        if not tcp and limiter is not None and cookie != _GOOD_COOKIE:
            network = limiter.network(source)
            if network != rrl.EXEMPT:
                kind = entry.kind
                # NXDOMAIN: random names to one victim share the zone's bucket; else the name.
                bucket = self.apex.zone_wire if kind == rrl.NXDOMAIN else key[:-5]
                action = limiter.check_network(network, kind, bucket)
                if action:  # decided before building a reply it may drop
                    return self._limited(action, data, qend, options if cookie else b"")
        headers, pre, post, _size, rcode, _kind = entry
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
        if counts is None:
            counts = self.stats.tcp if tcp else self.stats.udp
        counts.add(rcode * 3 + cache, time.perf_counter() - started)
        return reply

    def _limited(self, action: int, data: bytes, qend: int, cookie_options: bytes) -> bytes | None:
        kind = "drop" if action == rrl.DROP else ("badcookie" if cookie_options else "slip")
        self._rrl_actions.add((kind,))
        return rrl.limited_reply(action, data, qend, cookie_options)

    def _send(
        self,
        reply: bytes,
        source: str,
        tcp: bool,
        started: float,
        rcode: int,
        counts: Counts | None,
    ) -> bytes | None:
        """Count and return an error or refusal reply with `rcode` (extended rcodes included)."""
        limiter = self._rrl
        if not tcp and limiter is not None:
            network = limiter.network(source)
            action = limiter.check_network(network, rrl.ERROR, b"") if network != rrl.EXEMPT else 0
            if action:
                question = wire.read_question(reply)
                return self._limited(action, reply, question[3] if question else 12, b"")
        if counts is None:
            counts = self.stats.tcp if tcp else self.stats.udp
        counts.add(slot(rcode, NO_CACHE), time.perf_counter() - started)
        return reply

    def serial_of(self, sequence: int) -> int:
        """The SOA serial of the zone at change-log `sequence`."""
        with self._store.read() as txn:
            return serial.serial_at(serial.read(self._store, txn), sequence)

    # Everything that is not a plain question -----------------------------------------

    def _slow(
        self, data: bytes, source: str, tcp: bool, started: float, counts: Counts | None
    ) -> bytes | None:
        if len(data) < 12 or data[2] & 0x80:
            return None  # too short to answer, or a response: never reply to a reply
        opcode = (data[2] >> 3) & 0xF
        question = wire.read_question(data) if data[4:6] == b"\x00\x01" else None
        echoed = data[12 : question[3]] if question else b""
        if opcode not in (wire.OPCODE_QUERY, wire.OPCODE_NOTIFY):
            reply = wire.error_reply(data, wire.NOTIMP, echoed)
            return self._send(reply, source, tcp, started, wire.NOTIMP, counts)
        if question is None:
            reply = wire.error_reply(data, wire.FORMERR)
            return self._send(reply, source, tcp, started, wire.FORMERR, counts)
        try:
            query = wire.parse_query(data)
        except wire.WireError:
            reply = wire.error_reply(data, wire.FORMERR, echoed)
            return self._send(reply, source, tcp, started, wire.FORMERR, counts)
        if query.qclass == identity.CLASS_CH and query.opcode == wire.OPCODE_QUERY:
            version = self._options.version or None
            shown = None if self._options.hide_identity else self.identity
            reply, chaos_rcode = identity.chaos_reply(data, query, shown, version)
            return self._send(reply, source, tcp, started, chaos_rcode, counts)
        rcode = self._refusal(query, source, tcp)
        if rcode is not None:
            options = self._edns_options(query, source)[0] if rcode != wire.BADVERS else b""
            reply = wire.error_reply(data, rcode, echoed, query, options)
            if rcode == wire.NOERROR:  # a NOTIFY acknowledged
                reply = reply[:2] + bytes((reply[2] | 0x04,)) + reply[3:]
            return self._send(reply, source, tcp, started, rcode, counts)
        return self._answer(data, query, source, tcp, started, counts)

    def _answer(
        self,
        data: bytes,
        query: wire.Query,
        source: str,
        tcp: bool,
        started: float,
        counts: Counts | None,
    ) -> bytes | None:
        """The answer to a parsed query that is looked up (EDNS options, class ANY, IXFR...)."""
        name = query.qname.lower()
        qend = query.question_end
        key = (
            name
            + data[qend - 4 : qend]
            + ((b"\x02" if query.dnssec_ok else b"\x01") if query.edns else b"\x00")
        )
        if self._last_txn_id() != self._seen_txn_id:
            self._catch_up()
        options, cookie = self._edns_options(query, source) if query.edns else (b"", _NO_COOKIE)
        flag = key[-1]
        if query.qtype == wire.IXFR:  # over UDP: our SOA tells the client to come back over TCP
            entry = self.lookup.build(name, wire.SOA, flag)
            assert entry is not None
            return self._finish(
                data, qend, key, entry, source, tcp, NO_CACHE, started, counts, options, cookie
            )
        outcome = HIT
        entry = self._entries.get(key)
        if entry is None:
            outcome = MISS
            entry = self.lookup.fill(name, key, query.qtype, flag)
            if entry is None:
                reply = wire.error_reply(data, wire.REFUSED, data[12:qend], query, options)
                return self._send(reply, source, tcp, started, wire.REFUSED, counts)
        limit = 65535
        if not tcp:
            limit = min(max(query.payload, wire.MIN_PAYLOAD), wire.EDNS_PAYLOAD)
            if not query.edns:
                limit = wire.MIN_PAYLOAD
        if entry.size + len(query.qname) + 4 + len(options) > limit:
            entry = answer.truncated(entry)
        return self._finish(
            data, qend, key, entry, source, tcp, outcome, started, counts, options, cookie
        )

    def _edns_options(self, query: wire.Query, source: str) -> tuple[bytes, int]:
        """The options our reply carries (NSID, COOKIE) and what the client's cookie proved."""
        options = self._nsid if query.nsid else b""
        if not query.cookie or self._cookies is None:
            return options, _NO_COOKIE
        cookie, valid = self._cookies.answer(query.cookie, source)
        return options + cookie, _GOOD_COOKIE if valid else _CLIENT_COOKIE

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
            self.stats.add("tcp", wire.NOERROR, NO_CACHE, time.perf_counter() - started)

    def transfer_allowed(self, source: str) -> bool:
        return transfer.allowed(source, self._options.transfer_networks)
