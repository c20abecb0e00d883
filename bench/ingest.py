"""bench/ingest: sustained event ingest through Ray Serve, against the same app in one plain
uvicorn process, on PostgreSQL + Redis and on embedded SQLite, in one run.

For each (target, backend): a closed-loop phase (C connections, maximum throughput; the first
seconds are warm-up, excluded from the figures but not from the loss check) and an open-loop
phase at the target rate (latency counted from each request's scheduled time). Afterwards the
stored events are counted and compared with what the 202 answers promised would be stored.

    python -m bench.ingest            (make bench)

PostgreSQL and Redis come from NOVA_BENCH_DATABASE_URL / NOVA_BENCH_REDIS_URL (falling back to
the NOVA_TEST_* ones); the run uses a fresh database and Redis key prefix and drops them after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.loadgen import spawn as loadgen_spawn
from bench.targets import embedded_settings, plain_target, production_settings, serve_target
from config.settings import Settings
from deployments.simulate import Shopper, generate_catalog
from ingest import shops
from ingest.stores import open_stores

PLACEHOLDER = "bench-placeholder.myshopify.com"


@dataclass
class Phase:
    requests: int
    statuses: dict[int, int]
    events_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    expected_stored: int


@dataclass
class Target:
    name: str
    backend: str
    closed: Phase
    open: Phase
    stored: int

    @property
    def expected(self) -> int:
        return self.closed.expected_stored + self.open.expected_stored


def make_bodies(n_visitors: int) -> tuple[list[bytes], float]:
    shopper = Shopper(
        PLACEHOLDER,
        generate_catalog(300),
        seed=5,
        events_per_batch=25,
        views_per_session=(20, 32),
        consent_mix=(0.85, 0.1, 0.05),
    )
    batches = list(shopper.batches(n_visitors))
    for batch in batches:
        for event in batch["events"]:
            # The load generator makes ids unique per pass over this pool by rewriting "ev-".
            event["id"] = "ev-" + event["id"]
    mean = statistics.mean(len(b["events"]) for b in batches)
    return [json.dumps(b).encode() for b in batches], mean


def loadgen(
    port: int,
    bodies: list[bytes],
    shop: Any,
    mode: str,
    concurrency: int,
    duration: float,
    rate: float = 0.0,
) -> list[list[float]]:
    spec = {
        "bodies": [b.replace(PLACEHOLDER.encode(), shop.shop_id.encode()) for b in bodies],
        "path": "/v1/events",
        "headers": {"Content-Type": "application/json", "X-Nova-Key": shop.ingest_key},
    }
    return loadgen_spawn(port, spec, mode, concurrency, duration, rate)


def summarise(records: list[list[float]], warmup_s: float, duration: float) -> Phase:
    measured = [r for r in records if r[0] >= warmup_s]
    window = max(duration - warmup_s, 1e-9)
    latencies = sorted(r[1] * 1000 for r in measured) or [0.0]
    return Phase(
        requests=len(measured),
        statuses=dict(Counter(int(r[2]) for r in records)),
        events_per_s=sum(r[3] for r in measured if r[2] == 202) / window,
        requests_per_s=len(measured) / window,
        p50_ms=latencies[len(latencies) // 2],
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        expected_stored=int(sum(r[4] + r[5] for r in records if r[2] == 202)),
    )


async def _create_shop(settings: Settings, name: str) -> Any:
    stores = await open_stores(settings)
    try:
        domain = f"{name}-{uuid.uuid4().hex[:6]}.myshopify.com"
        return await shops.create_shop(stores.shops, domain, now=datetime.now(UTC))
    finally:
        await stores.close()


async def _count_when_settled(settings: Settings, shop_ids: list[str], expected: int) -> int:
    stores = await open_stores(settings, migrate=False)
    try:
        deadline, total = time.monotonic() + 120, -1
        while time.monotonic() < deadline:
            total = sum([await stores.events.count(s) for s in shop_ids])
            if total >= expected:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # an excess (double write) would show up now
        return sum([await stores.events.count(s) for s in shop_ids])
    finally:
        await stores.close()


def measure(
    name: str,
    settings: Settings,
    port: int,
    bodies: list[bytes],
    args: argparse.Namespace,
    mean_events: float,
) -> Target:
    closed_shop = asyncio.run(_create_shop(settings, "closed"))
    open_shop = asyncio.run(_create_shop(settings, "open"))
    # The sustained target rate first, on the application as deployed; then saturation, whose
    # warm-up also absorbs the autoscaler adding replicas (a replica start costs seconds of CPU).
    rate = args.target_events / mean_events
    opened = summarise(
        loadgen(port, bodies, open_shop, "open", 64, args.open_duration, rate),
        2.0,
        args.open_duration,
    )
    closed = summarise(
        loadgen(port, bodies, closed_shop, "closed", args.concurrency, args.duration),
        args.warmup,
        args.duration,
    )
    expected = closed.expected_stored + opened.expected_stored
    stored = asyncio.run(
        _count_when_settled(settings, [closed_shop.shop_id, open_shop.shop_id], expected)
    )
    result = Target(name, settings.backend.value, closed, opened, stored)
    print(
        f"  {name:<6} {result.backend:<10} max {closed.events_per_s:8.0f} ev/s "
        f"({closed.requests_per_s:.0f} req/s, p50 {closed.p50_ms:.1f} ms, p99 "
        f"{closed.p99_ms:.1f} ms) | at {args.target_events} ev/s: {opened.events_per_s:.0f} "
        f"ev/s, p50 {opened.p50_ms:.1f} ms, p99 {opened.p99_ms:.1f} ms | stored "
        f"{stored}/{expected} | statuses {closed.statuses} {opened.statuses}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=45.0, help="closed-loop seconds")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--open-duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--target-events", type=int, default=3000)
    parser.add_argument("--visitors", type=int, default=1500, help="size of the request pool")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    print("Generating pixel traffic ...", flush=True)
    bodies, mean_events = make_bodies(args.visitors)
    print(f"  {len(bodies)} requests, {mean_events:.1f} events per request", flush=True)
    results: list[Target] = []
    runners: list[tuple[str, Callable[[Settings], Any]]] = [
        ("serve", serve_target),
        ("plain", plain_target),
    ]
    with production_settings(args.port) as settings:
        for name, runner in runners:
            with runner(settings) as port:
                results.append(measure(name, settings, port, bodies, args, mean_events))
    with tempfile.TemporaryDirectory() as tmp:
        for name, runner in runners:
            settings = embedded_settings(args.port, Path(tmp) / name)
            with runner(settings) as port:
                results.append(measure(name, settings, port, bodies, args, mean_events))
    text = render(results, args, mean_events)
    print(text)
    if not args.no_record:
        report.record("ingest", text)


def render(results: list[Target], args: argparse.Namespace, mean_events: float) -> str:
    lines = [
        "## Ingest: POST /v1/events through Ray Serve vs plain uvicorn",
        "",
        report.stamp(),
        f"Realistic pixel batches, {mean_events:.1f} events per request (simulated shoppers: "
        "85% consented, 10% pending, 5% opted out). First an open loop: "
        f"{args.target_events} events/s offered for {args.open_duration:.0f} s, latency counted "
        "from each request's scheduled time (the first 2 s excluded). Then a closed loop for the "
        f"maximum: {args.concurrency} connections for {args.duration:.0f} s, the first "
        f"{args.warmup:.0f} s excluded as warm-up (the autoscaler adds replicas then). Serve runs "
        "with the HAProxy ingress (RAY_SERVE_ENABLE_HA_PROXY=1, RAY_SERVE_THROUGHPUT_OPTIMIZED=1); "
        "plain is the same ASGI app and stores in one uvicorn process, with the stream writer as "
        "a task in it. The load generator is a separate process on the same 2 cores. The rate "
        "limit is raised for the run (one shop sends everything).",
        "",
        "| target | backend | max events/s | req/s | p50 ms | p99 ms | events/s at target | "
        "p50 ms | p99 ms | stored / expected |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.backend} | {r.closed.events_per_s:.0f} | "
            f"{r.closed.requests_per_s:.0f} | {r.closed.p50_ms:.1f} | {r.closed.p99_ms:.1f} | "
            f"{r.open.events_per_s:.0f} | {r.open.p50_ms:.1f} | {r.open.p99_ms:.1f} | "
            f"{r.stored} / {r.expected} |"
        )
    lines.append("")
    for backend in ("production", "embedded"):
        serve = next(r for r in results if r.name == "serve" and r.backend == backend)
        plain = next(r for r in results if r.name == "plain" and r.backend == backend)
        ratio = serve.closed.events_per_s / max(plain.closed.events_per_s, 1e-9)
        lines.append(f"- {backend}: Serve reaches {ratio:.0%} of the plain app's throughput.")
    prod = next(r for r in results if r.name == "serve" and r.backend == "production")
    ok = prod.open.events_per_s >= 0.97 * args.target_events and prod.open.p99_ms < 50
    lines.append(
        f"- Target ({args.target_events} events/s sustained, p99 < 50 ms, on PostgreSQL + Redis "
        f"through Serve): {'met' if ok else 'NOT met'} ({prod.open.events_per_s:.0f} events/s, "
        f"p99 {prod.open.p99_ms:.1f} ms); stretch 10,000 events/s: "
        f"{'met' if prod.closed.events_per_s >= 10_000 else 'not met'} "
        f"(max {prod.closed.events_per_s:.0f} events/s)."
    )
    lost = [f"{r.name}/{r.backend}" for r in results if r.stored != r.expected]
    lines.append(
        "- Zero loss: "
        + (
            "every accepted event stored exactly once."
            if not lost
            else f"MISMATCH in {', '.join(lost)}."
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
