"""Sites (where a delegated prefix or a node is served): checked before they are stored.

A site address is `HOST:PORT` or `[IPV6]:PORT` over TCP: a DNS host name or an
IP address, and a port from 1 to 65535. Nothing else is accepted, in particular
no gRPC target scheme (`unix:`, `dns:`, `ipv4:`, ...), no list of addresses, no
unspecified, multicast or link-local address: anonymous callers make the node
connect to these sites when they ask it to follow a referral.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from proto import handle_pb2
from registry.errors import InvalidValue, TooLarge
from registry.identifier import excerpt

MAX_SITES = 16
MAX_HOST_BYTES = 253  # a DNS name in text form
MAX_ADDRESS_BYTES = MAX_HOST_BYTES + 6  # ":65535"
MAX_URL_BYTES = 512
_NOT_IN_BASE_URL = "?#@ \\\"'<>"

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")


def check_sites(sites: Sequence[handle_pb2.Site]) -> None:
    """Raise TooLarge past MAX_SITES, InvalidValue naming the first bad address."""
    if len(sites) > MAX_SITES:
        raise TooLarge(f"{len(sites)} sites, more than {MAX_SITES}")
    for position, site in enumerate(sites, start=1):
        if not site.grpc_address:
            raise InvalidValue(f"site {position}: grpc_address is empty")
        for field in ("grpc_address", "dns_address"):
            address = getattr(site, field)
            if address:
                problem = address_problem(address)
                if problem:
                    raise InvalidValue(f"site {position}: {field} {excerpt(address)} {problem}")
        if site.http_address:
            problem = http_address_problem(site.http_address)
            if problem:
                raise InvalidValue(
                    f"site {position}: http_address {excerpt(site.http_address)} {problem}"
                )


def http_address_problem(url: str) -> str:
    """What is wrong with the base URL of a site's HTTP face; "" when nothing.

    Scanned codes are redirected there, so only http(s) URLs with a valid host
    (and port) are accepted, with an optional path and nothing else.
    """
    if len(url) > MAX_URL_BYTES or not url.isascii():
        return f"is not an http(s) URL of at most {MAX_URL_BYTES} ASCII characters"
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// URL"
    authority = rest.partition("/")[0]
    if not authority or any(c in url for c in _NOT_IN_BASE_URL):
        return "is not SCHEME://HOST[:PORT][/PATH] (no user, query, fragment or spaces)"
    if authority.endswith("]") or ":" not in authority:
        authority += ":443"  # no port given: check the host alone
    problem = address_problem(authority)
    return f"has a bad host or port (it {problem})" if problem else ""


def is_valid_address(address: str) -> bool:
    """True for an address `check_sites` accepts (sites stored before it existed may not be)."""
    return not address_problem(address)


def address_problem(address: str) -> str:
    """What is wrong with a site address, as the end of a sentence; "" when nothing."""
    if len(address) > MAX_ADDRESS_BYTES or not address.isascii():
        return f"is not HOST:PORT (at most {MAX_ADDRESS_BYTES} ASCII characters)"
    if address.startswith("["):
        host, separator, port = address[1:].partition("]:")
    else:
        host, separator, port = address.rpartition(":")
    if not separator or not host:
        return "is not HOST:PORT (an IPv6 address as [ADDRESS]:PORT)"
    if not _PORT.match(port) or not 1 <= int(port) <= 65535:
        return "has no port from 1 to 65535"
    return _host_problem(host, bracketed=address.startswith("["))


def _host_problem(host: str, bracketed: bool) -> str:
    try:
        if "%" in host:  # a scope (interface) id: only meaningful on this machine
            raise ValueError(host)
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = (
            ipaddress.IPv6Address(host) if bracketed else ipaddress.IPv4Address(host)
        )
    except ValueError:
        if bracketed:
            return "does not hold an IPv6 address (without a scope) in its brackets"
        if ":" in host or not _HOST_NAME.match(host) or len(host) > MAX_HOST_BYTES:
            return "is not HOST:PORT with a DNS host name or an IP address"
        if host.rstrip(".").rpartition(".")[2].isdigit():
            return "has a host that is neither an IPv4 address nor a DNS name"
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        return "is an unspecified, multicast or link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    return ""
