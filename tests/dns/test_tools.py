"""Stock DNS clients (dig, kdig) against the running server."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from resolver.dns import DnsServer, dns_name
from tests.dns.nodes import ZONE, Node, value

JX = dns_name("88.118.8/JXDY2106023", ZONE) or ""


def _run(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian: bind9-dnsutils / knot-dnsutils)")
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def dig(port: int, *args: str) -> str:
    return _run("dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=3", *args)


def test_dig_reads_txt_uri_and_naptr(server: tuple[DnsServer, int]) -> None:
    _dns, port = server
    txt = dig(port, "+short", "TXT", JX)
    assert '"1" "URL" "https://example.com/p/JXDY2106023"' in txt
    assert '"secret"' not in txt
    assert dig(port, "+short", "URI", JX).strip() == '1 1 "https://example.com/p/JXDY2106023"'
    naptr = dig(port, "+short", "NAPTR", JX).strip()
    assert naptr == '1 10 "u" "II+URL" "!^.*$!https://example.com/p/JXDY2106023!" .'


def test_dig_sees_nxdomain_with_soa_nodata_and_refused(server: tuple[DnsServer, int]) -> None:
    _dns, port = server
    missing = dig(port, "TXT", "nope.8.118.88.id.example.")
    assert "status: NXDOMAIN" in missing and "flags: qr aa" in missing
    assert "IN\tSOA\tns1.id.example. hostmaster.id.example." in missing
    nodata = dig(port, "AAAA", JX)
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata and "\tSOA\t" in nodata
    assert "status: REFUSED" in dig(port, "A", "example.org.")


def test_dig_retries_a_truncated_answer_over_tcp(server: tuple[DnsServer, int], node: Node) -> None:
    _dns, port = server
    node.registry.create(
        node.admin, "88.118.8/big", [value(i, "n", "x" * 200) for i in range(1, 9)]
    )
    out = dig(port, "TXT", "big.8.118.88.id.example.")
    assert "Truncated, retrying in TCP mode" in out
    assert "ANSWER: 8" in out


def test_kdig_over_ipv6_and_tcp(server: tuple[DnsServer, int]) -> None:
    dns_server, _port = server
    port6 = dict(dns_server.bound)["::1"]
    out = _run(
        "kdig", "@::1", "-p", str(port6), "+tcp", "+short", "TXT", "abc-1.8.118.88.id.example."
    )
    assert out.strip() == '"1" "batch" "B-42"'


def test_kdig_axfr(server: tuple[DnsServer, int]) -> None:
    _dns, port = server
    out = _run("kdig", "@127.0.0.1", "-p", str(port), "AXFR", ZONE)
    assert out.count("\tSOA\t") == 2 and "abc-1.8.118.88.id.example." in out
