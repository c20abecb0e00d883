"""What a serving replica holds per shop, and how it stays current without restarts.

Every CHECK_EVERY_S a shop's change counters are read (one small query); only what changed is
reloaded — the catalog view (products, collections, neighbour tables), rules, experiments,
trained models (deployments/ranking/models.py) —
and swapped in whole, so a request always sees one consistent state. Popularity is a snapshot
refreshed every POPULARITY_EVERY_S. The first request for a shop waits for its load; later
refreshes happen in the background while the old state keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from deployments.ranking.cooccurrence import NeighbourTable
from deployments.ranking.experiments import Experiment
from deployments.ranking.models import ServingModels
from deployments.ranking.models import load as load_models
from deployments.ranking.refresh import TABLES
from deployments.ranking.rules import RuleSet
from deployments.ranking.view import ShopView, build_view
from ingest.errors import StoreUnavailable
from ingest.records import Shop
from ingest.stores.base import Stores
from training.registry import Registry

log = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0
POPULARITY_EVERY_S = 30.0
POPULARITY_KEYS = [(s, w) for s in ("view", "cart", "purchase") for w in ("day", "week")]


@dataclass
class ShopState:
    shop: Shop
    view: ShopView
    rules: dict[int, RuleSet]  # by version; version 0 is "no rules"
    latest_rules: int
    experiments: list[Experiment]
    versions: dict[str, int]
    checked_at: float = 0.0
    popularity_at: float = 0.0
    loaded_versions: dict[str, int] = field(default_factory=dict)
    models: ServingModels = field(default_factory=ServingModels)
    stats_tables: dict[str, NeighbourTable] = field(default_factory=dict)

    def rules_for(self, version: int | None) -> RuleSet:
        """A variant's pinned rule-set version, or the latest; unknown versions fall back to
        the latest (and are logged), so a typo in an experiment cannot empty a widget."""
        if version is None:
            return self.rules[self.latest_rules]
        found = self.rules.get(version)
        if found is None:
            log.warning("rule set version %s not found; using the latest", version)
            return self.rules[self.latest_rules]
        return found


class ShopStates:
    def __init__(
        self,
        stores: Stores,
        clock: Callable[[], float] = time.monotonic,
        registry: Registry | None = None,
    ) -> None:
        """`registry`: where trained models come from; without one, only the statistics
        tables serve (tests of the engine alone)."""
        self._stores = stores
        self._registry = registry
        self._clock = clock
        self._states: dict[str, ShopState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: dict[str, float] = {}  # shop -> when its refresh started
        self._tasks: set[asyncio.Task[None]] = set()  # held so they are not collected mid-run

    async def get(self, shop_id: str) -> ShopState | None:
        """The shop's serving state, or None if the shop is unknown or uninstalled."""
        state = self._states.get(shop_id)
        if state is None:
            async with self._locks.setdefault(shop_id, asyncio.Lock()):
                state = self._states.get(shop_id)
                if state is None:
                    state = await self._load(shop_id, None)
                    if state is None:
                        return None
                    self._states[shop_id] = state
        now = self._clock()
        due = now - state.checked_at > CHECK_EVERY_S or now - state.popularity_at > (
            POPULARITY_EVERY_S
        )
        if due and shop_id not in self._refreshing:
            self._refreshing[shop_id] = now
            task = asyncio.get_running_loop().create_task(self._refresh(shop_id, state))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return None if state.shop.uninstalled_at is not None else state

    async def refresh_now(self, shop_id: str) -> ShopState | None:
        """Reload whatever changed, immediately (tests, and the first request of a shop)."""
        state = self._states.get(shop_id)
        state = await self._load(shop_id, state)
        if state is not None:
            self._states[shop_id] = state
        return state

    async def _refresh(self, shop_id: str, state: ShopState) -> None:
        try:
            fresh = await self._load(shop_id, state)
            if fresh is not None:
                self._states[shop_id] = fresh
        except StoreUnavailable as exc:
            # Keep serving what we have; the next request tries again.
            log.warning("cannot refresh %s: %s", shop_id, exc)
            self._states[shop_id] = replace(state, checked_at=self._clock())
        finally:
            self._refreshing.pop(shop_id, None)

    def stuck_for(self) -> float:
        """Seconds the oldest refresh in flight has been running (0 if none)."""
        now = self._clock()
        return max((now - started for started in self._refreshing.values()), default=0.0)

    async def _load(self, shop_id: str, old: ShopState | None) -> ShopState | None:
        stores, now = self._stores, self._clock()
        shop = await stores.shops.get_shop(shop_id)
        if shop is None:
            return None
        versions = await stores.versions.get(shop_id)

        def changed(kind: str) -> bool:
            return old is None or versions.get(kind, 0) != old.versions.get(kind, 0)

        models = old.models if old is not None else ServingModels()
        if self._registry is not None and (old is None or changed("models")):
            models = await load_models(self._registry, shop_id, models)
        if changed("catalog") or changed("stats") or old is None:
            view, stats_tables = await self._build_view(shop)
            view = view.with_neighbours(_tables(stats_tables, models))
            popularity_at = 0.0
        elif models is not old.models:
            stats_tables, popularity_at = old.stats_tables, old.popularity_at
            view = old.view.with_neighbours(_tables(stats_tables, models))
        else:
            view, popularity_at, stats_tables = old.view, old.popularity_at, old.stats_tables
        if now - popularity_at > POPULARITY_EVERY_S:
            view = view.with_popularity(await self._popularity(shop_id, view), datetime.now(UTC))
            popularity_at = now
        if old is None or changed("rules"):
            rules, latest = await self._rules(shop_id)
        else:
            rules, latest = old.rules, old.latest_rules
        experiments = (
            await self._experiments(shop_id)
            if old is None or changed("experiments")
            else old.experiments
        )
        for e in experiments:  # rule sets pinned by running variants must be at hand
            for v in e.variants:
                if v.rules_version is not None and v.rules_version not in rules:
                    found = await stores.merch.rules(shop_id, v.rules_version)
                    if found is not None:
                        rules[found[0]] = _rule_set(found[1], shop_id, found[0])
        return ShopState(
            shop,
            view,
            rules,
            latest,
            experiments,
            versions,
            now,
            popularity_at,
            models=models,
            stats_tables=stats_tables,
        )

    async def _build_view(self, shop: Shop) -> tuple[ShopView, dict[str, NeighbourTable]]:
        """The catalog view (without neighbours) and the shop's statistics tables."""
        stores = self._stores
        products = await stores.catalog.list_products(shop.shop_id)
        collections = await stores.catalog.list_collections(shop.shop_id)
        view = build_view(shop.shop_id, shop.currency, products, collections)
        tables = {}
        for kind in TABLES:
            found = await stores.stats.stats(shop.shop_id, kind)
            if found is not None:
                tables[kind] = NeighbourTable.from_bytes(found[1])
        return view, tables

    async def _popularity(self, shop_id: str, view: ShopView) -> dict[str, dict[str, float]]:
        now = datetime.now(UTC)
        out = {}
        for signal, window in POPULARITY_KEYS:
            top = await self._stores.popularity.top(shop_id, signal, window, view.size or 1, now)
            out[f"{signal}:{window}"] = dict(top)
        return out

    async def _rules(self, shop_id: str) -> tuple[dict[int, RuleSet], int]:
        found = await self._stores.merch.rules(shop_id)
        rules = {0: RuleSet()}
        if found is None:
            return rules, 0
        rules[found[0]] = _rule_set(found[1], shop_id, found[0])
        return rules, found[0]

    async def _experiments(self, shop_id: str) -> list[Experiment]:
        out = []
        for doc in await self._stores.merch.experiments(shop_id):
            try:
                out.append(Experiment.model_validate(doc))
            except ValidationError as exc:
                log.error("experiment of %s no longer valid, skipped: %s", shop_id, exc)
        return out


def _tables(stats: dict[str, NeighbourTable], models: ServingModels) -> list[NeighbourTable]:
    """Statistics tables and trained ones; a trained table replaces a statistic of its kind."""
    return list({**stats, **models.tables}.values())


def _rule_set(doc: dict[str, Any], shop_id: str, version: int) -> RuleSet:
    try:
        return RuleSet.model_validate(doc)
    except ValidationError as exc:
        # Stored rules were validated on the way in; if the model changed since, serve
        # without them rather than fail every request.
        log.error("rule set %s of %s no longer valid, ignored: %s", version, shop_id, exc)
        return RuleSet()
