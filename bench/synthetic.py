"""Synthetic shops for the training benchmarks: N interactions of V visitors over P products,
with the shape of a real shop's traffic (bench/train.py).

- Products fall in 200 categories; a category's popularity and a product's popularity within
  it are Zipf-like.
- A visitor's activity is heavy-tailed (most visit once, a few many times) and keeps to two
  favourite categories (70% / 30%).
- Kinds: 85% views, 10% add-to-carts, 4% purchases, 1% recommendation clicks; times spread
  over 90 days. A visitor's purchases form one order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from training.data import DAY_S

CATEGORIES = 200
KINDS = np.array(["view", "cart", "purchase", "click"])
KIND_SHARES = np.array([0.85, 0.10, 0.04, 0.01])


@dataclass(frozen=True)
class Shop:
    events: pa.Table  # user, product_id, kind, ts, ranking_id, device
    baskets: pa.Table  # basket, product_id
    now: float


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return w / w.sum()


def generate(
    interactions: int, visitors: int, products: int, seed: int = 0, now: float = 1.8e9
) -> Shop:
    rng = np.random.default_rng(seed)
    per_category = products // CATEGORIES
    # Activity: lognormal counts rescaled to the wanted total, at least one each for the
    # visitors that show up at all.
    raw = rng.lognormal(0.0, 1.3, visitors)
    counts = np.maximum(1, np.round(raw / raw.sum() * interactions)).astype(np.int64)
    excess = int(counts.sum() - interactions)
    if excess > 0:  # trim the heaviest visitors to land on the exact total
        order = np.argsort(-counts)
        trim = np.zeros(visitors, dtype=np.int64)
        trim[order[: min(excess, visitors)]] = 1
        while (counts - trim).sum() > interactions:
            trim[order[: min(int((counts - trim).sum() - interactions), visitors)]] += 1
        counts = np.maximum(counts - trim, 0)
    visitor = np.repeat(np.arange(visitors), counts)[:interactions]
    n = len(visitor)
    category_p = zipf_weights(CATEGORIES, 0.8)
    tastes = rng.choice(CATEGORIES, size=(visitors, 2), p=category_p)
    first = rng.random(n) < 0.7
    category = np.where(first, tastes[visitor, 0], tastes[visitor, 1])
    rank = rng.choice(per_category, size=n, p=zipf_weights(per_category, 1.0))
    product = category * per_category + rank
    kind = KINDS[rng.choice(len(KINDS), size=n, p=KIND_SHARES)]
    ts = now - rng.random(n) * 90 * DAY_S
    users = np.char.add("v", visitor.astype(str))
    product_ids = (7_000_000 + product).astype(str)
    events = pa.table(
        {
            "user": pa.array(users),
            "product_id": pa.array(product_ids),
            "kind": pa.array(kind),
            "ts": pa.array(ts),
            "ranking_id": pa.nulls(n, pa.string()),
            "device": pa.array(rng.choice(np.array(["mobile", "desktop"]), size=n)),
        }
    )
    bought = kind == "purchase"
    baskets = pa.table(
        {
            "basket": pa.array(np.char.add("o", visitor[bought].astype(str))),
            "product_id": pa.array(product_ids[bought]),
        }
    )
    return Shop(events, baskets, now)
