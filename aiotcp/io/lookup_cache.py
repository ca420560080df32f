"""A small time-bounded cache for per-destination kernel lookups (routes, next hops).

Asking the kernel costs a socket or a read of /proc per connection, which a
connections-per-second load notices; answers are reused for a few seconds, so a
route or neighbour change is still picked up at that pace.  Only hits are stored:
a failed lookup is asked again next time.  The size bound keeps a flood of
distinct destinations from growing it without limit.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LookupCache(Generic[K, V]):
    __slots__ = ("_entries", "max_entries", "ttl")

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, now: float) -> V | None:
        """The value stored for ``key`` less than ``ttl`` seconds before ``now``."""
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        return None

    def put(self, key: K, value: V, now: float) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now, value)
