"""The recommendations replica's metrics: added up in the process, exported once a second in
Prometheus' histogram layout."""

from __future__ import annotations

from typing import Any

import pytest

from deployments import metrics
from deployments.recommendations_app import Served


def test_buckets_are_cumulative_with_prometheus_le_semantics() -> None:
    b = metrics.Buckets([5.0, 1.0, 10.0])  # any order in, sorted out
    for value in (0.5, 1.0, 1.5, 5.0, 7.0, 30.0):
        b.add("related", value)
    b.add("trending", 2.0)
    drained = dict((key, (buckets, total, count)) for key, buckets, total, count in b.drain())
    buckets, total, count = drained["related"]
    # le is inclusive: 1.0 falls in le="1.0", 5.0 in le="5.0".
    assert buckets == [("1.0", 2), ("5.0", 4), ("10.0", 5), ("+Inf", 6)]
    assert (total, count) == (pytest.approx(45.0), 6)
    assert drained["trending"] == ([("1.0", 0), ("5.0", 1), ("10.0", 1), ("+Inf", 1)], 2.0, 1)
    assert b.drain() == []  # each observation is exported once


class FakeCounter:
    """Stands in for a Ray counter: records increments, refuses what Ray refuses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.incs: list[tuple[float, dict[str, str]]] = []

    def inc(self, value: float, tags: dict[str, str]) -> None:
        if value <= 0:
            raise ValueError("Ray counters take positive increments only")
        self.incs.append((value, dict(tags)))

    def total(self, **tags: str) -> float:
        return sum(v for v, t in self.incs if all(t.get(k) == w for k, w in tags.items()))


def test_requests_products_and_latency_are_flushed_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics.metrics, "Counter", FakeCounter)
    clock = iter([100.0, 100.2, 100.4, 101.5])
    monkeypatch.setattr(metrics.time, "monotonic", lambda: next(clock))
    m = metrics.RecommendationMetrics()  # reads the clock once
    served = Served("related", (("co_view", 7), ("popular", 3)))
    m.observe(served, 200, 0.0008)
    m.observe(None, 404, 0.003)
    assert m.requests.incs == []  # nothing handed to Ray within the second
    m.observe(served, 200, 0.012)  # a second later: everything so far goes out
    assert m.requests.total(intent="related", status="200") == 2
    assert m.requests.total(intent="none", status="404") == 1
    assert m.products.total(intent="related", source="co_view") == 14
    assert m.products.total(intent="related", source="popular") == 6
    assert m.latency_count.total(intent="related") == 2
    assert m.latency_sum.total(intent="related") == pytest.approx(12.8)
    assert m.latency_buckets.total(intent="related", le="1.0") == 1
    assert m.latency_buckets.total(intent="related", le="10.0") == 1
    assert m.latency_buckets.total(intent="related", le="20.0") == 2
    assert m.latency_buckets.total(intent="related", le="+Inf") == 2
    assert m.latency_buckets.total(intent="none", le="5.0") == 1
