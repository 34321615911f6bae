"""The fast path (plain questions, no parse) answers exactly what the parsed path answers."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

import metrics
from registry.txnprobe import TxnProbe
from resolver.dns import DnsServer, dns_name
from resolver.dns.handler import Handler
from resolver.dns.stats import HIT, slot
from tests.dns.nodes import NODE_PREFIX, ZONE, Node, make_node, make_options, value

LONG = "88.118.8/" + "X" * 60  # a name of two suffix labels: its second label is an ENT
INTERESTING_LABELS = [
    b"abc-1", b"ABC-1", b"nope", b"empty", b"b32-99c48m9i64o3cc1i6c", b"B32-99C48M9I64O3CC1I6C",
    b"xn--abc", b"8", b"118", b"88", b"id", b"example", b"ns1", b"*", b"a.b", b"a\x00b", b"-a",
    b"\xc3\xa9",
]  # fmt: skip
SUFFIXES = [b"", b"8.118.88.id.example", b"118.88.id.example", b"id.example", b"example", b"org"]
QTYPES = [1, 2, 6, 16, 28, 35, 41, 65, 97, 250, 251, 252, 253, 255, 256]
QCLASSES = [1, 3, 4, 255]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = make_node(tmp_path_factory.mktemp("fast"))
    node.registry.create(node.admin, LONG, [value(1, "URL", "https://example.com/long")])
    yield node
    node.store.close()


def _name(labels: list[bytes], suffix: bytes) -> bytes:
    parts = labels + ([part for part in suffix.split(b".")] if suffix else [])
    return b"".join(bytes((len(part),)) + part for part in parts) + b"\x00"


def _query(name: bytes, qtype: int, qclass: int, padding: bool, dnssec_ok: bool) -> bytes:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1)
    options = struct.pack("!HH", 12, 4) + b"\x00" * 4 if padding else b""  # PADDING (RFC 7830)
    ttl = 0x8000 if dnssec_ok else 0
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, ttl, len(options)) + options
    return header + name + struct.pack("!HH", qtype, qclass) + opt


labels = st.lists(
    st.one_of(st.sampled_from(INTERESTING_LABELS), st.binary(min_size=1, max_size=12)),
    min_size=0,
    max_size=4,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    labels=labels,
    suffix=st.sampled_from(SUFFIXES),
    qtype=st.sampled_from(QTYPES),
    qclass=st.sampled_from(QCLASSES),
    dnssec_ok=st.booleans(),
)
def test_a_plain_question_gets_the_parsed_paths_answer_cold_and_warm(
    populated: Node,
    labels: list[bytes],
    suffix: bytes,
    qtype: int,
    qclass: int,
    dnssec_ok: bool,
) -> None:
    if any(len(label) > 63 for label in labels):
        labels = [label[:63] for label in labels]
    handler = _handler(populated)
    name = _name(labels, suffix)
    plain = _query(name, qtype, qclass, padding=False, dnssec_ok=dnssec_ok)
    parsed = _query(name, qtype, qclass, padding=True, dnssec_ok=dnssec_ok)
    handler.cache.clear()
    cold = handler.handle_wire(plain, "192.0.2.1")
    warm = handler.handle_wire(plain, "192.0.2.1")
    handler.cache.clear()
    reference = handler.handle_wire(parsed, "192.0.2.1")
    assert cold == warm == reference


_handlers: dict[int, Handler] = {}


def _handler(node: Node) -> Handler:
    if id(node) not in _handlers:
        _handlers.clear()
        _handlers[id(node)] = Handler(node.store, node.follower, make_options())
    return _handlers[id(node)]


def test_a_zero_octet_inside_a_label_is_not_taken_for_the_end_of_the_name(
    populated: Node,
) -> None:
    handler = _handler(populated)
    name = _name([b"abc-1\x00"], b"8.118.88.id.example")  # first zero inside the label
    reply = handler.handle_wire(_query(name, 16, 1, False, False), "127.0.0.1")
    assert reply is not None
    assert reply[3] & 0xF == dns.rcode.NXDOMAIN
    assert reply[12 : 12 + len(name)] == name  # the whole question is echoed


def test_a_missing_name_asked_again_is_answered_from_the_negative_cache(populated: Node) -> None:
    handler = _handler(populated)
    handler.cache.clear()
    query = dns.message.make_query("m0123456789.8.118.88.id.example.", "A").to_wire()
    handler.handle_wire(query, "127.0.0.1")
    assert handler.cache.negative_bytes == 0  # asked once: not worth keeping yet
    handler.handle_wire(query, "127.0.0.1")
    assert handler.cache.negative_bytes > 0
    reply = dns.message.from_wire(handler.handle_wire(query, "127.0.0.1") or b"")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].name.to_text() == ZONE


def test_a_registration_in_another_process_is_seen_by_the_next_question(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    handler = Handler(node.store, node.follower, make_options())
    name = dns_name("88.118.8/fresh-1", ZONE)
    assert name is not None
    query = dns.message.make_query(name, "TXT").to_wire()
    first = dns.message.from_wire(handler.handle_wire(query, "127.0.0.1") or b"")
    assert first.rcode() == dns.rcode.NXDOMAIN  # now cached as missing
    script = (
        "import sys; from registry.store import Store, StoreOptions; "
        "from registry.registry import Registry; from registry import accounts; "
        "from tests.dns.nodes import ADMIN_TOKEN, value; "
        "s = Store(sys.argv[1], StoreOptions(map_size_bytes=64 << 20, durable=False)); "
        "r = Registry(s, '88.118'); a = accounts.authenticate(s, ADMIN_TOKEN); "
        "r.create(a, '88.118.8/fresh-1', [value(1, 'URL', 'https://example.com/f')]); s.close()"
    )
    subprocess.run([sys.executable, "-c", script, node.store.path], check=True, timeout=60)
    second = dns.message.from_wire(handler.handle_wire(query, "127.0.0.1") or b"")
    assert second.rcode() == dns.rcode.NOERROR and second.answer
    node.store.close()


def test_the_meta_page_probe_reads_what_lmdb_reports(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    probe = TxnProbe(node.store.path)
    assert probe.last_txn_id() == node.store.last_txn_id()
    node.registry.create(node.admin, "88.118.8/probe-1", [value(1, "batch", "B")])
    assert probe.last_txn_id() == node.store.last_txn_id()
    probe.close()
    node.store.close()


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_udp_loops_own_counts_reach_the_metrics(populated: Node) -> None:
    server = DnsServer(populated.store, NODE_PREFIX, populated.follower, make_options())
    port = server.start(["127.0.0.1:0"])[0][1]
    try:
        metrics.flush()
        labels = {"proto": "udp", "rcode": "NOERROR"}
        before = _sample("idnode_dns_responses_total", labels)
        observed = _sample("idnode_resolve_duration_seconds_count", {"proto": "dns"})
        query = dns.message.make_query(dns_name("88.118.8/abc-1", ZONE) or "", "TXT")
        for _ in range(5):
            dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
        deadline = time.monotonic() + 5
        while _sample("idnode_dns_responses_total", labels) < before + 5:
            assert time.monotonic() < deadline, "the UDP loop's counts never reached the metrics"
            metrics.flush()
            time.sleep(0.05)
        assert _sample("idnode_dns_responses_total", labels) == before + 5
        assert _sample("idnode_resolve_duration_seconds_count", {"proto": "dns"}) >= observed + 5
    finally:
        server.stop()


def test_a_deflated_record_with_a_long_suffix_is_read_at_start(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    identifier = "88.118.8/" + "L" * 40  # two suffix labels: its second one is an ENT
    node.registry.create(node.admin, identifier, [value(1, "URL", "https://e.com/" + "x" * 3000)])
    handler = Handler(node.store, node.follower, make_options())  # reads it to find the ENTs
    name = dns_name(identifier, ZONE) or ""
    below = name.split(".", 1)[1]  # the empty non-terminal
    for asked in (name, below):
        query = dns.message.make_query(asked, "TXT").to_wire()
        reply = dns.message.from_wire(handler.handle_wire(query, "127.0.0.1") or b"")
        assert reply.rcode() == dns.rcode.NOERROR
    node.store.close()


def test_a_question_in_capitals_is_answered_from_the_lowercase_entry(populated: Node) -> None:
    handler = Handler(populated.store, populated.follower, make_options())
    counts = handler.stats.counts("udp")
    lower = dns.message.make_query("abc-1.8.118.88.id.example.", "TXT").to_wire()
    mixed = dns.message.make_query("aBc-1.8.118.88.Id.Example.", "TXT").to_wire()
    handler.handle_wire(lower, "127.0.0.1", False, counts)
    reply = handler.handle_wire(mixed, "127.0.0.1", False, counts) or b""
    assert reply[12 : len(mixed)] == mixed[12:]  # the question as sent (0x20)
    assert dns.message.from_wire(reply).answer
    assert counts.responses[slot(dns.rcode.NOERROR, HIT)] == 1
