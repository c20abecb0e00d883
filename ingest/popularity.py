"""Time-decayed popularity by forward decay.

A hit of weight w at time t adds w * 2^((t - base) / half_life) to a product's score, where base
is the start of the current epoch. Scores of different times then compare directly (a ZSET keeps
them ordered) and the decayed value at `now` is score * 2^((base - now) / half_life). Epochs last
EPOCH_HALF_LIVES half-lives so the factors stay far inside float range; a reader adds the previous
epoch's scores, scaled by 2^-EPOCH_HALF_LIVES, so no history is lost at an epoch boundary.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.records import StoredEvent
from ingest.stores.base import Hit

# Named windows are half-lives: "day" popularity halves every day without new hits.
WINDOWS: dict[str, float] = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0}
SIGNALS = ("view", "cart", "purchase", "click")
EPOCH_HALF_LIVES = 256


def epoch(at_s: float, half_life_s: float) -> int:
    return int(at_s // (half_life_s * EPOCH_HALF_LIVES))


def epoch_base(epoch_index: int, half_life_s: float) -> float:
    return epoch_index * half_life_s * EPOCH_HALF_LIVES


def scaled(weight: float, at_s: float, half_life_s: float) -> tuple[int, float]:
    """The epoch a hit belongs to and its forward-decayed increment within that epoch."""
    e = epoch(at_s, half_life_s)
    return e, weight * float(2.0 ** ((at_s - epoch_base(e, half_life_s)) / half_life_s))


def decayed(score: float, epoch_index: int, now_s: float, half_life_s: float) -> float:
    """A stored score of `epoch_index`, decayed to `now_s`."""
    return score * float(2.0 ** ((epoch_base(epoch_index, half_life_s) - now_s) / half_life_s))


def hits(events: Iterable[StoredEvent]) -> list[Hit]:
    """The anonymous popularity increments a batch of events makes."""
    out: list[Hit] = []
    for e in events:
        if e.name == "product_viewed" and e.product_id:
            out.append(Hit(e.product_id, "view", 1.0, e.occurred_at))
        elif e.name == "product_added_to_cart" and e.product_id:
            out.append(Hit(e.product_id, "cart", float(e.quantity or 1), e.occurred_at))
        elif e.name == "checkout_completed":
            for item in e.payload.get("items", []):
                qty = float(item.get("quantity") or 1)
                out.append(Hit(item["product_id"], "purchase", qty, e.occurred_at))
        elif e.name == "nova:recommendation_clicked" and e.product_id:
            out.append(Hit(e.product_id, "click", 1.0, e.occurred_at))
    return out
