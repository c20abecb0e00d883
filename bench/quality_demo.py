"""bench/quality_demo: the shop evaluation on the demo's simulated traffic, where the
structure is planted (deployments/simulate.py: shoppers keep to two product types, popularity
within a type is Zipf-like, each complementable product has one complement bought with it).

    python -m bench.quality_demo [--seeds 3] [--visitors 2000] [--no-record]

Per seed: a fresh embedded-store shop (300 products) fed by simulated shoppers through the
ingest service, then a shop's fit exactly as `python -m training fit` runs it (validation split
of each shopper's latest products, every algorithm, co-purchase, the re-ranker; in the driver).
Reported: each algorithm's validation NDCG@10 against popularity, co-purchase against
popularity, the re-ranker against the same candidates in their base order, and how much of
the planted structure the published tables recover.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import report
from config.settings import load_settings
from deployments.ranking.view import build_view
from deployments.simulate import Catalog, Shopper, generate_catalog
from deployments.simulate_shopify import bulk_export_lines
from ingest import catalog_sync, shops
from ingest.service import IngestService
from ingest.stores import open_stores
from training import config as training_config
from training import data as data_mod
from training import pipeline

PRODUCTS = 300
# ALS's catalog_weight as bench/quality chooses it on MovieLens-100K: the demo shop's fit is
# repeated with it, to show whether its catalog groups help here (config/training.toml keeps 0).
CATALOG_WEIGHT = 0.3


async def one_seed(seed: int, visitors: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {
                "NOVA_DATA_DIR": tmp,
                "NOVA_OPERATOR_TOKEN": "bench",
                "NOVA_RATE_LIMIT_EVENTS_PER_S": "1000000",
            }
        )
        stores = await open_stores(settings)
        try:
            now = datetime.now(UTC)
            shop = await shops.create_shop(stores.shops, f"demo-{seed}.myshopify.com", now=now)
            catalog = generate_catalog(PRODUCTS, seed=seed)
            await catalog_sync.import_bulk(stores, shop.shop_id, bulk_export_lines(catalog))
            service = IngestService(settings, stores)
            shopper = Shopper(shop.shop_id, catalog, seed=seed, end=now, span=timedelta(days=3))
            for batch in shopper.batches(visitors):
                await service.ingest(batch, shop.ingest_key)
            config = training_config.load()
            config = config.model_copy(
                update={"ray": config.ray.model_copy(update={"num_workers": 0})}
            )
            data = await data_mod.load(
                stores, shop.shop_id, config.data, now + timedelta(minutes=1)
            )
            products = await stores.catalog.list_products(shop.shop_id)
            collections = await stores.catalog.list_collections(shop.shop_id)
            view = build_view(shop.shop_id, shop.currency, products, collections)
        finally:
            await stores.close()
        with tempfile.TemporaryDirectory() as work:
            result = pipeline.fit(data, view, config, Path(work), now.timestamp())
            out = {
                "window": result.window,
                "metrics": {f.kind: f.metrics for f in result.fitted},
                "skipped": result.skipped,
                "recovered": recovered(result, catalog),
            }
        with tempfile.TemporaryDirectory() as work:
            als = {**config.models["als"], "catalog_weight": CATALOG_WEIGHT}
            weighted = config.model_copy(update={"models": {**config.models, "als": als}})
            again = pipeline.fit(data, view, weighted, Path(work), now.timestamp())
            out["metrics"]["cf_catalog"] = next(f.metrics for f in again.fitted if f.kind == "cf")
        return out


def recovered(result: pipeline.FitResult, catalog: Catalog) -> dict[str, float]:
    """Planted structure in the published tables: complements among a product's first three
    co-purchase neighbours; a product's own type among its first five cf neighbours."""
    from deployments.ranking.cooccurrence import NeighbourTable

    out: dict[str, float] = {}
    type_of = {p.id: p.product_type for p in catalog.products}
    for fitted in result.fitted:
        path = fitted.directory / pipeline.NEIGHBOURS_FILE
        if not path.exists():
            continue
        table = NeighbourTable.from_bytes(path.read_bytes())
        if fitted.kind == "co_purchase":
            found = [
                complement in [n for n, _, _ in table.of(pid)[:3]]
                for pid, complement in catalog.complement_of.items()
                if table.of(pid)
            ]
            out["complement_in_top3"] = statistics.fmean(found) if found else float("nan")
            out["products_with_co_purchase"] = float(len(found))
        if fitted.kind == "cf":
            same = [
                type_of.get(n) == type_of.get(pid)
                for pid in table.product_ids.tolist()
                for n, _, _ in table.of(pid)[:5]
            ]
            out["cf_same_type_top5"] = statistics.fmean(same) if same else float("nan")
    out["same_type_by_chance"] = 1 / len({p.product_type for p in catalog.products})
    return out


def mean(values: list[float]) -> str:
    clean = [v for v in values if v == v]
    if not clean:
        return "n/a"
    sd = statistics.stdev(clean) if len(clean) > 1 else 0.0
    return f"{statistics.fmean(clean):.3f} ± {sd:.3f}"


def render(runs: list[dict[str, Any]], visitors: int) -> str:
    def col(kind: str, key: str) -> str:
        return mean([r["metrics"].get(kind, {}).get(key, float("nan")) for r in runs])

    cf_keys = {k for r in runs for k in r["metrics"].get("cf", {})}
    algorithms = sorted(
        k.removeprefix("candidate_").removesuffix("_ndcg@10")
        for k in cf_keys
        if k.startswith("candidate_")
    )
    lines = [
        "## Quality: the demo shop's simulated traffic (planted structure)",
        "",
        report.stamp(),
        f"{len(runs)} seeds; per seed a shop of {PRODUCTS} products and {visitors} simulated "
        f"visitors over 3 days (deployments/simulate.py; 80% consent), "
        f"{mean([float(r['window']['events']) for r in runs])} stored interactions of "
        f"{mean([float(r['window']['users']) for r in runs])} shoppers. A shop's fit "
        "(training/pipeline.py); validation: each shopper's latest products held out "
        "(NDCG@10, mean ± sd over seeds).",
        "",
        "| what | NDCG@10 | Recall@10 | baseline | baseline NDCG@10 |",
        "|---|---|---|---|---|",
    ]
    for name in algorithms:
        lines.append(
            f"| cf: {name} (its exported table) | {col('cf', f'candidate_{name}_ndcg@10')} | "
            f"| popularity | {col('cf', 'popularity_ndcg@10')} |"
        )
    lines.append(
        f"| cf: als with catalog_weight {CATALOG_WEIGHT} (collections, tags, vendors, types, "
        f"title words) | {col('cf_catalog', 'candidate_als_ndcg@10')} | | popularity | "
        f"{col('cf_catalog', 'popularity_ndcg@10')} |"
    )
    lines += [
        f"| cf published (best of the above, without catalog_weight) | {col('cf', 'ndcg@10')} "
        f"| {col('cf', 'recall@10')} | popularity | {col('cf', 'popularity_ndcg@10')} |",
        f"| co-purchase (hide one product of an order) | {col('co_purchase', 'ndcg@10')} | "
        f"{col('co_purchase', 'recall@10')} | popularity | "
        f"{col('co_purchase', 'popularity_ndcg@10')} |",
        f"| re-ranker (same candidates) | {col('reranker', 'ndcg@10')} | "
        f"{col('reranker', 'recall@10')} | candidates in their base order | "
        f"{col('reranker', 'base_ndcg@10')} |",
        "",
        "Planted structure recovered by the published tables: "
        f"a product's complement among its first three co-purchase neighbours "
        f"{mean([r['recovered'].get('complement_in_top3', float('nan')) for r in runs])} "
        f"(over the products with co-purchase neighbours, "
        f"{mean([r['recovered'].get('products_with_co_purchase', float('nan')) for r in runs])}); "
        f"a product's own type among its first five cf neighbours "
        f"{mean([r['recovered'].get('cf_same_type_top5', float('nan')) for r in runs])} "
        f"(by chance {runs[0]['recovered']['same_type_by_chance']:.3f}).",
    ]
    skipped = sorted({f"{k}: {v}" for r in runs for k, v in r["skipped"].items()})
    if skipped:
        lines.append("Not fitted in some seeds: " + "; ".join(skipped) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality_demo")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    runs = [asyncio.run(one_seed(seed, args.visitors)) for seed in range(args.seeds)]
    body = render(runs, args.visitors)
    print(body)
    if not args.no_record:
        report.record("quality-demo", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
