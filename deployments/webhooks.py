"""Ray Serve deployment of the Shopify webhook receiver (POST /webhooks/...): a thin wrapper
around deployments/webhooks_app.py and ingest/catalog.py, which know nothing of Ray."""

from __future__ import annotations

from ray import serve
from starlette.types import ASGIApp

from config.settings import load_settings
from deployments.logs import to_replica_log
from deployments.webhooks_app import build_webhooks_app
from ingest.stores import open_stores


@serve.deployment(
    name="Webhooks",
    # Shopify sends bursts (a bulk edit of products is one delivery per product) and gives each
    # delivery 5 s; handlers are async, so one replica overlaps many.
    max_ongoing_requests=32,
    autoscaling_config={
        "min_replicas": 1,
        "max_replicas": 2,
        "target_ongoing_requests": 8,
        "upscale_delay_s": 10,
        "downscale_delay_s": 120,
    },
    ray_actor_options={"num_cpus": 0.1},
    health_check_period_s=10,
    health_check_timeout_s=10,
)
@serve.ingress()
class WebhooksDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        to_replica_log()
        # Settings (the app secret among them) come from the replica's own NOVA_* environment,
        # never from bind() arguments: secrets stay out of Ray's GCS.
        settings = load_settings()
        self._stores = await open_stores(settings, migrate=False)
        self._app = build_webhooks_app(settings, self._stores)

    def __serve_build_asgi_app__(self) -> ASGIApp:
        return self._app

    async def check_health(self) -> None:
        """Fails while the store that makes orders durable (Redis, or SQLite) is unreachable;
        deliveries meanwhile get 503 with Retry-After, and Shopify retries them."""
        await self._stores.health.ping()

    async def __del__(self) -> None:
        await self._stores.close()
