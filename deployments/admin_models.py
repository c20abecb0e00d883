"""Admin API for the model registry: what was fitted, what serves, pins and rollbacks. Mounted
by deployments/admin_app.py under /admin/shops/{shop}/models, behind the operator token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deployments.admin_merch import parse_body
from ingest.errors import NotFound
from ingest.records import ModelRow
from ingest.stores.base import Stores
from training.registry import Registry

Handler = Callable[[Request], Awaitable[Response]]


class Pin(BaseModel):
    version: int = Field(ge=1)


def model_json(row: ModelRow) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "version": row.version,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "config": row.config,
        "data_window": row.data_window,
        "metrics": row.metrics,
        "artifact_uri": row.artifact_uri,
        "reason": row.reason,
    }


def model_routes(
    stores: Stores, registry: Registry, guarded: Callable[[Handler], Handler]
) -> list[Route]:
    async def shop_of(request: Request) -> str:
        shop_id = str(request.path_params["shop"])
        if await stores.shops.get_shop(shop_id) is None:
            raise NotFound(f"no shop {shop_id}")
        return shop_id

    async def state(shop_id: str, kind: str) -> dict[str, Any]:
        serving = (await registry.serving(shop_id)).get(kind)
        return {
            "kind": kind,
            "pinned": (await registry.pins(shop_id)).get(kind),
            "serving": model_json(serving) if serving else None,
        }

    async def list_models(request: Request) -> Response:
        shop_id = await shop_of(request)
        rows = await registry.rows(shop_id, request.query_params.get("kind") or None)
        serving = await registry.serving(shop_id)
        return JSONResponse(
            {
                "serving": {kind: row.version for kind, row in sorted(serving.items())},
                "pins": await registry.pins(shop_id),
                "models": [model_json(r) for r in rows],
            }
        )

    async def pin(request: Request) -> Response:
        shop_id = await shop_of(request)
        kind = request.path_params["kind"]
        await registry.pin(shop_id, kind, parse_body(Pin, await request.body()).version)
        return JSONResponse(await state(shop_id, kind))

    async def unpin(request: Request) -> Response:
        shop_id = await shop_of(request)
        kind = request.path_params["kind"]
        await registry.unpin(shop_id, kind)
        return JSONResponse(await state(shop_id, kind))

    async def rollback(request: Request) -> Response:
        shop_id = await shop_of(request)
        kind = request.path_params["kind"]
        await registry.rollback(shop_id, kind)
        return JSONResponse(await state(shop_id, kind))

    base = "/shops/{shop}/models"
    return [
        Route(base, guarded(list_models), methods=["GET"]),
        Route(f"{base}/{{kind}}/pin", guarded(pin), methods=["POST"]),
        Route(f"{base}/{{kind}}/pin", guarded(unpin), methods=["DELETE"]),
        Route(f"{base}/{{kind}}/rollback", guarded(rollback), methods=["POST"]),
    ]
