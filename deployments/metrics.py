"""Application metrics exported through Ray's metrics agent (Prometheus format).

Names get Ray's `ray_` prefix and counters a `_total` suffix, e.g.
`ray_nova_ingest_events_total{outcome="rejected",reason="invalid",...}`. Serve adds the
application, deployment and replica tags. Tag values are bounded vocabularies: never shop,
visitor or product ids (they would blow up the metrics agent's memory).
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections.abc import Sequence

from ray.serve import metrics

from deployments.recommendations_app import Served
from ingest.service import IngestResult

_LATENCY_MS = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]


class IngestMetrics:
    def __init__(self) -> None:
        self.events = metrics.Counter(
            "nova_ingest_events",
            description="Events by outcome (accepted, duplicate, rejected) and rejection reason.",
            tag_keys=("outcome", "reason", "privacy_state"),  # type: ignore[arg-type]
        )
        self.requests = metrics.Counter(
            "nova_ingest_requests",
            description="POST /v1/events requests by HTTP status.",
            tag_keys=("status",),
        )
        self.latency = metrics.Histogram(
            "nova_ingest_batch_latency_ms",
            description="Time to handle one batch, from body read to response.",
            boundaries=_LATENCY_MS,
            tag_keys=("status",),
        )

    def observe(self, result: IngestResult | None, status: int, seconds: float) -> None:
        code = str(status)
        self.requests.inc(1, tags={"status": code})
        self.latency.observe(seconds * 1000, tags={"status": code})
        if result is None:
            return
        state = result.privacy_state.value if result.privacy_state else "none"
        if result.accepted:
            self.events.inc(
                result.accepted, tags={"outcome": "accepted", "reason": "", "privacy_state": state}
            )
        if result.promoted:
            self.events.inc(
                result.promoted, tags={"outcome": "promoted", "reason": "", "privacy_state": state}
            )
        if result.duplicate:
            self.events.inc(
                result.duplicate,
                tags={"outcome": "duplicate", "reason": "", "privacy_state": state},
            )
        reasons: dict[str, int] = {}
        for rejection in result.rejections:
            reasons[rejection.code] = reasons.get(rejection.code, 0) + 1
        for reason, count in reasons.items():
            self.events.inc(
                count, tags={"outcome": "rejected", "reason": reason, "privacy_state": state}
            )


class WriterMetrics:
    def __init__(self) -> None:
        self.written = metrics.Counter(
            "nova_writer_events_written", description="Events committed to the event store."
        )
        self.deduplicated = metrics.Counter(
            "nova_writer_events_deduplicated",
            description="Redelivered or replayed events the event store already had.",
        )
        self.failures = metrics.Counter(
            "nova_writer_failures", description="Failed writes (the events stay buffered)."
        )
        self.backlog = metrics.Gauge(
            "nova_ingest_buffer_entries",
            description="Entries in the Redis ingest stream not yet written to PostgreSQL.",
        )
        self.store_up = metrics.Gauge(
            "nova_writer_store_up", description="1 if the last write to PostgreSQL succeeded."
        )


class Buckets:
    """A histogram added up in the process, for export in Prometheus' layout: per key, how
    many observations fell at or below each bound (cumulative, the last one "+Inf"), their
    sum and their count."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.labels = (*(repr(float(b)) for b in self.bounds), "+Inf")
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0] * len(self.labels)
            self._sums[key] = 0.0
        counts[bisect_left(self.bounds, value)] += 1  # Prometheus' le: value <= bound
        self._sums[key] += value

    def drain(self) -> list[tuple[str, list[tuple[str, int]], float, int]]:
        """(key, [(le, cumulative count)], sum, count) per key since the last drain."""
        out = []
        for key, counts in self._counts.items():
            cumulative = list(itertools.accumulate(counts))
            buckets = list(zip(self.labels, cumulative, strict=True))
            out.append((key, buckets, self._sums[key], cumulative[-1]))
        self._counts.clear()
        self._sums.clear()
        return out


class RecommendationMetrics:
    """Everything is added up here and handed to Ray once a second: a Ray counter update or
    histogram observation per request cost several percent of the replica's CPU (the
    histogram ~4% in a profile under bench/serve's load). The latency histogram is therefore
    exported as counters in Prometheus' histogram layout (`_bucket` with `le`, `_sum`,
    `_count`), which histogram_quantile() reads like any histogram."""

    def __init__(self) -> None:
        self.requests = metrics.Counter(
            "nova_recommendations_requests",
            description="GET /v1/recommendations by intent and HTTP status.",
            tag_keys=("intent", "status"),  # type: ignore[arg-type]
        )
        self.latency_buckets = metrics.Counter(
            "nova_recommendations_latency_ms_bucket",
            description="Answers that took at most `le` milliseconds (cumulative buckets).",
            tag_keys=("intent", "le"),  # type: ignore[arg-type]
        )
        self.latency_sum = metrics.Counter(
            "nova_recommendations_latency_ms_sum",
            description="Milliseconds spent answering.",
            tag_keys=("intent",),
        )
        self.latency_count = metrics.Counter(
            "nova_recommendations_latency_ms_count",
            description="Answers timed.",
            tag_keys=("intent",),
        )
        self.products = metrics.Counter(
            "nova_recommendations_products",
            description="Products served, by the source that put them first in their reasons.",
            tag_keys=("intent", "source"),  # type: ignore[arg-type]
        )
        self._latency = Buckets(_LATENCY_MS)
        self._requests: dict[tuple[str, str], int] = {}
        self._products: dict[tuple[str, str], int] = {}
        self._flushed = time.monotonic()

    def observe(self, served: Served | None, status: int, seconds: float) -> None:
        intent = served.intent if served else "none"
        self._latency.add(intent, seconds * 1000)
        key = (intent, str(status))
        self._requests[key] = self._requests.get(key, 0) + 1
        if served is not None:
            for source, n in served.sources:
                pair = (intent, source)
                self._products[pair] = self._products.get(pair, 0) + n
        now = time.monotonic()
        if now - self._flushed >= 1.0:
            self.flush(now)

    def flush(self, now: float) -> None:
        for (intent, status), n in self._requests.items():
            self.requests.inc(n, tags={"intent": intent, "status": status})
        for (intent, source), n in self._products.items():
            self.products.inc(n, tags={"intent": intent, "source": source})
        for intent, buckets, total, count in self._latency.drain():
            for le, n in buckets:
                if n:  # Ray's counters take only positive increments
                    self.latency_buckets.inc(n, tags={"intent": intent, "le": le})
            if total > 0:
                self.latency_sum.inc(total, tags={"intent": intent})
            self.latency_count.inc(count, tags={"intent": intent})
        self._requests.clear()
        self._products.clear()
        self._flushed = now
