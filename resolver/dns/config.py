"""DNS face configuration: one frozen dataclass, checked when it is made."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DEFAULT_RRL_RESPONSES_PER_SECOND = 1000
DEFAULT_TCP_IDLE_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_TCP_CONNECTIONS = 256
DEFAULT_TCP_MESSAGE_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_TCP_CONNECTIONS_PER_SOURCE = 16
DEFAULT_CACHE_ENTRIES = 100_000
DEFAULT_NEGATIVE_CACHE_ENTRIES = 20_000
DEFAULT_CACHE_BYTES = 64 << 20
DEFAULT_NEGATIVE_CACHE_BYTES = 16 << 20
DEFAULT_UDP_BATCH = 32
MAX_UDP_BATCH = 1024  # the kernel's limit on messages per recvmmsg/sendmmsg (UIO_MAXIOV)


class DnsConfigError(ValueError):
    """The DNS configuration is invalid."""


@dataclass(frozen=True)
class DnsOptions:
    """How the DNS face serves its zone; every field has a working default but `zone`."""

    zone: str
    nameservers: tuple[str, ...] = ()  # empty: (f"ns1.{zone}",) with loopback glue
    glue: tuple[str, ...] = ()  # "NAME=ADDRESS" for nameservers inside the zone (A/AAAA)
    transfer_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    notify: tuple[str, ...] = ()  # "HOST:PORT" of secondaries
    rrl_responses_per_second: int = DEFAULT_RRL_RESPONSES_PER_SECOND  # per /24 or /56; 0: off
    rrl_slip: int = 2  # every n-th limited response is a truncated reply; 0: drop them all
    rrl_workers: int = 1  # processes sharing the budget: each allows its share
    rrl_table_size: int = 1 << 16  # buckets (a power of two); memory does not grow past it
    rrl_exempt_loopback: bool = True  # off only to test limiting from 127.0.0.1
    identity: str = ""  # NSID and CH TXT id.server; empty: "<hostname>/<pid>"
    hide_identity: bool = False  # CH TXT id.server / hostname.bind get REFUSED
    nsid: bool = True  # answer NSID requests (RFC 5001) with the identity
    version: str = ""  # CH TXT version.bind / version.server; empty: REFUSED
    cookies: bool = True  # DNS cookies (RFC 7873)
    cookie_secret: str = ""  # hex, 16 octets, shared by every worker; empty: one kept in the store
    tcp_idle_timeout_seconds: float = DEFAULT_TCP_IDLE_TIMEOUT_SECONDS  # for a message to begin
    tcp_message_timeout_seconds: float = DEFAULT_TCP_MESSAGE_TIMEOUT_SECONDS  # to end, once begun
    max_tcp_connections: int = DEFAULT_MAX_TCP_CONNECTIONS  # per worker; then the oldest idle goes
    max_tcp_connections_per_source: int = DEFAULT_MAX_TCP_CONNECTIONS_PER_SOURCE
    cache_entries: int = DEFAULT_CACHE_ENTRIES
    negative_cache_entries: int = DEFAULT_NEGATIVE_CACHE_ENTRIES
    cache_bytes: int = DEFAULT_CACHE_BYTES  # per worker, counted as in resolver.dns.cache
    negative_cache_bytes: int = DEFAULT_NEGATIVE_CACHE_BYTES
    udp_batch: int = DEFAULT_UDP_BATCH  # datagrams per recvmmsg/sendmmsg; 0 or 1: one per call
    transfer_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        zone = self.zone.strip().lower()
        if not zone.endswith("."):
            zone += "."
        if zone == "." or len(zone) > 200 or not _is_name(zone):
            raise DnsConfigError(f"zone: {self.zone!r} is not a usable zone name")
        object.__setattr__(self, "zone", zone)
        names = tuple(n if n.endswith(".") else n + "." for n in self.nameservers)
        for name in names:
            if not _is_name(name):
                raise DnsConfigError(f"nameservers: {name!r} is not a DNS name")
        default = f"ns1.{zone}"
        names = tuple(name.lower() for name in names) or (default,)
        if names == (default,) and not self.glue:  # the default: loopback, as dns_listen's
            object.__setattr__(self, "glue", (f"{default}=127.0.0.1", f"{default}=::1"))
        object.__setattr__(self, "nameservers", names)
        object.__setattr__(self, "glue", _check_glue(self.glue, names, zone))
        networks = []
        for text in self.transfer_allow:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as error:
                raise DnsConfigError(f"transfer_allow: {error}") from None
        object.__setattr__(self, "transfer_networks", tuple(networks))
        for target in self.notify:
            parse_host_port(target, "notify")
        for key in (
            "rrl_responses_per_second", "rrl_slip", "cache_entries", "negative_cache_entries",
            "cache_bytes", "negative_cache_bytes",
        ):  # fmt: skip
            if getattr(self, key) < 0:
                raise DnsConfigError(f"{key}: must not be negative")
        if not 0 <= self.udp_batch <= MAX_UDP_BATCH:
            raise DnsConfigError(f"udp_batch: must be within 0..{MAX_UDP_BATCH}")
        if self.rrl_table_size < 1 or self.rrl_table_size & (self.rrl_table_size - 1):
            raise DnsConfigError("rrl_table_size: must be a power of two")
        if self.cookie_secret:
            try:
                secret = bytes.fromhex(self.cookie_secret)
            except ValueError:
                raise DnsConfigError("cookie_secret: must be hexadecimal") from None
            if len(secret) != 16:
                raise DnsConfigError("cookie_secret: must be 16 octets (32 hex digits)")
        for key in ("max_tcp_connections", "max_tcp_connections_per_source", "rrl_workers"):
            if getattr(self, key) < 1:
                raise DnsConfigError(f"{key}: must be at least 1")
        for key in ("tcp_idle_timeout_seconds", "tcp_message_timeout_seconds"):
            if getattr(self, key) <= 0:
                raise DnsConfigError(f"{key}: must be positive")


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def _check_glue(glue: tuple[str, ...], nameservers: tuple[str, ...], zone: str) -> tuple[str, ...]:
    """Canonical "name=address" entries; every nameserver inside the zone needs one."""
    found: list[str] = []
    named: set[str] = set()
    for entry in glue:
        name, sep, address = entry.partition("=")
        name = name.strip().lower()
        name = name if name.endswith(".") else name + "."
        if not sep or name not in nameservers:
            raise DnsConfigError(f"glue: {entry[:80]!r} is not NAMESERVER=ADDRESS of a nameserver")
        if not in_zone(name, zone) or name == zone:
            raise DnsConfigError(f"glue: {name!r} is not a name inside the zone")
        try:
            parsed = ipaddress.ip_address(address.strip())
        except ValueError:
            raise DnsConfigError(f"glue: {address[:60]!r} is not an IP address") from None
        found.append(f"{name}={parsed}")
        named.add(name)
    for name in nameservers:
        if in_zone(name, zone) and name not in named:
            raise DnsConfigError(
                f"nameservers: {name!r} is inside the zone and needs an address in glue"
            )
    return tuple(found)


def _is_name(name: str) -> bool:
    """True for an absolute ASCII name whose labels are 1 to 63 octets, 255 in all."""
    labels = name[:-1].split(".")
    return (
        name.isascii()
        and len(name) <= 254
        and all(0 < len(label) <= 63 and " " not in label for label in labels)
    )


def parse_host_port(text: str, key: str = "listen") -> tuple[str, int]:
    """Split "HOST:PORT" or "[V6]:PORT". Raises DnsConfigError naming `key`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise DnsConfigError(f"{key}: {text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise DnsConfigError(f"{key}: {host!r} in {text!r} is not an IP address") from None
    return host, int(port)
