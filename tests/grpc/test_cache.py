"""The answer cache every face shares: bounded in bytes as well as entries, grouped by prefix."""

from __future__ import annotations

import threading

from registry.identifier import is_under
from resolver.cache import AnswerCache


def test_bytes_used_counts_the_sizes_given_and_the_keys() -> None:
    cache: AnswerCache[str, str] = AnswerCache(10, 10, 1000, 1000)

    cache.put("abc", "x", 100)
    cache.put("é", "y", 10, negative=True)  # two bytes of UTF-8

    assert cache.bytes_used == 103 + 12
    cache.invalidate("abc")
    assert cache.bytes_used == 12
    cache.clear()
    assert cache.bytes_used == 0


def test_each_side_is_bounded_in_bytes_evicting_the_least_recently_used() -> None:
    cache: AnswerCache[str, str] = AnswerCache(100, 100, 300, 200)
    for key in ("a", "b", "c"):
        cache.put(key, key, 99)  # 100 bytes each with the key
    cache.get("a")

    cache.put("d", "d", 99)  # 400 > 300: the least recently used, b, goes

    assert [cache.get(k) for k in "abcd"] == ["a", None, "c", "d"]
    assert cache.bytes_used == 300
    for key in ("n1", "n2", "n3"):
        cache.put(key, "-", 98, negative=True)
    assert (cache.get("n1"), cache.get("n3")) == (None, "-")
    assert [cache.get(k) for k in "acd"] == ["a", "c", "d"]  # misses never push answers out
    assert cache.bytes_used == 300 + 200


def test_a_value_larger_than_its_side_is_not_kept_and_drops_the_old_answer() -> None:
    cache: AnswerCache[str, str] = AnswerCache(10, 10, 1000, 100)
    cache.put("k", "old", 10)

    assert cache.put("k", "huge", 100, negative=True) is False

    assert cache.get("k") is None
    assert (len(cache), cache.bytes_used) == (0, 0)


def test_invalidate_groups_drops_only_the_matching_groups() -> None:
    cache: AnswerCache[str, str] = AnswerCache(10, 10, 1000, 1000)
    cache.put("88.118.8/a", "a", 1, group="88.118.8")
    cache.put("88.118.8.1/b", "b", 1, negative=True, group="88.118.8.1")
    cache.put("88.118.80/c", "c", 1, group="88.118.80")
    cache.put("88.118.9/d", "d", 1, group="88.118.9")

    dropped = cache.invalidate_groups(lambda group: is_under(group, "88.118.8"))

    assert dropped == 2
    assert [cache.get(k) for k in ("88.118.8/a", "88.118.8.1/b", "88.118.80/c", "88.118.9/d")] == [
        None,
        None,
        "c",
        "d",
    ]
    cache.invalidate("88.118.80/c")
    cache.put("88.118.9/d", "d2", 1, group="88.118.9")  # a replaced entry stays in its group
    assert cache.invalidate_groups(lambda group: group == "88.118.9") == 1
    assert (len(cache), cache.bytes_used) == (0, 0)


def test_bounds_hold_under_concurrent_writers() -> None:
    cache: AnswerCache[str, bytes] = AnswerCache(50, 50, 10_000, 5_000)

    def fill(worker: int) -> None:
        for n in range(2000):
            key = f"88.118.{worker}/{n}"
            cache.put(key, b"x", 90 + n % 20, negative=n % 3 == 0, group=f"88.118.{worker}")
            cache.get(key)
            if n % 100 == 0:
                cache.invalidate_groups(lambda group: group == f"88.118.{(worker + 1) % 4}")

    threads = [threading.Thread(target=fill, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(cache) <= 100
    assert cache.bytes_used <= 15_000
    assert cache.bytes_used == sum(
        len(key) + 90 + int(key.rpartition("/")[2]) % 20
        for key in [f"88.118.{w}/{n}" for w in range(4) for n in range(2000)]
        if cache.get(key) is not None
    )
