"""The recommender: one request in, an ordered list of products with their reasons out.

Plain Python over a ShopView; no Ray, no I/O. The caller (deployments/recommendations_app.py)
looks up the visitor's session state when privacy allows and passes it in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

import numpy as np

from deployments.ranking import rules as rules_mod
from deployments.ranking import strategies as s
from deployments.ranking.experiments import Experiment, VariantSpec, choose
from deployments.ranking.reranking import RERANK_INTENTS, rerank
from deployments.ranking.rules import RuleSet
from deployments.ranking.view import ShopView
from training.rerank import Reranker

SHOPIFY_INTENTS = ("related", "complementary")
NOVA_INTENTS = (
    "personalized",
    "trending",
    "recently_viewed",
    "new_arrivals",
    "frequently_bought_together",
)
INTENTS = SHOPIFY_INTENTS + NOVA_INTENTS
NEEDS_PRODUCT = ("related", "complementary")
IN_STOCK_INTENTS = ("complementary", "frequently_bought_together")
HISTORY_INTENTS = ("personalized", "recently_viewed")  # the ones a visitor's views shape
# Weights of the sources blended into the first step of each intent. "cf" is the shop's trained
# collaborative-filtering table (training/pipeline.py); until one is published the other
# sources carry the step alone, in the same proportions.
RELATED_BLEND = {"cf": 1.0, "co_view": 0.5, "co_cart": 0.25}
COPURCHASE_BLEND = {"co_purchase": 1.0, "co_cart": 0.5}
PERSONAL_BLEND = {"cf": 1.0, "co_view": 0.5, "co_purchase": 0.25}


@dataclass(frozen=True)
class Request:
    intent: str
    limit: int
    product_id: str | None = None
    cart: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    widget: str | None = None
    device: str | None = None
    country: str | None = None
    unit: str | None = None  # the id experiments assign by (customer id, else client id)


@dataclass(frozen=True)
class Visitor:
    """What the session may contribute: empty for contextual-only requests (no consent)."""

    recent_views: tuple[str, ...] = ()
    cart: tuple[str, ...] = ()
    returning: bool = False


@dataclass(slots=True)
class Ranked:
    idx: int
    score: float
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Result:
    intent: str
    ranking_id: str
    products: list[Ranked]
    experiment: str | None = None
    variant: str | None = None
    anchor: int | None = None  # the viewed product, for tracking parameters


def ranking_id(experiment: str | None, variant: str | None) -> str:
    """Opaque to clients; "r.<random>" or "r.<random>.<experiment>.<variant>", so impressions
    and clicks that carry it join back to the variant without a lookup."""
    token = secrets.token_hex(8)
    return f"r.{token}.{experiment}.{variant}" if experiment and variant else f"r.{token}"


def parse_ranking_id(value: str) -> tuple[str | None, str | None]:
    parts = value.split(".")
    return (parts[2], parts[3]) if len(parts) == 4 and parts[0] == "r" else (None, None)


RulesLookup = Callable[[int | None], RuleSet]


Choice = tuple[Experiment, VariantSpec] | None


def assign(request: Request, visitor: Visitor, experiments: Sequence[Experiment]) -> Choice:
    """The experiment and variant this request falls in, if any (sticky per shopper)."""
    return choose(
        experiments,
        request.unit,
        intent=request.intent,
        widget=request.widget,
        device=request.device,
        returning=visitor.returning,
        country=request.country,
    )


def recommend(
    view: ShopView,
    request: Request,
    visitor: Visitor,
    *,
    rules_for: RulesLookup,
    experiments: Sequence[Experiment],
    now: datetime,
    chosen: Choice | Literal["assign"] = "assign",
    reranker: Reranker | None = None,
) -> Result:
    """`chosen`: the caller's assign() result, when it needed the variant first;
    `reranker`: the shop's learning-to-rank model, if one is published."""
    if chosen == "assign":
        chosen = assign(request, visitor, experiments)
    experiment, variant = (chosen[0].id, chosen[1]) if chosen else (None, None)
    rid = ranking_id(experiment, variant.name if variant else None)
    anchor = view.index.get(request.product_id) if request.product_id else None
    result = Result(request.intent, rid, [], experiment, variant.name if variant else None, anchor)
    if variant is not None and variant.holdout:
        return result

    cart = {view.index[p] for p in (*request.cart, *visitor.cart) if p in view.index}
    recent = [view.index[p] for p in visitor.recent_views if p in view.index]
    excluded = cart | {view.index[p] for p in request.exclude if p in view.index}
    if anchor is not None:
        excluded.add(anchor)
    sellable = view.in_stock if request.intent in IN_STOCK_INTENTS else view.available
    eligible = view.servable & sellable
    active = rules_mod.active(
        rules_for(variant.rules_version if variant else None),
        request.intent,
        request.widget,
        request.device,
        now,
    )
    context_price = float(view.price[anchor]) if anchor is not None else None

    rerank_with = (
        partial(_reranked, model=reranker, device=request.device, now=now.timestamp())
        if reranker is not None and request.intent in RERANK_INTENTS
        else None
    )
    chain = _chain(view, request, variant, anchor, recent, sorted(cart), rerank_with)
    picked, refs = _collect(
        view, chain, eligible, excluded, active, request.limit, context_price, now, variant
    )
    order: list[int] = [i for i, _ in picked]
    pinned: dict[int, str] = {}
    if any(isinstance(rule, rules_mod.Pin) for rule in active):
        allowed = eligible.copy()
        allowed[list(excluded)] = False
        order, pinned = rules_mod.pin(active, order, allowed, view, request.limit)
    scores = dict(picked)
    for i in order[: request.limit]:
        why = _reasons(view, refs.get(i))
        if i in pinned:
            why = [*why, {"type": "rule", "name": pinned[i]}]
        result.products.append(Ranked(i, scores.get(i, 0.0), why))
    return result


Step = Callable[[], s.Candidates]


def _chain(
    view: ShopView,
    request: Request,
    variant: VariantSpec | None,
    anchor: int | None,
    recent: list[int],
    cart: list[int],
    rerank_with: Callable[..., s.Candidates] | None = None,
) -> list[Step]:
    """The steps of an intent: its own strategy, then the fallbacks."""
    focus = anchor if anchor is not None else (recent + cart + [None])[0]
    fallbacks: list[Step] = []
    if focus is not None:
        fallbacks += [partial(s.content, view, focus), partial(s.collection_popular, view, focus)]
    fallbacks.append(partial(s.popular, view))
    strategy = variant.strategy if variant else None
    if strategy == "popular":
        return [partial(s.popular, view)]
    if strategy == "content":
        return fallbacks

    intent = request.intent
    if intent == "related" and anchor is not None:
        anchors = [(anchor, 1.0)]
        first = partial(_blended, view, "related", RELATED_BLEND, anchors)
        if rerank_with is not None:
            first = partial(rerank_with, view, first, anchors, anchor)
        return [first, *fallbacks]
    if intent in ("complementary", "frequently_bought_together"):
        anchors = [(a, 1.0) for a in ([anchor] if anchor is not None else []) + cart]
        if not anchors:
            return fallbacks
        return [partial(_blended, view, intent, COPURCHASE_BLEND, anchors), *fallbacks]
    if intent == "personalized":
        anchors = s.weighted_recent(recent) + [(c, 1.0) for c in cart]
        trending = partial(s.trending, view)
        if not anchors:
            return [trending, *fallbacks]
        first = partial(_blended, view, "personal", PERSONAL_BLEND, anchors)
        if rerank_with is not None:
            first = partial(rerank_with, view, first, anchors, focus)
        return [first, *fallbacks[:-1], trending, *fallbacks[-1:]]
    if intent == "trending":
        return [partial(s.trending, view)]
    if intent == "recently_viewed":
        return [partial(s.recently_viewed, recent), *fallbacks]
    if intent == "new_arrivals":
        return [partial(s.new_arrivals, view), *fallbacks]
    return fallbacks


def _reranked(
    view: ShopView,
    step: Step,
    anchors: list[tuple[int, float]],
    focus: int | None,
    *,
    model: Reranker,
    device: str | None,
    now: float,
) -> s.Candidates:
    return rerank(view, step(), model, anchors, focus, device, now)


def _blended(
    view: ShopView, name: str, weights: dict[str, float], anchors: list[tuple[int, float]]
) -> s.Candidates:
    return s.blend(view, name, weights, anchors)


# A candidate's source list, its position there, its rule labels, and its score and anchor
# (-1: none) in that list, read in the same numpy call as its neighbours' rather than one by one.
Ref = tuple[s.Candidates, int, list[str], float, int]


def _collect(
    view: ShopView,
    chain: Sequence[Step],
    eligible: np.ndarray,
    excluded: set[int],
    active: Sequence[object],
    limit: int,
    context_price: float | None,
    now: datetime,
    variant: VariantSpec | None,
) -> tuple[list[tuple[int, float]], dict[int, Ref]]:
    """Walk the chain until `limit` products survive the rules (not counting buried ones).
    Each step's products rank below every product of the steps before it (scores live in
    tiers); within a step, candidates go through the rules in chunks, so a long list (every
    product, for the popularity fallback) costs only what the answer needs."""
    taken: list[tuple[int, float]] = []
    refs: dict[int, Ref] = {}
    buried: set[int] = set()
    open_ = eligible.copy()
    open_[list(excluded)] = False
    weights = variant.blend if variant and variant.blend else None
    chunk = max(4 * limit, 40)
    for level, step in enumerate(chain):
        if len(taken) - len(buried) >= limit:
            break
        cands = step()
        positions = np.flatnonzero(open_[cands.idx]) if len(cands.idx) else cands.idx
        if not len(positions):
            continue
        top = float(cands.scores[positions].max()) or 1.0
        tier = float(len(chain) - level)
        if not active and not weights:
            # Nothing can reorder, drop or bury a candidate: a step's best-first list is the
            # answer's order, so take what is still needed and no more.
            part = positions[: limit - len(taken)]
            idx = cands.idx[part]
            raw = cands.scores[part]
            scores = tier + raw / top
            for i, p, score, r, a in zip(
                idx.tolist(),
                part.tolist(),
                scores.tolist(),
                raw.tolist(),
                _anchors(cands, part),
                strict=True,
            ):
                refs[i] = (cands, p, [], r, a)
                taken.append((i, score))
            open_[idx] = False
            continue
        for start in range(0, len(positions), chunk):
            part = positions[start : start + chunk]
            part = part[open_[cands.idx[part]]]  # drop what an earlier chunk took
            idx = cands.idx[part]
            scores = cands.scores[part] / top
            if weights:
                scores = scores * np.array(
                    [weights.get(cands.source_at(int(p)), 1.0) for p in part]
                )
            applied = rules_mod.filter_and_order(
                active, view, idx, tier + scores, context_price=context_price, now=now
            )
            where = {
                i: (p, r, a)
                for i, p, r, a in zip(
                    idx.tolist(),
                    part.tolist(),
                    cands.scores[part].tolist(),
                    _anchors(cands, part),
                    strict=True,
                )
            }
            for i, score in zip(applied.idx.tolist(), applied.scores.tolist(), strict=True):
                labels = applied.reasons.get(i, [])
                p, r, a = where[i]
                refs[i] = (cands, p, labels, r, a)
                if any(label.startswith("bury") for label in labels):
                    buried.add(i)
                taken.append((i, score))
                open_[i] = False
            if len(taken) - len(buried) >= limit:
                break
    # Tiers keep earlier steps first; a boost may lift a product past another step's.
    taken.sort(key=lambda t: -t[1])
    if buried:
        taken = [t for t in taken if t[0] not in buried] + [t for t in taken if t[0] in buried]
    return taken, refs


def _anchors(cands: s.Candidates, part: np.ndarray) -> list[int]:
    """The anchors of the candidates at positions `part` (-1: none)."""
    return cands.anchors[part].tolist() if cands.anchors is not None else [-1] * len(part)


def _reasons(view: ShopView, ref: Ref | None) -> list[dict[str, Any]]:
    """Why a product is in the answer: the source that produced it (with the product it came
    from, for neighbours) and the rules that moved it."""
    if ref is None:
        return []
    cands, n, labels, score, anchor = ref
    why: dict[str, Any] = {"type": "source", "name": cands.source_at(n), "score": round(score, 4)}
    if anchor >= 0:
        why["anchor"] = view.products[anchor].id
    if cands.model is not None:
        why["model"] = cands.model
    if not labels:
        return [why]
    return [why, *({"type": "rule", "name": label} for label in labels)]
