"""The per-destination lookup cache: answers expire, misses are not stored, size is bounded."""

from __future__ import annotations

from aiotcp.io.lookup_cache import LookupCache


def test_an_answer_is_reused_until_its_ttl_has_passed() -> None:
    cache: LookupCache[str, int] = LookupCache(ttl=2.0)
    assert cache.get("a", 0.0) is None
    cache.put("a", 7, 10.0)
    assert cache.get("a", 11.9) == 7
    assert cache.get("a", 12.0) is None  # expired: ask the kernel again
    cache.put("a", 8, 12.0)
    assert cache.get("a", 12.5) == 8


def test_a_flood_of_destinations_cannot_grow_it_past_its_bound() -> None:
    cache: LookupCache[int, int] = LookupCache(ttl=60.0, max_entries=100)
    for i in range(1000):
        cache.put(i, i, 0.0)
    assert len(cache._entries) <= 100
    assert cache.get(999, 1.0) == 999
