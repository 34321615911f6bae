"""The DNS face (docs/dns.md): identifiers as names in one zone, served over UDP and TCP.

Public API, for the composition root::

    options = DnsOptions(zone="id.example.", notify=("127.0.0.1:5300",))
    server = DnsServer(store, node_prefix, follower, options)   # one per worker process
    bound = server.start(["127.0.0.1:0", "[::1]:5353"])          # -> [(host, port), ...]
    server.stop()
    notifier = Notifier(store, options)                          # in ONE process only
    notifier.start(); notifier.stop()
    dns_name("88.118.8/abc-1", "id.example.")  # -> "abc-1.8.118.88.id.example." or None
    begin_serial_epoch(store, options)  # once per node start, before workers serve

`DnsOptions` fields: zone, nameservers (default (f"ns1.{zone}",)), transfer_allow
(CIDRs, default loopback), notify ("HOST:PORT" secondaries), rrl_responses_per_second
(per client /24 or /56, 0 disables), rrl_slip, tcp_idle_timeout_seconds,
max_tcp_connections, cache_entries, negative_cache_entries. A bad value raises
DnsConfigError naming the field. `Handler` (in `resolver.dns.handler`) is the
pure wire handler the servers wrap: `handle_wire(bytes, source_ip, tcp) -> bytes | None`.
"""

from __future__ import annotations

from registry.store import Store
from resolver.dns import records, serial
from resolver.dns.config import DnsConfigError, DnsOptions
from resolver.dns.handler import Handler
from resolver.dns.mapping import dns_name
from resolver.dns.notify import Notifier
from resolver.dns.server import DnsServer

__all__ = [
    "DnsConfigError", "DnsOptions", "DnsServer", "Handler", "Notifier", "begin_serial_epoch",
    "dns_name",
]  # fmt: skip


def begin_serial_epoch(store: Store, options: DnsOptions) -> None:
    """Start a new SOA serial epoch at the clock (docs/dns.md, "The SOA serial")."""
    apex = records.Apex(options.zone, options.nameservers, options.glue)
    serial.begin_epoch(store, apex.fingerprint)
