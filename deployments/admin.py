"""Ray Serve deployment of the operator admin API (/admin)."""

from __future__ import annotations

from ray import serve
from starlette.applications import Starlette

from config.settings import load_settings
from deployments.admin_app import build_admin_app
from deployments.logs import to_replica_log
from ingest.stores import open_stores


@serve.deployment(
    name="Admin",
    num_replicas=1,
    max_ongoing_requests=16,
    ray_actor_options={"num_cpus": 0.1},
    health_check_period_s=10,
)
@serve.ingress()
class AdminDeployment:
    async def __init__(self) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        to_replica_log()
        settings = load_settings()
        self._stores = await open_stores(settings, migrate=False)
        self._app = build_admin_app(settings, self._stores)

    def __serve_build_asgi_app__(self) -> Starlette:
        return self._app

    async def __del__(self) -> None:
        await self._stores.close()
