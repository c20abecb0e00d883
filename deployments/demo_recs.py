"""The demo's last steps: compute statistics from the traffic just sent, and (after training,
deployments/demo_train.py) ask the running API for recommendations about a few products and
shoppers and print what it answers."""

from __future__ import annotations

from typing import Any

import httpx

from config.settings import Settings
from deployments.simulate import Catalog


def refresh_stats(api_url: str, settings: Settings, shop_id: str) -> str:
    """Co-occurrence statistics from the traffic just sent (the refresher would in time)."""
    token = settings.operator_token.get_secret_value() if settings.operator_token else ""
    with httpx.Client(base_url=api_url, timeout=60) as client:
        refreshed = client.post(
            f"/admin/shops/{shop_id}/stats/refresh", headers={"Authorization": f"Bearer {token}"}
        )
        refreshed.raise_for_status()
    tables = ", ".join(f"{t['kind']} {t['pairs']} pairs" for t in refreshed.json()["tables"])
    return f"\nStatistics from the demo traffic: {tables}"


def show(
    api_url: str, settings: Settings, shop_id: str, catalog: Catalog, batches: list[dict[str, Any]]
) -> str:
    lines = ["", "Recommendations (GET /v1/recommendations; each product's first reason):"]
    with httpx.Client(base_url=api_url, timeout=60) as client:
        with_complement = [
            p
            for p in catalog.products
            if p.id in catalog.complement_of and p.status == "active" and p.available
        ][:2]
        for product in with_complement:
            for intent in ("related", "complementary"):
                lines += _ask(
                    client,
                    f"{intent} to {product.title}",
                    shop=shop_id,
                    intent=intent,
                    product_id=product.id,
                    limit=4,
                )
        shopper = next((b for b in batches if b.get("consent", {}).get("analytics")), None)
        if shopper is not None:
            client_id = shopper["events"][0]["clientId"]
            for intent in ("recently_viewed", "personalized"):
                lines += _ask(
                    client,
                    f"{intent} for shopper {client_id[:8]}",
                    shop=shop_id,
                    intent=intent,
                    client_id=client_id,
                    limit=4,
                )
        for intent in ("trending", "new_arrivals"):
            lines += _ask(client, intent, shop=shop_id, intent=intent, limit=4)
    example = f"{api_url}/v1/recommendations?shop={shop_id}&intent=related&product_id="
    lines.append(f"  try: curl '{example}{with_complement[0].id if with_complement else ''}'")
    return "\n".join(lines)


def _ask(client: httpx.Client, label: str, **params: Any) -> list[str]:
    response = client.get("/v1/recommendations", params=params)
    if response.status_code != 200:
        return [f"  {label}: HTTP {response.status_code} {response.text[:120]}"]
    products = response.json()["products"]
    picks = "; ".join(
        f"{p['title']} ({p['reasons'][0]['name'] if p['reasons'] else 'rule'})" for p in products
    )
    return [f"  {label}: {picks or '(nothing)'}"]
