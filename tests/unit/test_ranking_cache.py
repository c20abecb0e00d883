"""The answer cache: reuse within the TTL with a fresh ranking id, expiry, size bound."""

from __future__ import annotations

from deployments.ranking.answer_cache import AnswerCache
from deployments.ranking.engine import Ranked, Result


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def result(experiment: str | None = None) -> Result:
    return Result(
        "related",
        "r.first",
        [Ranked(3, 1.0, [{"type": "source", "name": "x"}])],
        experiment,
        "b" if experiment else None,
        anchor=1,
    )


def test_hit_returns_the_stored_result_and_answer_until_the_ttl() -> None:
    clock = Clock()
    cache = AnswerCache(10, clock=clock)
    assert cache.get("k") is None
    stored = result("exp")
    cache.put("k", stored, (b"ans", b"wer"))
    again = cache.get("k")
    assert again == (stored, (b"ans", b"wer"))
    assert (cache.hits, cache.misses) == (1, 1)
    clock.now += 10.5
    assert cache.get("k") is None


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = AnswerCache(60, max_entries=2, clock=Clock())
    cache.put("a", result(), (b"a",))
    cache.put("b", result(), (b"b",))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", result(), (b"c",))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


def test_zero_ttl_disables_it() -> None:
    assert not AnswerCache(0).enabled and AnswerCache(0.5).enabled
