"""bench/serve: GET /v1/recommendations through Ray Serve, against a no-op Serve endpoint behind
the same ingress and the same ranking code in a plain uvicorn process, in one run. A second no-op
answering a real answer's bytes shows how much of the gap is moving ~15 KB answers at all, and
the CPU each process spent per request (bench/cpu.py) shows where the rest goes. The no-op
endpoint and Serve are measured in turn, in rounds, and compared round by round: this VM's
speed changes by 2x within minutes, so only measurements taken side by side compare.

A shop of 10,000 products with neighbour tables and popularity, and 100,000 visitors' session
state in Redis; a request mix of related, complementary, personalized, trending and
recently-viewed at concurrency 8 and 32. Then the same requests once the shop has a published
XGBoost re-ranker (related and personalized answers re-ordered per request, as after a fit):
its trees are fitted on synthetic labels with early stopping off, so it has the configured
size (config/training.toml [reranker]) and costs what a real one costs; its quality is not the
point here. Replica memory (RSS) is read after the 10k-product shop is loaded and again after
a second shop of 100,000 products is.

    python -m bench.serve           (make bench)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import cpu, report
from bench.loadgen import spawn
from bench.targets import plain_target, production_settings, serve_target
from config.settings import Settings
from deployments.ranking import features
from deployments.ranking.cooccurrence import compute
from deployments.recommendations import AUTOSCALING, NUM_CPUS
from deployments.simulate import generate_catalog
from ingest import shops
from ingest.popularity import hits
from ingest.records import StoredEvent
from ingest.stores import open_stores
from ingest.stores.base import Stores
from training import config as training_config
from training.registry import Floor, Registry
from training.rerank import Dataset, Reranker

NOOP = "no-op Serve endpoint"
NOOP_SIZED = "no-op Serve endpoint, answer-sized body"
RECOMMENDATIONS_REPLICA = "ServeReplica:recommendations:"
MIX = [
    ("related", 0.4),
    ("complementary", 0.2),
    ("personalized", 0.2),
    ("trending", 0.1),
    ("recently_viewed", 0.1),
]


@dataclass
class Seeded:
    shop: str
    products: list[str]
    visitors: list[str]


async def seed(settings: Settings, n_products: int, n_visitors: int, seed_: int = 3) -> Seeded:
    rng = random.Random(seed_)
    stores = await open_stores(settings)
    try:
        shop = await shops.create_shop(
            stores.shops, f"bench-{n_products}.myshopify.com", now=datetime.now(UTC)
        )
        catalog = generate_catalog(n_products, seed=seed_)
        for start in range(0, len(catalog.products), 2000):
            await stores.catalog.upsert_products(
                shop.shop_id, catalog.products[start : start + 2000]
            )
        sellable = {
            t: [p.id for p in ps if p.status == "active" and p.available]
            for t, ps in catalog.by_type.items()
        }
        types = list(sellable)

        def zipf(pool: list[str]) -> str:
            return pool[min(int(rng.paretovariate(1.2)) - 1, len(pool) - 1)]

        views = [
            (f"v{b}", zipf(sellable[rng.choice(types)]))
            for b in range(60_000)
            for _ in range(rng.randint(2, 6))
        ]
        orders = []
        for o in range(20_000):
            first = zipf(sellable[rng.choice(types)])
            orders.append((f"o{o}", first))
            if first in catalog.complement_of:
                orders.append((f"o{o}", catalog.complement_of[first]))
        now = datetime.now(UTC)
        for kind, pairs, measure in (
            ("co_view", views, "cosine"),
            ("co_cart", views[::3], "cosine"),
            ("co_purchase", orders, "npmi"),
        ):
            table = compute(kind, pairs, measure=measure)
            await stores.stats.save_stats(shop.shop_id, kind, table.to_bytes(), now)
        visitors = [f"visitor-{n}" for n in range(n_visitors)]
        await _visitor_state(stores, shop.shop_id, visitors, sellable, rng, now)
        return Seeded(
            shop.shop_id, [p.id for p in catalog.products if p.status == "active"], visitors
        )
    finally:
        await stores.close()


async def _visitor_state(
    stores: Stores,
    shop_id: str,
    visitors: list[str],
    sellable: dict[str, list[str]],
    rng: random.Random,
    now: datetime,
) -> None:
    types = list(sellable)

    async def one(client: str) -> list[StoredEvent]:
        kind = rng.choice(types)
        events = [
            StoredEvent(
                shop_id=shop_id,
                event_id=f"{client}-{n}",
                name="product_viewed",
                occurred_at=now - timedelta(minutes=10 * n),
                client_id=client,
                privacy_state="guest",
                product_id=rng.choice(sellable[kind][:50]),
            )
            for n in range(rng.randint(1, 8))
        ]
        await stores.visitors.record(shop_id, client, events, state="guest", ttl_s=86400)
        return events

    all_events: list[StoredEvent] = []
    for start in range(0, len(visitors), 200):
        done = await asyncio.gather(*(one(c) for c in visitors[start : start + 200]))
        all_events += [e for events in done for e in events]
    await stores.popularity.add(shop_id, hits(all_events))


def paths(seeded: Seeded, n: int, rng: random.Random) -> list[str]:
    """Requests as a storefront widget sends them: every shopper with their client id, product
    pages visited with Zipf-like popularity (a few products get most views), the cart sent
    along (empty here) so the widget's answer needs no session lookup."""
    out = []
    intents, weights = zip(*MIX, strict=True)
    products = list(seeded.products)
    rng.shuffle(products)
    for _ in range(n):
        intent = rng.choices(intents, weights)[0]
        client = rng.choice(seeded.visitors)
        query = f"shop={seeded.shop}&intent={intent}&limit=10&client_id={client}"
        if intent in ("related", "complementary"):
            rank = min(int(rng.paretovariate(1.0)) - 1, len(products) - 1)
            query += f"&product_id={products[rank]}&cart="
        out.append(f"/v1/recommendations?{query}")
    return out


@dataclass
class Level:
    concurrency: int
    rps: float
    p50: float
    p99: float
    errors: int
    cache_hits: float  # share of answers served from the answer cache
    cpu: dict[str, float]  # CPU seconds per process group during the level (bench/cpu.py)
    requests: int  # answered during the whole level, warm-up second included
    duration_s: float
    replicas: int | None  # the target's replicas at the end of the level (None: not Serve)
    round: int = 1  # of the interleaved rounds (measure_interleaved)


def measure(
    port: int,
    request_paths: list[str],
    levels: list[int],
    duration: float,
    warmup: float,
    settle: float = 0.0,
    replicas_of: str | None = None,
    round_: int = 1,
) -> list[Level]:
    """Closed-loop levels after a warm-up at 16 connections (shop state loaded, caches filled).
    With `settle`, each level first runs that long at its own concurrency, unmeasured, so an
    autoscaling deployment is measured with the replicas it settles at, not in a transient;
    `replicas_of` names the target's replica processes (bench/cpu.py running)."""
    spec = {"paths": request_paths, "headers": {}}
    if warmup:
        spawn(port, spec, "closed", 16, warmup)
    out = []
    for c in levels:
        if settle:
            spawn(port, spec, "closed", c, settle)
        records, used = cpu.measured(functools.partial(spawn, port, spec, "closed", c, duration))
        measured = [r for r in records if r[0] >= 2.0]
        lat = sorted(r[1] * 1000 for r in measured) or [0.0]
        out.append(
            Level(
                c,
                len(measured) / (duration - 2.0),
                lat[len(lat) // 2],
                lat[int(len(lat) * 0.99)],
                sum(1 for r in records if r[2] != 200),
                sum(r[6] for r in measured) / max(len(measured), 1),
                used,
                len(records),
                duration,
                cpu.running(replicas_of) if replicas_of else None,
                round_,
            )
        )
    return out


Target = tuple[list[str], str]  # request paths, the name its replica processes carry


def measure_interleaved(
    port: int,
    targets: dict[str, Target],
    levels: list[int],
    *,
    rounds: int,
    duration: float,
    warmup: float,
    settle: float,
    resettle: float,
) -> dict[str, list[Level]]:
    """The targets measured in turn, level by level, `rounds` times: the VM's speed changes by
    2x or more within minutes, so a comparison is only fair between measurements taken side by
    side. Each target settles `settle` seconds at a level's concurrency before its first round
    there (the autoscaler's reaction time) and `resettle` before later ones (its caches refill)."""
    for paths_, _ in targets.values():
        spawn(port, {"paths": paths_, "headers": {}}, "closed", 16, warmup)
    out: dict[str, list[Level]] = {name: [] for name in targets}
    for c in levels:
        for n in range(1, rounds + 1):
            for name, (paths_, replicas_of) in targets.items():
                out[name] += measure(
                    port,
                    paths_,
                    [c],
                    duration,
                    warmup=0.0,
                    settle=settle if n == 1 else resettle,
                    replicas_of=replicas_of,
                    round_=n,
                )
    return out


def ratios(serve: list[Level], noop: list[Level], concurrency: int) -> list[float]:
    """Serve's throughput over the no-op's, per round, at one concurrency."""
    base = {lv.round: lv.rps for lv in noop if lv.concurrency == concurrency}
    return [
        lv.rps / base[lv.round]
        for lv in serve
        if lv.concurrency == concurrency and base.get(lv.round)
    ]


def rss_mb(pattern: str) -> float:
    pids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    total = 0.0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = max(total, int(line.split()[1]) / 1024)
    return total


def _noop() -> Any:
    """A Serve deployment that answers every request with the bytes it was bound with."""
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response

    # The Recommendations deployment's resources, autoscaling and logging (deployments/
    # recommendations.py): with Serve's default INFO logging the no-op would pay for access-log
    # records ours skip, and with one fixed replica it could not use a second core.
    @serve.deployment(
        max_ongoing_requests=64,
        autoscaling_config=AUTOSCALING,
        ray_actor_options={"num_cpus": NUM_CPUS},
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
    )
    class Noop:
        def __init__(self, body: bytes) -> None:
            self._body = body

        async def __call__(self, request: Request) -> Response:
            return Response(self._body, media_type="application/json")

    return Noop


@contextmanager
def serve_with_recommendations(settings: Settings) -> Iterator[int]:
    from ray import serve

    with serve_target(settings) as port:  # deploys every application, recommendations too
        serve.run(
            _noop().bind(b'{"intent":"related","products":[]}'), name="noop", route_prefix="/noop"
        )
        yield port


def deploy_sized_noop(port: int, seeded: Seeded) -> int:
    """A second no-op endpoint, at /noop-sized, answering with a real answer's bytes (related,
    limit 10, for a popular product): what moving an answer costs with no work behind it.
    Returns the body's size."""
    from ray import serve

    r = httpx.get(
        f"http://127.0.0.1:{port}/v1/recommendations",
        params={"shop": seeded.shop, "intent": "related", "product_id": seeded.products[1]},
        timeout=120,
    )
    r.raise_for_status()
    serve.run(_noop().bind(r.content), name="noop-sized", route_prefix="/noop-sized")
    return len(r.content)


async def publish_reranker(settings: Settings, shop_id: str) -> int:
    """Publish a re-ranker over the bench shop's statistics tables, as a fit would; returns its
    number of trees."""
    config = training_config.load().reranker
    config = config.model_copy(update={"early_stopping_rounds": config.rounds + 1})
    sources = ("co_purchase", "co_view", "co_cart")
    rng = np.random.default_rng(0)

    def dataset(queries: int) -> Dataset:
        qid = np.repeat(np.arange(queries), config.candidates)
        x = rng.random((len(qid), len(features.names(sources)))).astype(np.float32)
        y = (x[:, 0] + x[:, 2] + 0.5 * rng.random(len(qid)) > 1.6).astype(np.float32)
        return Dataset(x, y, qid)

    model = Reranker(config, sources)
    model.fit(dataset(2000), dataset(200))
    assert model.booster is not None
    stores = await open_stores(settings, migrate=False)
    try:
        with tempfile.TemporaryDirectory() as directory:
            model.save(Path(directory))
            await Registry(stores, settings.model_store).publish(
                shop_id,
                "reranker",
                Path(directory),
                config=config.model_dump(mode="json"),
                window={"synthetic": True},
                metrics={"ndcg@10": 1.0},
                floor=Floor("ndcg@10", 0.0),
            )
    finally:
        await stores.close()
    return model.booster.num_boosted_rounds()


def wait_for_reranker(port: int, seeded: Seeded, timeout: float = 60.0) -> None:
    """Until the replicas answer with the re-ranker (they poll the registry every 2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(
            f"http://127.0.0.1:{port}/v1/recommendations",
            params={"shop": seeded.shop, "intent": "related", "product_id": seeded.products[1]},
            timeout=10,
        )
        reasons = [why for p in r.json().get("products", []) for why in p.get("reasons", [])]
        if any(why.get("model") == "reranker" for why in reasons):
            return
        time.sleep(0.5)
    # What answered: a target that has lost its neighbour tables answers from content
    # similarity, which the re-ranker does not re-order.
    raise RuntimeError(
        f"the replicas did not pick up the re-ranker; last answer: {r.status_code}, "
        f"server {r.headers.get('server')}, cache {r.headers.get('x-nova-cache')}, "
        f"first reasons {reasons[:2]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000, help="products of the memory shop")
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument(
        "--settle",
        type=float,
        default=45.0,
        help="seconds at each level's concurrency before a Serve level is measured",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds of the no-op endpoint and Serve at each level",
    )
    parser.add_argument(
        "--resettle", type=float, default=8.0, help="seconds before each later round"
    )
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    levels = [8, 32]
    rng = random.Random(7)
    results: dict[str, list[Level]] = {}
    memory: dict[str, float] = {}
    with production_settings(args.port) as settings:
        started = time.perf_counter()
        seeded = asyncio.run(seed(settings, args.products, args.visitors))
        print(
            f"seeded {args.products} products, {args.visitors} visitors in "
            f"{time.perf_counter() - started:.0f}s",
            flush=True,
        )
        # Enough distinct requests that a level never replays the pool: repeats come from the
        # product-page popularity, not from cycling.
        request_paths = paths(seeded, 60_000, rng)
        with serve_with_recommendations(settings) as port:
            noop_paths = [p.replace("/v1/recommendations", "/noop") for p in request_paths]
            serve_levels = functools.partial(
                measure, levels=levels, duration=args.duration, settle=args.settle
            )
            results |= measure_interleaved(
                port,
                {
                    NOOP: (noop_paths, "ServeReplica:noop:"),
                    "Serve": (request_paths, RECOMMENDATIONS_REPLICA),
                },
                levels,
                rounds=args.rounds,
                duration=args.duration,
                warmup=args.warmup,
                settle=args.settle,
                resettle=args.resettle,
            )
            sized = deploy_sized_noop(port, seeded)
            results[NOOP_SIZED] = serve_levels(
                port,
                [p.replace("/noop", "/noop-sized") for p in noop_paths],
                warmup=3.0,
                replicas_of="ServeReplica:noop-sized:",
            )
            trees = asyncio.run(publish_reranker(settings, seeded.shop))
            wait_for_reranker(port, seeded)
            results["Serve + re-ranker"] = serve_levels(
                port, request_paths, warmup=args.warmup, replicas_of=RECOMMENDATIONS_REPLICA
            )
            memory[f"{args.products} products"] = rss_mb("ServeReplica:recommendations")
            big = asyncio.run(seed(settings, args.big, 1, seed_=4))
            started = time.perf_counter()
            r = httpx.get(
                f"http://127.0.0.1:{port}/v1/recommendations",
                params={"shop": big.shop, "intent": "trending"},
                timeout=600,
            )
            r.raise_for_status()
            memory["load seconds"] = time.perf_counter() - started
            memory[f"+ {args.big} products"] = rss_mb("ServeReplica:recommendations")
        with plain_target(settings) as port:
            # The re-ranker is published by now: plain answers with it, like Serve's last level.
            wait_for_reranker(port, seeded)
            results["plain uvicorn + re-ranker"] = measure(
                port, request_paths, levels, args.duration, args.warmup
            )
    text = render(results, memory, args, trees, sized)
    print(text)
    if not args.no_record:
        report.record("serve", text)


def deployment_setup() -> str:
    """The Recommendations deployment's scaling as the code configures it, for the report."""
    a = AUTOSCALING
    return (
        f"the Recommendations deployment autoscaling {a['min_replicas']}-{a['max_replicas']} "
        f"replicas at {NUM_CPUS} CPU (target {a['target_ongoing_requests']} ongoing requests "
        "each)"
    )


def render(
    results: dict[str, list[Level]], memory: dict[str, float], args: Any, trees: int, sized: int
) -> str:
    lines = [
        "## Recommendations: GET /v1/recommendations through Ray Serve",
        "",
        report.stamp(),
        f"One shop of {args.products:,} products (neighbour tables, popularity), "
        f"{args.visitors:,} visitors' session state in Redis; requests mixed "
        + ", ".join(f"{int(w * 100)}% {i}" for i, w in MIX)
        + f", limit 10. Closed loop, {args.duration:.0f} s per level after "
        f"{args.warmup:.0f} s of warm-up (first 2 s of each level excluded); each Serve level "
        f"runs {args.settle:.0f} s at its own concurrency before it is measured, as Serve's "
        "autoscaler adds a replica after ~30 s of load above its target. The no-op endpoint "
        f"and Serve are measured in turn, {args.rounds} rounds per level ({args.resettle:.0f} s "
        "of settling before each later round), and compared round by round: the VM's speed "
        f"changes by 2x within minutes. Serve: HAProxy ingress, throughput-optimized, "
        f"{deployment_setup()}; the no-op endpoints run behind the same "
        "ingress with the same resources, autoscaling and logging (WARNING, no access log), one "
        "answering 35 bytes, one a real related answer's bytes; 'replicas' are the target's at "
        "the end of the level. Plain is the same app in "
        "one uvicorn process, measured last, so with the re-ranker. Load generator on the same "
        "2 cores.",
        "",
        "| target | connections | round | replicas | req/s | p50 ms | p99 ms | errors "
        "| answer-cache hits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, levels in results.items():
        lines += [
            f"| {name} | {lv.concurrency} | {lv.round} | "
            f"{lv.replicas if lv.replicas is not None else '-'} | {lv.rps:.0f} | {lv.p50:.1f} | "
            f"{lv.p99:.1f} | {lv.errors} | {lv.cache_hits:.0%} |"
            for lv in levels
        ]
    serve, noop = results["Serve"], results[NOOP]
    lines.append("")
    medians: dict[int, float] = {}
    for c in (lv.concurrency for lv in noop if lv.round == 1):
        per_round = ratios(serve, noop, c)
        medians[c] = statistics.median(per_round)
        lines.append(
            f"- concurrency {c}: Serve reaches {medians[c]:.0%} of the no-op endpoint's "
            "throughput (median of the rounds: " + ", ".join(f"{r:.0%}" for r in per_round) + ")."
        )

    def median_rps(name: str, c: int) -> float:
        return statistics.median(lv.rps for lv in results[name] if lv.concurrency == c)

    for n in results[NOOP_SIZED]:
        lines.append(
            f"- concurrency {n.concurrency}: Serve's median is "
            f"{median_rps('Serve', n.concurrency) / n.rps:.0%} of the no-op endpoint answering "
            f"a real answer's {sized:,} bytes, measured once after the rounds (for insight: the "
            "target is against the plain no-op)."
        )
    c8 = median_rps("Serve", 8)
    reranked = results["Serve + re-ranker"][0]
    lines.append(
        f"- With a re-ranker of {trees} trees re-ordering related and personalized answers: "
        f"{reranked.rps:.0f} req/s at concurrency 8 ({reranked.rps / c8:.0%} of Serve's "
        f"median without it; {reranked.rps / results['plain uvicorn + re-ranker'][0].rps:.0%} "
        f"of plain uvicorn with it), p99 {reranked.p99:.1f} ms."
    )
    worst_p99 = max(lv.p99 for lv in serve if lv.concurrency == 8)
    lines.append(
        f"- Target p99 < 25 ms at concurrency 8: {'met' if worst_p99 < 25 else 'NOT met'} "
        f"(worst round {worst_p99:.1f} ms). Target >= 60% of the no-op endpoint's throughput "
        f"(median of the rounds, at each level): "
        + ("met" if all(m >= 0.6 for m in medians.values()) else "NOT met")
        + "."
    )
    lines.append(
        "- Replica memory (RSS): "
        + ", ".join(
            f"{k}: {v:.0f} MB" if "seconds" not in k else f"{k} of the big shop: {v:.1f} s"
            for k, v in memory.items()
        )
        + "."
    )
    return "\n".join([*lines, "", *cpu_table(results)])


def cpu_table(results: dict[str, list[Level]], concurrency: int = 8) -> list[str]:
    """CPU microseconds per request by process group at one concurrency: where the cores went
    (each level's whole duration; processes of other jobs are not counted), then what the
    machine's counters add: CPU outside the groups, idle and stolen time. With those, a
    column adds up to the cores' whole capacity per request."""
    levels = {
        name: _pooled([lv for lv in levels if lv.concurrency == concurrency])
        for name, levels in results.items()
        if any(lv.concurrency == concurrency for lv in levels)
    }
    groups = sorted(
        {
            g
            for lv in levels.values()
            for g, s in lv.cpu.items()
            if s / lv.duration_s > 0.01 and g not in cpu.MACHINE
        },
        key=lambda g: -max(lv.cpu.get(g, 0.0) / max(lv.requests, 1) for lv in levels.values()),
    )
    lines = [
        f"CPU per request at concurrency {concurrency} (µs, from /proc; bench/cpu.py; a "
        "target's rounds pooled). 'total' adds up the processes above it; the rows below it "
        "come from the machine's counters (/proc/stat), so a column's total and those rows "
        f"add up to the {os.cpu_count()} cores' capacity per request:",
        "",
        "| process | " + " | ".join(levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for group in [*groups, "total", *cpu.MACHINE]:
        cells = [
            sum(s for g, s in lv.cpu.items() if g not in cpu.MACHINE)
            if group == "total"
            else lv.cpu.get(group, 0.0)
            for lv in levels.values()
        ]
        per_request = [
            f"{1e6 * c / max(lv.requests, 1):.0f}"
            for c, lv in zip(cells, levels.values(), strict=True)
        ]
        lines.append(f"| {group} | " + " | ".join(per_request) + " |")
    return lines


def _pooled(rounds: list[Level]) -> Level:
    """One level's rounds as one: their CPU, requests and time summed."""
    cpu_: dict[str, float] = {}
    for lv in rounds:
        for group, seconds in lv.cpu.items():
            cpu_[group] = cpu_.get(group, 0.0) + seconds
    return dataclasses.replace(
        rounds[0],
        cpu=cpu_,
        requests=sum(lv.requests for lv in rounds),
        duration_s=sum(lv.duration_s for lv in rounds),
    )


if __name__ == "__main__":
    main()
