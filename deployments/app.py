"""The Serve applications and how they are deployed.

Import paths for `serve run`, `serve deploy` and KubeRay's serveConfigV2 (config/serve.yaml):
`deployments.app:ingest_app`, `deployments.app:recommendations_app`,
`deployments.app:admin_app`, `deployments.app:webhooks_app`, `deployments.app:writer_app`,
`deployments.app:refresher_app`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray import serve
from ray.serve import Application, RunTarget

from config.settings import Backend, Settings
from deployments.admin import AdminDeployment
from deployments.ingest import IngestDeployment
from deployments.recommendations import RecommendationsDeployment
from deployments.refresher import RefresherDeployment
from deployments.webhooks import WebhooksDeployment
from deployments.writer import WriterDeployment

# @serve.deployment turns the classes into Deployments; mypy still sees the classes.
ingest_app = IngestDeployment.bind()  # type: ignore[attr-defined]
admin_app = AdminDeployment.bind()  # type: ignore[attr-defined]
webhooks_app = WebhooksDeployment.bind()  # type: ignore[attr-defined]
writer_app = WriterDeployment.bind()  # type: ignore[attr-defined]
recommendations_app = RecommendationsDeployment.bind()  # type: ignore[attr-defined]
refresher_app = RefresherDeployment.bind()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AppSpec:
    name: str
    route_prefix: str | None  # None: no HTTP route (a background worker)
    app: Application
    production_only: bool = False


APPLICATIONS = (
    AppSpec("ingest", "/v1/events", ingest_app),
    AppSpec("recommendations", "/v1/recommendations", recommendations_app),
    AppSpec("admin", "/admin", admin_app),
    AppSpec("webhooks", "/webhooks", webhooks_app),
    AppSpec("writer", None, writer_app, production_only=True),
    AppSpec("refresher", None, refresher_app),
)


def deploy(settings: Settings) -> list[str]:
    """Deploy every application the backend needs; returns their names. Blocks until all are
    running (a replica whose constructor fails makes this raise).

    One request for all of them, so their replicas' worker processes, the slow part of a
    start, come up side by side rather than one after another."""
    specs = [
        spec
        for spec in APPLICATIONS
        if not (spec.production_only and settings.backend is not Backend.PRODUCTION)
    ]
    serve.run_many(
        [RunTarget(spec.app, name=spec.name, route_prefix=spec.route_prefix) for spec in specs]
    )
    return [spec.name for spec in specs]
