"""The wire-answer cache: separate bounds, eviction, invalidation by name."""

from __future__ import annotations

import dns.message
import dns.rcode
from prometheus_client import REGISTRY

import metrics
from resolver.dns.answer import Entry
from resolver.dns.cache import WireCache, entry_bytes
from resolver.dns.handler import Handler
from resolver.dns.stats import HIT, MISS, slot
from tests.dns.nodes import ZONE, Node, make_options

ENTRY = Entry((b"", b"", b"", b""), b"", None, 12, 0)


def _name(i: int) -> bytes:
    return bytes((1,)) + str(i % 10).encode() + b"\x02id\x00"


def _key(i: int, qtype: int = 16) -> bytes:
    return _name(i) + qtype.to_bytes(2, "big") + b"\x00\x01\x00"


def test_positive_and_negative_entries_are_bounded_separately() -> None:
    cache = WireCache(positive_entries=3, negative_entries=2)
    for i in range(5):
        cache.put(_name(i), _key(i), ENTRY, negative=False)
    for i in range(5, 9):
        cache.put(_name(i), _key(i), ENTRY, negative=True)
    assert len(cache) == 5
    assert [i for i in range(9) if _key(i) in cache.entries] == [2, 3, 4, 7, 8]  # oldest out


def test_invalidate_drops_every_type_of_a_name() -> None:
    cache = WireCache(10, 10)
    for qtype in (16, 256, 35):
        cache.put(_name(1), _key(1, qtype), ENTRY, negative=qtype == 35)
    cache.put(_name(2), _key(2), ENTRY, negative=False)
    cache.invalidate(_name(1))
    assert list(cache.entries) == [_key(2)]


def test_the_name_index_does_not_grow_with_evictions() -> None:
    cache = WireCache(2, 2)
    for i in range(1000):
        name = f"n{i}".encode()
        cache.put(
            b"\x05" + name.ljust(5, b"x") + b"\x00",
            b"\x05" + name.ljust(5, b"x") + b"\x00\x00\x10\x00\x01\x00",
            ENTRY,
            negative=i % 2 == 0,
        )
    assert len(cache) == 4
    assert len(cache._by_name) == 4  # evicted names leave the index too


def test_zero_entries_disables_caching() -> None:
    cache = WireCache(0, 0)
    cache.put(_name(1), _key(1), ENTRY, negative=False)
    assert len(cache) == 0


def _entry(size: int) -> Entry:
    return Entry((b"", b"", b"", b""), b"x" * size, None, 12 + size, 0)


def test_each_side_is_bounded_in_bytes_too() -> None:
    one = entry_bytes(_key(0), _entry(1000))
    cache = WireCache(1000, 1000, positive_bytes=3 * one, negative_bytes=one)
    for i in range(10):
        cache.put(_name(i), _key(i), _entry(1000), negative=False)
    assert len(cache) == 3 and cache.positive_bytes == 3 * one
    for i in range(10, 13):
        cache.put(_name(i), _key(i, 28), _entry(1000), negative=True)
    assert cache.negative_bytes == one
    cache.put(_name(20), _key(20, 99), _entry(5000), negative=True)  # bigger than its side
    assert _key(20, 99) not in cache.entries
    cache.invalidate(_name(9))
    assert cache.positive_bytes == 2 * one


def test_a_flood_of_random_names_stays_within_the_negative_bytes(node: Node) -> None:
    budget = 64 * 1024
    handler = Handler(node.store, node.follower, make_options(negative_cache_bytes=budget))
    for i in range(3000):
        query = dns.message.make_query(f"r{i:06d}-{'q' * 50}.8.118.88.id.example.", "TXT")
        for _ in range(2):  # asked twice: kept
            assert handler.handle_wire(query.to_wire(), "127.0.0.1") is not None
    assert 0 < handler.cache.negative_bytes <= budget
    metrics.flush()
    assert REGISTRY.get_sample_value("idnode_cache_bytes", {"cache": "dns_negative"}) == (
        handler.cache.negative_bytes
    )


def test_a_missing_name_is_noted_at_its_first_miss_and_kept_at_its_second() -> None:
    cache = WireCache(10, 10)
    assert not cache.seen_missing(b"\x01a\x00")
    assert not cache.seen_missing(b"\x01b\x00")
    assert cache.seen_missing(b"\x01a\x00") and cache.seen_missing(b"\x01b\x00")


def test_a_missing_name_asked_again_is_answered_from_the_cache(node: Node) -> None:
    handler = Handler(node.store, node.follower, make_options())
    counts = handler.stats.counts("udp")
    query = dns.message.make_query("nope.8.118.88.id.example.", "TXT").to_wire()
    handler.handle_wire(query, "127.0.0.1", False, counts)
    assert handler.cache.negative_bytes == 0  # one miss: noted, not kept
    for _ in range(3):
        reply = dns.message.from_wire(handler.handle_wire(query, "127.0.0.1", False, counts) or b"")
        assert reply.rcode() == dns.rcode.NXDOMAIN and reply.authority[0].name.to_text() == ZONE
    assert handler.cache.negative_bytes > 0
    nxdomain = dns.rcode.NXDOMAIN
    assert counts.responses[slot(nxdomain, MISS)] == 2
    assert counts.responses[slot(nxdomain, HIT)] == 2


def test_a_flood_of_names_asked_once_keeps_none_and_flushes_none(node: Node) -> None:
    handler = Handler(node.store, node.follower, make_options(negative_cache_entries=100))
    kept = dns.message.make_query("typo.8.118.88.id.example.", "TXT").to_wire()
    for _ in range(2):
        handler.handle_wire(kept, "127.0.0.1")
    for i in range(5000):
        query = dns.message.make_query(f"r{i:06d}.8.118.88.id.example.", "TXT")
        assert handler.handle_wire(query.to_wire(), "127.0.0.1") is not None
    # A name of the flood may find its recent-miss slot holding its tag from an earlier
    # one (1 in 255 of the names that share a slot): a handful at most are kept.
    assert len(handler.cache) < 10
    assert b"\x04typo\x018\x03118\x0288\x02id\x07example\x00\x00\x10\x00\x01\x00" in (
        handler.cache.entries
    )
