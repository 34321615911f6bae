"""What the zone holds for a name: answers built from the store, cached, following the log."""

from __future__ import annotations

from proto import handle_pb2
from registry.errors import IdnodeError
from registry.identifier import parse
from registry.store import Store
from resolver.dns import answer, mapping, records, wire
from resolver.dns.cache import WireCache
from resolver.dns.names import Names
from resolver.follow import ChangeFollower

_Op = handle_pb2.ChangeEntry.Operation


class ZoneLookup:
    """Builds the `answer.Entry` for a lowercase name, caches it, and drops what a change
    in the change log makes stale (the names a write touches; everything on a new prefix).

    A name exists exactly when the zone a secondary transfers holds records at or
    below it (RFC 8020; see `resolver.dns.names`).
    """

    def __init__(
        self, store: Store, follower: ChangeFollower, apex: records.Apex, cache: WireCache
    ) -> None:
        self._store = store
        self._follower = follower
        self.apex = apex
        self.cache = cache
        self.zone = self._load_zone()
        answer.check_nameserver_names(self.apex, self.zone)
        self.names = Names(store, apex.zone)
        self.names.rebuild(self.zone.hosted, self.zone.nodes)
        # An answer for a missing name depends only on its length and the EDNS flag.
        self._nxdomain: dict[int, answer.Entry] = {}
        follower.subscribe(self._on_change)

    def fill(self, name: bytes, key: bytes, qtype: int, flag: int) -> answer.Entry | None:
        """The answer for `key` (`name` + qtype + qclass + `flag`), built and cached;
        None when `name` is outside the zone. Raises IdnodeError when the store fails."""
        generation = self._follower.generation
        zone = self.zone
        entry = self.build(name, qtype, flag)
        if entry is None or b"\x00" in name[:-1]:
            return entry
        if entry.rcode == wire.NXDOMAIN and not self.cache.seen_missing(name):
            return entry  # kept from its second miss: a name asked once is not worth it
        with self._follower.lock:  # a change applied meanwhile may have made it stale
            if self._follower.generation == generation and zone is self.zone:
                negative = entry.rcode != wire.NOERROR or entry.post is not None
                self.cache.put(name, key, entry, negative)
        return entry

    def build(self, name: bytes, qtype: int, flag: int) -> answer.Entry | None:
        """The answer for a lowercase wire name, read from the store; None outside the zone.

        `flag` is 0 without EDNS, 1 with EDNS, 2 with EDNS and DO.
        """
        zone = self.zone
        key = zone.record_key(name)  # the common case, a one-label suffix, without a parse
        if key is not None:
            record = self._store.read_record(key)
            if record is not None:
                sets = records.rrsets(record.values, len(name))
                if sets:  # any public value gives a TXT (or the dns.omitted one)
                    return answer.build(self.apex, len(name), qtype, True, sets, flag)
            if not self.names.has_below(name, None):
                return self._missing(len(name), flag)
            return answer.build(self.apex, len(name), qtype, True, {}, flag)
        found = zone.find(name)
        if found is None:
            return None
        return self._build_found(zone, found, name, qtype, flag)

    def _build_found(
        self, zone: answer.Zone, found: mapping.Found, name: bytes, qtype: int, flag: int
    ) -> answer.Entry:
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
                record = self._store.read_record(str(found.identifier))
                if record is not None:
                    sets = records.rrsets(record.values, len(name))
                exists = bool(sets)
            if not exists:
                exists = self.names.has_below(name, None) or (
                    found.exists and self._node_has_below(zone, name)
                )
        if not exists:
            return self._missing(len(name), flag)
        return answer.build(self.apex, len(name), qtype, exists, sets, flag)

    def _missing(self, qname_length: int, flag: int) -> answer.Entry:
        """NXDOMAIN: the same pieces for every name of one length (the serial is patched in)."""
        memo = qname_length * 3 + flag
        entry = self._nxdomain.get(memo)
        if entry is None:
            entry = answer.build(self.apex, qname_length, 0, False, {}, flag)
            self._nxdomain[memo] = entry  # at most 256 lengths x 3 flags
        return entry

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
        if entry.operation == _Op.ACCOUNT_PUT:
            return  # a credential changed: nothing in the zone did
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
