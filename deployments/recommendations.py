"""Ray Serve deployment of GET /v1/recommendations: a thin wrapper around
deployments/recommendations_app.py and deployments/ranking/, which know nothing of Ray."""

from __future__ import annotations

from ray import serve
from starlette.types import ASGIApp

from config.settings import load_settings
from deployments.logs import to_replica_log
from deployments.metrics import RecommendationMetrics
from deployments.ranking.state import ShopStates
from deployments.recommendations_app import build_recommendations_app
from ingest.stores import open_stores
from training.registry import Registry

STUCK_AFTER_S = 120.0
# Serve averages ongoing requests over 30 s (look_back_period_s) and acts after upscale_delay_s:
# a replica is added after ~30 s of sustained load above the target (bench/serve.py waits).
AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 4,
    "target_ongoing_requests": 8,
    "upscale_delay_s": 10,
    "downscale_delay_s": 120,
}
NUM_CPUS = 0.25  # what Ray reserves per replica, for placement; the replica may use a whole core


@serve.deployment(
    name="Recommendations",
    # Handlers never block: the one Redis round trip per request is awaited.
    max_ongoing_requests=64,
    autoscaling_config=AUTOSCALING,
    ray_actor_options={"num_cpus": NUM_CPUS},
    health_check_period_s=5,
    health_check_timeout_s=5,
    # Serve's INFO records are skipped, not just filtered: even with the access log off, Serve
    # built an access-log record per request (~5% of a replica's CPU, docs/benchmarks.md).
    # Our own records still reach the replica's log at INFO (deployments/logs.py).
    logging_config={"enable_access_log": False, "log_level": "WARNING"},
)
@serve.ingress()
class RecommendationsDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        to_replica_log()
        settings = load_settings()
        self._stores = await open_stores(settings, migrate=False)
        # Catalog views, rules and experiments live in this replica's memory and refresh
        # themselves when the shop's change counters move (deployments/ranking/state.py).
        self._states = ShopStates(
            self._stores, registry=Registry(self._stores, settings.model_store)
        )
        self._metrics = RecommendationMetrics()
        self._app = build_recommendations_app(
            settings, self._stores, self._states, observe=self._metrics.observe
        )

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self._app

    async def check_health(self) -> None:
        """Unhealthy when a state refresh hangs (the replica would serve stale catalogs
        forever). A store outage is not: loaded shops keep serving, visitor state degrades to
        contextual answers (counted), and restarting replicas would not bring a store back."""
        stuck = self._states.stuck_for()
        if stuck > STUCK_AFTER_S:
            raise RuntimeError(f"a shop state refresh has been running for {stuck:.0f}s")

    async def __del__(self) -> None:
        await self._stores.close()
