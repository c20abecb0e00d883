"""From the event store to matrices: read a shop's window of consented interactions (as
pyarrow tables, through stores.training), weigh them by kind and age, split for validation.

Weights: an interaction of kind k at time t counts weights[k] · 2^(-(now - t) / half_life),
summed per (user, item). A purchase last week outweighs a view last season; a kind with weight
0 (or missing) is not read into the matrix at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.stores.base import Stores
from training.config import DataConfig, ValidationSplit
from training.interactions import Interactions

DAY_S = 86_400.0


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def ending(cls, until: datetime, days: float) -> Window:
        return cls(until - timedelta(days=days), until)


@dataclass(frozen=True)
class ShopData:
    shop_id: str
    window: Window
    events: pa.Table  # user, product_id, kind, ts, ranking_id, device
    impressions: pa.Table  # ranking_id, user, ts, device, products
    baskets: pa.Table  # basket, product_id

    def describe(self) -> dict[str, object]:
        users = pc.count_distinct(self.events.column("user")).as_py() if self.events else 0
        return {
            "since": self.window.since.isoformat(),
            "until": self.window.until.isoformat(),
            "events": self.events.num_rows,
            "users": users,
            "impressions": self.impressions.num_rows,
            "basket_items": self.baskets.num_rows,
        }


async def load(stores: Stores, shop_id: str, config: DataConfig, until: datetime) -> ShopData:
    window = Window.ending(until, config.window_days)
    return ShopData(
        shop_id,
        window,
        await stores.training.interactions(shop_id, window.since, window.until),
        await stores.training.impressions(shop_id, window.since, window.until),
        await stores.training.baskets(shop_id, window.since, window.until),
    )


def weigh(events: pa.Table, config: DataConfig, now_ts: float) -> np.ndarray:
    """Each event's weight: its kind's weight, decayed by its age."""
    kinds = events.column("kind").to_numpy(zero_copy_only=False)
    by_kind = np.zeros(len(kinds), dtype=np.float64)
    for kind, weight in config.weights.items():
        by_kind[kinds == kind] = weight
    age_days = (now_ts - events.column("ts").to_numpy()) / DAY_S
    weights: np.ndarray = by_kind * np.exp2(-np.maximum(age_days, 0.0) / config.half_life_days)
    return weights


def interactions(
    events: pa.Table,
    config: DataConfig,
    now_ts: float,
    *,
    item_vocabulary: np.ndarray | None = None,
) -> Interactions:
    """The weighted user x item matrix; users with fewer than min_user_items distinct items
    are left out (one view says little and costs a row)."""
    weights = weigh(events, config, now_ts)
    keep = weights > 0
    mask = pa.array(keep)
    users = events.column("user").filter(mask)
    items = events.column("product_id").filter(mask)
    data = Interactions.from_triples(users, items, weights[keep], item_vocabulary=item_vocabulary)
    if config.min_user_items > 1:
        distinct = np.diff(data.matrix.indptr)
        data = data.rows(np.flatnonzero(distinct >= config.min_user_items))
    return data


def baskets(table: pa.Table, *, item_vocabulary: np.ndarray | None = None) -> Interactions:
    """Orders x products, 1 where an order holds a product."""
    return Interactions.from_triples(
        table.column("basket"),
        table.column("product_id"),
        item_vocabulary=item_vocabulary,
    ).binarised()


@dataclass(frozen=True)
class Split:
    train: pa.Table
    # Per validation user, the items held out (their latest first touches), as a users x items
    # matrix over the training vocabulary.
    users: np.ndarray  # str
    held_out: list[np.ndarray]  # product ids per user


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def temporal_split(events: pa.Table, config: ValidationSplit) -> Split:
    """Per user with at least min_user_items distinct items, hold out the items they came to
    last (by first interaction), `fraction` of them and at least one; every event of a held-out
    (user, item) pair leaves the training table. Time order, not a random split: serving
    predicts what a shopper does next from what they did before."""
    if events.num_rows == 0:
        return Split(events, np.zeros(0, dtype=str), [])
    firsts = (
        events.group_by(["user", "product_id"])
        .aggregate([("ts", "min")])
        .sort_by([("user", "ascending"), ("ts_min", "ascending"), ("product_id", "ascending")])
    )
    users = firsts.column("user").to_numpy(zero_copy_only=False)
    items = firsts.column("product_id").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    held_users: list[str] = []
    held_items: list[np.ndarray] = []
    held_keys: list[str] = []
    for lo, hi in zip(starts, ends, strict=True):
        n = hi - lo
        if n < config.min_user_items:
            continue
        k = max(1, round(n * config.fraction))
        chosen = items[hi - k : hi]
        held_users.append(str(users[lo]))
        held_items.append(chosen)
        held_keys.extend(f"{users[lo]}\x1f{item}" for item in chosen)
    if len(held_users) > config.max_users:
        # A sample, by a hash of the shopper so reruns agree; the others' items all train.
        order = np.argsort([_hash(u) for u in held_users], kind="stable")[: config.max_users]
        chosen = sorted(order.tolist())
        held_users = [held_users[i] for i in chosen]
        held_items = [held_items[i] for i in chosen]
        held_keys = [
            f"{u}\x1f{item}"
            for u, items in zip(held_users, held_items, strict=True)
            for item in items
        ]
    if not held_users:
        return Split(events, np.zeros(0, dtype=str), [])
    keys = pc.binary_join_element_wise(events.column("user"), events.column("product_id"), "\x1f")
    in_validation = pc.is_in(keys, value_set=pa.array(held_keys, type=pa.string()))
    train = events.filter(pc.invert(in_validation))
    return Split(train, np.array(held_users, dtype=str), held_items)
