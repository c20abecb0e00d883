"""Reusing answers that depend only on the request and the shop's state.

Storefront traffic asks the same questions over and over (the same popular product pages, the
same trending widget). An answer that no visitor history went into is a function of the
request and of the shop's state, so it can be reused for a few seconds: the key carries the
state's identity (a catalog, statistics, popularity, rules or experiments change makes new
keys), and the TTL bounds how late a time-windowed rule takes effect. An entry is the rendered
answer, in pieces around the places where the caller puts each response's own ranking id, and
what the caller keeps about it (a summary for the metrics).
Bounded in size, least recently used out first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
Pieces = tuple[bytes, ...]


class AnswerCache(Generic[V]):
    def __init__(
        self, ttl_s: float, max_entries: int = 20_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V, Pieces]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._ttl_s > 0

    def get(self, key: Hashable) -> tuple[V, Pieces] | None:
        found = self._entries.get(key)
        if found is None or found[0] < self._clock():
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[1], found[2]

    def put(self, key: Hashable, value: V, rendered: Pieces) -> None:
        self._entries[key] = (self._clock() + self._ttl_s, value, rendered)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
