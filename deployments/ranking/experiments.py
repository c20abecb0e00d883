"""A/B experiments: variants of how recommendations are made, assigned stickily per shopper.

Assignment hashes the experiment's salt with the shopper's id (the customer id when known,
else Shopify's client id) into [0, 1) and walks the cumulative variant weights: the same
shopper gets the same variant on every request, in every replica, with no state kept. A new
salt reshuffles everyone. Shoppers without any id are not enrolled (they get the default).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STRATEGIES = ("behaviour", "content", "popular")


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Names travel inside ranking ids (see engine.ranking_id), so they are URL-safe tokens.
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    weight: float = Field(1.0, gt=0)
    # How this variant recommends: "behaviour" (the default chain), "content" (similar
    # products only) or "popular" (the popularity baseline); then the usual fallbacks.
    strategy: Literal["behaviour", "content", "popular"] | None = None
    # Multipliers on candidate sources (co_view, co_cart, co_purchase, content, personal, ...).
    blend: dict[str, float] | None = None
    rules_version: int | None = Field(None, ge=1)
    model_version: int | None = Field(None, ge=1)  # trained models arrive with issue 4
    # A holdout shows nothing, so the widget can hide and lift over "no widget" is measurable.
    holdout: bool = False


class Segment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: list[Literal["mobile", "tablet", "desktop"]] | None = None
    visitor: Literal["new", "returning"] | None = None
    countries: list[str] | None = None

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: list[str] | None) -> list[str] | None:
        return [c.upper() for c in value] if value else value


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    intents: list[str] | None = None
    widgets: list[str] | None = None
    segment: Segment | None = None
    variants: list[VariantSpec] = Field(min_length=2, max_length=10)
    salt: str = Field(min_length=1, max_length=64)
    status: Literal["draft", "running", "stopped"] = "draft"
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        return self

    def applies(
        self,
        intent: str,
        widget: str | None,
        device: str | None,
        returning: bool,
        country: str | None,
    ) -> bool:
        if self.status != "running":
            return False
        if self.intents is not None and intent not in self.intents:
            return False
        if self.widgets is not None and widget not in self.widgets:
            return False
        s = self.segment
        if s is None:
            return True
        return (
            (s.devices is None or device in s.devices)
            and (s.visitor is None or (s.visitor == "returning") == returning)
            and (s.countries is None or (country or "").upper() in s.countries)
        )


def bucket(salt: str, unit: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, unit)."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, unit: str) -> VariantSpec:
    point = bucket(experiment.salt, unit) * sum(v.weight for v in experiment.variants)
    for variant in experiment.variants:
        point -= variant.weight
        if point < 0:
            return variant
    return experiment.variants[-1]


def choose(
    experiments: Sequence[Experiment],
    unit: str | None,
    *,
    intent: str,
    widget: str | None,
    device: str | None,
    returning: bool,
    country: str | None,
) -> tuple[Experiment, VariantSpec] | None:
    """The first running experiment (oldest first) whose scope covers the request."""
    if not unit:
        return None
    running = sorted(
        (e for e in experiments if e.applies(intent, widget, device, returning, country)),
        key=lambda e: (e.started_at.timestamp() if e.started_at else float("inf"), e.id),
    )
    if not running:
        return None
    return running[0], assign(running[0], unit)
