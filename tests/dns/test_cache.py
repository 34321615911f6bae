"""The wire-answer cache: separate bounds, eviction, invalidation by name."""

from __future__ import annotations

from resolver.dns.answer import Entry
from resolver.dns.cache import WireCache

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
