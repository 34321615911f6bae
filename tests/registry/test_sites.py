"""Site addresses: only HOST:PORT or [IPV6]:PORT over TCP, bounded in count and size."""

from __future__ import annotations

import pytest

from proto import handle_pb2
from registry.errors import InvalidValue, TooLarge
from registry.sites import MAX_SITES, check_sites, is_valid_address

Site = handle_pb2.Site


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:8600",
        "10.1.2.3:1",
        "node.example.com:65535",
        "node-1.example.com.:443",
        "localhost:8600",
        "[::1]:8600",
        "[2001:db8::7]:8600",
        "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61 + ":1",
    ],
)
def test_host_port_and_bracketed_ipv6_are_accepted(address: str) -> None:
    assert is_valid_address(address)
    check_sites([Site(grpc_address=address, dns_address=address)])


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("unix:/run/idnode.sock", "no port"),
        ("unix:///tmp/x:1", "DNS host name"),
        ("unix-abstract:x:80", "DNS host name"),
        ("dns:///node.example.com:8600", "DNS host name"),
        ("ipv4:10.0.0.1:22", "DNS host name"),
        ("ipv4:10.0.0.1:22,10.0.0.2:22", "DNS host name"),
        ("vsock:3:1024", "DNS host name"),
        ("node.example.com", "not HOST:PORT"),
        ("node.example.com:0", "no port"),
        ("node.example.com:65536", "no port"),
        ("node.example.com:+80", "no port"),
        ("node.example.com: 80", "no port"),
        (":8600", "not HOST:PORT"),
        ("::1:8600", "DNS host name"),
        ("[::1%lo]:8600", "IPv6 address"),
        ("[10.0.0.1]:80", "IPv6 address"),
        ("[::]:8600", "unspecified"),
        ("0.0.0.0:8600", "unspecified"),
        ("169.254.169.254:80", "link-local"),
        ("[fe80::1]:80", "link-local"),
        ("[::ffff:169.254.169.254]:80", "link-local"),
        ("224.0.0.1:80", "multicast"),
        ("255.255.255.255:80", "broadcast"),
        ("1.2.3:80", "neither an IPv4 address"),
        ("-bad.example:80", "DNS host name"),
        ("under_score.example:80", "DNS host name"),
        ("nödé.example:80", "ASCII"),
        ("a" * 300 + ":80", "ASCII characters"),
        ("a" * 64 + ".example:80", "DNS host name"),
    ],
)
def test_anything_else_is_refused_naming_the_address_in_short(address: str, why: str) -> None:
    assert not is_valid_address(address)
    with pytest.raises(InvalidValue) as caught:
        check_sites([Site(grpc_address=address)])

    assert why in str(caught.value)
    assert len(str(caught.value)) < 200


def test_sites_are_bounded_in_count_and_need_a_grpc_address() -> None:
    check_sites([Site(grpc_address=f"10.0.0.{n}:1") for n in range(MAX_SITES)])
    with pytest.raises(TooLarge):
        check_sites([Site(grpc_address=f"10.0.0.{n}:1") for n in range(MAX_SITES + 1)])
    with pytest.raises(InvalidValue, match="grpc_address is empty"):
        check_sites([Site(dns_address="10.0.0.1:53")])
    with pytest.raises(InvalidValue, match="dns_address"):
        check_sites([Site(grpc_address="10.0.0.1:1", dns_address="unix:/x")])


@pytest.mark.parametrize(
    "url",
    [
        "https://id.example.com",
        "http://[::1]:8000/resolve",
        "https://1.2.3.4:8443",
        "HTTPS://h.cn/",
    ],
)
def test_good_http_sites_are_kept(url: str) -> None:
    check_sites([handle_pb2.Site(grpc_address="h.example:8600", http_address=url)])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(1)", "is not an http:// or https:// URL"),
        ("ftp://h.example", "is not an http:// or https:// URL"),
        ("https://evil.example@h.example", "no user, query"),
        ("https://h.example/?next=x", "no user, query"),
        ("https://h.example/a b", "no user, query"),
        ("https://h.example:0", "no port from 1 to 65535"),
        ("https://0.0.0.0", "unspecified, multicast or link-local"),
        ("https://" + "a" * 600, "at most 512 ASCII characters"),
    ],
)
def test_bad_http_sites_are_refused_naming_the_field(url: str, why: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        check_sites([handle_pb2.Site(grpc_address="h.example:8600", http_address=url)])
    assert "site 1: http_address" in str(caught.value)
    assert why in str(caught.value)
