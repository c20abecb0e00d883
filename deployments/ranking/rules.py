"""Merchant rules: what a shop's recommendations may contain and how they are ordered.

A rule set is a list of rules. Any rule may be scoped to intents, widgets and devices and to a
time window; outside its scope it does nothing. Rules apply in this fixed order, whatever
their order in the list (docs/api.md, "Rules"):

1. eligibility (Shopify's own rules) and the request's exclusions — not merchant rules;
2. `exclude`, then `include`, then `price_band`, then `recency`, then `min_popularity` filter;
3. `boost` multiplies a product's score by its factor (boosts multiply together);
4. `bury` moves matching products after all others, keeping their relative order;
5. `pin` puts a product at a fixed position, if it is eligible; pins by position order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from deployments.ranking.view import ShopView

Field_ = Literal["tag", "collection", "vendor", "product_type", "product"]
Devices = Literal["mobile", "tablet", "desktop"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, max_length=64)
    enabled: bool = True
    intents: list[str] | None = None
    widgets: list[str] | None = None
    devices: list[Devices] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def in_scope(self, intent: str, widget: str | None, device: str | None, now: datetime) -> bool:
        return (
            self.enabled
            and (self.intents is None or intent in self.intents)
            and (self.widgets is None or widget in self.widgets)
            and (self.devices is None or device in self.devices)
            and (self.starts_at is None or now >= self.starts_at)
            and (self.ends_at is None or now < self.ends_at)
        )


class _Matching(_Rule):
    field: Field_
    values: list[str] = Field(min_length=1)

    def matches(self, view: ShopView, idx: np.ndarray) -> np.ndarray:
        wanted = (
            {v.lower() for v in self.values} if self.field != "collection" else set(self.values)
        )
        if self.field == "tag":
            hit = [bool(view.tags[i] & wanted) for i in idx]
        elif self.field == "collection":
            hit = [bool(view.collections[i] & wanted) for i in idx]
        elif self.field == "vendor":
            hit = [view.vendor[i] in wanted for i in idx]
        elif self.field == "product_type":
            hit = [view.product_type[i] in wanted for i in idx]
        else:
            hit = [view.products[i].id in self.values for i in idx]
        return np.array(hit, dtype=bool)


class Exclude(_Matching):
    type: Literal["exclude"]


class Include(_Matching):
    type: Literal["include"]


class PriceBand(_Rule):
    """Absolute bounds, or bounds relative to the viewed product's price (0.5 = half)."""

    type: Literal["price_band"]
    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, ge=0)
    relative_min: float | None = Field(None, ge=0)
    relative_max: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> PriceBand:
        if all(b is None for b in (self.min, self.max, self.relative_min, self.relative_max)):
            raise ValueError("a price band needs min, max, relative_min or relative_max")
        return self


class Recency(_Rule):
    """Only products created within the last `days` days."""

    type: Literal["recency"]
    days: float = Field(gt=0)


class MinPopularity(_Rule):
    type: Literal["min_popularity"]
    min: float = Field(gt=0)
    signal: Literal["view", "cart", "purchase"] = "view"
    window: Literal["hour", "day", "week"] = "week"


class Boost(_Matching):
    type: Literal["boost"]
    factor: float = Field(gt=1)


class Bury(_Matching):
    type: Literal["bury"]


class Pin(_Rule):
    type: Literal["pin"]
    product_id: str
    position: int = Field(ge=1, le=50)


Rule = Annotated[
    Exclude | Include | PriceBand | Recency | MinPopularity | Boost | Bury | Pin,
    Field(discriminator="type"),
]


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list, max_length=200)


@dataclass
class Applied:
    """Candidates after the rules: indices in order, and per index the rules that fired."""

    idx: np.ndarray
    scores: np.ndarray
    reasons: dict[int, list[str]]


def _label(rule: _Rule, kind: str) -> str:
    return f"{kind}:{rule.id}" if rule.id else kind


def filter_and_order(
    rules: Sequence[object],
    view: ShopView,
    idx: np.ndarray,
    scores: np.ndarray,
    *,
    context_price: float | None,
    now: datetime,
) -> Applied:
    """Steps 2-4 on candidates already eligible (step 1); pins are applied by `pin`."""
    reasons: dict[int, list[str]] = {}
    keep = np.ones(len(idx), dtype=bool)
    for kind in (Exclude, Include, PriceBand, Recency, MinPopularity):
        for filter_rule in (r for r in rules if isinstance(r, kind)):
            keep &= _passes(filter_rule, view, idx, context_price, now)
    idx, scores = idx[keep], scores[keep].astype(np.float64)
    for boost in (r for r in rules if isinstance(r, Boost)):
        hit = boost.matches(view, idx)
        scores = np.where(hit, scores * boost.factor, scores)
        for i in idx[hit]:
            reasons.setdefault(int(i), []).append(_label(boost, "boost"))
    order = np.argsort(-scores, kind="stable")
    idx, scores = idx[order], scores[order]
    buried = np.zeros(len(idx), dtype=bool)
    for bury in (r for r in rules if isinstance(r, Bury)):
        hit = bury.matches(view, idx)
        buried |= hit
        for i in idx[hit]:
            reasons.setdefault(int(i), []).append(_label(bury, "bury"))
    order = np.concatenate([np.flatnonzero(~buried), np.flatnonzero(buried)])
    return Applied(idx[order], scores[order], reasons)


def _passes(
    rule: object, view: ShopView, idx: np.ndarray, context_price: float | None, now: datetime
) -> np.ndarray:
    if isinstance(rule, Exclude):
        return ~rule.matches(view, idx)
    if isinstance(rule, Include):
        return rule.matches(view, idx)
    if isinstance(rule, PriceBand):
        price = view.price[idx]
        ok = np.ones(len(idx), dtype=bool)
        if rule.min is not None:
            ok &= price >= rule.min
        if rule.max is not None:
            ok &= price <= rule.max
        if context_price is not None:  # relative bounds need a viewed product
            if rule.relative_min is not None:
                ok &= price >= rule.relative_min * context_price
            if rule.relative_max is not None:
                ok &= price <= rule.relative_max * context_price
        return ok
    if isinstance(rule, Recency):
        created = view.created[idx]
        recent: np.ndarray = (created > 0) & (created >= now.timestamp() - rule.days * 86400)
        return recent
    if isinstance(rule, MinPopularity):
        scores = view.popularity.get(f"{rule.signal}:{rule.window}")
        if scores is None:
            return np.zeros(len(idx), dtype=bool)
        passed: np.ndarray = scores[idx] >= rule.min
        return passed
    raise TypeError(f"not a filter rule: {rule!r}")


def pin(
    rules: Sequence[object], ordered: list[int], eligible: np.ndarray, view: ShopView, limit: int
) -> tuple[list[int], dict[int, str]]:
    """Insert pinned products at their positions (1-based). A pinned product must be eligible
    for this request (in stock, not in the cart, not excluded by the request); it need not have
    been a candidate, and filter rules do not remove it: pinning is the merchant's explicit
    choice. Returns the new order and, per pinned index, its reason."""
    pins = sorted((r for r in rules if isinstance(r, Pin)), key=lambda r: r.position)
    reasons: dict[int, str] = {}
    out = list(ordered)
    for rule in pins:
        i = view.index.get(rule.product_id)
        if i is None or not eligible[i] or rule.position > limit:
            continue
        if i in out:
            out.remove(i)
        out.insert(min(rule.position - 1, len(out)), i)
        reasons[i] = _label(rule, "pin")
    return out, reasons


def active(
    rule_set: RuleSet, intent: str, widget: str | None, device: str | None, now: datetime
) -> list[object]:
    return [r for r in rule_set.rules if r.in_scope(intent, widget, device, now)]
