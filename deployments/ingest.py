"""Ray Serve deployment of the ingest API (POST /v1/events): a thin wrapper around
deployments/ingest_app.py and ingest/service.py, which know nothing of Ray."""

from __future__ import annotations

from ray import serve
from starlette.types import ASGIApp

from config.settings import load_settings
from deployments.ingest_app import build_ingest_app
from deployments.logs import to_replica_log
from deployments.metrics import IngestMetrics
from ingest.service import IngestService
from ingest.stores import open_stores


@serve.deployment(
    name="Ingest",
    # Handlers are async and never block the loop, so one replica overlaps many requests.
    max_ongoing_requests=64,
    autoscaling_config={
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 16,
        "upscale_delay_s": 10,
        "downscale_delay_s": 120,
    },
    ray_actor_options={"num_cpus": 0.25},
    health_check_period_s=5,
    health_check_timeout_s=5,
    # One access-log line per beacon costs more than some of the work it logs; outcomes are
    # counted in metrics and errors are still logged.
    logging_config={"enable_access_log": False},
)
@serve.ingress()
class IngestDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        to_replica_log()
        # Settings come from the replica's own NOVA_* environment (runtime_env locally, the
        # pod spec on Kubernetes), never from bind() arguments: secrets stay out of Ray's GCS.
        settings = load_settings()
        # migrate=False: the replica must start even while PostgreSQL is down (it only needs
        # Redis to accept events); migrations run from `nova serve` and the writer.
        self._stores = await open_stores(settings, migrate=False)
        self._metrics = IngestMetrics()
        self._app = build_ingest_app(
            settings, IngestService(settings, self._stores), observe=self._metrics.observe
        )

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self._app

    async def check_health(self) -> None:
        """Fails while the store that makes events durable (Redis, or SQLite) is unreachable;
        requests meanwhile get 503 with Retry-After from the handler itself."""
        await self._stores.health.ping()

    async def __del__(self) -> None:
        await self._stores.close()
