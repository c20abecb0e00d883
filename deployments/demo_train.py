"""The demo's training step: fit the demo shop's models on the traffic just sent (the same job
`python -m training fit` runs, on the running Ray cluster), publish what clears its floor, and
wait until the ranking replicas have loaded it."""

from __future__ import annotations

import asyncio
import time

import httpx

from config.settings import Settings
from training import config as training_config
from training import jobs

LOAD_WAIT_S = 30.0


def train(api_url: str, settings: Settings, shop_id: str, workers: int) -> str:
    config = training_config.load()
    config = config.model_copy(
        update={"ray": config.ray.model_copy(update={"num_workers": workers})}
    )
    started = time.perf_counter()
    report = asyncio.run(jobs.fit_shop(settings, config, shop_id))
    lines = [
        "",
        f"Training (python -m training fit --shop {shop_id}, Ray Train workers: {workers}) "
        f"took {time.perf_counter() - started:.1f}s on {report.window.get('events', 0)} "
        f"interactions of {report.window.get('users', 0)} shoppers",
    ]
    for kind, metrics in report.metrics.items():
        version = report.published.get(kind)
        verdict = f"published v{version}" if version else f"REJECTED: {report.rejected.get(kind)}"
        baseline = metrics.get("base_ndcg@10", metrics.get("popularity_ndcg@10"))
        against = "before re-ranking" if "base_ndcg@10" in metrics else "popularity"
        lines.append(
            f"  {kind:<12} NDCG@10 {metrics['ndcg@10']:.3f} vs {against} {baseline:.3f} "
            f"on {int(metrics['queries'])} validation queries: {verdict}"
        )
        if kind == "cf":
            tried = {
                k.removeprefix("candidate_").removesuffix("_ndcg@10"): v
                for k, v in metrics.items()
                if k.startswith("candidate_")
            }
            picks = ", ".join(f"{name} {value:.3f}" for name, value in sorted(tried.items()))
            lines.append(f"  {'':<12} algorithms tried: {picks}")
    for kind, why in report.skipped.items():
        lines.append(f"  {kind:<12} not fitted: {why}")
    if report.published:
        lines.append(_wait_until_loaded(api_url, settings, shop_id, report.published))
    return "\n".join(lines)


def _wait_until_loaded(
    api_url: str, settings: Settings, shop_id: str, published: dict[str, int]
) -> str:
    """Replicas poll the registry's version counter; once a related answer cites the trained
    "cf" table, the new models serve."""
    token = settings.operator_token.get_secret_value() if settings.operator_token else ""
    with httpx.Client(base_url=api_url, timeout=30) as client:
        models = client.get(
            f"/admin/shops/{shop_id}/models", headers={"Authorization": f"Bearer {token}"}
        ).json()
        serving = ", ".join(f"{k} v{v}" for k, v in sorted(models.get("serving", {}).items()))
        loaded = "cf" not in published
        deadline = time.monotonic() + LOAD_WAIT_S
        while not loaded and time.monotonic() < deadline:
            time.sleep(1.0)
            loaded = _cites_cf(client, shop_id)
    state = "loaded by the ranking replicas" if loaded else "not cited by answers yet"
    return f"  registry serving: {serving} ({state})"


def _cites_cf(client: httpx.Client, shop_id: str) -> bool:
    found = client.get(
        "/v1/recommendations", params={"shop": shop_id, "intent": "trending", "limit": 1}
    )
    if found.status_code != 200 or not found.json()["products"]:
        return False
    product_id = found.json()["products"][0]["id"]
    related = client.get(
        "/v1/recommendations",
        params={"shop": shop_id, "intent": "related", "product_id": product_id, "limit": 4},
    )
    return related.status_code == 200 and any(
        reason.get("name") == "cf"
        for p in related.json()["products"]
        for reason in p.get("reasons", [])
    )
